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

# (layer, patterns in a frame's symbol or binary), checked in order for each frame.
LAYERS = [
    ("logging", ("7Logging", "OutputLogHandler", "9LogOutput", "AccessLog")),
    ("metrics", ("7Metrics", "10Prometheus", "13ServerMetrics", "12MetricLabels", "11CoreMetrics")),
    ("JWT (sign)", ("3JWT", "10PrivateKey", "JWTSigner")),
    ("JSON", ("JSON", "EchoBody")),
    ("hashes, HMAC, random (OpenSSL)", ("6Digest", "12SecureRandom", "9Base64URL", "libcrypto")),
    ("Redis client", ("11RedisClient", "libhiredis")),
    ("delivery (libcurl)", ("8Delivery", "libcurl", "libssl", "libnghttp")),
    ("engine and store", ("7OTPCore",)),
    ("HTTP (Hummingbird, NIOHTTP1, middleware, controllers)",
     ("11Hummingbird", "15HummingbirdCore", "8NIOHTTP1", "9HTTPTypes", "9OTPServer", "8otpd_bench", "9otpdBench")),
    ("NIO event loop and channel pipeline", ("7NIOCore", "8NIOPosix", "16NIOConcurrencyHelpers")),
    ("Swift Concurrency (task switches)", ("libswift_Concurrency",)),
    ("kernel (socket I/O, scheduling)", ("[kernel",)),
]
OTHER = "other (runtime and libc without a caller above)"


def classify(frames):
    for frame in frames:
        for layer, patterns in LAYERS:
            if any(p in frame for p in patterns):
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
    order = [layer for layer, _ in LAYERS] + [OTHER]
    print(f"| layer ({args.name}, {total} samples) | share | µs/request |")
    print("|---|---:|---:|")
    for layer in order:
        n = counts.get(layer, 0)
        share = n / total
        us = f"{share * args.us_per_request:.0f}" if args.us_per_request else "-"
        print(f"| {layer} | {share * 100:.1f}% | {us} |")


if __name__ == "__main__":
    main()
