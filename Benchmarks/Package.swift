// swift-tools-version: 6.1
// beamtrace benchmarks (ordo-one/benchmark). Run: swift package --package-path Benchmarks benchmark
import PackageDescription
import Foundation

// SwiftPM names a path dependency after its directory, which differs between checkouts.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent.lowercased()

let package = Package(
    name: "beamtrace-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: root.path),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "TermDecode",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BeamTerm", package: rootPackage),
            ],
            path: "Benchmarks/TermDecode",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "DistributionRPC",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BeamTerm", package: rootPackage),
                .product(name: "BeamDistribution", package: rootPackage),
                .product(name: "TestSupport", package: rootPackage),
            ],
            path: "Benchmarks/DistributionRPC",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "CaptureIngest",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TraceModel", package: rootPackage),
                .product(name: "CaptureStore", package: rootPackage),
            ],
            path: "Benchmarks/CaptureIngest",
            exclude: ["compare.sh"],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Replay",
            dependencies: [
                "BenchTraces",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CaptureStore", package: rootPackage),
                .product(name: "TraceAnalysis", package: rootPackage),
            ],
            path: "Benchmarks/Replay",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .target(
            name: "BenchTraces",
            dependencies: [.product(name: "CaptureStore", package: rootPackage)],
            path: "Benchmarks/BenchTraces"
        ),
        .executableTarget(
            name: "Export",
            dependencies: [
                "BenchTraces",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CaptureStore", package: rootPackage),
                .product(name: "TraceExport", package: rootPackage),
            ],
            path: "Benchmarks/Export",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Events",
            dependencies: [
                "BenchTraces",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BeamTerm", package: rootPackage),
                .product(name: "CaptureStore", package: rootPackage),
                .product(name: "TraceModel", package: rootPackage),
            ],
            path: "Benchmarks/Events",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ClickHouse",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CaptureStore", package: rootPackage),
                .product(name: "TraceExport", package: rootPackage),
                .product(name: "TestSupport", package: rootPackage),
            ],
            path: "Benchmarks/ClickHouse",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Scale",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CaptureStore", package: rootPackage),
                .product(name: "TraceAnalysis", package: rootPackage),
            ],
            path: "Benchmarks/Scale",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "HangWaits",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CaptureStore", package: rootPackage),
                .product(name: "TraceAnalysis", package: rootPackage),
            ],
            path: "Benchmarks/HangWaits",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Info",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TraceModel", package: rootPackage),
                .product(name: "CaptureStore", package: rootPackage),
            ],
            path: "Benchmarks/Info",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "LiveRecord",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BeamTerm", package: rootPackage),
                .product(name: "BeamDistribution", package: rootPackage),
                .product(name: "TraceSession", package: rootPackage),
                .product(name: "TestSupport", package: rootPackage),
            ],
            path: "Benchmarks/LiveRecord",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
