// Runs real Erlang for tests: compiles a module of the test's own and runs one function of it in a
// fresh `erl`, or starts a distributed node that halts when the test closes its stdin.
import Foundation

public enum ErlangError: Error, CustomStringConvertible {
    case notInstalled
    case failed(command: String, status: Int32, output: String)
    case timedOut(command: String)

    public var description: String {
        switch self {
        case .notInstalled: return "erl/erlc not found: run scripts/bootstrap"
        case .failed(let command, let status, let output): return "\(command) exited \(status): \(output)"
        case .timedOut(let command): return "\(command) timed out"
        }
    }
}

public enum Erlang {
    public static func executable(_ name: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/erlang/bin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// A fresh private temporary directory.
    public static func temporaryDirectory(_ prefix: String = "beamtrace-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Compiles `source` (a module named `module`) into `directory`.
    public static func compile(module: String, source: String, in directory: URL) throws {
        let file = directory.appendingPathComponent("\(module).erl")
        try source.write(to: file, atomically: true, encoding: .utf8)
        guard let erlc = executable("erlc") else { throw ErlangError.notInstalled }
        _ = try Shell.run(erlc, ["-o", directory.path, file.path], timeout: 120)
    }

    /// Compiles the module and runs `module:function()` in a new non-distributed `erl`, returning stdout.
    /// Extra `erl` arguments (e.g. `-sname`) may be given.
    public static func run(module: String, source: String, function: String = "main",
                           erlArguments: [String] = [], stdin: Data? = nil, timeout: TimeInterval = 120) throws -> String {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try compile(module: module, source: source, in: directory)
        guard let erl = executable("erl") else { throw ErlangError.notInstalled }
        let args = ["-noshell", "-pa", directory.path] + erlArguments
            + ["-eval", "\(module):\(function)(), erlang:halt(0)."]
        return try Shell.run(erl, args, stdin: stdin, timeout: timeout, workingDirectory: directory)
    }

    /// A random node-name-safe token.
    public static func randomName(_ prefix: String = "t") -> String {
        prefix + String(UInt64.random(in: 0..<UInt64.max), radix: 36)
    }

    /// This host's short name, as `erl -sname` uses it.
    public static var shortHostName: String {
        (try? Shell.run("/bin/hostname", ["-s"], timeout: 10).trimmingCharacters(in: .whitespacesAndNewlines))
            ?? "localhost"
    }
}

public enum Shell {
    /// Runs a program, returning stdout; throws with stderr on a non-zero exit or a time-out.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           timeout: TimeInterval = 60, workingDirectory: URL? = nil,
                           environment: [String: String]? = nil) throws -> String {
        let result = try runCapturing(executable, arguments, stdin: stdin, timeout: timeout,
                                      workingDirectory: workingDirectory, environment: environment)
        guard result.status == 0 else {
            throw ErlangError.failed(command: ([executable] + arguments).joined(separator: " ").prefix(300).description,
                                     status: result.status, output: String(result.stderr.prefix(4000)) + String(result.stdout.prefix(2000)))
        }
        return result.stdout
    }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutData: Data
    }

    public static func runCapturing(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                                    timeout: TimeInterval = 60, workingDirectory: URL? = nil,
                                    environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        let outBox = DataBox(), errBox = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            outBox.data = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            throw ErlangError.timedOut(command: executable + " " + arguments.prefix(3).joined(separator: " "))
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outBox.data, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self),
                      stdoutData: outBox.data)
    }
}

final class DataBox: @unchecked Sendable {
    var data = Data()
}

extension Data {
    public var hexString: String { map { String(format: "%02x", $0) }.joined() }
}

extension Array where Element == UInt8 {
    public var hexString: String { map { String(format: "%02x", $0) }.joined() }

    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = Self.nibble(digits[i]), let low = Self.nibble(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
            i += 2
        }
        self = bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}
