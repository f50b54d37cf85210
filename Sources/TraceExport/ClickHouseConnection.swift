// Talking to ClickHouse over its HTTP interface: statements in the request body, inserts as
// `INSERT ... FORMAT RowBinary` in the query string with the rows as the body, settings as URL
// parameters, and errors carrying the server's own message (`Code: 60, ... Table ... doesn't exist`).
// The SQL and settings used here are accepted by 18.16 (Debian 12) and by current releases.
import Foundation

public struct ClickHouseError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// ClickHouse's error code (`Code: N`), 0 when the failure was not the server's.
    public var serverCode: Int = 0
    /// True when trying again may help (the connection broke, the server was busy).
    public var retryable: Bool
    public var description: String { message }

    /// Server error codes that say "not now" rather than "never": timeouts, network errors between
    /// servers, too many parts or queries, memory limits, an insert whose outcome is unknown.
    static let transientCodes: Set<Int> = [159, 164, 202, 209, 210, 241, 252, 279, 319]
}

public final class ClickHouseConnection {
    public let endpoint: HTTPEndpoint
    let client: HTTPClient
    /// Settings sent with every request (`insert_distributed_sync=1` and the like).
    public var settings: [(String, String)] = []

    public init(_ endpoint: HTTPEndpoint, timeout: Double = 120) {
        self.endpoint = endpoint
        client = HTTPClient(endpoint, timeout: timeout)
    }

    static func percentEncoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    private func target(_ parameters: [(String, String)]) -> String {
        let all = parameters + settings
        let query = all.map { "\($0.0)=\(Self.percentEncoded($0.1))" }.joined(separator: "&")
        let base = endpoint.path.hasSuffix("/") ? endpoint.path : endpoint.path + "/"
        return query.isEmpty ? base : base + "?" + query
    }

    private func check(_ response: HTTPResponse, _ what: String) throws -> HTTPResponse {
        guard response.status == 200 else {
            let text = response.text.trimmingCharacters(in: .whitespacesAndNewlines)
            var code = 0
            if let range = text.range(of: "Code: ") {
                code = Int(text[range.upperBound...].prefix { $0.isNumber }) ?? 0
            }
            let retryable = ClickHouseError.transientCodes.contains(code) || response.status == 503
            throw ClickHouseError(message: "ClickHouse at \(endpoint) refused \(what) (HTTP \(response.status)): "
                                  + String(text.prefix(600)), serverCode: code, retryable: retryable)
        }
        return response
    }

    private func send(_ target: String, body: [UInt8], what: String) throws -> HTTPResponse {
        do {
            return try check(client.request("POST", target, body: body), what)
        } catch let error as HTTPError {
            throw ClickHouseError(message: "\(what) at \(endpoint): \(error.message)", retryable: error.code == .transport)
        }
    }

    /// Runs a statement (DDL, ALTER) or a query; returns what it printed.
    @discardableResult
    public func execute(_ sql: String) throws -> String {
        let what = String(sql.prefix(while: { $0 != "(" && $0 != "\n" }).prefix(80))
        return try send(target([]), body: Array(sql.utf8), what: what).text
    }

    /// A query's rows as TabSeparated lines of fields (escapes left as ClickHouse writes them).
    public func rows(_ sql: String) throws -> [[String]] {
        let text = try execute(sql + " FORMAT TabSeparated")
        return text.split(separator: "\n", omittingEmptySubsequences: true).map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// `INSERT INTO table FORMAT RowBinary` with `rows` as the body.
    public func insertRowBinary(into table: String, columns: [String], rows: [UInt8]) throws {
        let statement = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) FORMAT RowBinary"
        _ = try send(target([("query", statement)]), body: rows, what: "INSERT INTO \(table)")
    }

    public func close() { client.close() }
}

/// ClickHouse SQL literals and names.
enum ClickHouseSQL {
    /// A string literal: backslash and quote escaped, as ClickHouse reads them.
    static func literal(_ text: String) -> String {
        var out = "'"
        for c in text.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "'"
    }

    /// A name in back quotes (databases, tables).
    static func name(_ text: String) -> String {
        "`" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "`", with: "\\`") + "`"
    }

    /// Unescapes a TabSeparated field.
    static func unescapeTSV(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var out = ""
        var escaped = false
        for c in field {
            if escaped {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "0": out.append("\0")
                case "b": out.append("\u{8}")
                case "f": out.append("\u{c}")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}

/// Rows in ClickHouse's RowBinary format: little-endian fixed-width numbers, strings as a LEB128
/// length and the bytes, Date as days since 1970-01-01 (UInt16).
struct RowBinaryWriter {
    var bytes: [UInt8] = []
    var rows = 0

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    @inline(__always) mutating func uint8(_ v: UInt8) { bytes.append(v) }
    @inline(__always) mutating func uint16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inline(__always) mutating func uint32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inline(__always) mutating func uint64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inline(__always) mutating func int64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    @inline(__always) mutating func length(_ count: Int) {
        var v = UInt64(count)
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always) mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { raw in
            length(raw.count)
            bytes.append(contentsOf: raw)
        }
    }

    /// Bytes already encoded (a cached string's UTF-8 with its length prefix).
    @inline(__always) mutating func raw(_ encoded: [UInt8]) { bytes.append(contentsOf: encoded) }

    static func encodedString(_ text: String) -> [UInt8] {
        var writer = RowBinaryWriter(capacity: text.utf8.count + 2)
        writer.string(text)
        return writer.bytes
    }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        rows = 0
    }
}
