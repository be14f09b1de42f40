import Foundation
import Logging
import OTPCore
import OTPTestSupport
import RedisClient
import Synchronization
import Testing

@testable import OTPServer

/// An app `site` as a team moving off another service would set it up: closed registration,
/// users imported.
func importYAML(redisURL: String?, prefix: String) -> String {
    testYAMLHeader(redisURL: redisURL, prefix: prefix, trustedProxies: "10.9.0.0/16") + """
        apps:
          - id: site
            name: Site
            channels: [email, sms]
            registration: closed
            otp: {resend_cooldown_seconds: 0}
            tokens: {keys: [\(testJWTKey)]}
        """
}

@Suite("otpd import users: a user export, created as if registered")
struct ImportTests {
    final class Report: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ line: Int, _ reason: String) { lines.withLock { $0.append("line \(line): \(reason)") } }
        var all: [String] { lines.withLock { $0 } }
    }

    func run(_ harness: V1Harness, _ file: String) async throws -> (ImportSummary, [String]) {
        let report = Report()
        let summary = try await harness.withEngine { engine in
            try await UserImporter(engine: engine).run(appID: "site", file: Array(file.utf8)) { report.add($0, $1) }
        }
        return (summary, report.all)
    }

    func userKey(_ harness: V1Harness, _ identifier: String) async throws -> String {
        let id = try harness.withEngineSync { $0.userID(app: "site", identifier: try #require(Identifier(identifier))) }
        return "\(harness.prefix):{site:\(id)}:user"
    }

    /// 100,000 users in one run, well under a minute; a second run creates nothing.
    @Test func aHundredThousandUsersInOneRunAndASecondRunChangesNothing() async throws {
        let harness = try V1Harness { importYAML(redisURL: nil, prefix: $1) }
        var file = "id,email,phone,first_name,last_name,created_at,status,user_metadata\n"
        file.reserveCapacity(100_000 * 90)
        for i in 0..<100_000 {
            file += "u\(i),user\(i)@example.com,,First\(i),Last,2025-06-01T12:00:00Z,\(i % 10 == 0 ? "unverified" : "active"),{}\n"
        }
        let start = ContinuousClock.now
        let (first, firstReport) = try await run(harness, file)
        let elapsed = ContinuousClock.now - start
        #expect(first == summary(created: 100_000, existing: 0, rejected: 0))
        #expect(firstReport.isEmpty)
        #expect(elapsed < .seconds(45), "100,000 users took \(elapsed)")
        print("imported 100,000 users in \(elapsed)")
        let (second, secondReport) = try await run(harness, file)
        #expect(second == summary(created: 0, existing: 100_000, rejected: 0))
        #expect(secondReport.isEmpty)
        #expect(second.description == "created 0, existing 100000, rejected 0")
    }

    func summary(created: Int, existing: Int, rejected: Int) -> ImportSummary {
        var summary = ImportSummary()
        summary.created = created
        summary.existing = existing
        summary.rejected = rejected
        return summary
    }

    /// Each bad record is reported with the line it starts on; every other record imports.
    @Test func badRecordsAreReportedByLineAndTheRestImport() async throws {
        let harness = try V1Harness { importYAML(redisURL: nil, prefix: $1) }
        let longName = String(repeating: "n", count: 101)
        let file = [
            "\u{FEFF}Email, Phone ,first_name,last_name,created_at,STATUS\r",  // 1 (a BOM, CRLF, names in any case)
            "ada@example.com,,Ada,Lovelace,2024-01-31T09:30:00Z,active\r",  // 2
            "",  // 3
            "not-an-email,,X,Y,2024-01-31T09:30:00Z,active",  // 4
            #",+49 151 1234-5678,"Grace, the",Hopper,2023-05-01T10:00:00+02:00,unverified"#,  // 5
            ",12345,A,B,,active",  // 6
            "bob@example.com,,Bob,,yesterday,active",  // 7
            "carol@example.com,,Carol,,,pending",  // 8
            ",,,,,active",  // 9
            #""dan@example.com",,"Dan ""the man""","multi"#,  // 10
            #"line",2024-02-29T00:00:00.123Z,Active"#,  // 11
            "eve@example.com,,Eve",  // 12
            "frank@example.com,,\(longName),,,active",  // 13
            "ADA@Example.com,,Ada,Again,,active",  // 14
            "gina@example.com,,Gina,,2023-02-29T00:00:00Z,active",  // 15
            "hal@example.com,+15005550006,Hal,,,active",  // 16
            #""dan@example.com",,"Dan ""the man""",,2024-02-29T00:00:00.123Z,Active"#,  // 17
        ].joined(separator: "\n")
        let (summary, report) = try await run(harness, file)
        #expect(
            report == [
                "line 4: email 'not-an-email' is not a valid email address",
                "line 6: phone '12345' is not an E.164 phone number ('+' and 8-15 digits)",
                "line 7: created_at 'yesterday' is not an RFC 3339 date-time (such as 2024-01-31T09:30:00Z)",
                "line 8: status must be active or unverified, not 'pending'",
                "line 9: neither email nor phone is given",
                // One record over two lines, reported at its first; names hold no line breaks.
                "line 10: last_name holds a control character",
                "line 12: has 3 fields where the header has 6",
                "line 13: first_name is longer than 100 characters",
                "line 15: created_at '2023-02-29T00:00:00Z' is not an RFC 3339 date-time (such as 2024-01-31T09:30:00Z)",
            ])
        #expect(summary == self.summary(created: 4, existing: 1, rejected: 9))

        // The users are what a registration would have made, with the export's fields.
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        func fields(_ identifier: String) async throws -> [String: String] {
            let reply = try await redis.send("HGETALL", RedisArgument(try await userKey(harness, identifier)))
            let items = reply.array?.compactMap(\.string) ?? []
            return Dictionary(uniqueKeysWithValues: stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) })
        }
        let ada = try await fields("ada@example.com")
        #expect(ada["email"] == "ada@example.com" && ada["first_name"] == "Ada" && ada["last_name"] == "Lovelace")
        #expect(ada["status"] == "active" && ada["created_at"] == "1706693400" && ada["id"]?.count == 24)
        #expect(ada["pw"] == nil)
        let grace = try await fields("+4915112345678")
        #expect(grace["phone"] == "+4915112345678" && grace["first_name"] == "Grace, the" && grace["status"] == "unverified")
        #expect(grace["created_at"] == "1682928000")
        let dan = try await fields("dan@example.com")
        #expect(dan["first_name"] == #"Dan "the man""# && dan["last_name"] == "" && dan["status"] == "active")
        #expect(dan["created_at"] == "1709164800")
        let hal = try await fields("hal@example.com")
        #expect(hal["email"] == "hal@example.com" && hal["phone"] == "+15005550006")
        // Active users are permanent; unverified ones expire like a fresh registration (a day).
        let adaTTL = try await redis.send("PTTL", RedisArgument(try await userKey(harness, "ada@example.com"))).int
        #expect(adaTTL == -1)
        let graceTTL = try #require(try await redis.send("PTTL", RedisArgument(try await userKey(harness, "+4915112345678"))).int)
        #expect(graceTTL > 86_000_000 && graceTTL <= 86_400_000)
    }

    @Test func jsonLinesAreDetected() async throws {
        let harness = try V1Harness { importYAML(redisURL: nil, prefix: $1) }
        let file = [
            "",  // 1
            #"{"email": "jl1@example.com", "status": "active", "created_at": "2024-01-31T09:30:00Z", "first_name": null, "extra": [1]}"#,  // 2
            #"{"phone": "+4915112340001", "status": "unverified"}"#,  // 3
            "   ",  // 4
            #"{"email": 5, "status": "active"}"#,  // 5
            #"{"email": "jl2@example.com", "status": "active""#,  // 6
            #"["jl3@example.com"]"#,  // 7
            #"{"email": "jl4@example.com", "first_name": "Ünï, cödé", "status": "active"}"#,  // 8
        ].joined(separator: "\n") + "\n"
        let (summary, report) = try await run(harness, file)
        #expect(report == ["line 5: field 'email' must be a string", "line 6: is not a JSON object", "line 7: is not a JSON object"])
        #expect(summary == self.summary(created: 3, existing: 0, rejected: 3))
    }

    @Test func aHeaderWithoutAnIdentifierColumnIsRefused() async throws {
        let harness = try V1Harness { importYAML(redisURL: nil, prefix: $1) }
        let (summary, report) = try await run(harness, "name,status\nAda,active\n")
        #expect(report == ["line 1: the header row names neither an email nor a phone column"])
        #expect(summary == self.summary(created: 0, existing: 0, rejected: 1))
        let (unclosed, unclosedReport) = try await run(harness, "email,status\nx@example.com,active\n\"y@example.com,active\n")
        #expect(unclosedReport == ["line 3: a quoted field is not closed before the end of the file"])
        #expect(unclosed == self.summary(created: 1, existing: 0, rejected: 1))
    }

    /// Imported users sign in as registered ones do: a v1 OTP login works, and an unverified
    /// one becomes active (and permanent) at its first sign-in.
    @Test func importedUsersSignInWithACode() async throws {
        let harness = try V1Harness { importYAML(redisURL: nil, prefix: $1) }
        let file = """
            email,first_name,last_name,created_at,status
            imported@example.com,Ada,Lovelace,2024-01-31T09:30:00Z,active
            pending@example.com,Bob,,2024-01-31T09:30:00Z,unverified
            """
        _ = try await run(harness, file)
        try await harness.run { http in
            for (email, name) in [("imported@example.com", "Ada"), ("pending@example.com", "Bob")] {
                let login = try await http.post("/v1/apps/site/login/otp", ["identifier": email])
                #expect(login.status == 200, "\(login.body)")
                let otpID = try #require(login.json["otp_id"] as? String)
                let code = try #require(harness.capture.lastCode(to: email))
                let activate = try await http.post("/v1/apps/site/otp/activate", ["otp_id": otpID, "otp": code])
                #expect(activate.status == 200, "\(activate.body)")
                let token = try #require((activate.json["auth_result"] as? [String: Any])?["auth_token"] as? String)
                let me = try await http.get("/v1/apps/site/currentuser", headers: ["Authorization": "Bearer \(token)"])
                let user = try #require(me.json["user"] as? [String: Any])
                #expect(user["email"] as? String == email && user["first_name"] as? String == name)
                #expect(user["created_at"] as? String == "2024-01-31T09:30:00Z" && user["status"] as? String == "active")
            }
            let redis = try TestRedis.client()
            defer { redis.shutdown() }
            #expect(try await redis.send("PTTL", RedisArgument(try await userKey(harness, "pending@example.com"))).int == -1)
            // Registration stays closed for anyone else.
            #expect(try await http.post("/v1/apps/site/login/otp", ["identifier": "stranger@example.com"]).status == 404)
        }
    }

    /// A pending registration of someone's address (never activated) does not make the import
    /// skip their record: the export's record replaces it, and the squatter's pending code no
    /// longer signs anybody in.
    @Test func aPendingRegistrationNeitherBlocksNorAltersTheImport() async throws {
        let harness = try V1Harness {
            importYAML(redisURL: nil, prefix: $1).replacingOccurrences(of: "registration: closed", with: "registration: open")
        }
        let email = "victim-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        try await harness.run { http in
            let squat = try await http.post("/v1/apps/site/register/otp", ["identifier": email, "first_name": "Mallory", "last_name": "Squatter"])
            #expect(squat.status == 201, "\(squat.body)")
            let otpID = try #require(squat.json["otp_id"] as? String)
            let code = try #require(harness.capture.lastCode(to: email))

            let (summary, report) = try await run(harness, "email,first_name,last_name,created_at,status\n\(email),Victor,Tim,2024-01-31T09:30:00Z,active\n")
            #expect(summary == self.summary(created: 1, existing: 0, rejected: 0), "\(report)")

            let redis = try TestRedis.client()
            defer { redis.shutdown() }
            let key = try await userKey(harness, email)
            let items = try await redis.send("HGETALL", RedisArgument(key)).array?.compactMap(\.string) ?? []
            let fields = Dictionary(uniqueKeysWithValues: stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) })
            #expect(fields["first_name"] == "Victor" && fields["last_name"] == "Tim" && fields["status"] == "active", "\(fields)")
            #expect(fields["created_at"] == "1706693400")
            #expect(try await redis.send("PTTL", RedisArgument(key)).int == -1)
            // The squatter's code is dead: it activates nobody.
            let activate = try await http.post("/v1/apps/site/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(activate.status == 404, "\(activate.body)")
            // A second run changes nothing.
            let (again, _) = try await run(harness, "email,first_name,status\n\(email),Other,active\n")
            #expect(again == self.summary(created: 0, existing: 1, rejected: 0))
        }
        // An unverified import is not a squatter: importing it again leaves it as it is.
        let (first, _) = try await run(harness, "email,first_name,status\nlater-\(email),One,unverified\n")
        let (second, _) = try await run(harness, "email,first_name,status\nlater-\(email),Two,unverified\n")
        #expect(first == summary(created: 1, existing: 0, rejected: 0) && second == summary(created: 0, existing: 1, rejected: 0))
    }

    /// A rejected value is echoed with its control characters escaped: a file cannot write
    /// terminal escapes or fake report lines into the operator's terminal.
    @Test func rejectedValuesAreEchoedWithControlCharactersEscaped() async throws {
        let harness = try V1Harness { importYAML(redisURL: nil, prefix: $1) }
        let file = "email,status\n"
            + "evil\u{1B}[2J\u{1B}]0;pwned\u{07}@x,active\n"
            + "bad\rline 99: created 1000,active\n"
            + "ok@example.com,act\u{1B}[31mive\u{7F}\n"
            + "x\u{9B}y\u{202E}z\\@q,active\n"
        let (summary, report) = try await run(harness, file)
        #expect(summary == self.summary(created: 0, existing: 0, rejected: 4))
        #expect(
            report == [
                #"line 2: email 'evil\u{1B}[2J\u{1B}]0;pwned\u{7}@x' is not a valid email address"#,
                #"line 3: email 'bad\rline 99: created 1000' is not a valid email address"#,
                #"line 4: status must be active or unverified, not 'act\u{1B}[31mive\u{7F}'"#,
                #"line 5: email 'x\u{9B}y\u{202E}z\\@q' is not a valid email address"#,
            ], "\(report)")
        for line in report {
            #expect(!line.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format })
        }
    }

    /// The real binary: `otpd import users --app ID FILE`, config from --config or OTPD_CONFIG.
    @Test func theCommandReportsEachRejectionAndExitsByThem() async throws {
        let prefix = TestRedis.uniquePrefix("import")
        let config = try writeTemporaryConfig(importYAML(redisURL: nil, prefix: prefix))
        defer { try? FileManager.default.removeItem(atPath: config) }
        let file = NSTemporaryDirectory() + "otpd-import-\(UUID().uuidString).csv"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "email,status\ncli1@example.com,active\nbroken,active\ncli2@example.com,unverified\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        let first = try await runOTPD(["import", "users", "--app", "site", "--config", config, file])
        #expect(first.status == 1, "\(first.output)")
        #expect(first.output.contains("line 3: email 'broken' is not a valid email address\ncreated 2, existing 0, rejected 1\n"), "\(first.output)")

        try "email,status\ncli1@example.com,active\ncli2@example.com,unverified\n".write(toFile: file, atomically: true, encoding: .utf8)
        let second = try await runOTPD(["import", "users", "--app", "site", file], environment: ["OTPD_CONFIG": config])
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.hasSuffix("created 0, existing 2, rejected 0\n"), "\(second.output)")

        let unknownApp = try await runOTPD(["import", "users", "--app", "nope", "--config", config, file])
        #expect(unknownApp.status == 2 && unknownApp.output.contains("no app has the id 'nope'"), "\(unknownApp.output)")
        let missing = try await runOTPD(["import", "users", "--app", "site", "--config", config, file + ".missing"])
        #expect(missing.status == 2 && missing.output.contains("cannot read"), "\(missing.output)")
    }
}

extension V1Harness {
    func withEngineSync<T>(_ body: (OTPEngine) throws -> T) throws -> T {
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL))
        defer { redis.shutdown() }
        return try body(OTPEngine(configuration: configuration, redis: redis, providers: [:], logger: Logger(label: "t")))
    }
}
