import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where otpd's log lines go: a bounded buffer that callers append formatted lines to, drained
/// by one thread of its own that writes them in batches (to standard output in `otpd serve`).
///
/// Appending never blocks on the output: it takes a short lock, copies the line, and wakes the
/// writer thread only when it sleeps waiting for lines — at most once per batch, which gathers
/// for 2 ms. When the buffer is full — the output is slower than the
/// lines coming in — the line is dropped and counted (`droppedLines`, and every counter passed
/// to `countDrops(in:)`), so a slow or stuck output never stalls a request.
public final class LogOutput: @unchecked Sendable {
    /// Writes one batch of whole lines; called on the writer thread only.
    public typealias Sink = @Sendable (UnsafeRawBufferPointer) -> Void

    private struct State {
        /// Lines appended and not yet taken by the writer.
        var pending: [UInt8] = []
        var appendedLines = 0
        var writtenLines = 0
        var droppedLines = 0
        var writerIsWaiting = false
        var isClosed = false
        var writerHasExited = false
    }

    /// How long the writer lets lines gather after the first one wakes it.
    static let lingerMicroseconds: UInt32 = 2000

    /// The most bytes waiting to be written; a line that would go past it is dropped.
    public let capacity: Int
    private let sink: Sink
    // Foundation's condition (not `Mutex`): the writer thread sleeps on it until lines arrive.
    // `state` is only read or written while it is locked (hence `@unchecked Sendable`).
    private let condition = NSCondition()
    private var state = State()
    private let dropObservers = Mutex<[@Sendable () -> Void]>([])

    /// The output `bootstrapLogging` installed for the process, if any.
    public static var installed: LogOutput? { installedOutput.withLock { $0 } }
    private static let installedOutput = Mutex<LogOutput?>(nil)

    /// Starts the writer thread. `capacity` bounds the bytes waiting to be written.
    public init(capacity: Int = 1 << 20, sink: @escaping Sink) {
        self.capacity = capacity
        self.sink = sink
        state.pending.reserveCapacity(min(capacity, 64 * 1024))
        let thread = Thread { [self] in self.drain() }
        thread.name = "otpd-log"
        thread.start()
    }

    /// Standard output, written with `write(2)` in whole batches.
    public static func standardOutput(capacity: Int = 1 << 20) -> LogOutput {
        LogOutput(capacity: capacity) { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // Standard output is gone; nothing better to do with a log line.
                }
            }
        }
    }

    /// Makes this the process's output (see `installed`); `bootstrapLogging` does it.
    func install() {
        Self.installedOutput.withLock { $0 = self }
    }

    /// Appends one line (which ends in a newline), or drops and counts it when the buffer is full.
    public func append(_ line: [UInt8]) {
        condition.lock()
        guard !state.isClosed, state.pending.count + line.count <= capacity else {
            state.droppedLines += 1
            condition.unlock()
            for observer in dropObservers.withLock({ $0 }) { observer() }
            return
        }
        state.pending.append(contentsOf: line)
        state.appendedLines += 1
        let wake = state.writerIsWaiting
        condition.unlock()
        if wake { condition.broadcast() }
    }

    /// Lines dropped because the buffer was full (or the output was closed).
    public var droppedLines: Int {
        condition.lock()
        defer { condition.unlock() }
        return state.droppedLines
    }

    /// Calls `observer` once per dropped line (e.g. a Prometheus counter's `increment`).
    public func countDrops(in observer: @escaping @Sendable () -> Void) {
        dropObservers.withLock { $0.append(observer) }
    }

    /// Returns once every line appended before the call has been written.
    public func flush() {
        condition.lock()
        let target = state.appendedLines
        while state.writtenLines < target && !state.writerHasExited {
            condition.wait()
        }
        condition.unlock()
    }

    /// Writes what is buffered, then stops the writer thread; later lines are dropped.
    public func close() {
        condition.lock()
        state.isClosed = true
        condition.broadcast()
        while !state.writerHasExited {
            condition.wait()
        }
        condition.unlock()
    }

    // MARK: the writer thread

    private func drain() {
        // Two buffers: callers append to one while this thread writes the other.
        var batch: [UInt8] = []
        batch.reserveCapacity(min(capacity, 64 * 1024))
        condition.lock()
        while true {
            while state.pending.isEmpty && !state.isClosed {
                state.writerIsWaiting = true
                condition.wait()
            }
            state.writerIsWaiting = false
            if state.pending.isEmpty { break }  // closed, and everything written
            if !state.isClosed {
                // Let a batch gather: while this thread lingers it is not waiting, so callers
                // append without waking it, and a busy server pays at most one wake-up per
                // `lingerMicroseconds` instead of one per line.
                condition.unlock()
                usleep(Self.lingerMicroseconds)
                condition.lock()
            }
            swap(&batch, &state.pending)
            let lines = state.appendedLines
            condition.unlock()
            batch.withUnsafeBytes { sink($0) }
            batch.removeAll(keepingCapacity: true)
            condition.lock()
            state.writtenLines = lines
            condition.broadcast()  // Wakes `flush()` callers; cheap when nobody waits.
        }
        state.writerHasExited = true
        condition.broadcast()
        condition.unlock()
    }
}
