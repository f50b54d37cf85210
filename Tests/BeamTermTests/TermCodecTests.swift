// Decoding, printing and re-encoding against vectors from a real OTP.
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("External Term Format against OTP")
struct TermCodecTests {
    let generated: OTPVectors.Generated

    init() throws {
        generated = try OTPVectors.generated.get()
    }

    @Test("OTP produced a wide set of vectors")
    func vectorsExist() {
        #expect(generated.vectors.count > 700)
        #expect(generated.oldFormats.count == 20)
    }

    @Test("every vector decodes and prints as OTP's ~tp does")
    func decodeAndPrint() throws {
        var compared = 0
        for vector in generated.vectors {
            let term = try TermDecoder().decode(vector.bytes)
            guard !term.hasOpaqueParts, !term.hasLargeMap else { continue }
            #expect(term.erlangText() == vector.printed, "bytes \(vector.bytes.hexString.prefix(120))")
            compared += 1
        }
        #expect(compared > 650)
    }

    @Test("re-encoded terms are =:= to the originals in OTP's binary_to_term")
    func reencodeRoundTrip() throws {
        var lines: [String] = []
        for vector in generated.vectors {
            let term = try TermDecoder().decode(vector.bytes)
            let encoded = TermEncoder().encode(term)
            #expect(try TermDecoder().decode(encoded) == term)
            lines.append(vector.bytes.hexString + " " + encoded.hexString)
            let compressed = TermEncoder().encode(term, compressed: true)
            #expect(compressed[1] == 80)
            lines.append(vector.bytes.hexString + " " + compressed.hexString)
        }
        let verdict = try OTPVectors.runCheck("check", lines: lines)
        #expect(verdict == "ok \(lines.count)")
    }

    @Test("old formats decode to the same term OTP re-encodes them to")
    func oldFormats() throws {
        for vector in generated.oldFormats {
            let old = try TermDecoder().decode(vector.oldBytes)
            let new = try TermDecoder().decode(vector.newBytes)
            #expect(old == new, "\(vector.name): \(old) vs \(new)")
        }
    }

    @Test("pids, ports and refs of a distributed node keep their node, numbers and creation")
    func identifiers() throws {
        let nodes = Set(generated.vectors.compactMap { vector -> String? in
            guard let term = try? TermDecoder().decode(vector.bytes), case .pid(let pid) = term else { return nil }
            #expect(pid.creation != 0)
            return pid.node.name
        })
        #expect(nodes.count == 1)
        #expect(nodes.first?.hasPrefix("t") == true && nodes.first?.contains("@") == true)
        let kinds = generated.vectors.compactMap { try? TermDecoder().decode($0.bytes) }.map { term -> String in
            switch term {
            case .pid: return "pid"
            case .port: return "port"
            case .reference(let r): return r.ids.count == 3 ? "ref" : "other"
            case .fun(let f): return f.uniq.count == 16 ? "fun" : "other"
            case .export: return "export"
            default: return "other"
            }
        }
        for kind in ["pid", "port", "ref", "fun", "export"] { #expect(kinds.contains(kind), "\(kind)") }
    }

    @Test("a fun's free variables are decoded")
    func funEnvironment() throws {
        let funs = generated.vectors.compactMap { v -> Fun? in
            if case .fun(let f) = try? TermDecoder().decode(v.bytes) { return f }
            return nil
        }
        let captured = funs.first { $0.freeVars.count == 1 }
        #expect(captured?.arity == 1)
        guard case .tuple(let env)? = captured?.freeVars.first, env.count == 2 else {
            Issue.record("no captured environment in \(funs)")
            return
        }
        #expect(env[0] == .atom("captured"))
        #expect(env[1].atomValue == captured?.pid.node)
    }
}

extension Term {
    /// Maps beyond 32 keys print in hash order on OTP 25, so their printed form is not compared.
    var hasLargeMap: Bool {
        switch self {
        case .map(let pairs): return pairs.count > 32 || pairs.contains { $0.key.hasLargeMap || $0.value.hasLargeMap }
        case .tuple(let elements), .list(let elements): return elements.contains { $0.hasLargeMap }
        case .improperList(let elements, let tail): return tail.hasLargeMap || elements.contains { $0.hasLargeMap }
        default: return false
        }
    }
}
