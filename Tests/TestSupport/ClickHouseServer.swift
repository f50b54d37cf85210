// A real ClickHouse server for tests and benchmarks (Debian's clickhouse-server, 18.16 on Debian 12):
// its own config, data directory and random loopback ports in a temporary directory, optionally one
// shard of a cluster of such servers. A shell watchdog holds the server: closing its stdin (or the
// test process dying) stops it, so no server outlives the test.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class ClickHouseServer: @unchecked Sendable {
    public let directory: URL
    public let httpPort: UInt16
    public let tcpPort: UInt16
    private let watchdog: Process
    private let stdinPipe: Pipe
    private var stopped = false

    public static let serverPaths = ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"]
    public static let clientPaths = ["/usr/bin/clickhouse-client"]

    public static var serverExecutable: String? {
        serverPaths.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    public static var clientExecutable: String? {
        clientPaths.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// What to say when it is missing: the tests that need it fail with this rather than pass.
    public static let missing = "clickhouse-server/clickhouse-client are not installed: scripts/bootstrap installs them "
        + "(apt-get install clickhouse-server clickhouse-client)"

    public var url: String { "http://127.0.0.1:\(httpPort)" }

    /// A free loopback port (bound, read and released: the server takes it a moment later).
    public static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ErlangError.failed(command: "socket", status: errno, output: "") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ErlangError.failed(command: "bind", status: errno, output: "") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Servers of one cluster named `cluster`, one shard each (every server knows all of them).
    public static func cluster(_ cluster: String, shards: Int) throws -> [ClickHouseServer] {
        let ports = try (0..<shards).map { _ in (try freePort(), try freePort()) }
        var servers: [ClickHouseServer] = []
        do {
            for (http, tcp) in ports {
                servers.append(try ClickHouseServer(httpPort: http, tcpPort: tcp,
                                                    cluster: (cluster, ports.map(\.1))))
            }
        } catch {
            servers.forEach { $0.stop() }
            throw error
        }
        return servers
    }

    /// A server of its own; `users` are (name, password) accounts besides `default` (no password).
    public convenience init(users: [(String, String)] = []) throws {
        try self.init(httpPort: try Self.freePort(), tcpPort: try Self.freePort(), cluster: nil, users: users)
    }

    init(httpPort: UInt16, tcpPort: UInt16, cluster: (name: String, tcpPorts: [UInt16])?,
         users extra: [(String, String)] = [], timeout: TimeInterval = 30) throws {
        guard let server = Self.serverExecutable else { throw ErlangError.failed(command: "clickhouse-server", status: -1,
                                                                                 output: Self.missing) }
        self.httpPort = httpPort
        self.tcpPort = tcpPort
        directory = try Erlang.temporaryDirectory("bt-clickhouse")
        let d = directory.path
        var remote = ""
        if let cluster {
            let shards = cluster.tcpPorts.map {
                "<shard><replica><host>127.0.0.1</host><port>\($0)</port></replica></shard>"
            }.joined()
            remote = "<remote_servers><\(cluster.name)>\(shards)</\(cluster.name)></remote_servers>"
        }
        let config = """
            <?xml version="1.0"?>
            <yandex>
                <logger><level>warning</level><log>\(d)/log/server.log</log><errorlog>\(d)/log/error.log</errorlog>
                    <size>10M</size><count>1</count></logger>
                <http_port>\(httpPort)</http_port>
                <tcp_port>\(tcpPort)</tcp_port>
                <listen_host>127.0.0.1</listen_host>
                <path>\(d)/data/</path>
                <tmp_path>\(d)/tmp/</tmp_path>
                <user_files_path>\(d)/user_files/</user_files_path>
                <format_schema_path>\(d)/format_schemas/</format_schema_path>
                <mark_cache_size>67108864</mark_cache_size>
                <uncompressed_cache_size>67108864</uncompressed_cache_size>
                <users_config>\(d)/users.xml</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <mlock_executable>false</mlock_executable>
                \(remote)
            </yandex>
            """
        let accounts = extra.map {
            "<\($0.0)><password>\($0.1)</password><networks><ip>127.0.0.1</ip></networks>"
                + "<profile>default</profile><quota>default</quota></\($0.0)>"
        }.joined()
        let users = """
            <?xml version="1.0"?>
            <yandex>
                <profiles><default></default></profiles>
                <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
                    <profile>default</profile><quota>default</quota></default>\(accounts)</users>
                <quotas><default></default></quotas>
            </yandex>
            """
        try config.write(toFile: d + "/config.xml", atomically: true, encoding: .utf8)
        try users.write(toFile: d + "/users.xml", atomically: true, encoding: .utf8)
        watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The server runs while the watchdog's stdin is open. Its data is thrown away with the
        // directory, so it is killed rather than shut down (a clean shutdown takes seconds).
        watchdog.arguments = ["-c", """
            "$1" --config-file="$2/config.xml" >"$2/stdout.log" 2>&1 &
            p=$!
            cat >/dev/null
            kill -9 $p 2>/dev/null
            wait $p 2>/dev/null
            exit 0
            """, "sh", server, d]
        stdinPipe = Pipe()
        watchdog.standardInput = stdinPipe
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if Self.ping(httpPort) { return }
            if !watchdog.isRunning { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let log = (try? String(contentsOfFile: d + "/stdout.log", encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: d + "/log/error.log", encoding: .utf8)) ?? ""
        stop()
        throw ErlangError.failed(command: "clickhouse-server on port \(httpPort)", status: -1,
                                 output: String((log + errors).suffix(3000)))
    }

    deinit { stop() }

    /// True when `GET /ping` on the HTTP port answers `Ok.`.
    static func ping(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /ping HTTP/1.0\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            return false
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            reply += chunk[0..<n]
        }
        return String(decoding: reply, as: UTF8.self).hasSuffix("Ok.\n")
    }

    /// Stops the server and removes its directory.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        try? stdinPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(15)
        while watchdog.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if watchdog.isRunning { kill(watchdog.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs a query with clickhouse-client over the native port; returns its TabSeparated output.
    @discardableResult
    public func query(_ sql: String, format: String = "TabSeparated") throws -> String {
        guard let client = Self.clientExecutable else {
            throw ErlangError.failed(command: "clickhouse-client", status: -1, output: Self.missing)
        }
        return try Shell.run(client, ["--host", "127.0.0.1", "--port", "\(tcpPort)", "--format", format, "--query", sql],
                             timeout: 120)
    }
}
