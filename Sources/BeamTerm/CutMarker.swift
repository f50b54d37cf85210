// The marks a cut term carries where `io_lib:format("~P", [Term, Depth])` prints `...`: the atom
// '$beamtrace_cut' for a cut element, list tail or map rest, and `{'$beamtrace_cut', binary, Prefix}`
// for a binary cut to its first bytes. Printers show them as `...` (see docs/FORMAT.md, cut payloads).

public enum CutMarker {
    public static let name = "$beamtrace_cut"
    public static let atom = Atom(name)

    static func isMarker(_ buffer: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Bool {
        ErlangTermWriter.equals(buffer, start, length, "$beamtrace_cut")
    }

    /// The kept prefix when the term is a cut binary.
    public static func cutBinary(_ term: Term) -> [UInt8]? {
        guard case .tuple(let parts) = term, parts.count == 3, case .atom(let mark) = parts[0], mark == atom,
              case .atom(let kind) = parts[1], kind.name == "binary", case .binary(let prefix) = parts[2] else {
            return nil
        }
        return prefix
    }

    public static func isMarker(_ term: Term) -> Bool {
        if case .atom(let a) = term, a == atom { return true }
        return false
    }
}
