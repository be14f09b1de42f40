public import Delivery
public import Logging

extension Configuration {
    /// The gateway of each configured channel.
    public func deliveryProviders(logger: Logger) throws(ConfigurationError) -> [Channel: any DeliveryProvider] {
        var providers: [Channel: any DeliveryProvider] = [:]
        for channel in Channel.allCases {
            guard let gateway = delivery.gateway(for: channel) else { continue }
            switch gateway.provider {
            case .log:
                providers[channel] = LogProvider(logger: logger)
            case .twilio, .smtp, .telegram, .webhook:
                throw ConfigurationError(
                    key: "delivery.\(channel.rawValue).provider",
                    "provider \(gateway.provider.rawValue) is not available in this build yet; use log")
            }
        }
        return providers
    }
}
