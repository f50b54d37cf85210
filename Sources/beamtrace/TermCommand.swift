// `beamtrace term`: print an external-format term (hex, a file, or stdin) in Erlang or Elixir syntax.
import ArgumentParser
import BeamTerm
import Foundation

struct TermCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "term",
        abstract: "Print a term in External Term Format (term_to_binary output) as Erlang or Elixir syntax.",
        discussion: """
            INPUT is hex (e.g. 836803640002...), a path to a binary file, or - for standard input \
            (binary or hex). Terms without pids, ports, refs or funs print as text erl_parse reads \
            back as an exactly equal term.
            """
    )

    @Argument(help: "Hex bytes, a file path, or - for stdin.")
    var input: String

    @Flag(help: "Print in Elixir syntax.")
    var elixir = false

    @Option(help: "Print nesting beyond this depth as ... (like ~P).")
    var depth: Int?

    @Option(help: "Cut the output at this many characters.")
    var width: Int?

    @Option(help: "Refuse a compressed term that inflates to more than this many MiB.")
    var maxMib = 16

    func run() throws {
        let bytes = try TermInput.read(input)
        let term: Term
        do {
            term = try TermDecoder(maxUncompressedSize: max(0, min(maxMib, 4096)) << 20).decode(bytes)
        } catch {
            throw CLIError("\(error)")
        }
        if elixir {
            print(term.elixirText(maxDepth: depth, maxWidth: width))
        } else {
            print(term.erlangText(ErlangPrintOptions(maxDepth: depth, maxWidth: width)))
        }
    }
}

enum TermInput {
    /// Bytes from `-` (stdin, binary or hex text), a readable file, or a hex string.
    static func read(_ input: String) throws -> [UInt8] {
        if input == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            let bytes = [UInt8](data)
            if let text = String(bytes: bytes, encoding: .utf8), let hex = hexBytes(text) { return hex }
            return bytes
        }
        if FileManager.default.fileExists(atPath: input) {
            guard let data = FileManager.default.contents(atPath: input) else {
                throw CLIError("cannot read \(input)")
            }
            return [UInt8](data)
        }
        guard let bytes = hexBytes(input) else {
            throw CLIError("\(input) is neither a file nor hex bytes")
        }
        return bytes
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = text.filter { !$0.isWhitespace }
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
