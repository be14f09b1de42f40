import Foundation
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPCore

/// Every script's declaration against its Lua: each `.lua` file is declared once, by its name;
/// the Lua reads only the names its declaration binds (no `KEYS[n]`/`ARGV[n]` of its own) and
/// uses every one of them; the names are unique, are Lua identifiers and hide no helper of the
/// prelude; and Redis compiles the whole text to the SHA the store sends with EVALSHA.
@Suite("Script contracts: each script's keys and arguments declared once")
struct ScriptContractTests {
    static let luaDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/OTPCore/Store/Lua")

    static func lua(_ name: String) throws -> String {
        try String(contentsOf: luaDirectory.appendingPathComponent("\(name).lua"), encoding: .utf8)
    }

    /// Lua without its comments (our scripts have no `--` inside a string).
    static func code(_ lua: String) -> String {
        lua.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "--").map { String(line[..<$0.lowerBound]) } ?? String(line) }
            .joined(separator: "\n")
    }

    static func uses(_ name: String, in code: String) -> Bool {
        code.range(of: "(^|[^A-Za-z0-9_])\(name)([^A-Za-z0-9_]|$)", options: .regularExpression) != nil
    }

    @Test func everyLuaFileIsDeclaredOnceByItsName() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.luaDirectory.path)
            .filter { $0.hasSuffix(".lua") && $0 != "prelude.lua" }
            .map { String($0.dropLast(4)) }
        #expect(Set(files) == Set(Scripts.all.map(\.name)))
        #expect(Scripts.all.count == Scripts.named.count, "two declarations share a name")
        for contract in Scripts.all {
            #expect(contract.body == (try Self.lua(contract.name)), "\(contract.name) declares another script's file")
        }
    }

    @Test(arguments: Scripts.all.map(\.name))
    func theLuaReadsOnlyItsDeclaredNames(_ name: String) throws {
        let contract = try #require(Scripts.named[name])
        let names = contract.keys + contract.argv
        #expect(Set(names).count == names.count, "a name declared twice: \(names)")
        let prelude = try Self.lua("prelude")
        let helpers = Set(try Self.preludeDefinitions().map(\.name) + ["USER_FIELDS"])
        for name in names {
            #expect(name.range(of: "^[a-z_][a-z0-9_]*$", options: .regularExpression) != nil, "\(name) is no Lua identifier")
            #expect(!helpers.contains(name), "\(name) hides the prelude's \(name)")
        }
        let body = Self.code(contract.body)
        for text in [body, Self.code(prelude)] {
            #expect(!text.contains("KEYS") && !text.contains("ARGV"), "\(name) reads KEYS or ARGV past its declaration")
        }
        for name in names where name != ScriptContract.clock {
            #expect(Self.uses(name, in: body), "\(contract.name) declares \(name) and never reads it")
        }
        // the preamble binds exactly the declared names, in order
        let preamble = contract.script.source.split(separator: "\n").filter {
            $0.hasPrefix("local ") && ($0.contains(" = KEYS[") || $0.contains(" = ARGV["))
        }
        #expect(preamble.count == names.count)
        for (index, key) in contract.keys.enumerated() {
            #expect(contract.script.source.contains("local \(key) = KEYS[\(index + 1)]\n"))
        }
        for (index, argument) in contract.argv.enumerated() {
            #expect(contract.script.source.contains("local \(argument) = ARGV[\(index + 1)]\n"))
        }
    }

    /// Redis runs a script's whole text on every call: each script carries the prelude's
    /// definitions its body uses (and those they use), and the small ones carry none they don't.
    @Test(arguments: Scripts.all.map(\.name))
    func eachScriptCarriesTheHelpersItUses(_ name: String) throws {
        let contract = try #require(Scripts.named[name])
        let body = Self.code(contract.body)
        let source = Self.code(contract.script.source)
        for helper in try Self.preludeDefinitions() where helper.isFunction && Self.uses(helper.name, in: body) {
            #expect(source.contains("local function \(helper.name)("), "\(name) uses \(helper.name) without carrying it")
        }
        if name == "hourlyCounter" {
            for helper in ["judge_code", "same", "start_session", "user_reply", "save_quota"] {
                #expect(!source.contains("local function \(helper)("), "hourlyCounter carries \(helper)")
            }
        }
    }

    /// activate.lua builds its reply in this order, from what it read and what it knows.
    @Test func theUserFieldsAreInTheOrderActivateAnswersThem() {
        #expect(
            ScriptContract.userFields == [
                "id", "email", "phone", "first_name", "last_name", "created_at", "last_login_at", "status",
            ])
    }

    /// The prelude's top-level definitions (`local function name(…)`, `local name …`).
    static func preludeDefinitions() throws -> [(name: String, isFunction: Bool)] {
        Self.code(try Self.lua("prelude")).split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.first == "local", words.count > 1 else { return nil }
            if words[1] == "function", words.count > 2 { return (String(words[2].prefix { $0 != "(" }), true) }
            return (String(words[1]), false)
        }
    }

    @Test func redisCompilesEveryScriptToTheSHAThatEVALSHASends() async throws {
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        for contract in Scripts.all {
            let sha = try await redis.send(["SCRIPT", "LOAD", RedisArgument(contract.script.source)])
            #expect(sha.string == contract.script.sha1, "\(contract.name)")
        }
    }
}
