// `beamtrace info CAPTURE [--json]`: what a capture holds (events by kind and function, nodes,
// processes, its time range in readable time, size) and the session record a live recording
// stored: command line (without the cookie), patterns, limits, stop reason, and per node its OTP
// release, clock offsets, events, drops by reason, why it ended and whether cleanup was confirmed.
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Summarize a capture and the session that recorded it.",
        discussion: """
            Examples:
              beamtrace info cap.btrace
              beamtrace info cap.btrace --json --time ns
            """)

    @Argument(help: "The capture directory.") var capture: String
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: ArgumentHelp("Count by decoding every block (CRC-checked) instead of from the block summaries the index "
                             + "points at, and check that both agree."))
    var verify = false
    @OptionGroup var times: TimeOptions
    @OptionGroup var syntax: SyntaxOptions

    func run() throws {
        let reader: CaptureReader
        let summary: CaptureSummary
        // From the block summaries when they can be trusted (a small read per block); otherwise, and
        // with --verify, by decoding every event.
        var countedFrom = "index"
        var note: String?
        do {
            reader = try CaptureReader(opening: capture)
            let (quick, why) = reader.indexSummary()
            if let quick, !verify {
                summary = quick
            } else {
                summary = try reader.summary()
                countedFrom = "blocks"
                if verify {
                    if let quick, quick != summary {
                        note = "the block summaries disagree with the events (the events are shown): "
                            + Self.difference(quick, summary)
                    }
                } else if let why {
                    note = "counted by decoding every block: \(why)"
                }
            }
        } catch {
            throw CLIError("\(error)")
        }
        let d = reader.dictionaries
        let elixir = syntax.useElixir(d)
        AnalysisIO.warn(reader.problems)
        if let note { FileHandle.standardError.write(Data("\(verify ? "warning" : "note"): \(note)\n".utf8)) }
        var functions: [String: Int] = [:]
        for (id, count) in summary.callsByFunction { functions[d.functionText(id, elixir: elixir), default: 0] += count }
        let nodes = summary.nodesSeen.sorted().map { d.nodeName($0) }
        let time = TimeText(style: times.time, start: summary.startTime ?? 0, timeBase: reader.meta.timeBase)
        let session = Self.sessionObject(reader.meta.session)
        if json {
            var kinds: [String: Int] = [:]
            for (kind, count) in summary.kinds { kinds[kind.otpName] = count }
            var object: [String: Any] = [
                "events": summary.events,
                "kinds": kinds,
                "nodes": nodes,
                "events_by_node": Dictionary(summary.eventsByNode.map { (d.nodeName($0.key), $0.value) },
                                             uniquingKeysWith: +),
                "counted_from": countedFrom,
                "start_ns": summary.startTime.map { $0 as Any } ?? NSNull(),
                "end_ns": summary.endTime.map { $0 as Any } ?? NSNull(),
                "start": summary.startTime.map { time.instant($0) as Any } ?? NSNull(),
                "end": summary.endTime.map { time.instant($0) as Any } ?? NSNull(),
                "processes": summary.processesSeen.count,
                "functions": functions,
                "bytes_on_disk": reader.bytesOnDisk,
                "bytes_per_event": summary.events > 0 ? Double(reader.bytesOnDisk) / Double(summary.events) : 0,
                "drops": summary.drops,
                "blocks": reader.blocks.count,
                "segments": reader.segmentNumbers.count,
                "time_base": reader.meta.timeBase,
                "recovered_bytes_cut": reader.bytesCut,
                "problems": reader.problems.map { $0.fields as [String: Any] },
                "sealed": reader.isSealed,
                "sources": reader.meta.sources,
                "start_reason": reader.meta.startReason.map { $0 as Any } ?? NSNull(),
                "stop_reason": reader.meta.stopReason.map { $0 as Any } ?? NSNull(),
                "meta_nodes": reader.meta.nodes.map { node -> [String: Any] in
                    ["name": node.name, "otp_release": node.otpRelease ?? NSNull(),
                     "clock_offset_ns": node.clockOffsetNs.map { $0 as Any } ?? NSNull()]
                },
            ]
            if let session { object["session"] = session }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
            if verify, note != nil { throw ExitCode(2) }
            return
        }
        var out: [String] = []
        func line(_ key: String, _ value: String) { out.append(key.padding(toLength: 13, withPad: " ", startingAt: 0) + value) }
        line("capture", capture)
        line("events", "\(summary.events)")
        if let start = summary.startTime, let end = summary.endTime {
            line("time", "\(time.instant(start)) .. \(time.instant(end)) (\(DurationText.text(end - start)), "
                 + "\(reader.meta.timeBase == "system" ? "wall clock" : "\(reader.meta.timeBase) clock"))")
        } else {
            line("time", "-")
        }
        line("nodes", nodes.joined(separator: ", "))
        line("processes", "\(summary.processesSeen.count)")
        line("functions", "\(functions.count)")
        line("on disk", "\(reader.bytesOnDisk) bytes in \(reader.segmentNumbers.count) segment(s), \(reader.blocks.count) block(s)"
             + (summary.events > 0 ? String(format: ", %.2f bytes/event", Double(reader.bytesOnDisk) / Double(summary.events)) : ""))
        line("drops", "\(summary.drops)")
        if reader.bytesCut > 0 { line("recovered", "cut \(reader.bytesCut) bytes of torn tail") }
        if !reader.meta.sources.isEmpty { line("sources", reader.meta.sources.joined(separator: ", ")) }
        if let reason = reader.meta.stopReason { line("stopped", reason) }
        if let session { out += Self.sessionLines(session) } else {
            for node in reader.meta.nodes {
                line("node", "\(node.name) OTP \(node.otpRelease ?? "?")"
                     + (node.clockOffsetNs.map { ", clock offset \($0) ns" } ?? ""))
            }
        }
        out.append("by kind:")
        // Most first; equal counts by name, so the listing is the same on every run (the counts are a
        // dictionary, whose order changes with each process's hash seed).
        let kinds = summary.kinds.map { (name: $0.key.otpName, count: $0.value) }
        for (kind, count) in kinds.sorted(by: { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }) {
            out.append("  \(kind.padding(toLength: 30, withPad: " ", startingAt: 0)) \(count)")
        }
        out.append("by function:")
        for (name, count) in functions.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }).prefix(50) {
            out.append("  \(name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(count)")
        }
        print(out.joined(separator: "\n"))
        if verify, note != nil { throw ExitCode(2) }
    }

    /// Which totals two summaries disagree on.
    static func difference(_ a: CaptureSummary, _ b: CaptureSummary) -> String {
        var parts: [String] = []
        if a.events != b.events { parts.append("events \(a.events) vs \(b.events)") }
        if a.kinds != b.kinds { parts.append("counts by kind") }
        if a.callsByFunction != b.callsByFunction { parts.append("calls by function") }
        if a.eventsByNode != b.eventsByNode { parts.append("events by node") }
        if a.processesSeen != b.processesSeen { parts.append("processes \(a.processesSeen.count) vs \(b.processesSeen.count)") }
        if a.startTime != b.startTime || a.endTime != b.endTime { parts.append("time range") }
        if a.drops != b.drops { parts.append("drops \(a.drops) vs \(b.drops)") }
        return parts.joined(separator: ", ")
    }

    static func sessionObject(_ text: String?) -> [String: Any]? {
        guard let text, let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object
    }

    /// The session record in lines: command, what was traced, limits, and each node.
    static func sessionLines(_ s: [String: Any]) -> [String] {
        var out: [String] = []
        func line(_ key: String, _ value: String) { out.append(key.padding(toLength: 13, withPad: " ", startingAt: 0) + value) }
        if let command = s["command"] as? [String] { line("command", command.joined(separator: " ")) }
        if let transport = s["transport"] as? String { line("transport", transport) }
        if let patterns = s["patterns"] as? [String] { line("patterns", patterns.joined(separator: " ")) }
        if let processes = s["processes"] as? [String] { line("procs", processes.joined(separator: ", ")) }
        var traced: [String] = []
        if (s["callsOnly"] as? Bool) == true { traced.append("calls only") }
        if (s["arguments"] as? Bool) == true { traced.append("with arguments") }
        if !traced.isEmpty { line("tracing", traced.joined(separator: ", ")) }
        if let limits = s["limits"] as? [String: Any] {
            var parts: [String] = []
            if let v = limits["durationSeconds"] as? Double { parts.append("duration \(DurationText.text(Int64(v * 1e9)))") }
            if let v = limits["maxEvents"] as? Int { parts.append("max events \(v)") }
            if let v = limits["maxRate"] as? Int { parts.append("max rate \(v)/s per node") }
            if let v = limits["untilQueue"] as? Int {
                parts.append("until a queue exceeds \(v), then \(DurationText.text(Int64(((limits["afterSeconds"] as? Double) ?? 0) * 1e9)))")
            }
            if let v = limits["ringBytes"] as? Int { parts.append("ring \(v) bytes") }
            line("limits", parts.isEmpty ? "none" : parts.joined(separator: ", "))
        }
        if let v = s["sampleIntervalSeconds"] as? Double { line("sampling", "every \(DurationText.text(Int64(v * 1e9)))") }
        if let reason = s["stopReason"] as? String { line("stop reason", reason) }
        for node in (s["nodes"] as? [[String: Any]]) ?? [] {
            let name = node["name"] as? String ?? "?"
            var text = "\(name): OTP \(node["otpRelease"] as? String ?? "?")"
            if let events = node["events"] as? Int { text += ", \(events) events" }
            if let drops = node["drops"] as? Int {
                text += ", \(drops) dropped"
                if let by = node["dropsByReason"] as? [String: Int], !by.isEmpty {
                    text += " (" + by.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
                }
            }
            line("node", text)
            var clock: [String] = []
            if let o = node["clockOffsetStartNs"] as? Int64 ?? (node["clockOffsetStartNs"] as? Int).map(Int64.init) {
                clock.append("offset at start \(o) ns (round trip \(DurationText.text(Int64(node["clockRoundTripStartNs"] as? Int ?? 0))))")
            }
            if let o = node["clockOffsetEndNs"] as? Int64 ?? (node["clockOffsetEndNs"] as? Int).map(Int64.init) {
                clock.append("at end \(o) ns (round trip \(DurationText.text(Int64(node["clockRoundTripEndNs"] as? Int ?? 0))))")
            }
            if !clock.isEmpty { line("", "clock " + clock.joined(separator: ", ")) }
            if let end = node["endReason"] as? String { line("", "ended: \(end)") }
            if let cleaned = node["cleanedUp"] as? Bool {
                line("", cleaned ? "cleanup confirmed (agent unloaded, checked)" : "cleanup NOT confirmed")
            }
        }
        return out
    }
}
