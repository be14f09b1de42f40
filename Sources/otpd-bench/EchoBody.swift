import Hummingbird

/// The small JSON body both echo routes decode and encode again: an activation's shape.
struct EchoBody: Codable, ResponseEncodable {
    var otpID: String
    var otp: String

    enum CodingKeys: String, CodingKey {
        case otpID = "otp_id"
        case otp
    }
}
