import Foundation
import OTPCrypto

/// `otpd import users`: users of another service (the shape of a Passage user export) created
/// as if they had registered here.
///
/// The file is CSV with a header row, or JSON Lines (one object per line) — told apart by its
/// first non-blank character (`{`: JSON Lines). The fields are `email`, `phone`, `first_name`,
/// `last_name`, `created_at` (RFC 3339) and `status` (`active` or `unverified`); other columns
/// or keys are ignored. Each record becomes the user a registration of its identifier would
/// have made — the same user id (`userID(app:identifier:)`), the same fields — unless that user
/// exists already, in which case it is left as it is: running an import twice changes nothing.
/// A registration's pending user that never activated does not count as existing: the record
/// replaces it (and its pending codes), so registering someone's address first cannot block
/// or alter their import.
public struct ImportSummary: Sendable, Hashable, CustomStringConvertible {
    public var created = 0
    public var existing = 0
    public var rejected = 0

    public init() {}

    public var description: String { "created \(created), existing \(existing), rejected \(rejected)" }
}

public struct UserImporter: Sendable {
    let engine: OTPEngine

    public init(engine: OTPEngine) { self.engine = engine }

    /// Records validated before they are stored (the report stays in the file's order).
    static let importBatchSize = 2000

    /// Imports the users of `file` into `appID` (`now`: the time of a record without `created_at`). `rejected(line, reason)` is called for each
    /// record that is not imported, in the file's order (`line` counts the file's lines from
    /// 1, the header included). Throws when Redis fails; what was stored stays stored, and
    /// running the import again completes it.
    ///
    /// The identifier is the email when there is one (a phone beside it is kept on the user),
    /// else the phone; both are validated exactly as the API validates them. An `active` user
    /// is permanent; an `unverified` one expires like a fresh registration (a day after the
    /// import) unless it signs in before.
    public func run(
        appID: String, file: [UInt8], now: Int? = nil, rejected: (Int, String) -> Void
    ) async throws(OTPError) -> ImportSummary {
        let app = try engine.app(appID)
        let now = now ?? engine.now()
        try await engine.loadScripts()
        var summary = ImportSummary()
        var reader = UserExportReader(file)
        var batch: [OTPStore.ImportedUser] = []
        batch.reserveCapacity(Self.importBatchSize)
        // A batch is stored concurrently: a user it already holds is one the file names twice.
        var batchUsers = Set<String>()
        while let record = reader.next() {
            switch record.fields.flatMap({ importedUser($0, app: app, now: now) }) {
            case .success(let user):
                if !batchUsers.insert(user.userID).inserted {
                    // Store what comes before it first, so the file's first record of a user
                    // wins and the later one counts as existing, as in a one-by-one import.
                    try await store(batch, into: &summary)
                    batch.removeAll(keepingCapacity: true)
                    batchUsers = [user.userID]
                }
                batch.append(user)
                if batch.count == Self.importBatchSize {
                    try await store(batch, into: &summary)
                    batch.removeAll(keepingCapacity: true)
                    batchUsers.removeAll(keepingCapacity: true)
                }
            case .failure(let reason):
                summary.rejected += 1
                rejected(record.line, reason.text)
            }
        }
        try await store(batch, into: &summary)
        return summary
    }

    /// Scripts in flight at once: each of these tasks stores every `importWorkers`-th user of
    /// a batch, one after the other, so the pipelined connections stay full without a task
    /// per user.
    static let importWorkers = 64

    private func store(_ batch: [OTPStore.ImportedUser], into summary: inout ImportSummary) async throws(OTPError) {
        let store = engine.store
        let workers = min(Self.importWorkers, batch.count)
        let results = await withTaskGroup(of: Result<(created: Int, existing: Int), OTPError>.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var counts = (created: 0, existing: 0)
                    for index in stride(from: worker, to: batch.count, by: workers) {
                        do throws(OTPError) {
                            if try await store.importUser(batch[index]) { counts.created += 1 } else { counts.existing += 1 }
                        } catch {
                            return .failure(error)
                        }
                    }
                    return .success(counts)
                }
            }
            return await group.reduce(into: [Result<(created: Int, existing: Int), OTPError>]()) { $0.append($1) }
        }
        for result in results {
            switch result {
            case .success(let counts):
                summary.created += counts.created
                summary.existing += counts.existing
            case .failure(let error): throw error
            }
        }
    }

    /// One record's fields → the user to create, or why not.
    func importedUser(_ fields: [String: String], app: AppPolicy, now: Int) -> Result<OTPStore.ImportedUser, ImportRejection> {
        func value(_ name: String) -> String? {
            guard let text = fields[name]?.trimmingASCIIWhitespace(), !text.isEmpty else { return nil }
            return text
        }
        var email: Identifier?
        if let raw = value("email") {
            guard let parsed = Identifier(raw), case .email = parsed else {
                return .failure("email '\(ImportRejection.escaped(raw))' is not a valid email address")
            }
            email = parsed
        }
        var phone: Identifier?
        if let raw = value("phone") {
            guard let parsed = Identifier(raw), case .phone = parsed else {
                return .failure("phone '\(ImportRejection.escaped(raw))' is not an E.164 phone number ('+' and 8-15 digits)")
            }
            phone = parsed
        }
        guard let identifier = email ?? phone else { return .failure("neither email nor phone is given") }
        let active: Bool
        switch value("status")?.lowercased() {
        case "active": active = true
        case "unverified": active = false
        case let other: return .failure("status must be active or unverified, not '\(ImportRejection.escaped(other ?? ""))'")
        }
        var createdAt = now
        if let raw = value("created_at") {
            guard let seconds = UTCTime.parseRFC3339(raw), seconds >= 0 else {
                return .failure("created_at '\(ImportRejection.escaped(raw))' is not an RFC 3339 date-time (such as 2024-01-31T09:30:00Z)")
            }
            createdAt = seconds
        }
        let names = OTPEngine.SendRequest(identifier: identifier.value, firstName: value("first_name"), lastName: value("last_name"))
        do {
            try engine.checkNames(names)
        } catch {
            if case .invalidField(let name, let reason) = error { return .failure("\(name) \(reason)") }
            return .failure("\(error)")
        }
        return .success(
            OTPStore.ImportedUser(
                app: app.id, userID: engine.userID(app: app.id, identifier: identifier), identifier: identifier,
                phone: email != nil ? phone?.value : nil, firstName: names.firstName ?? "", lastName: names.lastName ?? "",
                active: active, createdAt: createdAt,
                unverifiedTTLSeconds: OTPStore.unverifiedUserTTLSeconds(otpTTLSeconds: app.config.otp.ttlSeconds)))
    }
}

/// Why a record is not imported: a sentence for the `line N: …` report.
struct ImportRejection: Error, ExpressibleByStringInterpolation, Sendable {
    var text: String
    init(stringLiteral value: String) { text = value }
    init(stringInterpolation: DefaultStringInterpolation) { text = String(stringInterpolation: stringInterpolation) }

    /// A value from the file as a reason echoes it: control and format characters (ESC, CR,
    /// C1 controls, bidi overrides) escaped — `\r`, `\n`, `\t`, else `\u{1B}` — and a backslash
    /// doubled, so a file can neither drive the operator's terminal nor fake a report line.
    static func escaped(_ value: String) -> String {
        var text = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": text += "\\\\"
            case "\r": text += "\\r"
            case "\n": text += "\\n"
            case "\t": text += "\\t"
            default:
                let category = scalar.properties.generalCategory
                if category == .control || category == .format || category == .lineSeparator
                    || category == .paragraphSeparator {
                    text += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        return text
    }
}

/// Reads an export record by record: CSV (RFC 4180: a header row, quoted fields with `""` for
/// a quote, CRLF or LF) or JSON Lines. Blank lines are skipped.
struct UserExportReader {
    struct Record {
        /// The file line the record starts on, from 1.
        var line: Int
        /// The known fields by name, or why the record cannot be read.
        var fields: Result<[String: String], ImportRejection>
    }

    static let fieldNames: Set<String> = ["email", "phone", "first_name", "last_name", "created_at", "status"]

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private let isJSONLines: Bool
    /// CSV: the known fields' columns, and how many columns a row has (nil until the header is read).
    private var columns: [(index: Int, name: String)]?
    private var width = 0
    private var finished = false

    init(_ file: [UInt8]) {
        var start = 0
        if file.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }  // a UTF-8 byte order mark
        bytes = file
        index = start
        let first = file[start...].first { ![0x20, 0x09, 0x0D, 0x0A].contains($0) }
        isJSONLines = first == UInt8(ascii: "{")
    }

    mutating func next() -> Record? {
        while !finished {
            guard let (startLine, row) = nextRow() else { return nil }
            if isJSONLines {
                if let record = jsonRecord(row, line: startLine) { return record }
                continue
            }
            if case .failure(let reason) = row { finished = true; return Record(line: startLine, fields: .failure(reason)) }
            guard case .success(let cells) = row, !(cells.count == 1 && cells[0].isEmpty) else { continue }
            guard let columns else {
                let names = cells.map { $0.trimmingASCIIWhitespace().lowercased() }
                let known = names.enumerated().filter { Self.fieldNames.contains($0.element) }.map { (index: $0.offset, name: $0.element) }
                guard known.contains(where: { $0.name == "email" || $0.name == "phone" }) else {
                    finished = true
                    return Record(line: startLine, fields: .failure("the header row names neither an email nor a phone column"))
                }
                self.columns = known
                width = cells.count
                continue
            }
            guard cells.count == width else {
                return Record(line: startLine, fields: .failure("has \(cells.count) fields where the header has \(width)"))
            }
            var fields: [String: String] = [:]
            for column in columns { fields[column.name] = cells[column.index] }
            return Record(line: startLine, fields: .success(fields))
        }
        return nil
    }

    private func jsonRecord(_ row: Result<[String], ImportRejection>, line: Int) -> Record? {
        guard case .success(let cells) = row else { return nil }
        let text = cells.joined(separator: ",")
        guard !text.trimmingASCIIWhitespace().isEmpty else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return Record(line: line, fields: .failure("is not a JSON object"))
        }
        var fields: [String: String] = [:]
        for name in Self.fieldNames {
            switch object[name] {
            case nil, is NSNull: continue
            case let text as String: fields[name] = text
            default: return Record(line: line, fields: .failure("field '\(name)' must be a string"))
            }
        }
        return Record(line: line, fields: .success(fields))
    }

    /// The next row's cells and the line it starts on. JSON Lines are read as one-line rows
    /// (quotes are not special there: the cells are joined back).
    private mutating func nextRow() -> (Int, Result<[String], ImportRejection>)? {
        guard index < bytes.count else { return nil }
        let startLine = line
        if isJSONLines {
            let end = bytes[index...].firstIndex(of: 0x0A) ?? bytes.count
            let text = String(decoding: bytes[index..<end], as: UTF8.self)
            index = end + 1
            line += 1
            return (startLine, .success([text]))
        }
        var cells: [String] = []
        var cell: [UInt8] = []
        var quoted = false
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                        cell.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if byte == 0x0A { line += 1 }
                    cell.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: ","):
                cells.append(String(decoding: cell, as: UTF8.self))
                cell.removeAll(keepingCapacity: true)
            case UInt8(ascii: "\"") where cell.isEmpty:
                quoted = true
            case 0x0D where index < bytes.count && bytes[index] == 0x0A:
                continue
            case 0x0A:
                line += 1
                cells.append(String(decoding: cell, as: UTF8.self))
                return (startLine, .success(cells))
            default:
                cell.append(byte)
            }
        }
        if quoted { return (startLine, .failure("a quoted field is not closed before the end of the file")) }
        cells.append(String(decoding: cell, as: UTF8.self))
        return (startLine, .success(cells))
    }
}
