public import Delivery
import OTPCrypto

/// Twilio Verify's semantics over the engine: one pending verification per `To` of a service,
/// created (or re-sent, with the same sid and code) by `create`, approved at most once by
/// `check` or `update`, under the app's attempts, cooldown, quotas, lockout, allowed countries
/// and SMS ceiling. No user and no token: a verification only answers whether the code was
/// right. Redis holds the code's hash only; the code itself is an HMAC of the sid under the
/// pepper, so a re-send sends the same code without Redis ever holding it.
public struct TwilioVerify: Sendable {
    let engine: OTPEngine

    public init(engine: OTPEngine) { self.engine = engine }

    /// A verification sent 5 times refuses more sends (Twilio's 60203).
    public static let maxSends = 5
    /// `CustomFriendlyName` at most this many characters.
    public static let maxFriendlyNameLength = 30

    public enum Status: String, Sendable, Hashable {
        case pending, approved, canceled, expired, failed
        case maxAttemptsReached = "max_attempts_reached"
    }

    public struct SendAttempt: Sendable, Hashable {
        public var sid: String
        public var channel: String
        /// Unix seconds.
        public var time: Int
    }

    /// A verification as Twilio's resources describe it.
    public struct Verification: Sendable, Hashable {
        public var sid: String
        public var to: String
        public var channel: String
        public var status: Status
        /// Unix seconds.
        public var created: Int
        public var updated: Int
        public var sendAttempts: [SendAttempt]

        public var valid: Bool { status == .approved }
    }

    public struct CreateRequest: Sendable {
        public var to: String
        public var channel: String
        public var locale: String?
        public var deviceIP: String?
        public var friendlyName: String?

        public init(to: String, channel: String, locale: String? = nil, deviceIP: String? = nil, friendlyName: String? = nil) {
            (self.to, self.channel, self.locale, self.deviceIP, self.friendlyName) = (to, channel, locale, deviceIP, friendlyName)
        }
    }

    /// What a refusal of this surface is, beyond the engine's errors: its own codes.
    public enum Refusal: Error, Sendable, Hashable {
        /// The verification was sent `maxSends` times (60203).
        case maxSendAttempts(retryAfter: Int)
        /// No verification has this sid, or this `To` none pending (20404).
        case notFound
        /// A parameter out of bounds (60200): its Twilio name and why.
        case invalidParameter(name: String, reason: String)
    }

    /// Creates the `To`'s verification, or re-sends its pending one (same sid, same code), and
    /// delivers the code. A refusal (a quota, the cooldown, a bad parameter) changes nothing.
    public func create(
        _ request: CreateRequest, service: String, appID: String
    ) async throws(OTPError) -> Result<Verification, Refusal> {
        let app = try engine.app(appID)
        guard let identifier = Identifier(request.to) else {
            return .failure(.invalidParameter(name: "To", reason: "must be an E.164 phone number or an email address"))
        }
        if let name = request.friendlyName,
            name.isEmpty || name.count > Self.maxFriendlyNameLength
                || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        {
            return .failure(
                .invalidParameter(name: "CustomFriendlyName", reason: "must be 1-\(Self.maxFriendlyNameLength) characters without control characters"))
        }
        if let locale = request.locale,
            locale.isEmpty || locale.count > 16 || !locale.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        {
            return .failure(.invalidParameter(name: "Locale", reason: "must be a language tag such as en or pt-BR"))
        }
        let channel: DeliveryChannel
        do throws(OTPError) {
            channel = try engine.resolveChannel(request.channel, identifier: identifier, app: app)
        } catch {
            switch error {
            case .channelNotSupported(let reason): return .failure(.invalidParameter(name: "Channel", reason: reason))
            case .countryNotAllowed:
                return .failure(.invalidParameter(name: "To", reason: "this service does not send SMS or calls to that country"))
            default: throw error
            }
        }
        // A verification has no user, so no linked chat: a channel that reaches linked chats
        // (telegram) reaches a phone number only through the Telegram Gateway.
        if channel.traits.reachesLinkedChat, engine.telegramGateway == nil {
            return .failure(.invalidParameter(name: "Channel", reason: "telegram needs delivery.telegram_gateway (a verification has no linked chat)"))
        }
        let place = place(app: app.id, service: service, identifier: identifier)
        let newSID = "VE" + place.toHash + Digest.hex(SecureRandom.bytes(8))
        let new = OTPStore.NewVerification(
            place: place, sid: newSID, codeHash: codeHash(app: app, sid: newSID), to: identifier.value, channel: channel,
            attemptSID: "VL" + Digest.hex(SecureRandom.bytes(16)), ttlSeconds: app.config.otp.ttlSeconds,
            cooldownSeconds: app.config.otp.resendCooldownSeconds, sendsPerHour: app.config.limits.sendsPerIdentifierPerHour,
            maxAttempts: app.config.otp.maxAttempts, maxSends: Self.maxSends)
        // The client's (DeviceIp's) sends and, for a paid channel, the app's SMS and calls: taken
        // first, given back unless a gateway was reached.
        let outcome = try await engine.withReservations(
            engine.sendCounters(channel: channel, app: app, clientIP: request.deviceIP), app: app,
            giveBack: { (sent: Sent) in sent.giveBack }
        ) { () async throws(OTPError) -> Sent in
            let stored = try await engine.store.createVerification(new)
            guard case .sent(let sid, let to, let created, let updated, let attempts) = stored else {
                return .refused(stored)
            }
            let code = code(app: app, sid: sid)
            // What `deliver` reads of a code: its channel, identifier, reference and lifetime.
            let otp = OTPStore.NewOTP(
                app: app.id, userID: "tv", purpose: .auth, suffix: sid, codeHash: new.codeHash, channel: channel,
                mode: .login, identifier: identifier, firstName: "", lastName: "", ttlSeconds: app.config.otp.ttlSeconds,
                cooldownSeconds: 0, sendsPerHour: 0, idempotencyKey: nil)
            do throws(OTPEngine.Undelivered) {
                let carrier = try await engine.deliver(
                    code: code, of: otp, chat: nil, language: request.locale, app: app, appName: request.friendlyName)
                engine.onOutcome(.codeSent(app: app.id, channel: carrier))
                return .sent(
                    Verification(
                        sid: sid, to: to, channel: channel.rawValue, status: .pending, created: created / 1000,
                        updated: updated / 1000, sendAttempts: Self.attempts(attempts)))
            } catch {
                // A new verification whose code went nowhere is no verification, and a re-send
                // that went nowhere no attempt; the `To`'s send and cooldown come back unless a
                // gateway was reached (it billed the message), as the client's and app's do.
                await engine.store.unsendVerification(new, sid: sid, giveBack: !error.gatewayReached)
                return .undelivered(error)
            }
        }
        switch outcome {
        case .sent(let verification): return .success(verification)
        case .undelivered(let failure): throw failure.error
        case .refused(.maxSends(let seconds)): return .failure(.maxSendAttempts(retryAfter: seconds))
        case .refused(.locked(let seconds)): throw .identifierLocked(retryAfter: seconds)
        case .refused(.cooldown(let seconds)): throw .resendCooldown(retryAfter: seconds)
        case .refused(.rateLimited(let seconds)): throw .tooManySends(retryAfter: seconds)
        case .refused(.sent): throw .deliveryFailed
        }
    }

    /// What a create came to, for its quotas.
    enum Sent {
        case sent(Verification)
        case undelivered(OTPEngine.Undelivered)
        case refused(OTPStore.VerificationSendOutcome)

        var giveBack: OTPEngine.GiveBack {
            switch self {
            case .sent: return .none
            case .undelivered(let failure): return failure.gatewayReached ? .none : .all
            case .refused: return .all
            }
        }
    }

    /// Checks `code` against the `To`'s pending verification, or the one of `sid`: approved
    /// (and consumed), or pending with one attempt fewer (a wrong code is answered, as Twilio
    /// does, not thrown). `deviceIP`, when given, is the client whose wrong codes are counted
    /// (Twilio's check carries no `DeviceIp`: its controller passes nil).
    public func check(
        code: String, to: String?, sid: String?, service: String, appID: String, deviceIP: String?
    ) async throws(OTPError) -> Result<Verification, Refusal> {
        let app = try engine.app(appID)
        let place: OTPStore.VerificationPlace
        if let sid {
            guard let found = self.place(app: app.id, service: service, sid: sid) else { return .failure(.notFound) }
            // Both named: they must name the same verification.
            if let to, Identifier(to).map({ self.place(app: app.id, service: service, identifier: $0) }) != found {
                return .failure(.notFound)
            }
            place = found
        } else if let to {
            guard let identifier = Identifier(to) else {
                return .failure(.invalidParameter(name: "To", reason: "must be an E.164 phone number or an email address"))
            }
            place = self.place(app: app.id, service: service, identifier: identifier)
        } else {
            return .failure(.invalidParameter(name: "To", reason: "is required (or VerificationSid)"))
        }
        let normalized = app.normalize(code: code)
        guard !normalized.isEmpty, normalized.count <= 64,
            !normalized.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            return .failure(.invalidParameter(name: "Code", reason: "must be 1-64 characters without control characters"))
        }
        var wrong: Verification?
        do {
            return .success(
                try await engine.judging(appID: app.id) { () async throws(OTPError) -> Verification in
                    // The code's hash is bound to the sid: read the sid first when only the `To`
                    // names the verification (replaced in between: the script answers not found).
                    let checkedSID: String
                    if let sid {
                        checkedSID = sid
                    } else {
                        guard let live = try await engine.store.verificationSID(place) else { throw .otpNotFound }
                        checkedSID = live
                    }
                    let outcome = try await engine.withReservations(
                        engine.failureCounter(app: app, clientIP: deviceIP), app: app, waitForGiveBack: false,
                        giveBack: { (outcome: OTPStore.VerificationCheckOutcome) in outcome.keepsClientUnit ? .none : .all }
                    ) { () async throws(OTPError) in
                        try await engine.store.checkVerification(
                            OTPStore.VerificationCheck(
                                place: place, sid: checkedSID, codeHash: codeHash(app: app, sid: checkedSID, code: normalized),
                                limits: app.codeLimits))
                    }
                    switch outcome {
                    case .approved(let found):
                        return Self.verification(found, status: .approved)
                    case .wrong(let found, let remaining, let lockedNow):
                        wrong = Self.verification(found, status: .pending)
                        throw engine.error(
                            for: .invalid(attemptsRemaining: remaining, lockedNow: lockedNow), app: app, userID: "-",
                            clientIP: deviceIP)
                    case .refused(let refusal):
                        throw engine.error(for: refusal, app: app, userID: "-", clientIP: deviceIP)
                    }
                })
        } catch {
            // Counted as a wrong code by `judging`; answered 200 pending.
            if case .invalidOTP = error, let wrong { return .success(wrong) }
            if case .otpNotFound = error { return .failure(.notFound) }
            throw error
        }
    }

    /// The verification of `sid`, pending (or dead after its attempts).
    public func fetch(sid: String, service: String, appID: String) async throws(OTPError) -> Verification? {
        let app = try engine.app(appID)
        guard let place = place(app: app.id, service: service, sid: sid),
            let stored = try await engine.store.verification(place, sid: sid)
        else { return nil }
        return Self.verification(stored, status: stored.wrongChecks >= app.config.otp.maxAttempts ? .maxAttemptsReached : .pending)
    }

    /// Ends the verification of `sid` as `status` (canceled, or approved without a code): at
    /// most once, across replicas.
    public func update(sid: String, status: Status, service: String, appID: String) async throws(OTPError) -> Verification? {
        let app = try engine.app(appID)
        guard let place = place(app: app.id, service: service, sid: sid),
            let stored = try await engine.store.closeVerification(place, sid: sid)
        else { return nil }
        return Self.verification(stored, status: status)
    }

    // MARK: derived values

    /// Where the verifications of `identifier` live: a 16-hex HMAC of it under the pepper,
    /// bound to the app and the service.
    func place(app: String, service: String, identifier: Identifier) -> OTPStore.VerificationPlace {
        let mac = Digest.hmacSHA256(
            key: engine.pepper, message: Array("otpd-twilio-to\u{0}\(app)\u{0}\(service)\u{0}\(identifier.value)".utf8))
        return OTPStore.VerificationPlace(app: app, service: service, toHash: Digest.hex(mac.prefix(8)))
    }

    /// The place a sid names ("VE", the 16-hex HMAC of its `To`, 16 hex), or nil for anything
    /// else: a sid never becomes a key name it did not come from.
    func place(app: String, service: String, sid: String) -> OTPStore.VerificationPlace? {
        guard Self.isSID(sid) else { return nil }
        return OTPStore.VerificationPlace(app: app, service: service, toHash: String(sid.dropFirst(2).prefix(16)))
    }

    /// "VE" and 32 lower-case hex digits.
    public static func isSID(_ sid: String) -> Bool {
        sid.utf8.count == 34 && sid.hasPrefix("VE")
            && sid.utf8.dropFirst(2).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The code of a verification: the app's alphabet and length, drawn from HMAC(pepper, sid).
    func code(app: AppPolicy, sid: String) -> String {
        let alphabet = app.alphabet
        let limit = 256 - (256 % alphabet.count)
        var result = ""
        var block = 0
        while result.count < app.config.otp.length {
            let bytes = Digest.hmacSHA256(
                key: engine.pepper, message: Array("otpd-twilio-code\u{0}\(app.id)\u{0}\(sid)\u{0}\(block)".utf8))
            for byte in bytes where Int(byte) < limit && result.count < app.config.otp.length {
                result.append(alphabet[Int(byte) % alphabet.count])
            }
            block += 1
        }
        return result
    }

    func codeHash(app: AppPolicy, sid: String, code: String? = nil) -> [UInt8] {
        engine.codeHash(app: app.id, otpID: "tv.\(sid)", code: code ?? self.code(app: app, sid: sid))
    }

    static func attempts(_ encoded: String) -> [SendAttempt] {
        encoded.split(separator: ";").compactMap { part in
            let fields = part.split(separator: ",")
            guard fields.count == 3, let ms = Int(fields[2]) else { return nil }
            return SendAttempt(sid: String(fields[0]), channel: String(fields[1]), time: ms / 1000)
        }
    }

    static func verification(_ found: OTPStore.CheckedVerification, status: Status) -> Verification {
        Verification(
            sid: found.sid, to: found.to, channel: found.channel, status: status, created: found.createdMilliseconds / 1000,
            updated: found.updatedMilliseconds / 1000, sendAttempts: [])
    }

    static func verification(_ stored: OTPStore.StoredVerification, status: Status) -> Verification {
        Verification(
            sid: stored.sid, to: stored.to, channel: stored.channel.rawValue, status: status,
            created: stored.createdMilliseconds / 1000, updated: stored.updatedMilliseconds / 1000,
            sendAttempts: attempts(stored.attempts))
    }
}

extension OTPStore.VerificationCheckOutcome {
    /// A wrong code, or any check of a dead verification, keeps the client's failure unit.
    var keepsClientUnit: Bool {
        switch self {
        case .approved: return false
        case .wrong: return true
        case .refused(let refusal): return refusal.countsAgainstClient
        }
    }
}
