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

        public var passwordReset: AppBinding?
        public var hub: Hub?
        public var channelAPI: ChannelAPI?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case hub
            case passwordReset = "password_reset"
            case channelAPI = "channel_api"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            passwordReset = try c.decodeIfPresent(AppBinding.self, forKey: .passwordReset)
            hub = try c.decodeIfPresent(Hub.self, forKey: .hub)
            channelAPI = try c.decodeIfPresent(ChannelAPI.self, forKey: .channelAPI)
        }
    }
}
