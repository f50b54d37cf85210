// swift-tools-version: 6.1
// Coverage-guided fuzzers (libFuzzer through `swiftc -sanitize=fuzzer`) for the parts that read
// outside data: the ETF cursor, the trace-message decoder, the frame ingest loop and the capture
// reader; and for the capture writer and reader together (every event written reads back exactly).
// A package of its own that depends on the main one by path; scripts/fuzz builds and runs it.
import PackageDescription

// Every module (the main package's too) is compiled with -sanitize=fuzzer,address by scripts/fuzz, so
// libFuzzer sees their coverage.
let fuzzerFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]
let fuzzerLink: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]

let package = Package(
    name: "beamtrace-fuzz",
    dependencies: [.package(name: "beamtrace", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "fuzz-etf", dependencies: ["FuzzDriver", .product(name: "BeamTerm", package: "beamtrace")],
                          swiftSettings: fuzzerFlags, linkerSettings: fuzzerLink),
        .executableTarget(name: "fuzz-trace", dependencies: ["FuzzDriver", .product(name: "TraceModel", package: "beamtrace")],
                          swiftSettings: fuzzerFlags, linkerSettings: fuzzerLink),
        .executableTarget(name: "fuzz-frames", dependencies: ["FuzzDriver", .product(name: "CaptureStore", package: "beamtrace")],
                          swiftSettings: fuzzerFlags, linkerSettings: fuzzerLink),
        .executableTarget(name: "fuzz-capture", dependencies: ["FuzzDriver", .product(name: "CaptureStore", package: "beamtrace")],
                          swiftSettings: fuzzerFlags, linkerSettings: fuzzerLink),
        .executableTarget(name: "fuzz-roundtrip", dependencies: ["FuzzDriver", .product(name: "CaptureStore", package: "beamtrace"),
                                                                 .product(name: "TraceModel", package: "beamtrace")],
                          swiftSettings: fuzzerFlags, linkerSettings: fuzzerLink),
    ]
)
