import Foundation
import Hummingbird
import NIOCore
import Prometheus
import OTPCore

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.yaml`: for orchestrators and Prometheus.
struct OperationsController {
    let engine: OTPEngine
    let metrics: ServerMetrics

    func addRoutes(to router: Router<OTPRequestContext>) {
        router.get("/healthz") { _, _ in
            var json = JSONWriter()
            json.field("status", "ok")
            return json.response()
        }
        router.get("/readyz") { _, _ in
            // A failed check throws OTPError.storageFailed; v1's dialect answers 503.
            try await engine.checkStorage()
            var json = JSONWriter()
            json.field("status", "ready")
            return json.response()
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
        }
    }
}

/// The OpenAPI document shipped with the binary (the repository's `openapi.yaml`).
enum OpenAPIDocument {
    static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let data = try? Data(contentsOf: url)
        else { return Array("openapi: 3.1.0\n# document not bundled\n".utf8) }
        return Array(data)
    }()
}
