// Node names as distribution uses them: `name@host`, short (`-sname`, host without dots) or long
// (`-name`, a fully qualified host or an IP address), and the name beamtrace gives itself.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct NodeName: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var host: String

    public init(name: String, host: String) {
        self.name = name
        self.host = host
    }

    /// Parses `name@host`; a bare `name` means a node on this host (short name), as `erl` does.
    public init(parsing text: String) throws(DistributionError) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        let host = parts.count == 2 ? String(parts[1]) : NodeName.localHostName(long: false)
        guard !name.isEmpty, !host.isEmpty, !host.contains("@"),
              name.unicodeScalars.allSatisfy({ NodeName.isNameCharacter($0) }) else {
            throw DistributionError(.invalidNodeName, node: text, step: "parse node name",
                                    "not a node name: use name@host, e.g. app@\(NodeName.localHostName(long: false))")
        }
        self.name = name
        self.host = host
    }

    /// True for `-name` style nodes: the host is qualified (has a dot) or is an IP address.
    public var isLongName: Bool { host.contains(".") || host.contains(":") }

    public var description: String { "\(name)@\(host)" }

    /// A name for our own hidden node that matches the target's short/long style.
    public static func local(name: String? = nil, matching target: NodeName) -> NodeName {
        let chosen = name ?? "beamtrace_\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        if chosen.contains("@"), let parsed = try? NodeName(parsing: chosen) { return parsed }
        var host = localHostName(long: target.isLongName)
        if target.isLongName && !host.contains(".") {
            // No qualified host name here: an address is a valid long-name host for OTP.
            host = target.host.hasPrefix("127.") || target.host == "::1" ? target.host : "127.0.0.1"
        }
        return NodeName(name: chosen, host: host)
    }

    /// This machine's host name; the short form is everything before the first dot, as `-sname` uses it.
    public static func localHostName(long: Bool) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let full = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if full.isEmpty { return "localhost" }
        if long { return full }
        return String(full.split(separator: ".", maxSplits: 1).first ?? Substring(full))
    }

    static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-": return true
        default: return false
        }
    }
}
