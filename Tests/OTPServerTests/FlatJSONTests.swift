import Foundation
import Testing

@testable import OTPServer

@Suite("FlatJSON: plain bodies without JSONDecoder, the same values as with it")
struct FlatJSONTests {
    typealias Send = V1Controller.SendBody

    static func flat(_ json: String) -> Send? { FlatJSON(Array(json.utf8)).flatMap(Send.init(fields:)) }

    @Test(arguments: [
        #"{"identifier":"+15550000001"}"#, #" { "identifier" : "a@example.com" , "language":"de", "x":"y" } "#,
        "{\n\t\"identifier\":\"a\",\r\n\"first_name\":\"Ada\",\"last_name\":\"L\",\"channel\":\"sms\"}",
        #"{"identifier":"","language":""}"#,
    ])
    func plainBodiesReadAsJSONDecoderReadsThem(json: String) throws {
        let flat = try #require(Self.flat(json))
        let decoded = try JSONDecoder().decode(Send.self, from: Data(json.utf8))
        #expect(flat.identifier == decoded.identifier && flat.language == decoded.language)
        #expect(flat.channel == decoded.channel && flat.firstName == decoded.firstName && flat.lastName == decoded.lastName)
    }

    /// Parsing costs time linear in the body's size: a body of many keys is not rescanned for
    /// each new key (a duplicate is still found). Counted, not timed: it cannot flake.
    @Test func parsingIsLinearInTheNumberOfKeys() throws {
        for count in [7_000, 14_000] {
            let json = "{" + (0..<count).map { #""k\#($0)":"v\#($0)""# }.joined(separator: ",") + #","identifier":"a@example.com"}"#
            let parsed = try #require(FlatJSON(Array(json.utf8)))
            #expect(parsed.keyComparisons <= 2 * (count + 1), "\(parsed.keyComparisons) key comparisons for \(count + 1) keys")
            #expect(parsed["identifier"] == "a@example.com")
            #expect(FlatJSON(Array((json.dropLast() + #","k6999":"again"}"#).utf8)) == nil, "a repeated key")
        }
    }

    /// Everything else goes to JSONDecoder: its values, or its error naming the field.
    @Test(arguments: [
        "", "{}", "[]", #"{"identifier":null}"#, #"{"identifier":1}"#, #"{"identifier":"a\"b"}"#, #"{"identifier":"a\u0041"}"#,
        #"{"identifier":"é"}"#, #"{"identifier":"a","identifier":"b"}"#, #"{"identifier":"a"} x"#, #"{"identifier":"a",}"#,
        #"{"identifier":"a""#, #"{"identifier":"a","language":null}"#, #"{"identifier":"a","x":{"y":"z"}}"#,
        "{\"identifier\":\"a\tb\"}", #"{"language":"en"}"#, #"{identifier:"a"}"#,
    ])
    func anythingElseIsLeftToJSONDecoder(json: String) {
        #expect(Self.flat(json) == nil)
    }
}
