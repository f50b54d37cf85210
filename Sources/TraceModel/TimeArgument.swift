// The one argument type for times people type, with the same units everywhere: `ns us ms s m h`
// (`µs` too). A duration needs its unit (a bare number is refused: is 30 seconds or nanoseconds?).
// An instant in a capture is a duration after its start (`1s`, `+1.5s`), a wall-clock time on the
// capture's day (`14:52:20.159690`) or date and time (`2026-12-01T14:52:20`, `2026-12-01 14:52:20`),
// or the raw nanoseconds `--time ns` prints (13 digits or more, or with `ns` after an `@`: `@123ns`).
// Parsing is exact decimal arithmetic with overflow checks: no Double round trip.
import Foundation

public struct TimeArgumentError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

public enum DurationText {
    static let units: [(String, Int64)] = [("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000),
                                           ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
    public static let unitHelp = "a number with a unit: ns, us, ms, s, m (minutes) or h, e.g. 250ms, 1.5s, 2m"

    /// Nanoseconds in `250ms`, `1.5s`, `2m`, `30us`, `100ns`, `1h`. Throws for a bare number, an
    /// unknown unit, or a value beyond Int64 nanoseconds (about 292 years).
    public static func parse(_ text: String) throws(TimeArgumentError) -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var negative = false
        var body = Substring(trimmed)
        if body.hasPrefix("-") { negative = true; body = body.dropFirst() }
        let digits = body.prefix { $0.isNumber || $0 == "." }
        let unit = body.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        guard !digits.isEmpty else { throw TimeArgumentError("bad duration '\(text)': give \(unitHelp)") }
        guard !unit.isEmpty else {
            throw TimeArgumentError("'\(text)' has no unit: give \(unitHelp)")
        }
        guard let scale = units.first(where: { $0.0 == unit })?.1 else {
            throw TimeArgumentError("unknown unit '\(unit)' in '\(text)': give \(unitHelp)")
        }
        guard let value = scaled(String(digits), by: scale) else {
            throw TimeArgumentError("bad duration '\(text)': not a number, or too large")
        }
        return negative ? -value : value
    }

    /// A decimal text (`1.5`) times `scale`, exactly; nil on overflow or a bad number.
    public static func scaled(_ text: String, by scale: Int64) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count <= 2, !(parts.count == 2 && parts[0].isEmpty && parts[1].isEmpty) else { return nil }
        let whole = parts[0].isEmpty ? 0 : Int64(parts[0])
        guard let whole else { return nil }
        let (product, overflow) = whole.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        guard parts.count == 2, !parts[1].isEmpty else { return product }
        guard parts[1].allSatisfy(\.isNumber) else { return nil }
        // The fraction's digits, one at a time (beyond ns precision they are dropped).
        var fraction: Int64 = 0
        var unit = scale
        for digit in parts[1] {
            unit /= 10
            guard unit > 0, let d = digit.wholeNumberValue else { break }
            fraction += Int64(d) * unit
        }
        let (sum, overflow2) = product.addingReportingOverflow(fraction)
        return overflow2 ? nil : sum
    }

    /// A duration for a person: `1.23 ms`, `4.50 s`, `2.5 min`, `312 ns`.
    public static func text(_ ns: Int64) -> String {
        let value = Double(ns)
        if abs(value) >= 60e9 { return String(format: "%.1f min", value / 60e9) }
        if abs(value) >= 1e9 { return String(format: "%.3g s", value / 1e9) }
        if abs(value) >= 1e6 { return String(format: "%.3g ms", value / 1e6) }
        if abs(value) >= 1e3 { return String(format: "%.3g µs", value / 1e3) }
        return "\(ns) ns"
    }
}

/// An instant as typed, resolved against a capture by `resolve(start:timeBase:)`.
public enum InstantArgument: Sendable, Hashable {
    /// This long after the capture's first event.
    case afterStart(Int64)
    /// Raw nanoseconds on the capture's clock.
    case raw(Int64)
    /// Local wall-clock time of day in nanoseconds since midnight (on the capture's first day).
    case timeOfDay(Int64)
    /// Local date and time, as nanoseconds since 1970.
    case wallClock(Int64)

    public static let help = "an instant: a duration after the capture's start (1s, +250ms), a wall-clock time "
        + "(14:52:20.159690 or 2026-12-01T14:52:20), or raw nanoseconds as --time ns prints them"

    public init(parsing text: String) throws(TimeArgumentError) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("@") {
            var body = t.dropFirst()
            if body.hasSuffix("ns") { body = body.dropLast(2) }
            guard let value = Int64(body) else { throw TimeArgumentError("bad raw time '\(text)': @ then nanoseconds") }
            self = .raw(value)
            return
        }
        let unsigned = t.hasPrefix("-") ? t.dropFirst() : Substring(t)
        if !unsigned.isEmpty, unsigned.allSatisfy(\.isNumber) {
            guard unsigned.count >= 13, let value = Int64(t) else {
                throw TimeArgumentError("'\(text)' has no unit: give \(Self.help) (a duration needs a unit: "
                                        + "\(DurationText.unitHelp))")
            }
            self = .raw(value)
            return
        }
        if t.contains(":") {
            self = try Self.parseClock(t, original: text)
            return
        }
        if t.hasPrefix("+") {
            self = .afterStart(try DurationText.parse(String(t.dropFirst())))
            return
        }
        do {
            self = .afterStart(try DurationText.parse(t))
        } catch {
            throw TimeArgumentError("bad instant '\(text)': give \(Self.help)")
        }
    }

    /// Nanoseconds on the capture's clock.
    public func resolve(start: Int64, timeBase: String) throws(TimeArgumentError) -> Int64 {
        switch self {
        case .raw(let ns): return ns
        case .afterStart(let delta):
            let (sum, overflow) = start.addingReportingOverflow(delta)
            guard !overflow else { throw TimeArgumentError("the instant is out of range") }
            return sum
        case .timeOfDay(let sinceMidnight):
            guard timeBase == "system" else {
                throw TimeArgumentError("this capture has no wall clock (its times are monotonic): give a time after "
                                        + "its start instead (e.g. 1.5s)")
            }
            // Local midnight of the capture's first day.
            let seconds = start >= 0 ? start / 1_000_000_000 : (start - 999_999_999) / 1_000_000_000
            var t = time_t(seconds)
            var parts = tm()
            localtime_r(&t, &parts)
            parts.tm_hour = 0
            parts.tm_min = 0
            parts.tm_sec = 0
            let midnight = Int64(mktime(&parts)) * 1_000_000_000
            return midnight + sinceMidnight
        case .wallClock(let ns):
            guard timeBase == "system" else {
                throw TimeArgumentError("this capture has no wall clock (its times are monotonic): give a time after "
                                        + "its start instead (e.g. 1.5s)")
            }
            return ns
        }
    }

    private static func parseClock(_ t: String, original: String) throws(TimeArgumentError) -> InstantArgument {
        let bad = TimeArgumentError("bad time '\(original)': give HH:MM:SS[.ffffff] or YYYY-MM-DDTHH:MM:SS[.ffffff]")
        var datePart: Substring?
        var clock = Substring(t)
        if let sep = t.firstIndex(where: { $0 == "T" || $0 == " " }) {
            datePart = t[..<sep]
            clock = t[t.index(after: sep)...]
        }
        let hms = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard hms.count == 3 || hms.count == 2, let h = Int64(hms[0]), let m = Int64(hms[1]), h < 24, m < 60 else {
            throw bad
        }
        var secondsNs: Int64 = 0
        if hms.count == 3 {
            guard let s = DurationText.scaled(String(hms[2]), by: 1_000_000_000), s < 60_000_000_000 else { throw bad }
            secondsNs = s
        }
        let sinceMidnight = h * 3_600_000_000_000 + m * 60_000_000_000 + secondsNs
        guard let datePart else { return .timeOfDay(sinceMidnight) }
        let ymd = datePart.split(separator: "-")
        guard ymd.count == 3, let y = Int32(ymd[0]), let mo = Int32(ymd[1]), let d = Int32(ymd[2]) else { throw bad }
        var parts = tm()
        parts.tm_year = y - 1900
        parts.tm_mon = mo - 1
        parts.tm_mday = d
        parts.tm_isdst = -1
        let midnight = Int64(mktime(&parts)) * 1_000_000_000
        return .wallClock(midnight + sinceMidnight)
    }
}
