import Foundation
import OTPCore
import OTPTestSupport
import Testing

@testable import OTPServer

/// Slow clients: a request trickled byte by byte (slowloris) is cut off. (Connections beyond
/// `server.max_connections` are tested on the real binary, in ProcessTests: Hummingbird's live
/// test server drops that setting.)
@Suite("Slow clients")
struct SlowClientTests {
    func harness() throws -> V1Harness {
        try V1Harness { url, prefix in
            v1YAML(redisURL: url, prefix: prefix).replacingOccurrences(
                of: #"server: {trusted_proxies: ["10.9.0.0/16"]}"#,
                with: #"server: {trusted_proxies: ["10.9.0.0/16"], idle_timeout_seconds: 1, max_connections: 3}"#)
        }
    }

    /// Sends `head`, then one byte of `trickle` every 250 ms; the seconds until the server
    /// closed the connection, or nil if it was still open after 5 s.
    static func secondsUntilClosed(port: Int, head: String, trickle: String) -> Double? {
        guard let fd = connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 250_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        _ = head.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var bytes = Array(trickle.utf8)
        var buffer = [UInt8](repeating: 0, count: 1024)
        while Date().timeIntervalSince(start) < 5 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return Date().timeIntervalSince(start) }  // closed by the server
            if n < 0, errno != EAGAIN, errno != EWOULDBLOCK { return Date().timeIntervalSince(start) }
            if !bytes.isEmpty {
                let byte = bytes.removeFirst()
                if withUnsafePointer(to: byte, { send(fd, $0, 1, Int32(MSG_NOSIGNAL)) }) < 0 {
                    return Date().timeIntervalSince(start)
                }
            }
        }
        return nil
    }

    @Test func aTrickledHeadOrBodyIsCutOff() async throws {
        let harness = try harness()
        try await harness.run { http in
            let port = http.port
            let head = await onOwnThread {
                Self.secondsUntilClosed(
                    port: port, head: "POST /v1/apps/t/login/otp HTTP/1.1\r\nHost: x\r\n",
                    trickle: String(repeating: "X-Slow: 1\r\n", count: 10))
            }
            #expect(head != nil && head! < 2.5, "a head trickled over 5 s was not cut off: \(String(describing: head))")
            let body = await onOwnThread {
                Self.secondsUntilClosed(
                    port: port,
                    head: "POST /v1/apps/t/login/otp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n",
                    trickle: #"{"identifier": "slow@example.com", "padding": "xxxxxxxxxxx"}"#)
            }
            #expect(body != nil && body! < 2.5, "a body trickled over 5 s was not cut off: \(String(describing: body))")
        }
    }
}
