public import OTPCore
import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the configuration file: YAML (or JSON, which is YAML), `${ENV}` and `${ENV:-default}`
/// in any string value, then `OTPD_*` environment overrides, then validation.
public enum ConfigLoader {
    /// The path used when neither `--config` nor `OTPD_CONFIG` names one.
    public static let defaultPath = "config/otpd.yaml"

    /// Environment variables that override one value each, after the file is read.
    public static let overrides: [(variable: String, key: String)] = [
        ("OTPD_MODE", "mode"),
        ("OTPD_LOG_LEVEL", "log_level"),
        ("OTPD_HOST", "server.host"),
        ("OTPD_PORT", "server.port"),
        ("OTPD_MAX_BODY_BYTES", "server.max_body_bytes"),
        ("OTPD_REDIS_URL", "redis.url"),
        ("OTPD_REDIS_TIMEOUT_MS", "redis.timeout_ms"),
        ("OTPD_REDIS_POOL_SIZE", "redis.pool_size"),
        ("OTPD_KEY_PREFIX", "redis.key_prefix"),
        ("OTPD_PEPPER", "security.pepper"),
    ]

    /// The path to read: the explicit one, else `OTPD_CONFIG`, else `config/otpd.yaml`.
    public static func path(explicit: String?, environment: [String: String] = ProcessEnvironment.current) -> String {
        explicit ?? environment["OTPD_CONFIG"] ?? defaultPath
    }

    /// Loads, overrides and validates. Returns the configuration and its warnings.
    public static func load(
        path: String, environment: [String: String] = ProcessEnvironment.current
    ) throws(ConfigurationError) -> (Configuration, warnings: [String]) {
        guard let text = readFile(path) else {
            throw ConfigurationError(key: "", "cannot read configuration file '\(path)'")
        }
        return try parse(text, environment: environment)
    }

    public static func parse(
        _ text: String, environment: [String: String] = ProcessEnvironment.current
    ) throws(ConfigurationError) -> (Configuration, warnings: [String]) {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigurationError(key: "", "the configuration file is empty")
            }
            root = node
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(key: "", "not valid YAML or JSON: \(error)")
        }
        let expanded = try expand(root, path: "", environment: environment)
        let overridden = try applyOverrides(expanded, environment: environment)
        let configuration: Configuration
        do {
            configuration = try YAMLDecoder().decode(Configuration.self, from: overridden)
        } catch let error as DecodingError {
            throw ConfigurationError(error)
        } catch {
            throw ConfigurationError(key: "", "\(error)")
        }
        let warnings = try configuration.validate()
        return (configuration, warnings)
    }

    // MARK: ${ENV}

    private static func expand(_ node: Node, path: String, environment: [String: String]) throws(ConfigurationError) -> Node {
        switch node {
        case .scalar(var scalar):
            guard scalar.string.contains("${") else { return node }
            scalar.string = try substitute(scalar.string, key: path, environment: environment)
            // Resolve the result as if written unquoted, so "${PORT}" can fill an integer.
            scalar.style = .plain
            scalar.tag = .implicit
            return .scalar(scalar)
        case .mapping(let mapping):
            var pairs: [(Node, Node)] = []
            for (key, value) in mapping {
                let name = key.string ?? "?"
                pairs.append((key, try expand(value, path: path.isEmpty ? name : "\(path).\(name)", environment: environment)))
            }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            var nodes: [Node] = []
            for (index, value) in sequence.enumerated() {
                nodes.append(try expand(value, path: "\(path)[\(index)]", environment: environment))
            }
            return .sequence(Node.Sequence(nodes, sequence.tag, sequence.style, sequence.mark))
        case .alias:
            return node
        }
    }

    /// Replaces every `${NAME}` (required) and `${NAME:-default}` in `text`.
    static func substitute(_ text: String, key: String, environment: [String: String]) throws(ConfigurationError) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ConfigurationError(key: key, "unclosed '${' in '\(text)'")
            }
            let expression = rest[start.upperBound..<end]
            let name: Substring
            var fallback: Substring?
            if let separator = expression.range(of: ":-") {
                name = expression[..<separator.lowerBound]
                fallback = expression[separator.upperBound...]
            } else {
                name = expression
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw ConfigurationError(key: key, "'${\(expression)}' is not a valid environment variable reference")
            }
            if let value = environment[String(name)], !value.isEmpty {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                throw ConfigurationError(key: key, "environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return result
    }

    // MARK: OTPD_* overrides

    private static func applyOverrides(_ root: Node, environment: [String: String]) throws(ConfigurationError) -> Node {
        var root = root
        for (variable, key) in overrides {
            guard let value = environment[variable] else { continue }
            guard case .mapping = root else { break }
            root = set(root, path: key.split(separator: ".").map(String.init), value: value)
        }
        return root
    }

    private static func set(_ node: Node, path: [String], value: String) -> Node {
        guard let first = path.first else { return Node(value) }
        var mapping = node.mapping ?? Node.Mapping([])
        let child = mapping[first] ?? Node.Mapping([]).asNode
        mapping[first] = set(child, path: Array(path.dropFirst()), value: value)
        return .mapping(mapping)
    }

    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Node.Mapping {
    fileprivate var asNode: Node { .mapping(self) }
}

/// The process environment as a dictionary.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
