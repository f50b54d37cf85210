// swift-tools-version: 6.1
// beamtrace: trace capture and replay for BEAM systems. Targets follow ../shared/DESIGN.md, lowest first.
import PackageDescription

let package = Package(
    name: "beamtrace",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "beamtrace", targets: ["beamtrace"]),
        .library(name: "BeamTerm", targets: ["BeamTerm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "BeamTerm", dependencies: ["CZlib"]),
        .executableTarget(
            name: "beamtrace",
            dependencies: [
                "BeamTerm",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "BeamTermTests", dependencies: ["BeamTerm", "TestSupport", "beamtrace"]),
    ]
)
