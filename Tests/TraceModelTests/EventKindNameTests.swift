// Event kinds carry OTP's trace tag names, both ways.
import Testing
import TraceModel

@Test("every kind prints as OTP's tag and parses back")
func kindNamesRoundTrip() {
    for kind in EventKind.allCases {
        #expect(EventKind(otpName: kind.otpName) == kind)
    }
    #expect(EventKind.returnFrom.otpName == "return_from")
    #expect(EventKind.receive.otpName == "receive")
    #expect(EventKind.gcMinorStart.otpName == "gc_minor_start")
    #expect(EventKind(otpName: "no_such_tag") == nil)
}
