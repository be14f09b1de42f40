/// Which node of a cluster a command goes to.
enum RedisCommandRoute: Sendable, Hashable {
    /// The master of this slot: the slot of the command's keys.
    case slot(HashSlot)
    /// Any master (a command without keys, such as `ECHO` or `TIME`).
    case anyMaster
    /// Every master: `PING` (answered only when every slot's master answers), `SCRIPT` (a script
    /// must be known wherever it may run) and `FLUSHALL`/`FLUSHDB`. The reply is the first master's.
    case everyMaster

    /// Commands that name no key. Anything else is routed by its first argument, taken as its
    /// first key; so `KEYS` with a hash-tagged pattern reaches the node that holds those keys.
    private static let keyless: Set<String> = [
        "ECHO", "TIME", "INFO", "DBSIZE", "CLUSTER", "CLIENT", "CONFIG", "COMMAND", "MEMORY", "LASTSAVE",
        "ROLE", "RANDOMKEY", "SCAN", "HELLO", "AUTH", "SELECT", "SLOWLOG", "LATENCY", "FUNCTION", "READONLY",
        "READWRITE", "WAIT",
    ]
    private static let onEveryMaster: Set<String> = ["PING", "SCRIPT", "FLUSHALL", "FLUSHDB"]

    /// The route of a command; `EVAL`/`EVALSHA`/`FCALL` go to the slot of their keys, which must
    /// all share it (`.crossSlot` otherwise).
    init(_ arguments: [RedisArgument]) throws(RedisError) {
        guard let first = arguments.first else {
            throw RedisError(.protocolError, "an empty command has no route")
        }
        let name = String(decoding: first.bytes, as: UTF8.self).uppercased()
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count >= 3, let count = Int(String(decoding: arguments[2].bytes, as: UTF8.self)),
                count >= 0, arguments.count >= 3 + count
            else { throw RedisError(.protocolError, "\(name) without a valid number of keys") }
            guard let slot = try Self.commonSlot(of: arguments[3..<(3 + count)], command: name) else {
                self = .anyMaster
                return
            }
            self = .slot(slot)
        case _ where Self.onEveryMaster.contains(name):
            self = .everyMaster
        case _ where Self.keyless.contains(name) || arguments.count < 2:
            self = .anyMaster
        default:
            self = .slot(HashSlot(key: arguments[1].bytes))
        }
    }

    /// The one slot all `keys` hash to, nil when there are none; `.crossSlot` when they differ.
    static func commonSlot(
        of keys: some Collection<RedisArgument>, command: @autoclosure () -> String
    ) throws(RedisError) -> HashSlot? {
        guard let first = keys.first else { return nil }
        let slot = HashSlot(key: first.bytes)
        for key in keys.dropFirst() where HashSlot(key: key.bytes) != slot {
            let firstName = String(decoding: first.bytes, as: UTF8.self)
            let otherName = String(decoding: key.bytes, as: UTF8.self)
            throw RedisError(
                .crossSlot,
                "\(command()): keys '\(firstName)' (slot \(slot)) and '\(otherName)' (slot \(HashSlot(key: key.bytes))) "
                    + "are on different cluster slots; give them one hash tag")
        }
        return slot
    }
}
