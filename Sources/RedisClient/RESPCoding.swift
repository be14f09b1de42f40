internal import CHiredis
import NIOCore

/// Formats commands with hiredis's binary-safe `redisFormatCommandArgv`.
enum RESPEncoder {
    /// Writes the RESP encoding of `arguments` into a new buffer. The argv and length arrays
    /// hiredis reads live on the stack; each pointer points into the argument's own storage.
    static func encode(_ arguments: [RedisArgument], allocator: ByteBufferAllocator) -> ByteBuffer {
        withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: arguments.count) { argv in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: arguments.count) { lengths in
                format(arguments[...], argv: argv, lengths: lengths, index: 0, allocator: allocator)
            }
        }
    }

    /// Pins each argument's bytes in turn (nested, so all stay valid), then formats.
    private static func format(
        _ rest: ArraySlice<RedisArgument>, argv: UnsafeMutableBufferPointer<UnsafePointer<CChar>?>,
        lengths: UnsafeMutableBufferPointer<Int>, index: Int, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        guard let first = rest.first else {
            var target: UnsafeMutablePointer<CChar>?
            let count = redisFormatCommandArgv(&target, Int32(index), argv.baseAddress, lengths.baseAddress)
            guard count >= 0, let target else {
                // hiredis only fails here when malloc fails.
                fatalError("redisFormatCommandArgv: out of memory")
            }
            defer { redisFreeCommand(target) }
            var buffer = allocator.buffer(capacity: Int(count))
            buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(count)))
            return buffer
        }
        return first.bytes.withUnsafeBufferPointer { bytes in
            argv[index] = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
            lengths[index] = bytes.count
            return format(rest.dropFirst(), argv: argv, lengths: lengths, index: index + 1, allocator: allocator)
        }
    }
}

/// Incremental RESP parser over one hiredis `redisReader`.
///
/// Not thread-safe (neither is the reader): it belongs to one channel and lives on its event loop.
final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else { fatalError("redisReaderCreate: out of memory") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Hands bytes from the socket to the reader.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw readerError() }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws(RedisError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        if redisReaderGetReply(reader, &reply) != REDIS_OK { throw readerError() }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.value(of: reply.assumingMemoryBound(to: redisReply.self))
    }

    private func readerError() -> RedisError {
        let message = otpd_redisReaderGetError(reader).map { String(cString: $0) } ?? "unknown"
        return RedisError(.protocolError, "invalid reply from server: \(message)")
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(r.integer)
        case REDIS_REPLY_ARRAY:
            var values: [RESPValue] = []
            values.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let element = r.element[i] { values.append(value(of: element)) } else { values.append(.null) }
            }
            return .array(values)
        default:  // REDIS_REPLY_NIL (a nil bulk string or a nil array)
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
