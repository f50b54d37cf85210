// Atom text → id and {M,F,A} → id for the dictionaries, built on first lookup and caught up with the
// entries appended since. A reader restores 50,000 atoms and functions by id when a capture opens and
// prints them by id; hashing every one of them into two dictionaries was an eighth of `latency` on a
// module of generated functions, for lookups that most commands never make.
import Foundation

/// Shared by copies of the dictionaries as `LazyProcessIndex` is: a copy that interns gets an index of
/// its own (built again from its own entries when next needed), so copies never see each other's ids.
/// The first id of a text (or MFA) listed twice wins, as it did when every restore indexed its entry.
final class LazyNameIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var atomIDs: [String: AtomID] = [:]
    private var functionIDs: [MFA: FunctionID] = [:]
    /// Entries 1 ..< indexed are in the maps.
    private var atomsIndexed = 1
    private var functionsIndexed = 1

    /// The id of `text` among `atoms`, indexing those not yet indexed first (any thread).
    func atomID(_ text: String, in atoms: [String]) -> AtomID? {
        lock.lock()
        defer { lock.unlock() }
        return atomIDOwned(text, in: atoms)
    }

    func functionID(_ mfa: MFA, in functions: [MFA]) -> FunctionID? {
        lock.lock()
        defer { lock.unlock() }
        return functionIDOwned(mfa, in: functions)
    }

    /// As `atomID`, by the owner of a uniquely referenced index (no other thread can see it).
    func atomIDOwned(_ text: String, in atoms: [String]) -> AtomID? {
        if atomsIndexed < atoms.count {
            if atoms.count - atomsIndexed > 1024 { atomIDs.reserveCapacity(atoms.count) }
            for id in atomsIndexed..<atoms.count where atomIDs[atoms[id]] == nil { atomIDs[atoms[id]] = AtomID(id) }
            atomsIndexed = atoms.count
        }
        return atomIDs[text]
    }

    func functionIDOwned(_ mfa: MFA, in functions: [MFA]) -> FunctionID? {
        if functionsIndexed < functions.count {
            if functions.count - functionsIndexed > 1024 { functionIDs.reserveCapacity(functions.count) }
            for id in functionsIndexed..<functions.count where functionIDs[functions[id]] == nil {
                functionIDs[functions[id]] = FunctionID(id)
            }
            functionsIndexed = functions.count
        }
        return functionIDs[mfa]
    }

    /// Records that `atoms.last` (just appended, not present before) is indexed, by the owner.
    func appendedAtomOwned(_ atoms: [String]) {
        guard atomsIndexed == atoms.count - 1, let text = atoms.last else { return }  // caught up later
        atomIDs[text] = AtomID(atoms.count - 1)
        atomsIndexed = atoms.count
    }

    func appendedFunctionOwned(_ functions: [MFA]) {
        guard functionsIndexed == functions.count - 1, let mfa = functions.last else { return }
        functionIDs[mfa] = FunctionID(functions.count - 1)
        functionsIndexed = functions.count
    }
}
