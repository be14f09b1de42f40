internal import CCurl
import Foundation
import Synchronization

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

/// Every outbound exchange goes through here: libcurl's multi interface driven by one thread
/// of its own, so no transfer ever blocks a SwiftNIO event loop or a Swift concurrency thread.
/// Callers `await`; each transfer resumes its continuation when libcurl finishes it. The
/// multi handle keeps a connection cache, so repeated calls to a gateway reuse connections.
final class CurlTransport: @unchecked Sendable {
    /// A transfer in flight: owned by the curl thread once submitted.
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
    private static let globalInit: Void = { _ = otpd_curl_global_init() }()

    private let multi: UnsafeMutableRawPointer
    private let queue = Mutex<[Transfer]>([])
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]

    private init() {
        _ = Self.globalInit
        multi = curl_multi_init()!
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "otpd-curl"
        thread.start()
    }

    func perform(_ request: CurlRequest) async throws -> CurlResponse {
        try await withCheckedThrowingContinuation { continuation in
            queue.withLock { $0.append(Transfer(request: request, continuation: continuation)) }
            curl_multi_wakeup(multi)
        }
    }

    // MARK: the curl thread

    private func run() {
        var running: Int32 = 0
        while true {
            for transfer in queue.withLock({ queue in defer { queue.removeAll() }; return queue }) {
                start(transfer)
            }
            curl_multi_perform(multi, &running)
            var remaining: Int32 = 0
            while let message = curl_multi_info_read(multi, &remaining) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                finish(easy: easy, result: message.pointee.data.result)
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }

    private func start(_ transfer: Transfer) {
        guard let easy = curl_easy_init() else {
            transfer.continuation.resume(throwing: CurlFailure(code: -1, message: "curl_easy_init failed", requestNotSent: true))
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
            otpd_curl_easy_setopt_long(easy, CURLOPT_USE_SSL, Int(CURLUSESSL_TRY.rawValue))
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
        curl_easy_cleanup(easy)
        if result == CURLE_OK {
            transfer.continuation.resume(returning: CurlResponse(status: status, body: transfer.received))
        } else {
            let message = String(cString: curl_easy_strerror(result))
            let notSent = requestSize == 0 && [CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT,
                CURLE_SSL_CONNECT_ERROR, CURLE_SEND_ERROR].contains(result)
            transfer.continuation.resume(
                throwing: CurlFailure(code: Int(result.rawValue), message: message, requestNotSent: notSent))
        }
    }
}
