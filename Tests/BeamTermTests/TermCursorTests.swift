// TermCursor, the one walker over raw term bytes: on every term OTP's term_to_binary makes it steps
// over exactly the term; atoms, integers and pids read in place agree with the decoder; every cut
// and every byte flip of a real term is refused or walked without a trap; hostile counts are
// refused. And `beamtrace term` refuses a small compressed term that would inflate to 100 MiB.
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("TermCursor")
struct TermCursorTests {
    @Test("skips exactly each of OTP's terms, and reads atoms, integers and pids as the decoder does")
    func otpTerms() throws {
        let vectors = try OTPVectors.generated.get().vectors
        #expect(vectors.count > 600)
        var atoms = 0, integers = 0, pids = 0
        for vector in vectors {
            let term = try TermDecoder().decode(vector.bytes)
            vector.bytes.withUnsafeBytes { raw in
                var cursor = TermCursor(raw, offset: 1)
                guard raw.count > 1, raw[1] != ExternalTag.compressed else { return }
                let skipped = cursor.skipTerm()
                #expect(skipped, "\(vector.printed)")
                #expect(cursor.offset == raw.count, "\(vector.printed)")
                var reader = TermCursor(raw, offset: 1)
                switch term {
                case .atom(let atom):
                    let read = reader.atomText()
                    #expect(read != nil)
                    if let text = read {
                        let bytes = Array(reader.slice(text.start, text.start + text.length))
                        let name = text.latin1 ? String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
                            : String(decoding: bytes, as: UTF8.self)
                        #expect(name == atom.name)
                        atoms += 1
                    }
                case .integer(let value):
                    let read = reader.integer()
                    #expect(read == value, "\(vector.printed)")
                    integers += 1
                case .bigInteger:
                    let read = reader.integer()
                    #expect(read == nil, "a bignum beyond Int64 is not read as one: \(vector.printed)")
                case .pid(let pid):
                    let parts = reader.pid()
                    #expect(parts?.id == pid.id && parts?.serial == pid.serial && parts?.creation == pid.creation)
                    pids += 1
                default:
                    break
                }
            }
        }
        #expect(atoms > 10 && integers > 10 && pids >= 2)
    }

    @Test("every cut and every single-byte change of real terms is walked without a trap")
    func damage() throws {
        let vectors = try OTPVectors.generated.get().vectors.filter { $0.bytes.count < 2000 }
        var refused = 0
        for vector in vectors.prefix(200) {
            let body = Array(vector.bytes.dropFirst())
            for cut in 0..<body.count {
                let ok = body[..<cut].withUnsafeBytes { raw -> Bool in
                    var cursor = TermCursor(raw)
                    return cursor.skipTerm()
                }
                if !ok { refused += 1 }
                // Nothing shorter than the whole term is a whole term.
                #expect(!ok || cut == body.count, "\(vector.printed) cut at \(cut)")
            }
            for at in stride(from: 0, to: body.count, by: max(1, body.count / 16)) {
                var changed = body
                changed[at] ^= 0xA5
                changed.withUnsafeBytes { raw in
                    var cursor = TermCursor(raw)
                    let skipped = cursor.skipTerm()
                    if skipped { #expect(cursor.offset <= raw.count) } else { #expect(cursor.offset == 0) }
                    var again = TermCursor(raw)
                    _ = again.skipHeader()
                    _ = again.tupleArity()
                    _ = again.integer()
                    _ = again.pid()
                    _ = again.atomText()
                }
            }
        }
        #expect(refused > 1000)
    }

    @Test("counts the bytes cannot hold are refused at once")
    func hostileCounts() {
        let cases: [[UInt8]] = [
            [105, 0xFF, 0xFF, 0xFF, 0xFF],  // a tuple of 4G elements
            [108, 0xFF, 0xFF, 0xFF, 0xFF, 106],  // a list of 4G elements
            [116, 0x7F, 0xFF, 0xFF, 0xFF],  // a map of 2G pairs
            [109, 0xFF, 0xFF, 0xFF, 0xFF, 1],  // a binary of 4 GB
            [112, 0, 0, 0, 2],  // a fun whose size does not count itself
            [90, 0xFF, 0xFF, 100, 0, 0],  // a reference of 65535 words
        ]
        for bytes in cases {
            bytes.withUnsafeBytes { raw in
                var cursor = TermCursor(raw)
                let skipped = cursor.skipTerm()
                #expect(!skipped)
                #expect(cursor.offset == 0)
            }
        }
    }

    @Test("term refuses a 100 KB compressed term that would inflate to 100 MiB, quickly and clearly")
    func compressedBomb() throws {
        let directory = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bomb.bin").path
        _ = try Erlang.run(module: "bt_bomb", source: """
            -module(bt_bomb).
            -export([main/0]).
            main() -> ok = file:write_file("\(file)", term_to_binary(binary:copy(<<0>>, 100 * 1024 * 1024), [compressed])).
            """)
        let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0
        #expect(size < 200_000)
        let cli = try #require(BuiltProducts.executable("beamtrace"))
        let started = ContinuousClock.now
        let result = try Shell.runCapturing(cli, ["term", file], timeout: 30)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(result.status == 1)
        #expect(result.stderr.contains("would inflate to 104857605 bytes, more than the limit"), "\(result.stderr)")
    }
}
