// swift-tools-version: 6.1
// beamtrace: trace capture and replay for BEAM systems. Targets follow docs/ARCHITECTURE.md, lowest first.
import PackageDescription

let package = Package(
    name: "beamtrace",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "beamtrace", targets: ["beamtrace"]),
        .library(name: "BeamTerm", targets: ["BeamTerm"]),
        .library(name: "BeamDistribution", targets: ["BeamDistribution"]),
        .library(name: "TraceModel", targets: ["TraceModel"]),
        .library(name: "CaptureStore", targets: ["CaptureStore"]),
        .library(name: "TraceSession", targets: ["TraceSession"]),
        .library(name: "TraceAnalysis", targets: ["TraceAnalysis"]),
        .library(name: "TraceExport", targets: ["TraceExport"]),
        // Real erl nodes for tests and benchmarks (random name and cookie, always stopped).
        .library(name: "TestSupport", targets: ["TestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // CRC-32C with the processor's instruction (CaptureStore's CRC32C.swift falls back to a table).
        .target(name: "CCRC32C"),
        .target(name: "BeamTerm", dependencies: ["CZlib"]),
        .target(
            name: "BeamDistribution",
            dependencies: [
                "BeamTerm",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "TraceModel", dependencies: ["BeamTerm"]),
        .target(
            name: "CaptureStore",
            dependencies: [
                "TraceModel", "CLZ4", "CCRC32C",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "TraceSession",
            dependencies: [
                "BeamDistribution", "CaptureStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources")]
        ),
        .target(name: "TraceAnalysis", dependencies: ["CaptureStore"]),
        .target(name: "TraceExport", dependencies: ["TraceAnalysis"]),
        .executableTarget(
            name: "beamtrace",
            dependencies: [
                "BeamTerm", "BeamDistribution", "TraceModel", "CaptureStore", "TraceSession", "TraceAnalysis",
                "TraceExport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The release command links the Swift runtime and Foundation statically: no dynamic
            // symbol binding of a dozen libraries at each start (`beamtrace --version` 7 -> 4 ms).
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections"], .when(platforms: [.linux], configuration: .release))]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "BeamTermTests", dependencies: ["BeamTerm", "TestSupport", "beamtrace"]),
        .testTarget(name: "BeamDistributionTests", dependencies: ["BeamDistribution", "TestSupport", "beamtrace"]),
        .testTarget(name: "TraceModelTests", dependencies: ["TraceModel", "TestSupport"]),
        .testTarget(name: "CaptureStoreTests", dependencies: ["CaptureStore", "TestSupport", "beamtrace"]),
        .testTarget(name: "TraceSessionTests", dependencies: ["TraceSession", "TestSupport", "beamtrace"]),
        .testTarget(name: "TraceAnalysisTests", dependencies: ["TraceAnalysis", "TestSupport", "beamtrace"]),
        .testTarget(name: "TraceExportTests", dependencies: ["TraceExport", "TestSupport", "beamtrace"]),
    ]
)
