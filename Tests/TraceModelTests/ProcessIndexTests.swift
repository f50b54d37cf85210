// The process dictionary's identity index: built lazily, first id wins for an identity listed
// twice, and copies that grow apart never see each other's ids.
import Testing
@testable import TraceModel

@Suite struct ProcessIndexTests {
    static func pid(_ n: UInt32) -> ProcessIdentity { .pid(node: 1, id: n, serial: 0, creation: 1) }

    @Test func restoredProcessesAreFoundByIdentityAndTheFirstIDWins() {
        var d = TraceDictionaries()
        _ = d.intern(node: "a@h")
        for n in 1...5000 { d.restore(process: ProcessEntry(identity: Self.pid(UInt32(n))), id: ProcessID(n)) }
        // The same identity again under a later id (as a damaged or merged capture may hold).
        d.restore(process: ProcessEntry(identity: Self.pid(7)), id: 5001)
        #expect(d.processID(Self.pid(7)) == 7)
        #expect(d.processID(Self.pid(5000)) == 5000)
        #expect(d.processID(Self.pid(5002)) == nil)
        // Interning after restoring: known identities keep their ids, a new one takes the next.
        #expect(d.intern(process: Self.pid(4321)) == 4321)
        #expect(d.intern(process: Self.pid(9999)) == 5002)
        #expect(d.processID(Self.pid(9999)) == 5002)
    }

    @Test func copiesThatGrowApartKeepTheirOwnIDs() {
        var a = TraceDictionaries()
        _ = a.intern(node: "a@h")
        for n in 1...100 { _ = a.intern(process: Self.pid(UInt32(n))) }
        #expect(a.processID(Self.pid(50)) == 50)
        var b = a
        let inA = a.intern(process: Self.pid(1000))
        let inB = b.intern(process: Self.pid(2000))
        #expect(inA == 101 && inB == 101)
        #expect(a.processID(Self.pid(2000)) == nil)
        #expect(b.processID(Self.pid(1000)) == nil)
        #expect(a.processID(Self.pid(1000)) == 101)
        #expect(b.processID(Self.pid(2000)) == 101)
        // A shorter copy made before either grew still answers only for its own processes.
        let c = a
        _ = a.intern(process: Self.pid(3000))
        #expect(c.processID(Self.pid(3000)) == nil)
        #expect(a.processID(Self.pid(3000)) == 102)
        #expect(c.processID(Self.pid(100)) == 100)
    }
}
