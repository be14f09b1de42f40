import Testing

@testable import OTPCore

@Suite("MessageTemplate: split once at load, the same text as replacing at each send")
struct MessageTemplateTests {
    /// What every send did before templates were split at load.
    static func replacingInOrder(_ template: String, code: String, appName: String, minutes: String) -> String {
        template.replacing("{code}", with: code).replacing("{app_name}", with: appName)
            .replacing("{ttl_minutes}", with: minutes)
    }

    @Test(arguments: [
        "{code} is your {app_name} code", "Your code is {code}. It expires in {ttl_minutes} minutes.", "{code}",
        "{code}{code}", "no placeholder", "", "{app_name}", "{{code}}{code", "{ttl_minutes}{code}{app_name}{code}",
        "{app_{code}name}",
    ])
    func rendersAsReplacingInOrder(template: String) {
        for (appName, code) in [("Acme", "123456"), ("Weird {code} {ttl_minutes}", "AB23CD"), ("", "0")] {
            let compiled = MessageTemplate(template, appName: appName, ttlMinutes: "10")
            #expect(
                compiled.render(code: code) == Self.replacingInOrder(template, code: code, appName: appName, minutes: "10"),
                "template \(template), app name \(appName)")
        }
    }
}
