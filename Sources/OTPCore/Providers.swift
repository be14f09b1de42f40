public import Delivery
public import Logging

extension Configuration {
    /// The gateway of each configured channel. `validate()` has checked the required keys.
    public func deliveryProviders(logger: Logger) -> [Channel: any DeliveryProvider] {
        let policy = GatewayPolicy(timeoutMilliseconds: delivery.timeoutMilliseconds, retries: delivery.retries)
        var providers: [Channel: any DeliveryProvider] = [:]
        for channel in Channel.allCases {
            guard let gateway = delivery.gateway(for: channel) else { continue }
            switch gateway.provider {
            case .log:
                providers[channel] = LogProvider(logger: logger)
            case .twilio:
                providers[channel] = TwilioProvider(
                    baseURL: gateway.baseURL ?? "https://api.twilio.com", accountSID: gateway.accountSID ?? "",
                    authToken: gateway.authToken ?? "", from: gateway.from ?? "", policy: policy)
            case .smtp:
                providers[channel] = SMTPProvider(
                    url: gateway.smtpURL ?? "", from: gateway.from ?? "", username: gateway.username,
                    password: gateway.password, policy: policy)
            case .telegram:
                providers[channel] = TelegramProvider(
                    apiBaseURL: gateway.apiBaseURL ?? "https://api.telegram.org", botToken: gateway.botToken ?? "",
                    policy: policy)
            case .webhook:
                providers[channel] = WebhookProvider(url: gateway.url ?? "", secret: gateway.secret ?? "", policy: policy)
            }
        }
        return providers
    }
}
