import Foundation
import OTPCore
import OTPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

    /// Sends `parts` on one connection, each after the delay (seconds) paired with it, then
    /// reads until the server closes or 3 s pass: what it answered, and whether it closed.
    static func exchange(port: Int, _ parts: [(delay: Double, bytes: String)]) -> (answer: String, closed: Bool)? {
        guard let fd = connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        /// Reads what is there for `seconds`; false once the server has closed.
        func read(for seconds: Double) -> Bool {
            let start = Date()
            repeat {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n == 0 { return false }
                if n > 0 { answer.append(contentsOf: buffer[0..<n]) }
                if n < 0, errno != EAGAIN, errno != EWOULDBLOCK { return false }
            } while Date().timeIntervalSince(start) < seconds
            return true
        }
        for part in parts {
            guard read(for: part.delay) else { return (String(decoding: answer, as: UTF8.self), true) }
            _ = part.bytes.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        }
        let open = read(for: 3)
        return (String(decoding: answer, as: UTF8.self), !open)
    }

    /// Sends each of `parts` after its delay (seconds), then waits; the seconds from the first
    /// byte until the server closed the connection, or nil if it was still open after `limit`.
    static func secondsUntilClosed(port: Int, _ parts: [(delay: Double, bytes: String)], limit: Double = 6) -> Double? {
        guard let fd = connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        let start = Date()
        var pending = parts
        var next = start.addingTimeInterval(pending.first?.delay ?? 0)
        var byte: UInt8 = 0
        while Date().timeIntervalSince(start) < limit {
            if let part = pending.first, Date() >= next {
                pending.removeFirst()
                if part.bytes.withCString({ send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) < 0 {
                    return Date().timeIntervalSince(start)
                }
                next = Date().addingTimeInterval(pending.first?.delay ?? 0)
            }
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if Glibc.poll(&poll, 1, 50) > 0, recv(fd, &byte, 1, 0) <= 0 { return Date().timeIntervalSince(start) }
        }
        return nil
    }

    /// The review's attack (hub on and off): blank lines before the first head, then silence,
    /// or a blank line every 300 ms. llhttp skips blank lines, so they are no request head:
    /// the connection is closed `idle_timeout_seconds` (1 s here) after it opened.
    static func blankLinesAreNoHead(port: Int) async {
        let quiet = await onOwnThread { Self.secondsUntilClosed(port: port, [(0, "\r\n\r\n")]) }
        #expect(quiet != nil && quiet! < 3.5, "blank lines then silence held the connection open: \(String(describing: quiet))")
        let trickled = await onOwnThread {
            Self.secondsUntilClosed(port: port, [(0, "\r\n\r\n")] + Array(repeating: (0.3, "\r\n"), count: 20))
        }
        #expect(trickled != nil && trickled! < 3.5, "trickled blank lines held the connection open: \(String(describing: trickled))")
        let split = await onOwnThread {
            Self.secondsUntilClosed(port: port, [(0, "\r"), (0.2, "\n\r"), (0.2, "\n")] + Array(repeating: (0.3, "\n"), count: 20))
        }
        #expect(split != nil && split! < 3.5, "blank lines split across reads held the connection open: \(String(describing: split))")
    }

    @Test func blankLinesAreNoRequestHead() async throws {
        try await harness().run { http in await Self.blankLinesAreNoHead(port: http.port) }
    }

    @Test func blankLinesAreNoRequestHeadWithTheHub() async throws {
        let harness = try V1Harness { _, prefix in
            hubYAML(redisURL: nil, prefix: prefix).replacingOccurrences(of: "server: {", with: "server: {idle_timeout_seconds: 1, ")
        }
        try await harness.run { http in
            await Self.blankLinesAreNoHead(port: http.port)
            // A head after blank lines is still served (llhttp skips them), and stays open.
            let served = await onOwnThread { Self.exchange(port: http.port, [(0, "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")]) }
            #expect(served?.answer.hasPrefix("HTTP/1.1 200") == true, "\(String(describing: served))")
        }
    }

    /// The body deadline is per connection but counts from each request's own head: a
    /// connection whose first request came 0.7 s before a second, slower one is not cut off
    /// at 1 s from the first (the idle timeout here), and a chunked body over the limit is
    /// refused whatever the method.
    @Test func theBodyDeadlineCountsFromEachHeadAndChunkedBodiesAreBounded() async throws {
        let harness = try harness()
        try await harness.run { http in
            let port = http.port
            let head = "POST /v1/apps/t/login/otp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
            let slow = await onOwnThread {
                Self.exchange(port: port, [(0, head + "{}"), (0.7, head + "{"), (0.5, "}"), (0.1, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")])
            }
            let answers = slow?.answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(answers == ["400", "400", "200"], "\(String(describing: slow))")
            let chunk = String(repeating: "a", count: 4000)
            let chunked = "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(repeating: "FA0\r\n\(chunk)\r\n", count: 20) + "0\r\n\r\n"
            let big = await onOwnThread { Self.exchange(port: port, [(0, chunked)]) }
            #expect(big?.answer.hasPrefix("HTTP/1.1 413") == true, "\(String(describing: big))")
        }
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
