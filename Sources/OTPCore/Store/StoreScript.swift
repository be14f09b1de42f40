public import RedisClient

/// One Lua script and its contract, declared once: which keys it takes and which arguments,
/// by name and in order, how each is filled from the typed input of the one `OTPStore`
/// function that runs it, and how its reply becomes that function's outcome. As valkey-swift's
/// generated commands say which arguments are keys and what comes back.
///
/// From the names comes the preamble of the script's text (`local otp_key = KEYS[1]`, …), so
/// the Lua (`Lua/<name>.lua`, embedded in the binary) reads only names; from the same list, in
/// the same order, comes the call's KEYS and ARGV. A name cannot be bound to the wrong place,
/// and `ScriptContractTests` walks every contract against its Lua.
///
/// `ARGV[1]` of every script is the clock (`clock`): empty in production, where time comes
/// from Redis (`TIME`, one clock for all replicas); tests of the store pass milliseconds to
/// move through hours. Every key a script touches shares the hash tag of its KEYS (keys it
/// derives, such as a refresh-token family, are built from a prefix with the same tag), so each
/// script runs on one Redis Cluster slot. docs/redis-keys.md describes the keys and fields.
struct StoreScript<Input, Output>: Sendable {
    typealias Key = @Sendable (Input, KeySpace) -> String
    typealias Argument = @Sendable (Input, KeySpace) -> RedisArgument

    let contract: ScriptContract
    private let keys: [Key]
    private let arguments: [Argument]
    let decode: @Sendable (ScriptReply) throws(OTPError) -> Output

    /// `lua` is the script's file (`PackageResources.<name>_lua`); `prelude` prepends the shared
    /// helpers (`Lua/prelude.lua`).
    init(
        _ name: String, lua: [UInt8], prelude: Bool = true,
        keys: KeyValuePairs<String, Key>, arguments: KeyValuePairs<String, Argument>,
        decode: @escaping @Sendable (ScriptReply) throws(OTPError) -> Output
    ) {
        self.contract = ScriptContract(
            name: name, keys: keys.map(\.key), arguments: arguments.map(\.key),
            body: String(decoding: lua, as: UTF8.self), prelude: prelude)
        self.keys = keys.map(\.value)
        self.arguments = arguments.map(\.value)
        self.decode = decode
    }

    /// The script run for `input`, its keys and its arguments after the clock.
    func call(_ input: Input, keys keySpace: KeySpace, clock: RedisArgument) -> RedisScriptCall {
        RedisScriptCall(
            contract.script, keys: keys.map { RedisArgument($0(input, keySpace)) },
            arguments: [clock] + arguments.map { $0(input, keySpace) })
    }
}

/// What a script declares, without its Swift types: its name, the names of its keys and
/// arguments in order, and its whole text (what EVALSHA runs and `otpd lua` prints).
public struct ScriptContract: Sendable {
    public let name: String
    /// `KEYS[1]`, `KEYS[2]`, … by name.
    public let keys: [String]
    /// `ARGV[2]`, `ARGV[3]`, … by name (`ARGV[1]` is always `clock`).
    public let arguments: [String]
    /// The script's own Lua, as in its file.
    public let body: String
    public let script: RedisScript

    /// The name of `ARGV[1]`, the clock every script takes first.
    public static let clock = "clock"

    init(name: String, keys: [String], arguments: [String], body: String, prelude: Bool) {
        self.name = name
        self.keys = keys
        self.arguments = arguments
        self.body = body
        self.script = RedisScript(
            Self.preamble(name: name, keys: keys, arguments: arguments)
                + (prelude ? Self.helpers(usedBy: body) : "") + body)
    }

    /// `ARGV` by name, the clock first.
    public var argv: [String] { [Self.clock] + arguments }

    /// Binds every key and argument to a local of its name.
    static func preamble(name: String, keys: [String], arguments: [String]) -> String {
        var lines = ["-- \(name): KEYS and ARGV as declared in OTPCore's store (StoreScript)"]
        for (index, key) in keys.enumerated() { lines.append("local \(key) = KEYS[\(index + 1)]") }
        for (index, argument) in ([clock] + arguments).enumerated() { lines.append("local \(argument) = ARGV[\(index + 1)]") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The user hash's fields, in the order every script returns them and `User` reads them.
    static let userFields = ["id", "email", "phone", "first_name", "last_name", "created_at", "last_login_at", "status"]

    /// `USER_FIELDS` (from the one Swift list) and `Lua/prelude.lua`, one definition each.
    static let sharedHelpers = LuaDefinitions(
        "local USER_FIELDS = {'\(userFields.joined(separator: "', '"))'}\n"
            + String(decoding: PackageResources.prelude_lua, as: UTF8.self))

    /// The shared definitions `body` uses, and those they use, in the prelude's order. Redis
    /// runs a script's whole text on every call, so each definition it carries costs every
    /// call (all of them together: 3 µs of Redis CPU, more than a small script's own work).
    static func helpers(usedBy body: String) -> String {
        sharedHelpers.text(usedBy: body)
    }
}

/// Top-level Lua definitions (`local function name(…)`, `local name = …`, `local name`), each
/// with the comment lines above it, and which other definitions each one names.
struct LuaDefinitions: Sendable {
    private struct Definition: Sendable {
        var name: String
        var text: String
        var names: Set<String>
    }

    private let definitions: [Definition]

    init(_ source: String) {
        var definitions: [Definition] = []
        var comments = ""
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("--") {
                // Comments at the left margin introduce the next definition.
                comments += line + "\n"
            } else if line.hasPrefix("local "), let name = Self.definedName(line) {
                definitions.append(Definition(name: name, text: comments + line + "\n", names: Self.identifiers(in: line)))
                comments = ""
            } else if !definitions.isEmpty {
                definitions[definitions.count - 1].text += line + "\n"
                definitions[definitions.count - 1].names.formUnion(Self.identifiers(in: line))
            }
        }
        self.definitions = definitions
    }

    /// The definitions `body` needs, directly or through another, in their order.
    func text(usedBy body: String) -> String {
        var wanted = Self.identifiers(in: body)
        var included = Set<String>()
        var changed = true
        while changed {
            changed = false
            for definition in definitions where !included.contains(definition.name) && wanted.contains(definition.name) {
                included.insert(definition.name)
                wanted.formUnion(definition.names)
                changed = true
            }
        }
        return definitions.filter { included.contains($0.name) }.map(\.text).joined()
    }

    private static func definedName(_ line: Substring) -> String? {
        var rest = line.dropFirst("local ".count)
        if rest.hasPrefix("function ") { rest = rest.dropFirst("function ".count) }
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return name.isEmpty ? nil : String(name)
    }

    /// The identifiers of Lua code, its comments left out.
    static func identifiers(in code: some StringProtocol) -> Set<String> {
        var names = Set<String>()
        for line in code.split(separator: "\n") {
            var word = ""
            var previous: Character = " "
            for character in line {
                if character == "-" && previous == "-" { break }  // a comment: the rest of the line
                previous = character
                if character.isLetter || character.isNumber || character == "_" {
                    word.append(character)
                } else {
                    if !word.isEmpty { names.insert(word) }
                    word = ""
                }
            }
            if !word.isEmpty { names.insert(word) }
        }
        return names
    }
}

/// A script's reply: a status word, then positional values that only the store's decoders read.
struct ScriptReply {
    let script: String
    let value: RESPValue

    var fields: [RESPValue] { value.array ?? [] }
    var status: String { fields.first?.string ?? value.int.map(String.init) ?? "" }

    func string(_ index: Int) throws(OTPError) -> String {
        guard index < fields.count, let text = fields[index].string else { throw unexpected() }
        return text
    }

    func int(_ index: Int) throws(OTPError) -> Int {
        guard index < fields.count, let number = fields[index].int else { throw unexpected() }
        return number
    }

    /// A reply of 1 or 0.
    func flag() throws(OTPError) -> Bool {
        switch value.int {
        case 1: return true
        case 0: return false
        default: throw unexpected()
        }
    }

    /// `{'ok', extra, user fields…}`
    func user() throws(OTPError) -> User {
        try User(fields.dropFirst(2))
    }

    func unexpected() -> OTPError {
        .storageFailed(StorageFailure(.failed, "unexpected reply from the \(script) script: \(value)"))
    }
}

extension User {
    /// From `ScriptContract.userFields`, in that order.
    init(_ values: ArraySlice<RESPValue>) throws(OTPError) {
        let values = Array(values)
        let names = ScriptContract.userFields
        guard values.count == names.count, let id = values[0].string else {
            throw OTPError.storageFailed(StorageFailure(.failed, "a user record without the fields \(names)"))
        }
        func text(_ i: Int) -> String? { values[i].isNull ? nil : values[i].string.flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            id: id, email: text(1), phone: text(2), firstName: text(3) ?? "", lastName: text(4) ?? "",
            createdAt: values[5].int ?? 0, lastLoginAt: values[6].int, status: text(7) ?? "active")
    }
}
