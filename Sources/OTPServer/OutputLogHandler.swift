import Foundation
public import Logging
public import OTPCore
import OTPCrypto
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that formats each line on the caller (text or JSON, `log_format`) and
/// hands the bytes to a `LogOutput`, which writes them on its own thread: logging never blocks
/// an event loop on standard output.
public struct OutputLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: Configuration.LogFormat
    let output: LogOutput

    public init(label: String, format: Configuration.LogFormat, output: LogOutput) {
        self.label = label
        self.format = format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The handler's metadata, then the provider's, then the call's: a later one wins.
        let provided = metadataProvider?.get() ?? [:]
        let explicit = event.metadata ?? [:]
        var fields: [(key: String, value: Logger.Metadata.Value)] = []
        fields.reserveCapacity(metadata.count + provided.count + explicit.count + 2)
        for (key, value) in metadata where provided[key] == nil && explicit[key] == nil {
            fields.append((key, value))
        }
        for (key, value) in provided where explicit[key] == nil {
            fields.append((key, value))
        }
        for (key, value) in explicit {
            fields.append((key, value))
        }
        if let error = event.error {
            fields.removeAll { $0.key == "error.message" || $0.key == "error.type" }
            fields.append(("error.message", "\(error)"))
            fields.append(("error.type", "\(String(reflecting: type(of: error)))"))
        }
        fields.sort { $0.key < $1.key }
        write(level: event.level, source: event.source, message: event.message.description, fields: fields)
    }

    private func write(
        level: Logger.Level, source: String, message: String, fields: [(key: String, value: Logger.Metadata.Value)]
    ) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .text: Self.appendText(level: level, source: source, message: message, label: label, fields: fields, to: &line)
        case .json: Self.appendJSON(level: level, message: message, label: label, fields: fields, to: &line)
        }
        output.append(line)
    }

    /// The access-log line of one request, as `logger.info("request", metadata: line.metadata)`
    /// from OTPServer would write it, without building, merging and sorting a metadata
    /// dictionary per request: the line's own fields come already in key order, and only the
    /// handler's and the provider's other fields (usually none) are merged in.
    func log(_ access: AccessLogLine) {
        guard logLevel <= .info else { return }
        let provided = metadataProvider?.get() ?? [:]
        var fields = access.fields
        var others = 0
        for (key, value) in metadata where provided[key] == nil && !AccessLogLine.isOwn(key) {
            fields.append((key, value))
            others += 1
        }
        for (key, value) in provided where !AccessLogLine.isOwn(key) {
            fields.append((key, value))
            others += 1
        }
        if others > 0 { fields.sort { $0.key < $1.key } }
        write(level: .info, source: "OTPServer", message: AccessLogLine.message, fields: fields)
    }

    /// swift-log's `StreamLogHandler` shape:
    /// `2026-11-22T06:10:00+0000 info otpd: key=value … [source] message`.
    static func appendText(
        level: Logger.Level, source: String, message: String, label: String,
        fields: [(key: String, value: Logger.Metadata.Value)], to line: inout [UInt8]
    ) {
        appendLocalTimestamp(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: level.rawValue.utf8)
        if !label.isEmpty {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: label.utf8)
        }
        line.append(UInt8(ascii: ":"))
        for (key, value) in fields {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            line.append(contentsOf: value.description.utf8)
        }
        line.append(contentsOf: " [".utf8)
        line.append(contentsOf: source.utf8)
        line.append(contentsOf: "] ".utf8)
        line.append(contentsOf: message.utf8)
        line.append(UInt8(ascii: "\n"))
    }

    /// One object per line: `ts` (UTC, milliseconds), `level`, `logger`, `msg`, then every
    /// metadata field under its own name (nested metadata as JSON objects and arrays).
    static func appendJSON(
        level: Logger.Level, message: String, label: String,
        fields: [(key: String, value: Logger.Metadata.Value)], to line: inout [UInt8]
    ) {
        line.append(contentsOf: #"{"ts":""#.utf8)
        appendUTCTimestamp(to: &line)
        line.append(contentsOf: #"","level":""#.utf8)
        line.append(contentsOf: level.rawValue.utf8)
        line.append(contentsOf: #"","logger":"#.utf8)
        JSONText.appendString(label, to: &line)
        line.append(contentsOf: #","msg":"#.utf8)
        JSONText.appendString(message, to: &line)
        for (key, value) in fields
        where key != "ts" && key != "level" && key != "logger" && key != "msg" {
            line.append(UInt8(ascii: ","))
            JSONText.appendString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            appendJSON(value, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
    }

    private static func appendJSON(_ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        switch value {
        case .string(let string): JSONText.appendString(string, to: &line)
        case .stringConvertible(let convertible): JSONText.appendString(convertible.description, to: &line)
        case .array(let values):
            line.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendJSON(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            line.append(UInt8(ascii: "{"))
            for (index, (key, element)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                JSONText.appendString(key, to: &line)
                line.append(UInt8(ascii: ":"))
                appendJSON(element, to: &line)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    /// `%Y-%m-%dT%H:%M:%S%z` in local time, as `StreamLogHandler` writes it. Formatted once a
    /// second (`localtime_r` takes glibc's time-zone lock), then copied.
    private static func appendLocalTimestamp(to line: inout [UInt8]) {
        var now = time(nil)
        if let cached = localTimestamp.withLock({ $0.second == now ? $0.text : nil }) {
            line.append(contentsOf: cached)
            return
        }
        var local = tm()
        localtime_r(&now, &local)
        var text: [UInt8] = []
        appendFormatted(&local, "%Y-%m-%dT%H:%M:%S%z", to: &text)
        line.append(contentsOf: text)
        localTimestamp.withLock { $0 = (now, text) }
    }

    private static let localTimestamp = Mutex<(second: time_t, text: [UInt8])>((-1, []))

    /// RFC 3339 in UTC with milliseconds: `2026-11-22T06:10:00.123Z`.
    private static func appendUTCTimestamp(to line: inout [UInt8]) {
        let now = Date().timeIntervalSince1970
        var seconds = time_t(now)
        var utc = tm()
        gmtime_r(&seconds, &utc)
        appendFormatted(&utc, "%Y-%m-%dT%H:%M:%S", to: &line)
        let milliseconds = min(Int((now - Double(seconds)) * 1000), 999)
        line.append(UInt8(ascii: "."))
        line.append(UInt8(ascii: "0") + UInt8(milliseconds / 100))
        line.append(UInt8(ascii: "0") + UInt8(milliseconds / 10 % 10))
        line.append(UInt8(ascii: "0") + UInt8(milliseconds % 10))
        line.append(UInt8(ascii: "Z"))
    }

    private static func appendFormatted(_ time: inout tm, _ format: String, to line: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            let count = strftime(buffer.baseAddress!, 64, format, &time)
            buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: count) { bytes in
                line.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
            }
        }
    }
}
