// `beamtrace nodes [HOST]`: the node names registered in EPMD on a host, with their ports.
import ArgumentParser
import BeamDistribution
import Foundation

struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List the node names registered in EPMD on a host."
    )

    @Argument(help: "The host (default: this host).")
    var host: String?

    @Option(help: "The port EPMD listens on (default: ERL_EPMD_PORT or 4369).")
    var epmdPort: Int?

    @Option(help: "Seconds to wait for EPMD.")
    var timeout: Double = 5

    @Flag(help: "Print JSON: [{\"name\": ..., \"port\": ...}].")
    var json = false

    func run() throws {
        let host = self.host ?? NodeName.localHostName(long: false)
        let port = epmdPort ?? ProcessInfo.processInfo.environment["ERL_EPMD_PORT"].flatMap(Int.init) ?? 4369
        let client = EPMDClient(host: host, port: port, timeout: .milliseconds(Int64(max(timeout, 0.001) * 1000)))
        let names: [(name: String, port: Int)]
        do {
            names = try runBlocking { try await client.names().map { NameAndPort(name: $0.name, port: $0.port) } }
                .map { ($0.name, $0.port) }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        if json {
            let objects = names.map { ["name": $0.name, "port": $0.port] as [String: any Sendable] }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if names.isEmpty {
            print("no nodes registered in EPMD on \(host)")
            return
        }
        let width = names.map(\.name.count).max() ?? 0
        for entry in names {
            print("\(entry.name)@\(host)".padding(toLength: width + host.count + 1, withPad: " ", startingAt: 0)
                      + "  port \(entry.port)")
        }
    }
}

private struct NameAndPort: Sendable {
    var name: String
    var port: Int
}
