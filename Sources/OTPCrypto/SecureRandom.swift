internal import COpenSSL

/// Randomness from OpenSSL's CSPRNG (`RAND_bytes`), never from a seeded generator.
public enum SecureRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        fill(&bytes)
        return bytes
    }

    static func fill(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        // RAND_bytes fails only when the CSPRNG cannot be seeded: continuing would be unsafe.
        precondition(ok == 1, "RAND_bytes failed: the CSPRNG is unavailable")
    }

    /// A uniformly distributed integer in `0..<upperBound`, by rejection sampling (no modulo bias).
    public static func uniform(below upperBound: UInt32) -> UInt32 {
        precondition(upperBound > 0)
        // Values at or above `limit` would make some residues more likely than others: draw again.
        let limit = UInt32.max - (UInt32.max % upperBound)
        var buffer = [UInt8](repeating: 0, count: 4)
        while true {
            fill(&buffer)
            let value = buffer.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            if value < limit { return value % upperBound }
        }
    }

    /// A code of `length` characters drawn uniformly from `alphabet`.
    public static func code(length: Int, alphabet: [Character]) -> String {
        precondition(!alphabet.isEmpty && alphabet.count <= 256)
        let n = UInt32(alphabet.count)
        // Largest multiple of n that fits in a byte: bytes at or above it are rejected.
        let limit = 256 - (256 % n)
        var result = ""
        result.reserveCapacity(length)
        var pool: [UInt8] = []
        while result.count < length {
            if pool.isEmpty { pool = bytes(max(16, length * 2)) }
            let byte = UInt32(pool.removeLast())
            if byte < limit { result.append(alphabet[Int(byte % n)]) }
        }
        return result
    }
}
