import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import OTPCore

/// Outermost: gives every request an id (the caller's `X-Request-Id` when it is sane), logs one
/// line per request (at `info`, through the process's non-blocking `LogOutput`), and records
/// the request counter and latency histogram.
///
/// Only the path is logged, never the query string: some routes carry codes in it.
struct ObservabilityMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let metrics: ServerMetrics
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

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
            response = try await next(request, context)
        } catch {
            // ErrorMiddleware turns every error into a response; this is only a last resort.
            context.logger.error("unhandled error", metadata: ["error.type": "\(type(of: error))"])
            response = Response(status: .internalServerError)
        }
        let duration = ContinuousClock.now - start
        response.headers[Self.requestIDHeader] = requestID
        let route = context.endpointPath ?? "unmatched"
        metrics.recordRequest(
            route: route, method: MetricLabels.method(request.method), status: response.status.code, duration: duration)
        // Formatted by the log handler, and only when the line is written; the request id as
        // already formatted for the header (the logger's own would be formatted again).
        context.logger.info(
            "request",
            metadata: [
                "hb.request.id": .string(requestID),
                "http.method": .string(request.method.rawValue), "http.path": .string(request.uri.path),
                "http.route": .string(route), "http.status": .stringConvertible(response.status.code),
                "duration_ms": .stringConvertible(Double(duration.nanoseconds) / 1_000_000),
            ])
        return response
    }

    /// Printable ASCII, at most 128 characters: anything else could forge log lines.
    static func isSane(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
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
/// it is declared, otherwise while the body is read) and by time: a body still unfinished
/// `readTimeout` after its head arrived closes the connection (slowloris). A head that never
/// finishes is closed by the server's idle timeout. Handlers then read the body from memory.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = OTPRequestContext
    let maxBytes: Int
    let readTimeout: TimeAmount

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let declared = request.headers[.contentLength] {
            guard let length = Int(declared), length >= 0 else {
                throw APIError.badRequest("Content-Length '\(declared)' is not a number")
            }
            guard length <= maxBytes else { throw tooLarge() }
        }
        guard request.method != .get, request.method != .head else { return try await next(request, context) }
        var request = request
        let channel = context.channel
        let deadline = channel.eventLoop.scheduleTask(in: readTimeout) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        do {
            let buffer = try await request.body.collect(upTo: maxBytes)
            request.body = .init(buffer: buffer)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge()
        }
        deadline.cancel()
        return try await next(request, context)
    }

    private func tooLarge() -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", "the request body is larger than \(maxBytes) bytes")
    }
}
