import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import OTPCore

/// Outermost: gives every request an id (the caller's `X-Request-Id` when it is sane), logs one
/// line per request (at `info`, through the process's non-blocking `LogOutput`), and records
/// the request counter and latency histogram. Inside it, in the same async frame, `errors`
/// turns what the routes throw into responses and `bodyLimit` bounds the body: each
/// middleware layer costs every request one more async frame and copy of the context (the
/// three as separate layers took about a tenth of the echo's throughput).
///
/// Only the path is logged, never the query string: some routes carry codes in it.
struct ObservabilityMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let metrics: ServerMetrics
    let errors: ErrorMiddleware
    let bodyLimit: BodyLimitMiddleware
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    init(metrics: ServerMetrics, maxBodyBytes: Int) {
        self.metrics = metrics
        self.errors = ErrorMiddleware(metrics: metrics)
        self.bodyLimit = BodyLimitMiddleware(maxBytes: maxBodyBytes)
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
                response = try errors.response(for: error, request: request, context: context)
            }
        } catch {
            // `errors` turns every error into a response; this is only a last resort.
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

/// Turns every error into a response, in one place: `APIError`s as they are, framework errors
/// into the v1 JSON shape, storage failures into a fast 503 (or a logged 500 when Redis
/// answered with an error), anything else into a logged 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let metrics: ServerMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try response(for: error, request: request, context: context)
        }
    }

    /// The response for `error`, thrown by a route (or by `BodyLimitMiddleware`).
    func response(for error: any Error, request: Request, context: Context) throws -> Response {
        do {
            throw error
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as OTPError {
            Self.record(error, metrics: metrics, logger: context.logger)
            return try APIError(error).response(from: request, context: context)
        } catch let error as HTTPError {
            return try Self.apiError(for: error, request: request).response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            // Surfaces with their own error shapes throw their own HTTPResponseError types.
            return try error.response(from: request, context: context)
        } catch {
            context.logger.error("unexpected error", metadata: ["error.type": "\(type(of: error))"])
            return try APIError(.internalServerError, code: "internal_error", "internal error")
                .response(from: request, context: context)
        }
    }

    /// Counts and logs a storage failure (never a code or token: the failure names Redis only);
    /// surfaces that answer errors in their own shape call it too.
    static func record(_ error: OTPError, metrics: ServerMetrics, logger: Logger) {
        guard case .storageFailed(let failure) = error else { return }
        metrics.recordRedisError(kind: failure.kind.rawValue)
        if failure.isTransient {
            logger.warning("Redis unavailable", metadata: ["error": "\(failure)"])
        } else {
            logger.error("Redis error", metadata: ["error": "\(failure)"])
        }
    }

    static func apiError(for error: HTTPError, request: Request) -> APIError {
        var apiError: APIError
        switch error.status {
        case .notFound:
            apiError = APIError(.notFound, code: "not_found", "no route for \(request.method) \(request.uri.path)")
        case .methodNotAllowed:
            apiError = APIError(
                .methodNotAllowed, code: "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
        case .contentTooLarge:
            apiError = APIError(.contentTooLarge, code: "payload_too_large", error.body ?? "request body too large")
        case .badRequest:
            apiError = APIError(.badRequest, code: "invalid_request", error.body ?? "bad request")
        default:
            let code = String(error.status.reasonPhrase.lowercased().map { $0 == " " ? "_" : $0 })
            apiError = APIError(error.status, code: code, error.body ?? error.status.reasonPhrase)
        }
        apiError.headers = error.headers
        return apiError
    }
}

/// Gives the routes of a surface with its own error shape (project verify, the hub) their
/// errors: each failure first becomes its v1 `APIError` (the one mapping of engine errors),
/// then the surface's `map` turns that into its own shape. Sits inside `ErrorMiddleware`.
struct SurfaceErrorMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let metrics: ServerMetrics
    let map: @Sendable (APIError, OTPError?) -> SurfaceError

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as SurfaceError {
            throw error
        } catch let error as APIError {
            throw map(error, nil)
        } catch let error as OTPError {
            ErrorMiddleware.record(error, metrics: metrics, logger: context.logger)
            throw map(APIError(error), error)
        } catch let error as HTTPError {
            throw map(ErrorMiddleware.apiError(for: error, request: request), nil)
        }
    }
}

/// Bounds every request body by `server.max_body_bytes` (413 from `Content-Length` alone when
/// it is declared, otherwise while the body is read), so a handler never reads more.
/// Its time is bounded per connection by `RequestBodyDeadline` (a body still unfinished
/// `idle_timeout_seconds` after its head arrived closes the connection: slowloris); a head
/// that never finishes is closed by the server's idle timeout or `RequestHeadDeadline`.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let maxBytes: Int

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        try await next(try await bounded(request), context)
    }

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
