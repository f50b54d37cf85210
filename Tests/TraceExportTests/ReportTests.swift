// `beamtrace report` loaded in headless Chromium (Debian's `chromium`): no console message, no
// network request from the page, a screenshot that is not blank, and the numbers on the page equal
// the CLI's JSON for the same captures (events, top suspect, p99 of the top functions, the
// before/after changes).
import Foundation
import Testing
import TestSupport

@Suite("report: a self-contained HTML page, checked in headless Chromium", .serialized)
struct ReportTests {
    static let traces = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces")

    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    static func chromium() throws -> String {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Checkers.Failure(description: "chromium is not installed: scripts/bootstrap installs Debian's chromium, "
            + "which this test needs to load the report")
    }

    static let quiet = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
                        "--disable-extensions", "--no-default-browser-check", "--hide-scrollbars"]

    struct Loaded {
        var dom: String
        var consoleLines: [String]
        var pageRequests: [String]
        var screenshot: String
    }

    /// Loads `page` twice: once for its DOM, console and network log, once for a screenshot.
    func load(_ page: String, in directory: URL) throws -> Loaded {
        let chromium = try Self.chromium()
        let netLog = directory.appendingPathComponent("net.json").path
        let profile = directory.appendingPathComponent("profile").path
        let dom = try Shell.runCapturing(chromium, Self.quiet + ["--user-data-dir=" + profile, "--enable-logging=stderr",
                                                                  "--v=0", "--log-net-log=" + netLog, "--dump-dom",
                                                                  "file://" + page], timeout: 120)
        #expect(dom.status == 0, "chromium failed: \(dom.stderr.suffix(1000))")
        let shot = directory.appendingPathComponent("shot.png").path
        let screenshot = try Shell.runCapturing(chromium, Self.quiet + ["--user-data-dir=" + profile + "2", "--window-size=1100,2000",
                                                                         "--screenshot=" + shot, "file://" + page], timeout: 120)
        #expect(screenshot.status == 0, "chromium failed: \(screenshot.stderr.suffix(1000))")
        // Requests the page made (its frame's isolation key is the file:// site), not the browser's own.
        let requests = try Shell.run("/usr/bin/env", ["python3", "-c", """
            import json, sys
            d = json.load(open(sys.argv[1]))
            for e in d['events']:
                p = e.get('params', {})
                if 'url' in p and 'file://' in p.get('network_isolation_key', '') and not p['url'].startswith('file:'):
                    print(p['url'])
            """, netLog])
        return Loaded(dom: dom.stdout, consoleLines: dom.stderr.split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") },
                      pageRequests: requests.split(separator: "\n").map(String.init), screenshot: shot)
    }

    /// `data-check` values (with their `data-mfa`) from the page.
    static func checks(_ dom: String) -> [(check: String, mfa: String?, value: String)] {
        let pattern = try? Regex(#"data-check="([^"]*)" data-value="([^"]*)"(?: data-mfa="([^"]*)")?"#)
        guard let pattern else { return [] }
        return dom.matches(of: pattern).compactMap { match in
            guard let check = match.output[1].substring, let value = match.output[2].substring else { return nil }
            return (String(check), match.output[3].substring.map { unescape(String($0)) }, unescape(String(value)))
        }
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    func json(_ arguments: [String]) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try Shell.run(try beamtrace(), arguments, timeout: 120).utf8))
    }

    /// Share of pixels unlike the most common one, from the PNG itself (zlib + PNG's row filters).
    func inkShare(_ png: String) throws -> Double {
        Double(try Shell.run("/usr/bin/env", ["python3", "-c", """
            import struct, sys, zlib, collections
            data = open(sys.argv[1], 'rb').read()
            pos, idat, w, h, bpp = 8, b'', 0, 0, 4
            while pos < len(data):
                n, kind = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
                if kind == b'IHDR':
                    w, h, depth, color = struct.unpack('>IIBB', body[:10]); bpp = {2: 3, 6: 4, 0: 1, 4: 2}[color]
                elif kind == b'IDAT': idat += body
            raw, stride, prev, pixels = zlib.decompress(idat), w * bpp, bytearray(w * bpp), collections.Counter()
            for y in range(h):
                f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
                for i in range(stride):
                    a = row[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
                    if f == 1: row[i] = (row[i] + a) & 255
                    elif f == 2: row[i] = (row[i] + b) & 255
                    elif f == 3: row[i] = (row[i] + (a + b) // 2) & 255
                    elif f == 4:
                        p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                        row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
                for x in range(0, stride, bpp * 4): pixels[bytes(row[x:x + bpp])] += 1
                prev = row
            total = sum(pixels.values()); print((total - pixels.most_common(1)[0][1]) / total)
            """, png]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    @Test("before --vs after: loads clean, shows the CLI's events, suspects, p99s and before/after changes")
    func comparison() throws {
        let before = Self.traces.appendingPathComponent("slow-call-before.btrace").path
        let after = Self.traces.appendingPathComponent("slow-call-after.btrace").path
        let directory = try Erlang.temporaryDirectory("bt-report")
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("report.html").path
        let made = try Shell.runCapturing(try beamtrace(), ["report", before, "--vs", after, "-o", page], timeout: 120)
        #expect(made.status == 0, "report failed: \(made.stderr)")
        let size = (try FileManager.default.attributesOfItem(atPath: page)[.size] as? Int) ?? 0
        #expect(size > 10_000 && size < 3_000_000)

        let loaded = try load(page, in: directory)
        #expect(loaded.consoleLines.isEmpty, "\(loaded.consoleLines)")
        #expect(loaded.pageRequests.isEmpty, "the page asked the network for \(loaded.pageRequests)")
        #expect(try inkShare(loaded.screenshot) > 0.02, "the screenshot is blank")

        let checks = Self.checks(loaded.dom)
        func value(_ check: String, _ mfa: String? = nil) -> String? { checks.first { $0.check == check && $0.mfa == mfa }?.value }
        let info = try #require(try json(["info", before, "--json"]) as? [String: Any])
        let infoAfter = try #require(try json(["info", after, "--json"]) as? [String: Any])
        #expect(value("events") == (info["events"] as? Int).map(String.init))
        #expect(value("after-events") == (infoAfter["events"] as? Int).map(String.init))
        let hang = try #require(try json(["hang", before, "--json"]) as? [String: Any])
        let suspects = (hang["suspects"] as? [[String: Any]]) ?? []
        #expect(value("top-suspect") == ((suspects.first?["pid"] as? String) ?? "none"))

        let latency = try #require(try json(["latency", before, "--json"]) as? [String: Any])
        let rows = (latency["functions"] as? [[String: Any]]) ?? []
        let shownP99 = checks.filter { $0.check == "p99" }
        #expect(shownP99.count >= 3)
        for shown in shownP99 {
            let row = rows.first { $0["mfa"] as? String == shown.mfa }
            #expect(Double(shown.value) == row?["p99_us"] as? Double, "p99 of \(shown.mfa ?? "?")")
        }

        let diff = try #require(try json(["diff", before, after, "--json"]) as? [String: Any])
        let functions = (diff["functions"] as? [[String: Any]]) ?? []
        #expect(!functions.isEmpty)
        for function in functions {
            let mfa = function["mfa"] as? String
            #expect(value("p99-change", mfa).flatMap(Double.init) == function["p99_change_pct"] as? Double, "Δp99 of \(mfa ?? "?")")
            #expect(value("significant", mfa) == (function["significant"] as? Bool).map { String($0) })
        }
        // The fix shows: the frontend's calls got significantly faster.
        #expect((diff["improvements"] as? [String])?.contains("demo_slowcall:handle_call/3") == true)
        #expect(loaded.dom.contains("<tr class=\"improvement\"><td class=\"mono\">demo_slowcall:handle_call/3</td>"))
    }

    @Test("a capture with a hang: the page's top suspect and verdict are the CLI's")
    func hang() throws {
        let capture = Self.traces.appendingPathComponent("mailbox-overload.btrace").path
        let directory = try Erlang.temporaryDirectory("bt-report")
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("report.html").path
        _ = try Shell.run(try beamtrace(), ["report", capture, "-o", page], timeout: 120)
        let loaded = try load(page, in: directory)
        #expect(loaded.consoleLines.isEmpty && loaded.pageRequests.isEmpty)
        let hang = try #require(try json(["hang", capture, "--json"]) as? [String: Any])
        let top = ((hang["suspects"] as? [[String: Any]])?.first?["pid"] as? String)
        #expect(top != nil)
        #expect(Self.checks(loaded.dom).first { $0.check == "top-suspect" }?.value == top)
        let verdict = try #require(hang["verdict"] as? String)
        #expect(loaded.dom.contains(verdict.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")))
    }
}
