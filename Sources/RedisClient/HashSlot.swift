/// A Redis Cluster hash slot: `CRC16(key) mod 16384`, where only the key's hash tag counts
/// when it has one (the part between the first `{` and the next `}`, when not empty), so keys
/// such as `{user1000}.following` and `{user1000}.followers` land on one slot.
public struct HashSlot: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Slots in a Redis Cluster: 0 through 16383.
    public static let count = 16384

    public let rawValue: UInt16

    public init?(rawValue: Int) {
        guard (0..<Self.count).contains(rawValue) else { return nil }
        self.rawValue = UInt16(rawValue)
    }

    /// The slot of a key, as Redis computes it (`keyHashSlot` in cluster.c).
    public init(key: some Collection<UInt8>) {
        let bytes = Array(key)
        self.rawValue = Self.crc16(Self.hashTag(of: bytes)) & UInt16(Self.count - 1)
    }

    public init(key: String) { self.init(key: key.utf8) }

    public var description: String { String(rawValue) }

    public static func < (lhs: HashSlot, rhs: HashSlot) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The bytes that are hashed: the tag between the first `{` and the first `}` after it,
    /// when that is not empty; otherwise the whole key.
    static func hashTag(of key: [UInt8]) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
            close > open + 1
        else { return key[...] }
        return key[(open + 1)..<close]
    }

    /// CRC16-CCITT in the XMODEM variant (polynomial 0x1021, initial value 0, no reflection).
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
