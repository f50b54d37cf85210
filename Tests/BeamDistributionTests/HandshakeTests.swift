// The handshake state machine without a network: MD5 vectors, what we advertise, every status reply,
// a version-5 peer (OTP 22 and older speak only 'n'), the complement message, wrong digests.
@testable import BeamDistribution
import BeamTerm
import Foundation
import NIOCore
import Testing

/// The error `body` throws, or nil.
func failure(_ body: () throws -> Void) -> DistributionError? {
    do {
        try body()
        return nil
    } catch let error as DistributionError {
        return error
    } catch {
        return nil
    }
}

@Suite("handshake state machine")
struct HandshakeTests {
    let local = NodeName(name: "beamtrace_test", host: "vm")
    let peer = NodeName(name: "app", host: "vm")
    let cookie = Cookie("secret-cookie")

    func machine(version: Int = 6) -> HandshakeStateMachine {
        HandshakeStateMachine(local: local, peer: peer, cookie: cookie, flags: .beamtrace, creation: 0x0102_0304,
                              version: version)
    }

    @Test("MD5 matches RFC 1321 vectors")
    func md5() {
        let vectors = [
            "": "d41d8cd98f00b204e9800998ecf8427e",
            "abc": "900150983cd24fb0d6963f7d28e17f72",
            "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
            String(repeating: "1234567890", count: 8): "57edf4a22be3c955ac49da2e2107b67a",
        ]
        for (input, hex) in vectors {
            #expect(MD5.digest(Array(input.utf8)).map { String(format: "%02x", $0) }.joined() == hex)
        }
    }

    @Test("the digest is MD5 of the cookie and the challenge as unsigned decimal")
    func digest() {
        let digest = HandshakeStateMachine.digest(cookie: cookie, challenge: 4_294_967_295)
        #expect(digest == MD5.digest(Array("secret-cookie4294967295".utf8)))
    }

    @Test("we send a version-6 name as a hidden node with the flags OTP 25–27 require")
    func nameMessage() {
        var handshake = machine()
        let message = handshake.start()
        #expect(message.first == UInt8(ascii: "N"))
        var reader = PayloadReader(message)
        _ = reader.u8()
        let flags = DistributionFlags(rawValue: reader.u64() ?? 0)
        #expect(reader.u32() == 0x0102_0304)
        #expect(reader.u16() == UInt16(local.description.utf8.count))
        #expect(Array(reader.rest()) == Array(local.description.utf8))
        #expect(flags.isSuperset(of: .mandatoryOTP25))
        #expect(flags.isSuperset(of: [.unlinkID, .v4NodeContainers]))
        #expect(flags.isDisjoint(with: [.published, .atomCache, .distHeaderAtomCache, .fragments]))
        #expect(flags.rawValue & 0x1070F94 == 0x1070F94)
    }

    static func challengeV6(flags: DistributionFlags = .beamtrace, challenge: UInt32) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "N")]
        bytes.appendUInt64(flags.rawValue)
        bytes.appendUInt32(challenge)
        bytes.appendUInt32(77)
        bytes.appendUInt16(6)
        bytes.append(contentsOf: Array("app@vm".utf8))
        return bytes
    }

    @Test("a full version-6 exchange completes and checks the peer's digest")
    func fullExchange() throws {
        var handshake = machine()
        _ = handshake.start()
        guard case .wait = try handshake.receive(Array("sok".utf8)) else {
            Issue.record("status ok should wait for the challenge")
            return
        }
        guard case .send(let replies) = try handshake.receive(Self.challengeV6(challenge: 12345)),
              let reply = replies.last else {
            Issue.record("expected a challenge reply")
            return
        }
        #expect(replies.count == 1)
        var reader = PayloadReader(reply)
        #expect(reader.u8() == UInt8(ascii: "r"))
        let oursValue = reader.u32()
        let ours = try #require(oursValue)
        #expect(Array(reader.rest()) == HandshakeStateMachine.digest(cookie: cookie, challenge: 12345))
        let ack = [UInt8(ascii: "a")] + HandshakeStateMachine.digest(cookie: cookie, challenge: ours)
        guard case .completed(let info, _) = try handshake.receive(ack) else {
            Issue.record("expected completion")
            return
        }
        #expect(info.creation == 77 && info.handshakeVersion == 6 && info.node.description == "app@vm")
    }

    @Test("a digest for another cookie is reported as a cookie mismatch")
    func wrongAck() throws {
        var handshake = machine()
        _ = handshake.start()
        _ = try handshake.receive(Array("sok".utf8))
        _ = try handshake.receive(Self.challengeV6(challenge: 1))
        let ack = [UInt8(ascii: "a")] + [UInt8](repeating: 7, count: 16)
        let error = try #require(failure { _ = try handshake.receive(ack) })
        #expect(error.code == .cookieRejected)
        #expect(!error.description.contains("secret-cookie"))
    }

    @Test("each status reply has its own outcome")
    func statuses() throws {
        for ok in ["ok", "ok_simultaneous"] {
            var handshake = machine()
            _ = handshake.start()
            guard case .wait = try handshake.receive(Array("s\(ok)".utf8)) else {
                Issue.record("\(ok) should continue")
                continue
            }
        }
        var named = machine()
        _ = named.start()
        guard case .wait = try named.receive(Array("snamed:".utf8) + [0, 3] + Array("x@y".utf8) + [0, 0, 0, 1]) else {
            Issue.record("named: should continue")
            return
        }
        for (status, words) in [("nok", "nok"), ("not_allowed", "not_allowed"), ("alive", "another --name"),
                                ("weird", "weird")] {
            var handshake = machine()
            _ = handshake.start()
            let error = try #require(failure { _ = try handshake.receive(Array("s\(status)".utf8)) })
            #expect(error.code == .handshakeRejected)
            #expect(error.description.contains(words), "\(error)")
            #expect(error.step == "handshake: recv_status")
        }
    }

    @Test("a version-5 peer: we send 'n', it answers 'n', we reply and check its ack")
    func version5Peer() throws {
        var handshake = machine(version: 5)
        let name = handshake.start()
        var reader = PayloadReader(name)
        #expect(reader.u8() == UInt8(ascii: "n"))
        #expect(reader.u16() == 5)
        #expect(reader.u32() == UInt32(truncatingIfNeeded: DistributionFlags.beamtrace.rawValue))
        #expect(Array(reader.rest()) == Array(local.description.utf8))
        _ = try handshake.receive(Array("sok".utf8))
        var challenge: [UInt8] = [UInt8(ascii: "n"), 0, 5]
        challenge.appendUInt32(UInt32(truncatingIfNeeded: DistributionFlags.beamtrace.rawValue))
        challenge.appendUInt32(99)
        challenge.append(contentsOf: Array("old@vm".utf8))
        guard case .send(let replies) = try handshake.receive(challenge), let reply = replies.first else {
            Issue.record("expected a reply")
            return
        }
        var replyReader = PayloadReader(reply)
        #expect(replyReader.u8() == UInt8(ascii: "r"))
        let oursValue = replyReader.u32()
        let ours = try #require(oursValue)
        #expect(Array(replyReader.rest()) == HandshakeStateMachine.digest(cookie: cookie, challenge: 99))
        guard case .completed(let info, _) = try handshake.receive(
            [UInt8(ascii: "a")] + HandshakeStateMachine.digest(cookie: cookie, challenge: ours)) else {
            Issue.record("expected completion")
            return
        }
        #expect(info.handshakeVersion == 5 && info.node.description == "old@vm")
    }

    @Test("we sent 'n' but the peer answers 'N': the complement goes first")
    func complement() throws {
        var handshake = machine(version: 5)
        _ = handshake.start()
        _ = try handshake.receive(Array("sok".utf8))
        guard case .send(let replies) = try handshake.receive(Self.challengeV6(challenge: 5)) else {
            Issue.record("expected replies")
            return
        }
        #expect(replies.count == 2)
        var reader = PayloadReader(replies[0])
        #expect(reader.u8() == UInt8(ascii: "c"))
        #expect(reader.u32() == UInt32(truncatingIfNeeded: DistributionFlags.beamtrace.rawValue >> 32))
        #expect(reader.u32() == 0x0102_0304)
        #expect(replies[1].first == UInt8(ascii: "r"))
    }

    @Test("a peer without the capabilities we need, truncated messages, and a close after our reply")
    func failures() throws {
        var old = machine()
        _ = old.start()
        _ = try old.receive(Array("sok".utf8))
        let error = try #require(failure { _ = try old.receive(Self.challengeV6(flags: [.extendedReferences], challenge: 1)) })
        #expect(error.code == .handshakeFailed)

        var truncated = machine()
        _ = truncated.start()
        _ = try truncated.receive(Array("sok".utf8))
        #expect(failure { _ = try truncated.receive([UInt8(ascii: "N"), 0, 0]) } != nil)

        var closed = machine()
        _ = closed.start()
        _ = try closed.receive(Array("sok".utf8))
        _ = try closed.receive(Self.challengeV6(challenge: 3))
        #expect(closed.closedByPeer().code == .cookieRejected)
        #expect(closed.closedByPeer().description.contains("cookie"))
    }
}

@Suite("control messages, names and cookies")
struct ControlAndCookieTests {
    let a = Pid(node: "a@h", id: 1, serial: 0, creation: 1)
    let b = Pid(node: "b@h", id: 2, serial: 0, creation: 2)
    let ref = Reference(node: "a@h", creation: 1, ids: [1, 2, 3])

    @Test("every control message and its trace-token variant decodes")
    func controlMessages() {
        let token = Term.tuple([.integer(1)])
        let cases: [(Term, Term?, String)] = [
            (.tuple([.integer(1), .pid(a), .pid(b)]), nil, "link"),
            (.tuple([.integer(2), .atom(""), .pid(b)]), .atom("m"), "send"),
            (.tuple([.integer(12), .atom(""), .pid(b), token]), .atom("m"), "send"),
            (.tuple([.integer(22), .pid(a), .pid(b)]), .atom("m"), "send"),
            (.tuple([.integer(23), .pid(a), .pid(b), token]), .atom("m"), "send"),
            (.tuple([.integer(6), .pid(a), .atom(""), .atom("rex")]), .atom("m"), "registeredSend"),
            (.tuple([.integer(16), .pid(a), .atom(""), .atom("rex"), token]), .atom("m"), "registeredSend"),
            (.tuple([.integer(3), .pid(a), .pid(b), .atom("r")]), nil, "exit"),
            (.tuple([.integer(13), .pid(a), .pid(b), token, .atom("r")]), nil, "exit"),
            (.tuple([.integer(24), .pid(a), .pid(b)]), .atom("r"), "exit"),
            (.tuple([.integer(25), .pid(a), .pid(b), token]), .atom("r"), "exit"),
            (.tuple([.integer(8), .pid(a), .pid(b), .atom("r")]), nil, "exit2"),
            (.tuple([.integer(18), .pid(a), .pid(b), token, .atom("r")]), nil, "exit2"),
            (.tuple([.integer(26), .pid(a), .pid(b)]), .atom("r"), "exit2"),
            (.tuple([.integer(27), .pid(a), .pid(b), token]), .atom("r"), "exit2"),
            (.tuple([.integer(4), .pid(a), .pid(b)]), nil, "unlink"),
            (.tuple([.integer(35), .integer(9), .pid(a), .pid(b)]), nil, "unlinkID"),
            (.tuple([.integer(36), .integer(9), .pid(a), .pid(b)]), nil, "unlinkIDAck"),
            (.tuple([.integer(19), .pid(a), .atom("name"), .reference(ref)]), nil, "monitor"),
            (.tuple([.integer(20), .pid(a), .pid(b), .reference(ref)]), nil, "demonitor"),
            (.tuple([.integer(21), .pid(b), .pid(a), .reference(ref), .atom("r")]), nil, "monitorExit"),
            (.tuple([.integer(28), .pid(b), .pid(a), .reference(ref)]), .atom("r"), "monitorExit"),
            (.tuple([.integer(33), .pid(a), .reference(ref)]), .atom("m"), "aliasSend"),
            (.tuple([.integer(34), .pid(a), .reference(ref), token]), .atom("m"), "aliasSend"),
            (.tuple([.integer(7), .pid(a), .pid(b)]), nil, "groupLeader"),
            (.tuple([.integer(29), .integer(1), .pid(a), .pid(a), .atom("x"), .list([])]), .list([]), "other"),
            (.tuple([.integer(99)]), nil, "other"),
        ]
        for (control, payload, name) in cases {
            guard let message = ControlMessage(control: control, payload: payload) else {
                Issue.record("\(control.erlangText()) did not decode")
                continue
            }
            #expect("\(message)".hasPrefix(name), "\(control.erlangText()) → \(message)")
        }
        #expect(ControlMessage(control: .tuple([.integer(2)]), payload: nil) == nil)
        #expect(ControlMessage(control: .atom("x"), payload: nil) == nil)
        if case .exit(_, _, let reason) = ControlMessage(control: .tuple([.integer(24), .pid(a), .pid(b)]),
                                                         payload: .atom("why")) {
            #expect(reason == .atom("why"))
        }
    }

    @Test("node names: short, long, bare, invalid; our own name follows the target's style")
    func nodeNames() throws {
        let short = try NodeName(parsing: "app@vm")
        #expect(!short.isLongName && short.name == "app" && short.host == "vm")
        let long = try NodeName(parsing: "app@host.example.com")
        #expect(long.isLongName)
        #expect(try NodeName(parsing: "bare").host == NodeName.localHostName(long: false))
        for bad in ["", "@host", "a b@host", "a@", "a@b@c"] {
            #expect(throws: DistributionError.self, "\(bad)") { try NodeName(parsing: bad) }
        }
        #expect(!NodeName.local(matching: short).isLongName)
        #expect(NodeName.local(matching: long).isLongName)
        #expect(NodeName.local(name: "me", matching: short).name == "me")
        #expect(NodeName.local(name: "me@there", matching: short).description == "me@there")
    }

    @Test("cookies: --cookie, then ERLANG_COOKIE, then the file (with a warning when others can read it)")
    func cookies() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("bt-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        #expect(try Cookie.resolve(explicit: "x", environment: ["ERLANG_COOKIE": "y"], homeDirectory: home.path)
                    .source == .option)
        #expect(try Cookie.resolve(explicit: nil, environment: ["ERLANG_COOKIE": "y"], homeDirectory: home.path)
                    .source == .environment)
        let missing = try #require(throws: DistributionError.self) {
            try Cookie.resolve(explicit: nil, environment: [:], homeDirectory: home.path)
        }
        #expect(missing.code == .cookieMissing)
        let file = home.appendingPathComponent(".erlang.cookie")
        try "filecookie\n".write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        let loose = try Cookie.resolve(explicit: nil, environment: [:], homeDirectory: home.path)
        #expect(loose.source == .file)
        #expect(loose.warnings.count == 1 && loose.warnings[0].contains("chmod 400"))
        #expect(HandshakeStateMachine.digest(cookie: loose.cookie, challenge: 1)
                    == HandshakeStateMachine.digest(cookie: Cookie("filecookie"), challenge: 1))
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: file.path)
        #expect(try Cookie.resolve(explicit: nil, environment: [:], homeDirectory: home.path).warnings.isEmpty)
        // The cookie never shows in descriptions or dumps.
        let secret = Cookie("topsecret")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!"\(secret)".contains("topsecret") && !String(reflecting: secret).contains("topsecret"))
        #expect(!dumped.contains("topsecret"))
    }
}

@Suite("frame encoding")
struct FrameEncoderTests {
    @Test("frames carry exactly TermEncoder's bytes after the 112/131 header")
    func sameBytesAsTermEncoder() {
        let pid = Pid(node: "a@h", id: 5, serial: 1, creation: 99)
        let terms: [Term] = [
            .atom("rex"), .integer(7), .integer(-1), .integer(300), .integer(1 << 40), .float(1.5),
            .tuple([.atom("$gen_call"), .tuple([.pid(pid), .reference(Reference(node: "a@h", creation: 9, ids: [1, 2, 3]))])]),
            .list([]), .list([.integer(1), .integer(2)]), .list([.binary([UInt8](repeating: 1, count: 5000)), .atom("x")]),
            .list([.tuple([.binary([UInt8](repeating: 2, count: 5000))]), .integer(3)]),
            .string(Array("abc".utf8)), .binary([]), .map(unordered: [MapPair(.atom("k"), .list([.atom("v")]))]),
            .atom(String(repeating: "x", count: 300)), .improperList([.integer(1)], tail: .atom("t")),
            .tuple((0..<300).map { .integer(Int64($0)) }), .export(module: "m", function: "f", arity: 2),
        ]
        for term in terms {
            let frame = FrameEncoder.frame(control: .tuple([.integer(2), .atom(""), .pid(pid)]), message: term,
                                           allocator: ByteBufferAllocator())
            var expected: [UInt8] = [112, 131]
            TermEncoder().encode(.tuple([.integer(2), .atom(""), .pid(pid)]), into: &expected)
            expected.append(131)
            TermEncoder().encode(term, into: &expected)
            let bytes = frame.getBytes(at: frame.readerIndex, length: frame.readableBytes) ?? []
            #expect(Array(bytes.dropFirst(4)) == expected, "\(term.erlangText(ErlangPrintOptions(maxWidth: 80)))")
            #expect(frame.getInteger(at: frame.readerIndex, as: UInt32.self) == UInt32(expected.count))
        }
    }
}
