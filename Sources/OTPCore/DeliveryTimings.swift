import Delivery
import Synchronization

/// How long deliveries on each channel take lately: an exponentially weighted moving average
/// of successful deliveries, so a concealed unknown user's answer can take as long as a real one.
final class DeliveryTimings: Sendable {
    private let averages = Mutex<[DeliveryChannel: Duration]>([:])

    func record(_ duration: Duration, channel: DeliveryChannel) {
        averages.withLock { averages in
            let previous = averages[channel] ?? duration
            averages[channel] = previous * 0.8 + duration * 0.2
        }
    }

    /// The average for `channel`, zero before its first delivery.
    func typical(_ channel: DeliveryChannel) -> Duration {
        averages.withLock { $0[channel] } ?? .zero
    }
}
