internal import COpenSSL
import Foundation
public import NIOCore
import NIOPosix
import Synchronization

/// Passwords stored as scrypt hashes (RFC 7914, OpenSSL's `EVP_PBE_scrypt`), computed on a
/// small thread pool of their own — never on an event loop.
///
/// A stored hash carries its parameters: `$scrypt$ln=15,r=8,p=3$<salt>$<hash>` (salt: 16
/// random bytes, hash: 32 bytes, both base64url without padding). `verify` reads the
/// parameters from the string, so they can be raised later; `needsRehash` tells when a stored
/// hash is weaker than the current parameters (rehash it at the next successful sign-in).
///
/// Hashing costs ~32 MiB and tens of milliseconds of one core. At most `concurrency` hashes run
/// at once (≤ the machine's cores) and at most `queueLimit` more wait; beyond that a call
/// throws `Overloaded` at once (answer 503) rather than let memory and latency grow.
///
/// Passwords are NFKC-normalised before hashing (NIST SP 800-63B §5.1.1.2), so the same
/// password typed on two keyboards matches.
public final class PasswordHasher: Sendable {
    /// scrypt's cost parameters: N = 2^logN (CPU and memory), r (block size), p (parallelism).
    public struct Parameters: Sendable, Hashable, CustomStringConvertible {
        public var logN: Int
        public var r: Int
        public var p: Int

        public init(logN: Int, r: Int, p: Int) {
            self.logN = logN
            self.r = r
            self.p = p
        }

        /// A row of the OWASP Password Storage Cheat Sheet's scrypt table: N=2^15 (32 MiB),
        /// r=8, p=3. The rows trade memory for passes at equal strength; this one needs a
        /// quarter of the memory of N=2^17,p=1, so a 2-core replica hashing two passwords at
        /// once needs 64 MiB rather than 256 MiB.
        public static let owasp = Parameters(logN: 15, r: 8, p: 3)

        /// The memory one hash needs: 128·r·N bytes (plus 128·r·p).
        public var memoryBytes: Int { 128 * r * (1 << logN) + 128 * r * p }

        /// Proportional to the time one hash takes: N·r·p.
        public var work: Int { (1 << logN) * r * p }

        /// Parameters this process will compute: a stored hash naming more is refused, so a
        /// corrupted or hostile record cannot make one verification take a gigabyte.
        var isWithinBounds: Bool {
            (1...20).contains(logN) && (1...32).contains(r) && (1...16).contains(p)
                && memoryBytes <= Self.maxMemoryBytes
        }

        static let maxMemoryBytes = 256 << 20

        public var description: String { "ln=\(logN),r=\(r),p=\(p)" }
    }

    /// The hashing queue is full: the caller should answer 503 and let the client retry.
    public struct Overloaded: Error, Sendable, Hashable {
        public init() {}
    }

    public let parameters: Parameters
    /// Hashes running at once, at most.
    public let concurrency: Int
    /// Hashes waiting for a thread, at most.
    public let queueLimit: Int

    private let pool: NIOThreadPool
    /// Hashes running or waiting.
    private let pending = Atomic<Int>(0)
    private let computed = Atomic<Int>(0)
    /// How many hashes and verifications this hasher has run since it started: the work that
    /// anonymous requests can ask for, observable (tests hold the engine to "no hashing for a
    /// check Redis refuses").
    public var computations: Int { computed.load(ordering: .relaxed) }
    /// What a verification against nothing (an unknown user) compares with: a real hash of a
    /// random password under the current parameters, so that answer takes as long as a wrong
    /// password. Made on a pool thread at its first use.
    private let dummy = Mutex<String?>(nil)

    public init(parameters: Parameters = .owasp, concurrency: Int = System.coreCount, queueLimit: Int = 64) {
        precondition(parameters.isWithinBounds, "scrypt parameters \(parameters) are out of bounds")
        self.parameters = parameters
        self.concurrency = max(1, min(concurrency, System.coreCount))
        self.queueLimit = max(0, queueLimit)
        self.pool = NIOThreadPool(numberOfThreads: self.concurrency)
        self.pool.start()
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    // MARK: asynchronous (off the event loop)

    /// The encoded hash of `password` under the current parameters and a new random salt.
    public func hash(_ password: String) async throws(Overloaded) -> String {
        let parameters = parameters
        return try await run { Self.hashBlocking(password, parameters: parameters) }
    }

    /// Whether `password` matches `encoded`. With `encoded` nil (no user, or a user without a
    /// password) it compares against a dummy hash and answers false, taking as long as a real
    /// verification, so timing does not tell who has a password. A malformed or out-of-bounds
    /// `encoded` answers false.
    public func verify(_ password: String, against encoded: String?) async throws(Overloaded) -> Bool {
        let matches = try await run { [self] in Self.verifyBlocking(password, against: encoded ?? dummyHash()) }
        return encoded != nil && matches
    }

    /// Blocks: call it on the pool.
    private func dummyHash() -> String {
        dummy.withLock { dummy in
            if let dummy { return dummy }
            let made = Self.hashBlocking(Base64URL.encode(SecureRandom.bytes(16)), parameters: parameters)
            dummy = made
            return made
        }
    }

    /// True when `encoded` is not a hash this hasher reads, or when its parameters are below
    /// the current ones (less memory or less work): hash the password again at its next use.
    public func needsRehash(_ encoded: String) -> Bool {
        guard let stored = Self.decode(encoded)?.parameters else { return true }
        return stored.memoryBytes < parameters.memoryBytes || stored.work < parameters.work
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws(Overloaded) -> T {
        let waiting = pending.add(1, ordering: .relaxed).newValue
        defer { pending.subtract(1, ordering: .relaxed) }
        guard waiting <= concurrency + queueLimit else { throw Overloaded() }
        computed.add(1, ordering: .relaxed)
        do {
            return try await pool.runIfActive(body)
        } catch {
            // The pool is shutting down or the caller was cancelled: nothing was computed.
            throw Overloaded()
        }
    }

    // MARK: blocking primitives (call them only off the event loop)

    /// Hashes on the calling thread. Blocks for the whole computation.
    public static func hashBlocking(_ password: String, parameters: Parameters) -> String {
        let salt = SecureRandom.bytes(16)
        let key = scrypt(normalized(password), salt: salt, parameters: parameters, length: 32)!
        return encode(parameters: parameters, salt: salt, hash: key)
    }

    /// Verifies on the calling thread (constant-time comparison). Blocks for the whole computation.
    public static func verifyBlocking(_ password: String, against encoded: String) -> Bool {
        guard let stored = decode(encoded),
            let key = scrypt(normalized(password), salt: stored.salt, parameters: stored.parameters, length: stored.hash.count)
        else { return false }
        return Digest.constantTimeEquals(key, stored.hash)
    }

    /// The parameters of an encoded hash, or nil when it is not one this hasher reads.
    public static func parameters(of encoded: String) -> Parameters? {
        decode(encoded)?.parameters
    }

    static func normalized(_ password: String) -> [UInt8] {
        Array(password.precomposedStringWithCompatibilityMapping.utf8)
    }

    static func encode(parameters: Parameters, salt: [UInt8], hash: [UInt8]) -> String {
        "$scrypt$\(parameters)$\(Base64URL.encode(salt))$\(Base64URL.encode(hash))"
    }

    /// `$scrypt$ln=…,r=…,p=…$<salt>$<hash>` → its parts; nil for anything else.
    static func decode(_ encoded: String) -> (parameters: Parameters, salt: [UInt8], hash: [UInt8])? {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
        var values: [Substring: Int] = [:]
        for pair in parts[2].split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[1].utf8.count <= 3, let n = Int(kv[1]), values[kv[0]] == nil else { return nil }
            values[kv[0]] = n
        }
        guard values.count == 3, let logN = values["ln"], let r = values["r"], let p = values["p"],
            let salt = Base64URL.decode(parts[3]), (8...64).contains(salt.count),
            let hash = Base64URL.decode(parts[4]), (16...64).contains(hash.count)
        else { return nil }
        let parameters = Parameters(logN: logN, r: r, p: p)
        guard parameters.isWithinBounds else { return nil }
        return (parameters, salt, hash)
    }

    /// scrypt(password, salt, N, r, p) of `length` bytes; nil when OpenSSL refuses the parameters.
    static func scrypt(_ password: [UInt8], salt: [UInt8], parameters: Parameters, length: Int) -> [UInt8]? {
        assert(MultiThreadedEventLoopGroup.currentEventLoop == nil, "scrypt must not run on an event loop")
        var key = [UInt8](repeating: 0, count: length)
        // A nil pass with length 0 is the empty password to OpenSSL.
        let ok = password.withUnsafeBytes { pass in
            EVP_PBE_scrypt(
                pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count, salt, salt.count,
                UInt64(1) << UInt64(parameters.logN), UInt64(parameters.r), UInt64(parameters.p),
                UInt64(parameters.memoryBytes + (1 << 20)), &key, length)
        }
        return ok == 1 ? key : nil
    }
}
