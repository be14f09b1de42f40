internal import CHiredis
import NIOCore

/// Formats commands with hiredis's binary-safe `redisFormatCommandArgv`.
enum RESPEncoder {
    /// Writes the RESP encoding of `arguments` into a new buffer.
    static func encode(_ arguments: [RedisArgument], allocator: ByteBufferAllocator) -> ByteBuffer {
        // One contiguous copy of all arguments, so each argv entry is a pointer into it.
        var storage: [UInt8] = []
        storage.reserveCapacity(arguments.reduce(0) { $0 + $1.bytes.count })
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            storage.append(contentsOf: argument.bytes)
            lengths.append(argument.bytes.count)
        }
        return storage.withUnsafeBufferPointer { raw -> ByteBuffer in
            let base = UnsafeRawPointer(raw.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)!
            var argv: [UnsafePointer<CChar>?] = []
            argv.reserveCapacity(arguments.count)
            var offset = 0
            for length in lengths {
                argv.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            var target: UnsafeMutablePointer<CChar>?
            let count = argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    redisFormatCommandArgv(&target, Int32(arguments.count), argvBuffer.baseAddress, lengthBuffer.baseAddress)
                }
            }
            guard count >= 0, let target else {
                // hiredis only fails here when malloc fails.
                fatalError("redisFormatCommandArgv: out of memory")
            }
            defer { redisFreeCommand(target) }
            var buffer = allocator.buffer(capacity: Int(count))
            buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(count)))
            return buffer
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
