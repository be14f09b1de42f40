public import Delivery
public import Logging

extension Configuration {
    /// The delivery provider of each channel that has a gateway.
    public func deliveryProviders(logger: Logger) -> [DeliveryChannel: any DeliveryProvider] {
        let policy = GatewayPolicy(timeoutMilliseconds: delivery.timeoutMilliseconds, retries: delivery.retries)
        var providers: [DeliveryChannel: any DeliveryProvider] = [:]
        for channel in DeliveryChannel.allCases {
            guard let gateway = delivery.gateway(for: channel) else { continue }
            providers[channel] = gateway.deliveryProvider(policy: policy, logger: logger)
        }
        return providers
    }
}

extension Configuration.Gateway {
    /// The provider that carries messages as this gateway describes.
    public func deliveryProvider(policy: GatewayPolicy, logger: Logger) -> any DeliveryProvider {
        switch self {
        case .twilio(let twilio):
            TwilioProvider(
                baseURL: twilio.baseURL, accountSID: twilio.accountSID, authToken: twilio.authToken, from: twilio.from,
                policy: policy)
        case .smtp(let smtp):
            SMTPProvider(
                url: smtp.smtpURL, from: smtp.from, username: smtp.username, password: smtp.password,
                requireTLS: smtp.tls == .required, policy: policy)
        case .telegram(let telegram):
            TelegramProvider(apiBaseURL: telegram.apiBaseURL, botToken: telegram.botToken, policy: policy)
        case .webhook(let webhook):
            WebhookProvider(url: webhook.url, secret: webhook.secret, policy: policy)
        case .whatsappCloud(let cloud):
            WhatsAppCloudProvider(
                baseURL: cloud.baseURL, apiVersion: cloud.apiVersion, phoneNumberID: cloud.phoneNumberID,
                accessToken: cloud.accessToken, template: cloud.template, languages: cloud.languages, policy: policy)
        case .log:
            LogProvider(logger: logger)
        }
    }
}
