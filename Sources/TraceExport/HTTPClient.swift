// A small blocking HTTP/1.1 client for the network exports (ClickHouse's HTTP interface, OTLP/HTTP):
// plain `http://` only, one kept-alive connection, request bodies sent whole, responses read by
// Content-Length, chunked encoding or to the end of the connection. Every failure is an
// `HTTPError` saying what and where; nothing here retries (the exporters decide that).
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable {
        /// Bad URL or option: retrying does not help.
        case usage
        /// The server could not be reached or the connection broke: the request may or may not have arrived.
        case transport
        /// The server answered with an error status.
        case status
    }
    public var code: Code
    public var status: Int = 0
    public var message: String
    public var description: String { message }
}

/// `http://[user[:password]@]host[:port][/path]`.
public struct HTTPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var path: String
    var user: String?
    var password: String?

    /// `text` with any password left out (`http://user@host`): what messages about it show.
    public static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let start = text.range(of: "://")?.upperBound, start < at,
              let colon = text[start..<at].firstIndex(of: ":") else { return text }
        return String(text[..<colon] + text[at...])
    }

    public init(parsing raw: String, defaultPort: UInt16) throws {
        let text = Self.redacted(raw)
        guard let components = URLComponents(string: raw), let scheme = components.scheme?.lowercased() else {
            throw HTTPError(code: .usage, message: "\(text) is not a URL (http://HOST:PORT)")
        }
        guard scheme == "http" else {
            throw HTTPError(code: .usage, message: "\(text): only http:// is supported (put a TLS proxy in front for https)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw HTTPError(code: .usage, message: "\(text) names no host")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw HTTPError(code: .usage, message: "\(text): port \(port) is out of range")
        }
        self.host = host
        self.port = components.port.map { UInt16($0) } ?? defaultPort
        path = components.path.isEmpty ? "/" : components.path
        user = components.user
        password = components.password
    }

    /// Without the password: what messages show.
    public var description: String { "http://\(host):\(port)\(path == "/" ? "" : path)" }

    var authorization: String? {
        guard let user else { return nil }
        return "Basic " + Data("\(user):\(password ?? "")".utf8).base64EncodedString()
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// One connection to one endpoint, reopened when it breaks. Not for concurrent use.
public final class HTTPClient {
    public let endpoint: HTTPEndpoint
    /// Seconds to connect, and to wait for any progress of a send or a read.
    public var timeout: Double
    private var fd: Int32 = -1
    private var received: [UInt8] = []

    public init(_ endpoint: HTTPEndpoint, timeout: Double = 60) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        received.removeAll(keepingCapacity: true)
    }

    /// Sends one request and reads its response. `target` is the path and query (`/?query=...`).
    public func request(_ method: String, _ target: String, headers: [(String, String)] = [],
                        body: [UInt8] = []) throws -> HTTPResponse {
        // A kept-alive connection the server closed while idle reads as readable with nothing to read.
        if fd >= 0 {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) != 0 { close() }
        }
        return try exchange(method, target, headers: headers, body: body)
    }

    private func exchange(_ method: String, _ target: String, headers: [(String, String)],
                          body: [UInt8]) throws -> HTTPResponse {
        if fd < 0 { try connect() }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: keep-alive\r\n"
        if let authorization = endpoint.authorization { head += "Authorization: \(authorization)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        do {
            try send(Array(head.utf8))
            try send(body)
            return try readResponse(method: method)
        } catch {
            close()
            throw error
        }
    }

    private func fail(_ what: String, _ status: Int = 0) -> HTTPError {
        HTTPError(code: .transport, status: status, message: "\(what) \(endpoint): \(String(cString: strerror(errno)))")
    }

    private func connect() throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let first = list else {
            throw HTTPError(code: .transport, message: "cannot resolve \(endpoint.host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let socket = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard socket >= 0 else { continue }
            // Non-blocking connect bounded by the timeout, then blocking I/O with per-call timeouts.
            let flags = fcntl(socket, F_GETFL)
            _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
            var result = Glibc.connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
                result = poll(&poller, 1, Int32(timeout * 1000)) == 1 ? 0 : -1
                if result != 0 { errno = ETIMEDOUT }
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if result == 0, getsockopt(socket, SOL_SOCKET, SO_ERROR, &soError, &length) == 0, soError != 0 {
                    errno = soError
                    result = -1
                }
            }
            if result != 0 {
                lastError = String(cString: strerror(errno))
                _ = Glibc.close(socket)
                continue
            }
            _ = fcntl(socket, F_SETFL, flags)
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            fd = socket
            return
        }
        throw HTTPError(code: .transport, message: "cannot connect to \(endpoint): \(lastError)")
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        try bytes.withUnsafeBytes { raw in
            while sent < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw fail("sending to") }
                sent += n
            }
        }
    }

    /// Reads more bytes into `received`; false at the end of the connection.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw fail(errno == EAGAIN ? "timed out waiting for" : "reading from") }
            if n == 0 { return false }
            received.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    private func readLine() throws -> String {
        while true {
            if let end = received.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(received[..<end])
                received.removeSubrange(...end)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else {
                throw HTTPError(code: .transport, message: "\(endpoint) closed the connection before answering")
            }
        }
    }

    private func readBytes(_ count: Int) throws -> [UInt8] {
        while received.count < count {
            guard try fill() else {
                throw HTTPError(code: .transport, message: "\(endpoint) closed the connection mid-response")
            }
        }
        let bytes = Array(received[..<count])
        received.removeSubrange(..<count)
        return bytes
    }

    private func readResponse(method: String) throws -> HTTPResponse {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPError(code: .transport, message: "\(endpoint) answered something that is not HTTP: \(statusLine.prefix(80))")
        }
        var headers: [(String, String)] = []
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = HTTPResponse(status: status, headers: headers, body: [])
        if status == 100 { return try readResponse(method: method) }
        if method == "HEAD" || status == 204 || status == 304 { return response }
        if response.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";").first.map(String.init) ?? "", radix: 16), size >= 0 else {
                    throw HTTPError(code: .transport, message: "\(endpoint) sent a bad chunk size: \(sizeLine.prefix(40))")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                response.body += try readBytes(size)
                _ = try readLine()
            }
        } else if let length = response.header("Content-Length").flatMap({ Int($0) }) {
            response.body = try readBytes(length)
        } else {
            while try fill() {}
            response.body = received
            received = []
            close()
        }
        if response.header("Connection")?.lowercased() == "close" { close() }
        return response
    }
}
