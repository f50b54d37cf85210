// The one time type for what people read: an instant of a capture printed as wall-clock time
// (`14:52:20.159690`, with the date on the first line and whenever it changes), relative to the
// capture's start (`+1.234567 s`) or as the raw nanoseconds the capture stores. Captures on a
// monotonic clock (imported dbg files without `timestamp`) have no wall clock: they print relative.
import BeamTerm
import Foundation

/// How instants are printed (`--time abs|rel|ns`).
public enum TimeStyle: String, Sendable, CaseIterable, Hashable {
    /// Wall clock, local time zone, microseconds.
    case abs
    /// Seconds since the capture's start, `+1.234567 s`.
    case rel
    /// The raw nanoseconds on the capture's clock.
    case ns
}

/// Prints instants of one capture. A value type: a stream printer keeps one and calls `text(_:)`,
/// which puts the date in front whenever it differs from the previous line's.
public struct TimeText: Sendable {
    public let style: TimeStyle
    /// The capture's first instant (relative times count from here).
    public let start: Int64
    /// True when the capture's clock is nanoseconds since 1970 (live recordings, `timestamp` imports).
    public let isWallClock: Bool
    private var lastDay: Int64 = .min
    /// The last second printed, its `HH:MM:SS.` and its date, so a stream formats each second once.
    private var cachedSecond: Int64 = .min
    private var cachedClock: [UInt8] = []
    private var cachedDate: [UInt8] = []
    private var cachedDay: Int64 = .min

    /// `style` nil picks the default: wall clock when the capture has one, else relative. Asking for
    /// `abs` on a monotonic capture gives relative (there is no wall clock to show).
    public init(style: TimeStyle?, start: Int64, timeBase: String) {
        isWallClock = timeBase == "system"
        let chosen = style ?? (isWallClock ? .abs : .rel)
        self.style = chosen == .abs && !isWallClock ? .rel : chosen
        self.start = start
    }

    /// The instant for a line of a stream (the date only when it changed).
    public mutating func text(_ ns: Int64) -> String {
        guard style == .abs else { return Self.format(ns, style: style, start: start) }
        let parts = Self.wallClock(ns)
        if parts.day != lastDay {
            lastDay = parts.day
            return parts.date + " " + parts.time
        }
        return parts.time
    }

    /// `text(_:)` appended to a byte buffer (no String per line).
    public mutating func write(_ ns: Int64, into out: inout [UInt8]) { writeLine(ns, into: &out) }

    /// `text(_:)` appended to a `TextBuffer`.
    public mutating func write(_ ns: Int64, into out: inout TextBuffer) {
        if style == .rel { Self.writeRelative(ns &- start, into: &out) } else { writeLine(ns, into: &out) }
    }

    /// `instant(_:)` appended to a byte buffer.
    public mutating func writeInstant(_ ns: Int64, into out: inout [UInt8]) { writeAnyInstant(ns, into: &out) }

    /// `instant(_:)` appended to a `TextBuffer`.
    public mutating func writeInstant(_ ns: Int64, into out: inout TextBuffer) {
        if style == .rel { Self.writeRelative(ns &- start, into: &out) } else { writeAnyInstant(ns, into: &out) }
    }

    private mutating func writeLine<Out: ByteSink & ~Copyable>(_ ns: Int64, into out: inout Out) {
        switch style {
        case .ns: NumberText.append(ns, to: &out)
        case .rel: Self.writeRelative(ns &- start, into: &out)
        case .abs:
            let micros = clock(ns)
            if cachedDay != lastDay {
                lastDay = cachedDay
                cachedDate.withUnsafeBytes { out.append(bytes: $0) }
                out.append(32)
            }
            cachedClock.withUnsafeBytes { out.append(bytes: $0) }
            NumberText.appendPadded(micros, width: 6, to: &out)
        }
    }

    private mutating func writeAnyInstant<Out: ByteSink & ~Copyable>(_ ns: Int64, into out: inout Out) {
        switch style {
        case .ns: NumberText.append(ns, to: &out)
        case .rel: Self.writeRelative(ns &- start, into: &out)
        case .abs:
            let micros = clock(ns)
            cachedDate.withUnsafeBytes { out.append(bytes: $0) }
            out.append(32)
            cachedClock.withUnsafeBytes { out.append(bytes: $0) }
            NumberText.appendPadded(micros, width: 6, to: &out)
        }
    }

    /// Fills the cached second for `ns`; returns its microseconds.
    private mutating func clock(_ ns: Int64) -> Int {
        let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        if seconds != cachedSecond {
            let parts = Self.wallClock(seconds * 1_000_000_000)
            cachedSecond = seconds
            cachedDate = Array(parts.date.utf8)
            cachedClock = Array(parts.time.utf8.prefix(9))  // HH:MM:SS.
            cachedDay = parts.day
        }
        return Int((ns - seconds * 1_000_000_000) / 1000)
    }

    /// `writeRelative` written in place: `+S.uuuuuu s`.
    static func writeRelative(_ delta: Int64, into out: inout TextBuffer) {
        let micros = (delta.magnitude + 500) / 1000
        let seconds = micros / 1_000_000
        let fraction = UInt32(truncatingIfNeeded: micros % 1_000_000)
        // Seconds of up to 14 digits, a sign, a point, six digits, " s".
        out.appendUninitialized(10 + digits(seconds)) { p in
            p[0] = delta < 0 ? 45 : 43
            let n = digits(seconds)
            _ = NumberText.write(seconds, endingAt: p + 1 + n)
            p[1 + n] = 46
            NumberText.writeSix(fraction, at: p + 2 + n)
            p[8 + n] = 32
            p[9 + n] = 115
        }
    }

    @inline(__always)
    static func digits(_ value: UInt64) -> Int {
        var n = 1
        var v = value
        while v >= 10 { v /= 10; n += 1 }
        return n
    }

    static func writeRelative<Out: ByteSink & ~Copyable>(_ delta: Int64, into out: inout Out) {
        // `+S.uuuuuu s` built in one piece of scratch: sign, seconds, point, six digits, unit.
        let micros = (delta.magnitude + 500) / 1000
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: 20 digits + 10
        withUnsafeMutableBytes(of: &scratch) { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            let end = base + 32
            end[-1] = 115  // s
            end[-2] = 32
            var fraction = micros % 1_000_000
            for k in 3...8 {
                end[-k] = UInt8(truncatingIfNeeded: 48 &+ fraction % 10)
                fraction /= 10
            }
            end[-9] = 46
            let n = NumberText.write(micros / 1_000_000, endingAt: end - 9)
            let first = end - 9 - n - 1
            first[0] = delta < 0 ? 45 : 43
            out.append(bytes: UnsafeRawBufferPointer(start: first, count: end - first))
        }
    }

    /// The instant on its own (always with the date in `abs`).
    public func instant(_ ns: Int64) -> String { Self.format(ns, style: style, start: start) }

    public static func format(_ ns: Int64, style: TimeStyle, start: Int64) -> String {
        switch style {
        case .ns: return String(ns)
        case .rel: return relative(ns &- start)
        case .abs:
            let parts = wallClock(ns)
            return parts.date + " " + parts.time
        }
    }

    /// `+1.234567 s` / `-0.000120 s`: seconds with microseconds, exact (integer arithmetic).
    public static func relative(_ delta: Int64) -> String {
        let sign = delta < 0 ? "-" : "+"
        let magnitude = delta.magnitude
        let micros = (magnitude + 500) / 1000
        let fraction = String(micros % 1_000_000)
        return "\(sign)\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction) s"
    }

    /// Local date (`2026-12-01`), time (`14:52:20.159690`) and a day number to notice changes.
    static func wallClock(_ ns: Int64) -> (date: String, time: String, day: Int64) {
        let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        let micros = (ns - seconds * 1_000_000_000) / 1000
        var t = time_t(seconds)
        var parts = tm()
        localtime_r(&t, &parts)
        let date = String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
        let time = String(format: "%02d:%02d:%02d.%06d", Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(micros))
        let day = Int64(parts.tm_year) * 400 + Int64(parts.tm_yday)
        return (date, time, day)
    }
}
