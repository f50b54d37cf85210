// The one time type: instants printed as wall clock (checked against date(1)), relative or raw;
// durations and instants parsed with the same units everywhere, exactly, refusing bare numbers
// where they would be ambiguous and values beyond Int64 nanoseconds.
import Foundation
import Testing
import TestSupport
import TraceModel

@Suite struct TimeTextTests {
    @Test func wallClockMatchesDateAndTheDateComesWhenItChanges() throws {
        let ns: Int64 = 1_795_555_940_159_690_772
        let seconds = ns / 1_000_000_000
        let expectedTime = try coreutilsDate(["-d", "@\(seconds)", "+%H:%M:%S"]) + ".159690"
        let expectedDate = try coreutilsDate(["-d", "@\(seconds)", "+%Y-%m-%d"])
        var text = TimeText(style: nil, start: ns, timeBase: "system")
        #expect(text.style == .abs)
        #expect(text.text(ns) == "\(expectedDate) \(expectedTime)")
        #expect(text.text(ns + 1_000) == expectedTime.dropLast(6) + "159691")
        // A day later: the date again.
        let nextDay = ns + 86_400_000_000_000
        let nextDate = try coreutilsDate(["-d", "@\(seconds + 86_400)", "+%Y-%m-%d"])
        #expect(text.text(nextDay).hasPrefix(nextDate + " "))
        #expect(text.instant(ns) == "\(expectedDate) \(expectedTime)")
    }

    @Test func relativeAndRawAndMonotonicCaptures() {
        let start: Int64 = -576_460_751_000_000_000
        var mono = TimeText(style: nil, start: start, timeBase: "monotonic")
        #expect(mono.style == .rel)
        #expect(mono.text(start + 1_234_567_000) == "+1.234567 s")
        #expect(TimeText(style: .abs, start: start, timeBase: "monotonic").style == .rel)
        #expect(TimeText.relative(-120_000) == "-0.000120 s")
        #expect(TimeText.relative(999_999_600) == "+1.000000 s")
        var raw = TimeText(style: .ns, start: 0, timeBase: "system")
        #expect(raw.text(1_795_555_940_159_690_772) == "1795555940159690772")
    }

    @Test func durationsHaveUnitsAndNeverOverflow() throws {
        #expect(try DurationText.parse("250ms") == 250_000_000)
        #expect(try DurationText.parse("1.5s") == 1_500_000_000)
        #expect(try DurationText.parse("2m") == 120_000_000_000)
        #expect(try DurationText.parse("1h") == 3_600_000_000_000)
        #expect(try DurationText.parse("30us") == 30_000)
        #expect(try DurationText.parse("30µs") == 30_000)
        #expect(try DurationText.parse("100ns") == 100)
        #expect(try DurationText.parse("0.000000001s") == 1)
        // 0.1 s exactly (a Double round trip gives 99999999 on some values).
        #expect(try DurationText.parse("0.3s") == 300_000_000)
        for bad in ["30", "1.5", "5x", "s", "1e400s", "99999999999h", "", "1.2.3s"] {
            #expect(throws: TimeArgumentError.self, "\(bad)") { try DurationText.parse(bad) }
        }
        var message = ""
        do { _ = try DurationText.parse("30") } catch { message = error.description }
        #expect(message.contains("no unit"))
    }

    @Test func instantsResolveAgainstTheCapture() throws {
        let start: Int64 = 1_795_555_940_159_690_772
        #expect(try InstantArgument(parsing: "1s").resolve(start: start, timeBase: "system") == start + 1_000_000_000)
        #expect(try InstantArgument(parsing: "+250ms").resolve(start: start, timeBase: "system") == start + 250_000_000)
        #expect(try InstantArgument(parsing: "1795555941000000000").resolve(start: start, timeBase: "system")
                == 1_795_555_941_000_000_000)
        #expect(try InstantArgument(parsing: "@-5ns").resolve(start: start, timeBase: "monotonic") == -5)
        let seconds = start / 1_000_000_000
        let clock = try coreutilsDate(["-d", "@\(seconds)", "+%H:%M:%S"])
        #expect(try InstantArgument(parsing: clock + ".5").resolve(start: start, timeBase: "system")
                == seconds * 1_000_000_000 + 500_000_000)
        let full = try coreutilsDate(["-d", "@\(seconds)", "+%Y-%m-%dT%H:%M:%S"])
        #expect(try InstantArgument(parsing: full).resolve(start: start, timeBase: "system") == seconds * 1_000_000_000)
        #expect(throws: TimeArgumentError.self) { try InstantArgument(parsing: "12:00:00").resolve(start: 0, timeBase: "monotonic") }
        #expect(throws: TimeArgumentError.self) { try InstantArgument(parsing: "1500") }
        #expect(throws: TimeArgumentError.self) { try InstantArgument(parsing: "+9223372036854775807s") }
        #expect(throws: TimeArgumentError.self) {
            try InstantArgument(parsing: "+292y")
        }
        #expect(throws: TimeArgumentError.self) {
            try InstantArgument(parsing: "+9000000000s").resolve(start: start, timeBase: "system")
        }
    }
}
