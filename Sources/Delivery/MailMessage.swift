import Foundation
import OTPCrypto

#if canImport(Glibc)
import Glibc
#endif

/// One RFC 5322 message: `Date`, `Message-ID`, RFC 2047 subject, UTF-8 text in base64.
struct MailMessage {
    struct HeaderInjection: Error {
        var reason: String
    }

    var from: String
    var to: String
    var subject: String
    var text: String
    var date = Date()

    func rfc5322() throws(HeaderInjection) -> [UInt8] {
        for (name, value) in [("From", from), ("To", to), ("Subject", subject)] where value.contains(where: \.isNewline) {
            throw HeaderInjection(reason: "the \(name) header holds a line break")
        }
        let domain = from.split(separator: "@").last.map(String.init) ?? "otpd.invalid"
        let id = Base64URL.encode(SecureRandom.bytes(18))
        var lines = [
            "Date: \(Self.rfc5322Date(date))",
            "From: \(from)",
            "To: \(to)",
            "Subject: \(Self.encodedWord(subject))",
            "Message-ID: <\(id)@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
        ]
        lines.append(Data(text.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]))
        return Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// Plain when printable ASCII; otherwise RFC 2047 `=?UTF-8?B?…?=` words of at most 75
    /// characters, folded, never splitting a character.
    static func encodedWord(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return text }
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    /// `Sat, 21 Nov 2026 19:10:22 +0000`
    static func rfc5322Date(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}
