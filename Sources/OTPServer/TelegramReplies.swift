import Logging
import OTPCore
import ServiceLifecycle

/// The Telegram bot's replies, sent after the webhook has answered 200 (Telegram waits for
/// that answer and redelivers when it is slow).
///
/// A bounded queue drained by a service of the app: at most `concurrency` replies in flight,
/// each through the telegram gateway with its timeout and retries; a full queue drops the
/// reply and counts it (the person writes to the bot again) rather than grow. On graceful
/// shutdown the queue is closed and what it holds is still sent.
final class TelegramReplies: Service {
    private let engine: OTPEngine
    private let metrics: ServerMetrics
    private let stream: AsyncStream<TelegramBot.Reply>
    private let continuation: AsyncStream<TelegramBot.Reply>.Continuation
    static let capacity = 1000
    static let concurrency = 16

    init(engine: OTPEngine, metrics: ServerMetrics) {
        self.engine = engine
        self.metrics = metrics
        (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(Self.capacity))
    }

    /// Queues a reply; false when the queue is full or closed.
    func enqueue(_ reply: TelegramBot.Reply) -> Bool {
        if case .enqueued = continuation.yield(reply) { return true }
        metrics.recordBotUpdate(outcome: "reply_dropped")
        return false
    }

    func run() async throws {
        let engine = engine
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for await reply in stream {
                    if running >= Self.concurrency {
                        await group.next()
                        running -= 1
                    }
                    group.addTask { await TelegramBot(engine: engine).deliver(reply) }
                    running += 1
                }
            }
        } onGracefulShutdown: { [continuation] in
            continuation.finish()
        }
    }
}
