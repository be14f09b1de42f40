internal import CCurl
import Foundation

/// One HTTP or SMTP exchange for libcurl to carry.
struct CurlRequest: Sendable {
    var url: String
    var headers: [String] = []
    /// The request body (POST) or, for SMTP, the whole RFC 5322 message.
    var body: [UInt8] = []
    var username: String?
    var password: String?
    var timeoutMilliseconds: Int
    /// SMTP only: envelope sender and recipients.
    var mailFrom: String?
    var mailRecipients: [String] = []
    /// SMTP only: refuse to send unless the connection is encrypted (`smtps://`, or STARTTLS,
    /// which the server must then offer); false speaks plain SMTP (`tls: none`, development).
    var requireTLS = true
}

struct CurlResponse: Sendable {
    /// HTTP status (or the last SMTP reply code).
    var status: Int
    var body: [UInt8]
}

/// Why libcurl could not complete an exchange, and whether the request may have reached
/// the server (then a retry could deliver twice).
struct CurlFailure: Error, Sendable {
    var code: Int
    var message: String
    /// True when libcurl sent no byte of the request (refused, unreachable, DNS, TLS setup).
    var requestNotSent: Bool
}

/// Every outbound exchange goes through here: libcurl's multi interface, driven by its
/// socket-action API, so no transfer ever blocks a SwiftNIO event loop or a Swift concurrency
/// thread, and a message costs one hand-off between threads instead of two.
///
/// - The caller (an event loop, since otpd runs Swift Concurrency on NIO's event loops) adds its
///   transfer and lets libcurl run it at once: on a reused connection the request is written
///   right there, with no thread woken to do it.
/// - One thread of ours sleeps in `epoll_wait` on the sockets libcurl asks to watch
///   (`CURLMOPT_SOCKETFUNCTION`) until one is ready or libcurl's timer
///   (`CURLMOPT_TIMERFUNCTION`) is due, runs `curl_multi_socket_action`, and resumes the
///   continuations of the transfers that finished — the one hand-off, back to the caller's
///   executor.
///
/// The multi handle is used by one thread at a time, under `lock`; continuations are resumed
/// after it is released. The multi handle keeps a connection cache, so repeated calls to a
/// gateway reuse connections.
final class CurlTransport: @unchecked Sendable {
    /// A transfer in flight: owned by the multi handle (under `lock`) once submitted.
    private final class Transfer {
        let request: CurlRequest
        let continuation: CheckedContinuation<CurlResponse, any Error>
        var easy: UnsafeMutableRawPointer?
        var headers: UnsafeMutablePointer<curl_slist>?
        var recipients: UnsafeMutablePointer<curl_slist>?
        var received: [UInt8] = []
        var uploadOffset = 0
        // C strings libcurl keeps pointers to until the transfer ends.
        var cStrings: [UnsafeMutablePointer<CChar>] = []

        init(request: CurlRequest, continuation: CheckedContinuation<CurlResponse, any Error>) {
            self.request = request
            self.continuation = continuation
        }

        func keep(_ string: String) -> UnsafeMutablePointer<CChar> {
            let pointer = strdup(string)!
            cStrings.append(pointer)
            return pointer
        }

        deinit {
            curl_slist_free_all(headers)
            curl_slist_free_all(recipients)
            cStrings.forEach { free($0) }
        }
    }

    static let shared = CurlTransport()
    /// Idle connections kept for reuse, across all gateways.
    static let cachedConnections = 256
    /// Easy handles kept for reuse (each ~25 KiB with its buffer).
    static let idleHandleLimit = 64
    private static let globalInit: Void = { _ = otpd_curl_global_init() }()

    private let multi: UnsafeMutableRawPointer
    private let epollFD: Int32
    /// A pipe written to wake the poller when libcurl's timer comes due sooner than it sleeps.
    private let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    // Everything below is read and written only while `lock` is held.
    private let lock = NSLock()
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    /// Sockets registered with epoll, and what for.
    private var watched: [curl_socket_t: UInt32] = [:]
    /// When libcurl wants `curl_multi_socket_action(CURL_SOCKET_TIMEOUT)` (nil: no timer).
    private var timerDeadline: ContinuousClock.Instant?
    /// Whether the poller is in `epoll_wait`, and until when.
    private var pollerIsWaiting = false
    private var pollerWakesAt: ContinuousClock.Instant?
    /// Transfers libcurl finished (or could not start), to resume once `lock` is released.
    private var finished: [(Transfer, Result<CurlResponse, CurlFailure>)] = []
    /// Easy handles of finished transfers, reset (`curl_easy_reset`: options back to their
    /// defaults) and kept for the next transfers: a new handle per transfer is a calloc'd
    /// handle and a fresh 16 KiB receive buffer, made and freed again each time.
    private var idleHandles: [UnsafeMutableRawPointer] = []

    private init() {
        _ = Self.globalInit
        multi = curl_multi_init()!
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        var pipeFDs: [Int32] = [-1, -1]
        let piped = pipe(&pipeFDs)
        precondition(epollFD >= 0 && piped == 0, "epoll_create1/pipe failed: errno \(errno)")
        (wakeReadFD, wakeWriteFD) = (pipeFDs[0], pipeFDs[1])
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: wakeReadFD))
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeReadFD, &event)
        let this = Unmanaged.passUnretained(self).toOpaque()
        otpd_curl_multi_setopt_socket_callback(multi) { _, socket, what, userdata, _ in
            Unmanaged<CurlTransport>.fromOpaque(userdata!).takeUnretainedValue().watch(socket, what: what)
            return 0
        }
        otpd_curl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, this)
        otpd_curl_multi_setopt_timer_callback(multi) { _, timeoutMilliseconds, userdata in
            Unmanaged<CurlTransport>.fromOpaque(userdata!).takeUnretainedValue().setTimer(timeoutMilliseconds)
            return 0
        }
        otpd_curl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, this)
        // libcurl's default cache holds 4 connections per transfer in flight *at the moment one
        // ends*: when a burst thins out it closes connections the next burst must open again.
        otpd_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, Self.cachedConnections)
        let thread = Thread { [unowned self] in self.poll() }
        thread.name = "otpd-curl"
        thread.start()
    }

    func perform(_ request: CurlRequest) async throws -> CurlResponse {
        try await withCheckedThrowingContinuation { continuation in
            let transfer = Transfer(request: request, continuation: continuation)
            lock.lock()
            start(transfer)
            // Adding a handle sets libcurl's timer to "now": run it here, so the request goes out
            // from this thread (connect, or write on a cached connection) without waking the poller.
            socketAction(otpd_curl_socket_timeout(), events: 0)
            let (done, wake) = takeFinishedAndWake()
            lock.unlock()
            complete(done, wake: wake)
        }
    }

    // MARK: libcurl's callbacks (called inside curl_multi_*, so with `lock` held)

    /// `CURLMOPT_SOCKETFUNCTION`: watch `socket` for what libcurl waits on, or stop watching it.
    private func watch(_ socket: curl_socket_t, what: Int32) {
        guard what != CURL_POLL_REMOVE else {
            if watched.removeValue(forKey: socket) != nil {
                epoll_ctl(epollFD, EPOLL_CTL_DEL, socket, nil)
            }
            return
        }
        var events: UInt32 = 0
        if what & CURL_POLL_IN != 0 { events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { events |= EPOLLOUT.rawValue }
        var event = epoll_event(events: events, data: epoll_data_t(fd: socket))
        // Our record can be stale (a descriptor closed and its number reused without a REMOVE
        // first): when epoll disagrees, the other operation is the right one.
        if watched.updateValue(events, forKey: socket) == nil {
            if epoll_ctl(epollFD, EPOLL_CTL_ADD, socket, &event) != 0 && errno == EEXIST {
                epoll_ctl(epollFD, EPOLL_CTL_MOD, socket, &event)
            }
        } else if epoll_ctl(epollFD, EPOLL_CTL_MOD, socket, &event) != 0 && errno == ENOENT {
            epoll_ctl(epollFD, EPOLL_CTL_ADD, socket, &event)
        }
    }

    /// `CURLMOPT_TIMERFUNCTION`: a one-shot timer `timeoutMilliseconds` from now (-1: none).
    private func setTimer(_ timeoutMilliseconds: Int) {
        guard timeoutMilliseconds >= 0 else {
            timerDeadline = nil
            return
        }
        timerDeadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
    }

    // MARK: with `lock` held

    private func socketAction(_ socket: curl_socket_t, events: Int32) {
        var running: Int32 = 0
        curl_multi_socket_action(multi, socket, events, &running)
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            finish(easy: easy, result: message.pointee.data.result)
        }
    }

    /// The transfers to resume, and whether the poller must wake: it sleeps past the timer
    /// libcurl has set by now. (Only the timer left after a call counts: adding a handle sets
    /// it to "now" and the call that follows moves it on, so a request on a cached connection
    /// usually wakes nobody.)
    private func takeFinishedAndWake() -> ([(Transfer, Result<CurlResponse, CurlFailure>)], Bool) {
        defer { finished.removeAll() }
        var wake = false
        if pollerIsWaiting, let deadline = timerDeadline {
            wake = pollerWakesAt.map { deadline < $0 } ?? true
            if wake { pollerWakesAt = deadline }  // one wake-up is enough
        }
        return (finished, wake)
    }

    private func start(_ transfer: Transfer) {
        guard let easy = idleHandles.popLast() ?? curl_easy_init() else {
            finished.append((transfer, .failure(CurlFailure(code: -1, message: "curl_easy_init failed", requestNotSent: true))))
            return
        }
        let request = transfer.request
        transfer.easy = easy
        let box = Unmanaged.passUnretained(transfer).toOpaque()
        otpd_curl_easy_setopt_pointer(easy, CURLOPT_URL, transfer.keep(request.url))
        otpd_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        otpd_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeoutMilliseconds)
        otpd_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.timeoutMilliseconds)
        otpd_curl_easy_setopt_pointer(easy, CURLOPT_PROTOCOLS_STR, transfer.keep("http,https,smtp,smtps"))
        otpd_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION) { buffer, size, count, userdata in
            let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
            let bytes = size * count
            if let buffer, bytes > 0 {
                transfer.received.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: bytes))
            }
            return bytes
        }
        otpd_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, box)
        if let username = request.username {
            otpd_curl_easy_setopt_pointer(easy, CURLOPT_USERNAME, transfer.keep(username))
            otpd_curl_easy_setopt_pointer(easy, CURLOPT_PASSWORD, transfer.keep(request.password ?? ""))
        }
        for header in request.headers {
            transfer.headers = curl_slist_append(transfer.headers, header)
        }
        if let from = request.mailFrom {
            // SMTP: the body is the message, read by libcurl as an upload.
            otpd_curl_easy_setopt_pointer(easy, CURLOPT_MAIL_FROM, transfer.keep("<\(from)>"))
            for recipient in request.mailRecipients {
                transfer.recipients = curl_slist_append(transfer.recipients, "<\(recipient)>")
            }
            otpd_curl_easy_setopt_pointer(easy, CURLOPT_MAIL_RCPT, transfer.recipients)
            let tls = request.requireTLS ? CURLUSESSL_ALL : CURLUSESSL_NONE
            otpd_curl_easy_setopt_long(easy, CURLOPT_USE_SSL, Int(tls.rawValue))
            otpd_curl_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
            otpd_curl_easy_setopt_offset(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count))
            otpd_curl_easy_setopt_data_callback(easy, CURLOPT_READFUNCTION) { buffer, size, count, userdata in
                let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
                let body = transfer.request.body
                let n = min(size * count, body.count - transfer.uploadOffset)
                guard n > 0, let buffer else { return 0 }
                body.withUnsafeBytes { bytes in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + transfer.uploadOffset, byteCount: n)
                }
                transfer.uploadOffset += n
                return n
            }
            otpd_curl_easy_setopt_pointer(easy, CURLOPT_READDATA, box)
        } else {
            otpd_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
            otpd_curl_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            request.body.withUnsafeBytes { bytes in
                // COPYPOSTFIELDS copies: the Swift array need not outlive this call.
                _ = otpd_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(transfer.keep("")))
            }
            // No "Expect: 100-continue" round trip for small bodies.
            transfer.headers = curl_slist_append(transfer.headers, "Expect:")
        }
        otpd_curl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, transfer.headers)
        active[easy] = transfer
        curl_multi_add_handle(multi, easy)
    }

    private func finish(easy: UnsafeMutableRawPointer, result: CURLcode) {
        curl_multi_remove_handle(multi, easy)
        guard let transfer = active.removeValue(forKey: easy) else {
            curl_easy_cleanup(easy)
            return
        }
        var status = 0
        otpd_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        var requestSize = 0
        otpd_curl_easy_getinfo_long(easy, CURLINFO_REQUEST_SIZE, &requestSize)
        if idleHandles.count < Self.idleHandleLimit {
            curl_easy_reset(easy)
            idleHandles.append(easy)
        } else {
            curl_easy_cleanup(easy)
        }
        if result == CURLE_OK {
            finished.append((transfer, .success(CurlResponse(status: status, body: transfer.received))))
        } else {
            let message = String(cString: curl_easy_strerror(result))
            let notSent = requestSize == 0 && [CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT,
                CURLE_SSL_CONNECT_ERROR, CURLE_SEND_ERROR].contains(result)
            finished.append(
                (transfer, .failure(CurlFailure(code: Int(result.rawValue), message: message, requestNotSent: notSent))))
        }
    }

    // MARK: without `lock`

    private func complete(_ done: [(Transfer, Result<CurlResponse, CurlFailure>)], wake: Bool) {
        if wake {
            var byte: UInt8 = 1
            _ = write(wakeWriteFD, &byte, 1)
        }
        for (transfer, result) in done {
            transfer.continuation.resume(with: result.mapError { $0 as any Error })
        }
    }

    // MARK: the poller thread

    private func poll() {
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        while true {
            lock.lock()
            let deadline = timerDeadline
            pollerIsWaiting = true
            pollerWakesAt = deadline
            lock.unlock()
            var timeout: Int32 = -1
            if let deadline {
                let left = deadline - ContinuousClock.now
                // Rounded up: waking a little early would only go around again.
                timeout = left <= .zero ? 0 : Int32(min((left.nanoseconds + 999_999) / 1_000_000, 60_000))
            }
            let count = epoll_wait(epollFD, events, Int32(capacity), timeout)
            lock.lock()
            pollerIsWaiting = false
            for index in 0..<Int(max(count, 0)) {
                let event = events[index]
                if event.data.fd == wakeReadFD {
                    var drained = [UInt8](repeating: 0, count: 64)
                    while read(wakeReadFD, &drained, drained.count) > 0 {}
                    continue
                }
                var flags: Int32 = 0
                if event.events & EPOLLIN.rawValue != 0 { flags |= CURL_CSELECT_IN }
                if event.events & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
                if event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_ERR }
                socketAction(event.data.fd, events: flags)
            }
            if let due = timerDeadline, due <= ContinuousClock.now {
                timerDeadline = nil  // one-shot: libcurl sets the next one from inside the call
                socketAction(otpd_curl_socket_timeout(), events: 0)
            }
            let (done, _) = takeFinishedAndWake()
            lock.unlock()
            complete(done, wake: false)
        }
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
