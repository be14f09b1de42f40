import Hummingbird
import HTTPTypes
import Logging
import OTPCore

/// How one API surface words a failure: the status, headers and body of every engine refusal
/// (`OTPError`) and of every request refused before it reached the engine (a bad body, 413,
/// 415, a missing field: an `APIError`, as v1 words it), in that surface's shape. A surface is
/// one controller plus one dialect; its routes answer every failure through it
/// (`DialectMiddleware`), and routes of no other surface through v1's (`ObservabilityMiddleware`).
protocol Dialect: Sendable {
    associatedtype Failure: HTTPResponseError
    /// An engine refusal or failure. `logger`: for a refusal the surface never expects.
    func failure(_ error: OTPError, logger: Logger) -> Failure
    /// A request refused at the edge, in v1's words.
    func failure(_ refusal: APIError) -> Failure
}

extension Dialect {
    /// What a route threw, in this dialect: an engine error (a storage failure counted and
    /// logged first), a refusal at the edge, or a framework `HTTPError`. Nil for anything else:
    /// an error its surface already worded, or a bug.
    func failure(for error: any Error, request: Request, context: OTPRequestContext, metrics: ServerMetrics) -> Failure? {
        switch error {
        case let error as OTPError:
            if case .storageFailed(let failure) = error { Self.record(failure, metrics: metrics, logger: context.logger) }
            return failure(error, logger: context.logger)
        case let refusal as APIError:
            return failure(refusal)
        case let malformed as FormBody.Malformed:
            return failure(malformed.refusal)
        case let error as HTTPError:
            return failure(APIError(error, request: request))
        default:
            return nil
        }
    }

    /// Counts and logs a storage failure (never a code or token: the failure names Redis only).
    static func record(_ failure: StorageFailure, metrics: ServerMetrics, logger: Logger) {
        metrics.recordRedisError(kind: failure.kind.rawValue)
        if failure.isTransient {
            logger.warning("Redis unavailable", metadata: ["error": "\(failure)"])
        } else {
            logger.error("Redis error", metadata: ["error": "\(failure)"])
        }
    }
}

/// Answers the failures of one surface's routes in its dialect (project verify, password
/// reset, the hub); v1's routes need none, v1 being what `ObservabilityMiddleware` answers.
struct DialectMiddleware<D: Dialect>: RouterMiddleware {
    typealias Context = OTPRequestContext
    let dialect: D
    let metrics: ServerMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if let failure = dialect.failure(for: error, request: request, context: context, metrics: metrics) { throw failure }
            throw error
        }
    }
}

/// A surface's error answer: a status, headers, and a body of two strings, the failure's code
/// and its message, under the field names and in the order the surface's clients read them.
struct CodedFailure: HTTPResponseError {
    enum Layout: Sendable {
        /// `{"error": code, "message": …}` (the hub).
        case errorThenMessage
        /// `{"message": …, "code": code}` (project verify).
        case messageThenCode
    }

    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields
    var layout: Layout

    init(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:],
        layout: Layout = .errorThenMessage
    ) {
        (self.status, self.code, self.message, self.headers, self.layout) = (status, code, message, headers, layout)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONWriter()
        switch layout {
        case .errorThenMessage:
            json.field("error", code)
            json.field("message", message)
        case .messageThenCode:
            json.field("message", message)
            json.field("code", code)
        }
        return json.response(status: status, headers: headers)
    }
}
