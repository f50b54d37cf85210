// The magic cookie: from --cookie, then ERLANG_COOKIE, then ~/.erlang.cookie. Its text never appears
// in descriptions, dumps, logs or errors; only the handshake's digest code reads it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct Cookie: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let secret: [UInt8]

    public init(_ text: String) { secret = Array(text.utf8) }

    public var isEmpty: Bool { secret.isEmpty }
    public var description: String { "<cookie>" }
    public var debugDescription: String { "<cookie>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    /// Where a resolved cookie came from (safe to print).
    public enum Source: String, Sendable {
        case option = "--cookie"
        case environment = "ERLANG_COOKIE"
        case file = "~/.erlang.cookie"
    }

    public struct Resolved: Sendable {
        public var cookie: Cookie
        public var source: Source
        /// Things to tell the user, e.g. that the cookie file is readable by others.
        public var warnings: [String]
    }

    /// Finds the cookie the way `erl` users expect: an explicit value, then the environment, then the file.
    public static func resolve(explicit: String?, environment: [String: String],
                               homeDirectory: String? = nil) throws(DistributionError) -> Resolved {
        if let explicit, !explicit.isEmpty {
            return Resolved(cookie: Cookie(explicit), source: .option, warnings: [])
        }
        if let value = environment["ERLANG_COOKIE"], !value.isEmpty {
            return Resolved(cookie: Cookie(value), source: .environment, warnings: [])
        }
        guard let home = homeDirectory ?? environment["HOME"], !home.isEmpty else {
            throw DistributionError(.cookieMissing, step: "find cookie",
                                    "no cookie: pass --cookie, set ERLANG_COOKIE, or create ~/.erlang.cookie (HOME is not set)")
        }
        let path = home.hasSuffix("/") ? home + ".erlang.cookie" : home + "/.erlang.cookie"
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DistributionError(.cookieMissing, step: "find cookie",
                                    "no cookie: pass --cookie, set ERLANG_COOKIE, or create \(path)")
        }
        guard let bytes = readFile(path) else {
            throw DistributionError(.cookieMissing, step: "find cookie", "cannot read \(path): check its permissions")
        }
        // erl uses the first line, without trailing whitespace.
        let line = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        var secret = Array(line)
        while let last = secret.last, last == 0x20 || last == 0x09 || last == 0x0D { secret.removeLast() }
        guard !secret.isEmpty else {
            throw DistributionError(.cookieMissing, step: "find cookie", "\(path) is empty: write the cookie into it")
        }
        var warnings: [String] = []
        let mode = UInt32(info.st_mode) & 0o777
        if mode & 0o077 != 0 {
            warnings.append("\(path) is readable by others (mode \(String(mode, radix: 8))): run chmod 400 \(path)")
        }
        return Resolved(cookie: Cookie(bytes: secret), source: .file, warnings: warnings)
    }

    init(bytes: [UInt8]) { secret = bytes }

    private static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }
}
