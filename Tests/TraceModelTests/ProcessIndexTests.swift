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

    /// Identities that differ in every field the hash reads (node, number, serial, creation), ports too.
    static func mixed(_ n: Int) -> ProcessIdentity {
        let k = UInt32(n)
        if n % 7 == 0 { return .port(node: NodeID(1 + n % 3), id: UInt64(n) << 20, creation: k % 5) }
        return .pid(node: NodeID(1 + n % 3), id: k / 3, serial: k % 11, creation: k % 2 + 1)
    }

    @Test func internedProcessesKeepTheirIDsAcrossTheIndexGrowing() {
        // 300,000 processes: the index doubles from 64 slots past 512K, each grow moving slots by
        // their hash tags alone; every identity must still find its id, and absent ones none.
        var d = TraceDictionaries()
        for node in ["a@h", "b@h", "c@h"] { _ = d.intern(node: node) }
        let n = 300_000
        for i in 1...n { #expect(d.intern(process: Self.mixed(i)) == ProcessID(i)) }
        var wrong = 0
        for i in stride(from: n, through: 1, by: -1) where d.intern(process: Self.mixed(i)) != ProcessID(i) { wrong += 1 }
        for i in 1...n where d.processID(Self.mixed(i)) != ProcessID(i) { wrong += 1 }
        #expect(wrong == 0)
        #expect(d.processes.count == n + 1)
        #expect(d.processID(.pid(node: 1, id: 1 << 30, serial: 0, creation: 1)) == nil)
        #expect(d.intern(process: .pid(node: 2, id: 1 << 30, serial: 0, creation: 1)) == ProcessID(n + 1))
        // A copy restored by id builds its own index the same way, in one catch-up.
        var e = TraceDictionaries()
        for node in ["a@h", "b@h", "c@h"] { _ = e.intern(node: node) }
        for i in 1...n { e.restore(process: ProcessEntry(identity: Self.mixed(i)), id: ProcessID(i)) }
        for i in 1...n where e.processID(Self.mixed(i)) != ProcessID(i) { wrong += 1 }
        #expect(wrong == 0)
    }
}
