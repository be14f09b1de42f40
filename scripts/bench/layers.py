#!/usr/bin/env python3
"""Splits a `perf record -g` profile of otpd into layers: reads `perf script` output on stdin
and prints, for each layer, its share of the samples and — given the run's CPU µs per request —
what that share costs per request.

    perf script -i run.data | scripts/bench/layers.py --us-per-request 122 --name activate_right

A sample belongs to the innermost frame of its stack that names a layer, so the Swift runtime
(retain, release, malloc, casts) counts for the code that called it. Async functions show only
their innermost partial function, which is still the code that ran. Kernel time (the socket
reads and writes of HTTP and Redis alike, scheduling) is a layer of its own.
"""
import argparse
import re
import sys

LOGGING = "logging"
METRICS = "metrics"
JWT = "JWT (sign)"
JSON = "JSON"
HASHES = "hashes, HMAC, random (OpenSSL)"
REDIS = "Redis client"
DELIVERY = "delivery (libcurl)"
ENGINE = "engine and store"
HTTP = "HTTP (Hummingbird, NIOHTTP1, middleware, controllers)"
NIO = "NIO event loop and channel pipeline"
CONCURRENCY = "Swift Concurrency (task switches)"
KERNEL = "kernel (socket I/O, scheduling)"
OTHER = "other (runtime and libc without a caller above)"
ORDER = [LOGGING, METRICS, JWT, JSON, HASHES, REDIS, DELIVERY, ENGINE, HTTP, NIO, CONCURRENCY, KERNEL, OTHER]

# Swift symbols by the module that defines them ($s<length><module>…), and within otpd's own
# modules by type; C code by its library.
MODULES = {
    "Logging": LOGGING, "Metrics": METRICS, "CoreMetrics": METRICS, "Prometheus": METRICS,
    "RedisClient": REDIS, "Delivery": DELIVERY, "OTPCore": ENGINE,
    "Hummingbird": HTTP, "HummingbirdCore": HTTP, "HummingbirdRouter": HTTP, "NIOHTTP1": HTTP, "HTTPTypes": HTTP,
    "OTPServer": HTTP, "otpd_bench": HTTP,
    "NIOCore": NIO, "NIOPosix": NIO, "NIOConcurrencyHelpers": NIO, "_NIODataStructures": NIO,
}
TYPES = [  # (module, type name fragment, layer): checked before the module's own layer
    ("OTPServer", ("OutputLogHandler", "LogOutput", "AccessLogLine"), LOGGING),
    ("OTPServer", ("ServerMetrics", "MetricLabels"), METRICS),
    ("OTPServer", ("JSONBody", "JSONWriter", "FlatJSON", "isJSON", "decodeJSON"), JSON),
    ("OTPCrypto", ("3JWT", "PrivateKey"), JWT),
    ("OTPCrypto", ("JSONText",), JSON),
    ("OTPCrypto", ("",), HASHES),
    ("Foundation", ("JSON",), JSON),
    ("FoundationEssentials", ("JSON",), JSON),
]
LIBRARIES = [("libcrypto", HASHES), ("libhiredis", REDIS), ("libcurl", DELIVERY), ("libssl", DELIVERY),
             ("libnghttp", DELIVERY), ("libswift_Concurrency", CONCURRENCY), ("[kernel", KERNEL)]
# In the standard library's generic code specialized for otpd's types (a dictionary of log
# metadata, an array of Redis arguments), the type names the layer.
SPECIALIZED = [("7Logging", LOGGING), ("11RedisClient", REDIS), ("9OTPCrypto3JWT", JWT), ("JSON", JSON)]


def frame_layer(frame):
    symbol = frame.split(" ", 1)[1] if " " in frame else frame
    match = re.match(r"\$s(\d+)", symbol)
    if match:
        length = int(match.group(1))
        module = symbol[match.end():match.end() + length]
        for owner, fragments, layer in TYPES:
            if module == owner and any(f in symbol for f in fragments):
                return layer
        if module in MODULES:
            return MODULES[module]
        if symbol.startswith(("$ss", "$sS")):
            for fragment, layer in SPECIALIZED:
                if fragment in symbol:
                    return layer
        return None
    for library, layer in LIBRARIES:
        if library in frame:
            return layer
    return None


def classify(frames):
    for frame in frames:
        layer = frame_layer(frame)
        if layer:
            return layer
    return OTHER


def samples(stream):
    frames = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
        elif line.startswith("\t") or line.startswith(" "):
            frames.append(line.strip())
        # the header line of a sample (command, pid, time) starts in column 0
    if frames:
        yield frames


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--us-per-request", type=float, default=0)
    parser.add_argument("--name", default="profile")
    args = parser.parse_args()
    counts = {}
    total = 0
    for frames in samples(sys.stdin):
        layer = classify(frames)
        counts[layer] = counts.get(layer, 0) + 1
        total += 1
    if total == 0:
        print(f"{args.name}: no samples")
        return
    order = ORDER
    print(f"| layer ({args.name}, {total} samples) | share | µs/request |")
    print("|---|---:|---:|")
    for layer in order:
        n = counts.get(layer, 0)
        share = n / total
        us = f"{share * args.us_per_request:.0f}" if args.us_per_request else "-"
        print(f"| {layer} | {share * 100:.1f}% | {us} |")


if __name__ == "__main__":
    main()
