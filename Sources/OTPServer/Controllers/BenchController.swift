import Hummingbird

/// Routes for `scripts/bench.sh` only (`otpd serve --bench-routes`; off by default).
struct BenchController {
    struct Echo: Codable, ResponseEncodable {
        var otp_id: String
        var otp: String
    }

    func addRoutes(to router: Router<OTPRequestContext>) {
        // The framework ceiling: decode a small JSON body and encode it back, through the same
        // middleware and the same decoding path as the real routes.
        router.post("/bench/echo") { request, context in
            try await request.decodeJSON(as: Echo.self, context: context)
        }
        // A webhook receiver that accepts everything: the far end of the login run's libcurl path.
        router.post("/bench/sink") { request, _ in
            _ = try await request.body.collect(upTo: 1 << 16)
            return Response(status: .ok)
        }
    }
}
