import Foundation
import OTPCrypto

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
            "Date: \(UTCTime.rfc5322(Int(date.timeIntervalSince1970)))",
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
}
