public import Delivery

/// `surfaces`: which app each API surface other than v1 serves, and its own settings.
extension Configuration {
    public struct Surfaces: Sendable, Decodable {
        public struct AppBinding: Sendable, Decodable {
            public var app: String
            enum CodingKeys: String, CodingKey, CaseIterable { case app }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                app = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .app)
            }
        }
        /// `surfaces.hub`: the app the hub serves, and the limits of its WebSockets.
        public struct Hub: Sendable, Decodable {
            public var app: String
            /// An open socket is closed this long after it opened.
            public var socketMaxSeconds: Int
            /// One client IP (an IPv6 /64) holds at most this many open sockets at once.
            public var socketsPerIP: Int
            enum CodingKeys: String, CodingKey, CaseIterable {
                case app
                case socketMaxSeconds = "socket_max_seconds"
                case socketsPerIP = "sockets_per_ip"
            }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                app = try c.decode(String.self, forKey: .app)
                socketMaxSeconds = try c.value(.socketMaxSeconds, default: 3600)
                socketsPerIP = try c.value(.socketsPerIP, default: 20)
            }
        }
        public struct ChannelAPI: Sendable, Decodable {
            public struct BasicAuth: Sendable, Decodable {
                public var username: String
                public var password: String
                enum CodingKeys: String, CodingKey, CaseIterable { case username, password }
                public init(from decoder: any Decoder) throws {
                    try decoder.rejectUnknownKeys(CodingKeys.self)
                    let c = try decoder.container(keyedBy: CodingKeys.self)
                    username = try c.decode(String.self, forKey: .username)
                    password = try c.decode(String.self, forKey: .password)
                }
            }
            public var basicAuth: BasicAuth
            public var maxAttempts: Int
            enum CodingKeys: String, CodingKey, CaseIterable {
                case basicAuth = "basic_auth"
                case maxAttempts = "max_attempts"
            }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                basicAuth = try c.decode(BasicAuth.self, forKey: .basicAuth)
                maxAttempts = try c.value(.maxAttempts, default: 5)
            }
        }

        /// `surfaces.twilio_verify`: the Verify v2 API of Twilio, answered for configured services.
        public struct TwilioVerify: Sendable, Decodable {
            /// "AC" + 32 hex: the HTTP Basic user name, and the `account_sid` of every resource.
            public var accountSID: String
            /// The HTTP Basic password that goes with `accountSID`.
            public var authToken: String
            /// API key SID ("SK" + 32 hex) → its secret: also accepted as HTTP Basic.
            public var apiKeys: [String: String]
            /// Verify service SID ("VA" + 32 hex) → the id of the app it serves.
            public var services: [String: String]
            enum CodingKeys: String, CodingKey, CaseIterable {
                case accountSID = "account_sid"
                case authToken = "auth_token"
                case apiKeys = "api_keys"
                case services
            }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                accountSID = try c.decode(String.self, forKey: .accountSID)
                authToken = try c.decode(String.self, forKey: .authToken)
                apiKeys = try c.value(.apiKeys, default: [:])
                services = try c.decode([String: String].self, forKey: .services)
            }
        }

        public var passwordReset: AppBinding?
        public var hub: Hub?
        public var channelAPI: ChannelAPI?
        public var twilioVerify: TwilioVerify?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case hub
            case passwordReset = "password_reset"
            case channelAPI = "channel_api"
            case twilioVerify = "twilio_verify"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            passwordReset = try c.decodeIfPresent(AppBinding.self, forKey: .passwordReset)
            hub = try c.decodeIfPresent(Hub.self, forKey: .hub)
            channelAPI = try c.decodeIfPresent(ChannelAPI.self, forKey: .channelAPI)
            twilioVerify = try c.decodeIfPresent(TwilioVerify.self, forKey: .twilioVerify)
        }
    }
}
