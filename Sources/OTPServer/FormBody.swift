import Hummingbird
import NIOCore
import OTPCore

/// A strict `application/x-www-form-urlencoded` body (the WHATWG URL standard's parsing, with
/// every malformation refused instead of passed through): `&`-separated `name=value` pairs,
/// `+` for a space, `%XX` escapes of UTF-8 bytes; a pair without `=` has an empty value,
/// empty pairs (`a=1&&b=2`) are skipped. A name may repeat: `values(_:)` returns each value
/// in order, `value(_:)` refuses a repeated one. At most `maxBytes`.
struct FormBody: Sendable {
    /// The largest body read: Twilio's parameters are short.
    static let maxBytes = 16 * 1024

    /// What is wrong with a body, to be answered 400.
    enum Malformed: Error, Sendable, Hashable {
        /// A `%` not followed by two hex digits, at this byte offset.
        case badEscape(offset: Int)
        /// A name or value that is not UTF-8 once unescaped.
        case notUTF8(name: String?)
        case tooLarge
        /// A parameter that takes one value was given several.
        case repeated(String)

        var message: String {
            switch self {
            case .badEscape(let offset): return "The request body is not valid form data: '%' at byte \(offset) is not followed by two hex digits"
            case .notUTF8(let name?): return "Invalid parameter `\(name)`: not UTF-8"
            case .notUTF8(nil): return "The request body is not valid form data: a parameter name is not UTF-8"
            case .tooLarge: return "The request body is larger than \(FormBody.maxBytes) bytes"
            case .repeated(let name): return "Invalid parameter `\(name)`: given more than once"
            }
        }
    }

    /// Every pair, in order.
    let pairs: [(name: String, value: String)]

    init(_ bytes: some Collection<UInt8>) throws(Malformed) {
        guard bytes.count <= Self.maxBytes else { throw .tooLarge }
        var pairs: [(name: String, value: String)] = []
        let all = Array(bytes)
        var start = 0
        while start <= all.count {
            let end = all[start...].firstIndex(of: UInt8(ascii: "&")) ?? all.count
            if end > start {
                let part = all[start..<end]
                let equals = part.firstIndex(of: UInt8(ascii: "="))
                let rawName = part[..<(equals ?? end)]
                let rawValue = equals.map { part[($0 + 1)...] } ?? []
                let name = try Self.unescape(rawName, offset: start)
                guard let nameText = String(validating: name, as: UTF8.self) else { throw .notUTF8(name: nil) }
                let value = try Self.unescape(rawValue, offset: (equals ?? end) + 1)
                guard let valueText = String(validating: value, as: UTF8.self) else { throw .notUTF8(name: nameText) }
                pairs.append((nameText, valueText))
            }
            start = end + 1
        }
        self.pairs = pairs
    }

    /// Every value of `name`, in order.
    func values(_ name: String) -> [String] {
        pairs.filter { $0.name == name }.map(\.value)
    }

    /// The value of `name`, nil when absent; a repeated parameter is refused.
    func value(_ name: String) throws(Malformed) -> String? {
        let found = values(name)
        guard found.count <= 1 else { throw .repeated(name) }
        return found.first
    }

    /// `+` → space, `%XX` → the byte; anything else as it is.
    static func unescape(_ raw: ArraySlice<UInt8>, offset: Int) throws(Malformed) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = raw.startIndex
        while i < raw.endIndex {
            let byte = raw[i]
            switch byte {
            case UInt8(ascii: "+"):
                out.append(UInt8(ascii: " "))
                i += 1
            case UInt8(ascii: "%"):
                guard i + 2 < raw.endIndex, let high = hexValue(raw[i + 1]), let low = hexValue(raw[i + 2])
                else { throw .badEscape(offset: offset + (i - raw.startIndex)) }
                out.append(high << 4 | low)
                i += 3
            default:
                out.append(byte)
                i += 1
            }
        }
        return out
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Request {
    /// The form body of a POST (`Content-Type: application/x-www-form-urlencoded`, parameters
    /// such as `charset` allowed), read up to `FormBody.maxBytes` (more: `.tooLarge`). Another
    /// media type is 415 before the body is read.
    func decodeForm() async throws -> FormBody {
        let mediaType = headers[.contentType]?.split(separator: ";").first.map { String($0).trimmingASCIIWhitespace().lowercased() }
        guard mediaType == "application/x-www-form-urlencoded" else {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                "the request body must be form data, sent with 'Content-Type: application/x-www-form-urlencoded'")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: FormBody.maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw FormBody.Malformed.tooLarge
        }
        return try FormBody(buffer.readableBytesView)
    }
}
