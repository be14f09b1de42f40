import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OTPCore
import OTPCrypto

/// Twilio Verify v2 (`surfaces.twilio_verify`): `POST /v2/Services/{ServiceSid}/Verifications`,
/// `POST …/VerificationCheck`, `GET` and `POST …/Verifications/{Sid}`, with Twilio's form
/// parameters, JSON resources and errors, so a backend keeps its Twilio SDK and changes only
/// its base URL. HTTP Basic (the account SID and auth token, or an API key) on every route;
/// the service SID in the path is looked up in the configured map, nothing else.
/// A thin adapter: authenticate, decode, call `TwilioVerify`, encode.
struct TwilioVerifyController {
    let engine: OTPEngine
    let metrics: ServerMetrics
    let configuration: Configuration.Surfaces.TwilioVerify
    /// The account SID with its auth token, or an API key SID with its secret.
    let credentials: BasicCredentials
    var verify: TwilioVerify { TwilioVerify(engine: engine) }

    init(engine: OTPEngine, metrics: ServerMetrics, configuration: Configuration.Surfaces.TwilioVerify) {
        (self.engine, self.metrics, self.configuration) = (engine, metrics, configuration)
        credentials = BasicCredentials(
            [(user: configuration.accountSID, password: configuration.authToken)]
                + configuration.apiKeys.map { (user: $0.key, password: $0.value) })
    }

    func addRoutes(to router: Router<OTPRequestContext>) {
        let group = router.group("v2/Services/:ServiceSid")
            .add(middleware: DialectMiddleware(dialect: TwilioDialect(), metrics: metrics))
        group.post("Verifications", use: create)
        group.post("VerificationCheck", use: check)
        group.get("Verifications/:Sid", use: fetch)
        group.post("Verifications/:Sid", use: update)
    }

    /// The route's service SID and its app, after the credentials: an unknown service is 404.
    func service(_ request: Request, _ context: OTPRequestContext) throws -> (sid: String, app: String) {
        guard credentials.accept(request) else { throw TwilioFailure.unauthorized }
        guard let sid = context.parameters.get("ServiceSid"), let app = configuration.services[sid] else {
            throw TwilioFailure.notFound
        }
        return (sid, app)
    }

    @Sendable func create(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let service = try service(request, context)
        let form = try await request.decodeForm()
        if try form.value("CustomCode") != nil {
            throw TwilioFailure.invalidParameter("CustomCode", "is not supported: otpd draws every code")
        }
        let deviceIP = try form.value("DeviceIp")
        if let deviceIP, NetworkRange.parse(deviceIP) == nil {
            throw TwilioFailure.invalidParameter("DeviceIp", "must be an IPv4 or IPv6 address")
        }
        let created = try await verify.create(
            .init(
                to: try Self.require(form, "To"), channel: try Self.require(form, "Channel"), locale: try form.value("Locale"),
                deviceIP: deviceIP, friendlyName: try form.value("CustomFriendlyName")),
            service: service.sid, appID: service.app)
        return try answer(created, service: service.sid, status: .created)
    }

    @Sendable func check(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let service = try service(request, context)
        let form = try await request.decodeForm()
        let code = try Self.require(form, "Code")
        let to = try form.value("To")
        let sid = try form.value("VerificationSid")
        guard to != nil || sid != nil else {
            throw TwilioFailure.invalidParameter("To", "is required (or VerificationSid)")
        }
        let checked = try await verify.check(
            code: code, to: to, sid: sid, service: service.sid, appID: service.app, deviceIP: nil)
        switch checked {
        case .success(let verification):
            var json = Self.checkJSON(verification, service: service.sid, account: configuration.accountSID)
            return json.response()
        case .failure(let refusal):
            throw TwilioFailure(refusal)
        }
    }

    @Sendable func fetch(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let service = try service(request, context)
        guard let sid = context.parameters.get("Sid"),
            let found = try await verify.fetch(sid: sid, service: service.sid, appID: service.app)
        else { throw TwilioFailure.notFound }
        return try answer(.success(found), service: service.sid, status: .ok)
    }

    @Sendable func update(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let service = try service(request, context)
        let form = try await request.decodeForm()
        let raw = try Self.require(form, "Status")
        guard let status = TwilioVerify.Status(rawValue: raw), status == .canceled || status == .approved else {
            throw TwilioFailure.invalidParameter("Status", "must be canceled or approved")
        }
        guard let sid = context.parameters.get("Sid"),
            let ended = try await verify.update(sid: sid, status: status, service: service.sid, appID: service.app)
        else { throw TwilioFailure.notFound }
        return try answer(.success(ended), service: service.sid, status: .ok)
    }

    func answer(
        _ result: Result<TwilioVerify.Verification, TwilioVerify.Refusal>, service: String, status: HTTPResponse.Status
    ) throws -> Response {
        switch result {
        case .success(let verification):
            var json = Self.verificationJSON(verification, service: service, account: configuration.accountSID)
            return json.response(status: status)
        case .failure(let refusal):
            throw TwilioFailure(refusal)
        }
    }

    static func require(_ form: FormBody, _ name: String) throws -> String {
        guard let value = try form.value(name), !value.isEmpty else {
            throw TwilioFailure.invalidParameter(name, "is required")
        }
        return value
    }

    // MARK: resources

    /// Twilio's Verification resource.
    static func verificationJSON(_ v: TwilioVerify.Verification, service: String, account: String) -> JSONWriter {
        var json = common(v, service: service, account: account)
        json.field("lookup", JSONWriter())
        json.field("amount", nil as String?)
        json.field("payee", nil as String?)
        json.field(
            "send_code_attempts",
            objects: v.sendAttempts.map { attempt in
                var item = JSONWriter()
                item.field("attempt_sid", attempt.sid)
                item.field("channel", attempt.channel)
                item.field("time", UTCTime.rfc3339(attempt.time))
                return item
            })
        json.field("date_created", UTCTime.rfc3339(v.created))
        json.field("date_updated", UTCTime.rfc3339(v.updated))
        json.field("sna", nil as String?)
        json.field("url", "/v2/Services/\(service)/Verifications/\(v.sid)")
        return json
    }

    /// Twilio's VerificationCheck resource.
    static func checkJSON(_ v: TwilioVerify.Verification, service: String, account: String) -> JSONWriter {
        var json = common(v, service: service, account: account)
        json.field("amount", nil as String?)
        json.field("payee", nil as String?)
        json.field("date_created", UTCTime.rfc3339(v.created))
        json.field("date_updated", UTCTime.rfc3339(v.updated))
        json.field("sna_attempts_error_codes", objects: [])
        return json
    }

    static func common(_ v: TwilioVerify.Verification, service: String, account: String) -> JSONWriter {
        var json = JSONWriter()
        json.field("sid", v.sid)
        json.field("service_sid", service)
        json.field("account_sid", account)
        json.field("to", v.to)
        json.field("channel", v.channel)
        json.field("status", v.status.rawValue)
        json.field("valid", v.valid)
        return json
    }
}

