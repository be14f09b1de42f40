import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import OTPCore

/// Outermost: gives every request an id (the caller's `X-Request-Id` when it is sane), logs one
/// line per request (at `info`, through the process's non-blocking `LogOutput`), and records
/// the request counter and latency histogram. In the same async frame it bounds the body
/// (`bodyLimit`) and turns what the routes throw into responses (`response(for:)`): each
/// middleware layer costs every request one more async frame and copy of the context (the
/// three as separate layers took about a tenth of the echo's throughput).
///
/// Only the path is logged, never the query string: some routes carry codes in it.
struct ObservabilityMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let metrics: ServerMetrics
    let bodyLimit: BodyLimit
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    init(metrics: ServerMetrics, maxBodyBytes: Int) {
        self.metrics = metrics
        self.bodyLimit = BodyLimit(maxBytes: maxBodyBytes)
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let requestID: String
        if let given = request.headers[Self.requestIDHeader], Self.isSane(given) {
            requestID = given
            context.logger[metadataKey: "hb.request.id"] = .string(given)
        } else {
            requestID = context.id
        }
        let start = ContinuousClock.now
        var response: Response
        do {
            do {
                response = try await next(try await bodyLimit.bounded(request), context)
            } catch {
                response = try self.response(for: error, request: request, context: context)
            }
        } catch {
            // `response(for:)` turns every error into a response; this is only a last resort.
            context.logger.error("unhandled error", metadata: ["error.type": "\(type(of: error))"])
            response = Response(status: .internalServerError)
        }
        let duration = ContinuousClock.now - start
        response.headers[Self.requestIDHeader] = requestID
        let route = context.endpointPath ?? "unmatched"
        metrics.recordRequest(
            route: route, method: MetricLabels.method(request.method), status: response.status.code, duration: duration)
        // The request id as already formatted for the header (the logger's own would be
        // formatted again). otpd's own handler writes the line from its fields; any other
        // handler (a test's, a library user's) gets it as an ordinary `info` with metadata.
        let line = AccessLogLine(
            requestID: requestID, method: request.method.rawValue, path: request.uri.path, route: route,
            status: response.status.code, duration: duration)
        let logger = context.logger
        if let handler = logger.handler as? OutputLogHandler {
            handler.log(line)
        } else {
            logger.info("\(AccessLogLine.message)", metadata: line.metadata)
        }
        return response
    }

    /// The response for what a route (or `bodyLimit`) threw: in v1's dialect, the answer of every
    /// route without one of its own; as it is, an error a surface's dialect already worded; a
    /// logged 500 for anything else.
    func response(for error: any Error, request: Request, context: Context) throws -> Response {
        if let failure = V1Dialect().failure(for: error, request: request, context: context, metrics: metrics) {
            return try failure.response(from: request, context: context)
        }
        if let error = error as? any HTTPResponseError {
            return try error.response(from: request, context: context)
        }
        context.logger.error("unexpected error", metadata: ["error.type": "\(type(of: error))"])
        return try APIError(.internalServerError, code: "internal_error", "internal error").response(from: request, context: context)
    }

    /// Printable ASCII, at most 128 characters: anything else could forge log lines.
    static func isSane(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
    }
}

/// The one access-log line of a request (`ObservabilityMiddleware`), message `request`.
struct AccessLogLine {
    static let message = "request"
    let requestID: String
    let method: String
    let path: String
    let route: String
    let status: Int
    let duration: Duration

    /// Whether `key` is one of the line's own fields (which win over the logger's metadata).
    static func isOwn(_ key: String) -> Bool {
        switch key {
        case "duration_ms", "hb.request.id", "http.method", "http.path", "http.route", "http.status": true
        default: false
        }
    }

    private var milliseconds: Double { Double(duration.nanoseconds) / 1_000_000 }

    /// The fields in key order, as a log handler sorts them.
    var fields: [(key: String, value: Logger.Metadata.Value)] {
        [
            ("duration_ms", .string(milliseconds.description)), ("hb.request.id", .string(requestID)),
            ("http.method", .string(method)), ("http.path", .string(path)), ("http.route", .string(route)),
            ("http.status", .string(status.description)),
        ]
    }

    var metadata: Logger.Metadata {
        [
            "hb.request.id": .string(requestID), "http.method": .string(method), "http.path": .string(path),
            "http.route": .string(route), "http.status": .stringConvertible(status),
            "duration_ms": .stringConvertible(milliseconds),
        ]
    }
}

/// Bounds every request body by `server.max_body_bytes` (413 from `Content-Length` alone when
/// it is declared, otherwise while the body is read), so a handler never reads more.
/// Its time is bounded per connection by `RequestBodyDeadline` (a body still unfinished
/// `idle_timeout_seconds` after its head arrived closes the connection: slowloris); a head
/// that never finishes is closed by the server's idle timeout or `RequestHeadDeadline`.
struct BodyLimit {
    let maxBytes: Int

    /// `request` with its body bounded: refused (413) when its declared `Content-Length` is
    /// over the limit, left a stream when it is within it (the HTTP decoder ends the body at
    /// the declared length); a chunked body (any method) is read into memory up to the limit;
    /// a request with neither header has no body.
    func bounded(_ request: Request) async throws -> Request {
        if let declared = request.headers[.contentLength] {
            guard let length = Int(declared), length >= 0 else {
                throw APIError.badRequest("Content-Length '\(declared)' is not a number")
            }
            guard length <= maxBytes else { throw tooLarge() }
            return request
        }
        guard request.headers[.transferEncoding] != nil else { return request }
        var request = request
        do {
            let buffer = try await request.body.collect(upTo: maxBytes)
            request.body = .init(buffer: buffer)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge()
        }
        return request
    }

    private func tooLarge() -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", "the request body is larger than \(maxBytes) bytes")
    }
}
