// Capability flags exchanged in the handshake (erts `dist.h`, `erl_dist_protocol`).

public struct DistributionFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let published = Self(rawValue: 0x1)
    public static let atomCache = Self(rawValue: 0x2)
    public static let extendedReferences = Self(rawValue: 0x4)
    public static let distMonitor = Self(rawValue: 0x8)
    public static let funTags = Self(rawValue: 0x10)
    public static let distMonitorName = Self(rawValue: 0x20)
    public static let hiddenAtomCache = Self(rawValue: 0x40)
    public static let newFunTags = Self(rawValue: 0x80)
    public static let extendedPidsPorts = Self(rawValue: 0x100)
    public static let exportPtrTag = Self(rawValue: 0x200)
    public static let bitBinaries = Self(rawValue: 0x400)
    public static let newFloats = Self(rawValue: 0x800)
    public static let unicodeIO = Self(rawValue: 0x1000)
    public static let distHeaderAtomCache = Self(rawValue: 0x2000)
    public static let smallAtomTags = Self(rawValue: 0x4000)
    public static let utf8Atoms = Self(rawValue: 0x10000)
    public static let mapTag = Self(rawValue: 0x20000)
    public static let bigCreation = Self(rawValue: 0x40000)
    public static let sendSender = Self(rawValue: 0x80000)
    public static let bigSeqtraceLabels = Self(rawValue: 0x100000)
    public static let exitPayload = Self(rawValue: 0x400000)
    public static let fragments = Self(rawValue: 0x800000)
    public static let handshake23 = Self(rawValue: 0x1000000)
    public static let unlinkID = Self(rawValue: 0x2000000)
    public static let spawn = Self(rawValue: 1 << 32)
    public static let nameMe = Self(rawValue: 1 << 33)
    public static let v4NodeContainers = Self(rawValue: 1 << 34)
    public static let alias = Self(rawValue: 1 << 35)

    /// What OTP 25 refuses to connect without (0x1070F94); OTP 26+ adds UNLINK_ID and V4_NC.
    public static let mandatoryOTP25: Self = [
        .extendedReferences, .funTags, .newFunTags, .extendedPidsPorts, .exportPtrTag, .bitBinaries,
        .newFloats, .utf8Atoms, .mapTag, .bigCreation, .handshake23,
    ]

    /// What beamtrace advertises: everything it decodes and answers, as a hidden node (no PUBLISHED),
    /// without the atom-cache header and fragments it does not implement.
    public static let beamtrace: Self = mandatoryOTP25.union([
        .distMonitor, .distMonitorName, .smallAtomTags, .sendSender, .bigSeqtraceLabels, .unlinkID,
        .v4NodeContainers,
    ])

    /// What we need the peer to support to talk to it at all.
    public static let requiredOfPeer: Self = [.extendedReferences, .extendedPidsPorts, .utf8Atoms, .newFloats,
                                              .bitBinaries, .mapTag]
}
