public import Foundation
public import RedisClient

/// Where the shared test Redis is: `scripts/test.sh` starts one and sets `OTPD_TEST_REDIS_URL`,
/// and starts a local Redis Cluster and sets `OTPD_TEST_REDIS_NODES` to its nodes.
/// With `OTPD_TEST_REDIS_MODE=cluster`, the engine's tests run against that cluster instead
/// (`client()` and `configurationYAML` follow the mode).
/// A test that needs Redis and cannot find it fails; it never skips.
public enum TestRedis {
    public static var url: String {
        if let url = ProcessInfo.processInfo.environment["OTPD_TEST_REDIS_URL"], !url.isEmpty { return url }
        return "redis://127.0.0.1:6379/0"
    }

    /// True when the engine's tests run against the test cluster (`OTPD_TEST_REDIS_MODE=cluster`).
    public static var isCluster: Bool { ProcessInfo.processInfo.environment["OTPD_TEST_REDIS_MODE"] == "cluster" }

    /// The test cluster's nodes, `host:port` (`OTPD_TEST_REDIS_NODES`, comma-separated).
    public static var clusterNodes: [String] {
        (ProcessInfo.processInfo.environment["OTPD_TEST_REDIS_NODES"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// A client of the shared test Redis, in the mode of this run.
    public static func client(timeoutMilliseconds: Int = 2000) throws -> RedisClient {
        isCluster ? try clusterClient(timeoutMilliseconds: timeoutMilliseconds)
            : RedisClient(configuration: try RedisConfiguration(url: url, timeoutMilliseconds: timeoutMilliseconds))
    }

    /// A cluster client of the test cluster, whatever the mode of this run.
    public static func clusterClient(
        timeoutMilliseconds: Int = 2000, onEvent: @escaping @Sendable (RedisClusterEvent) -> Void = { _ in }
    ) throws -> RedisClient {
        let seeds = clusterNodes.compactMap { RedisNodeAddress($0) }
        guard !seeds.isEmpty else {
            throw NSError(domain: "TestRedis", code: 1, userInfo: [
                NSLocalizedDescriptionKey: "OTPD_TEST_REDIS_NODES is not set: run the tests with scripts/test.sh",
            ])
        }
        return RedisClient(
            cluster: RedisClusterConfiguration(
                seeds: seeds, node: RedisConfiguration(timeoutMilliseconds: timeoutMilliseconds)),
            onEvent: onEvent)
    }

    /// The `redis:` section of an otpd configuration for the shared test Redis, in the mode of
    /// this run; or for the standalone server at `url` when one is given.
    public static func configurationYAML(url: String? = nil, keyPrefix: String, timeoutMilliseconds: Int = 5000) -> String {
        if url == nil, isCluster {
            let nodes = clusterNodes.map { "\"\($0)\"" }.joined(separator: ", ")
            return "{mode: cluster, nodes: [\(nodes)], key_prefix: \"\(keyPrefix)\", timeout_ms: \(timeoutMilliseconds)}"
        }
        return "{url: \"\(url ?? self.url)\", key_prefix: \"\(keyPrefix)\", timeout_ms: \(timeoutMilliseconds)}"
    }

    /// Every key matching `pattern` on the shared test Redis: `SCAN` on the one server, or on
    /// every node of the cluster (a keyspace scan cannot be routed by slot). A key held by a
    /// master and its replica is listed once.
    public static func allKeys(matching pattern: String) async throws -> [String] {
        let servers = isCluster ? clusterNodes.map { "redis://\($0)/0" } : [url]
        var keys = Set<String>()
        for server in servers {
            let node = RedisClient(configuration: try RedisConfiguration(url: server, timeoutMilliseconds: 2000))
            defer { node.shutdown() }
            var cursor = "0"
            repeat {
                let reply = try await node.send("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", "1000")
                cursor = reply.array![0].string!
                keys.formUnion(reply.array![1].array!.compactMap(\.string))
            } while cursor != "0"
        }
        return keys.sorted()
    }

    /// A key prefix no other test uses, so tests can run in parallel on one server.
    public static func uniquePrefix(_ name: String = "t") -> String {
        "test-\(name)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// A Redis Cluster of a test's own (3 masters, 3 replicas, `scripts/cluster.sh`), for tests
/// that kill nodes. Stopped and removed when released.
public final class TestRedisCluster: Sendable {
    public let directory: String
    public let nodes: [String]

    public init() throws {
        directory = NSTemporaryDirectory() + "otpd-test-cluster-" + UUID().uuidString.prefix(8).lowercased()
        let output = directory + ".log"
        let start = try ChildProcess(
            "/bin/bash", ["scripts/cluster.sh", "start"],
            environment: ProcessInfo.processInfo.environment.merging(["OTPD_CLUSTER_DIR": directory]) { $1 },
            outputPath: output)
        start.wait()
        let lines = (try? String(contentsOfFile: output, encoding: .utf8))?.split(separator: "\n") ?? []
        try? FileManager.default.removeItem(atPath: output)
        guard start.exitCode == 0, let seeds = lines.last else {
            throw NSError(domain: "TestRedisCluster", code: 1, userInfo: [
                NSLocalizedDescriptionKey: "scripts/cluster.sh start failed: \(lines.joined(separator: " | "))",
            ])
        }
        nodes = seeds.split(separator: ",").map(String.init)
    }

    deinit { stop() }

    /// The pid of the node listening on `port`.
    public func pid(port: Int) -> pid_t? {
        (try? String(contentsOfFile: "\(directory)/\(port)/redis.pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public func stop() {
        let stop = try? ChildProcess(
            "/bin/bash", ["scripts/cluster.sh", "stop"],
            environment: ProcessInfo.processInfo.environment.merging(["OTPD_CLUSTER_DIR": directory]) { $1 })
        stop?.wait()
    }
}

/// A free TCP port on 127.0.0.1, outside the kernel's ephemeral range (32768+), so that an
/// outgoing connection cannot take it between this check and the server's bind.
public func freePort() -> Int {
    for _ in 0..<1000 {
        let port = Int.random(in: 20000..<32000)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        defer { close(fd) }
        if withLoopbackAddress(port: port, { bind(fd, $0, $1) }) == 0 { return port }
    }
    fatalError("no free port in 20000-32000")
}

/// Calls `body` with 127.0.0.1:`port` as a `sockaddr` (for bind or connect).
func withLoopbackAddress(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A blocking TCP connection to 127.0.0.1:`port`: its file descriptor, or nil when refused.
public func connectLoopback(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    guard withLoopbackAddress(port: port, { connect(fd, $0, $1) }) == 0 else {
        close(fd)
        return nil
    }
    return fd
}

/// A child process started with posix_spawn and reaped with waitpid.
///
/// Foundation's `Process.waitUntilExit` spins a run loop and was seen to hang inside
/// Swift Testing's async tests; this is the plain POSIX path.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; its output goes to `outputPath` (or /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, outputPath: String = "/dev/null") throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        // Threads of the test process (libdispatch's among them) block signals; a child would
        // inherit that mask and ignore SIGTERM. Start it with an empty mask and default handlers.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
        guard result == 0 else {
            throw NSError(domain: "ChildProcess", code: Int(result), userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable): \(String(cString: strerror(result)))"])
        }
        self.pid = pid
    }

    deinit { terminate() }

    public var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = status
            return false
        }
        return true
    }

    public func signal(_ signal: Int32) {
        if isRunning { Foundation.kill(pid, signal) }
    }

    /// Waits for the process to end; returns its raw wait status.
    @discardableResult public func wait() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        exitStatus = status
        return status
    }

    /// The exit code when it exited normally, nil when a signal ended it (or it still runs).
    public var exitCode: Int32? {
        guard !isRunning, let status = exitStatus else { return nil }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
    }

    public func terminate() {
        guard isRunning else { return }
        Foundation.kill(pid, SIGTERM)
        wait()
    }
}

/// A `redis-server` of a test's own, for tests that stop, restart, pause or flush it.
public final class RedisServerProcess: @unchecked Sendable {
    public private(set) var port: Int = 0
    private let extraArguments: [String]
    private var process: ChildProcess?

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    public init(arguments: [String] = []) throws {
        self.extraArguments = arguments
        // Another process may take the port between the check and the bind: try a few.
        var lastError: (any Error)?
        for _ in 0..<5 {
            self.port = freePort()
            do {
                try start()
                return
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    deinit { stop() }

    public func start() throws {
        let process = try ChildProcess(
            try Self.which("redis-server").path,
            ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--loglevel", "warning"]
                + extraArguments)
        self.process = process
        // Wait until it accepts connections (or exits: the port was taken).
        for _ in 0..<300 {
            if Self.canConnect(port: port) { return }
            if !process.isRunning { break }
            usleep(10_000)
        }
        self.process = nil
        throw NSError(domain: "RedisServerProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "redis-server did not start on \(port)"])
    }

    /// SIGKILL: the server vanishes without closing anything gracefully.
    public func kill() {
        process?.signal(SIGKILL)
        process?.wait()
        process = nil
    }

    public func stop() {
        process?.terminate()
        process = nil
    }

    static func canConnect(port: Int) -> Bool {
        guard let fd = connectLoopback(port: port) else { return false }
        close(fd)
        return true
    }

    public static func which(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/sbin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
        }
        throw NSError(domain: "which", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) not found on PATH"])
    }
}
