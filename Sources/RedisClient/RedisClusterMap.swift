/// Where a Redis server listens: a host and a port, written `host:port` (`[::1]:7000` for IPv6).
public struct RedisNodeAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; nil unless the host is non-empty and the port is 1-65535.
    public init?(_ text: some StringProtocol) {
        var hostPart = Substring(text)
        guard let colon = hostPart.lastIndex(of: ":") else { return nil }
        let portPart = hostPart[hostPart.index(after: colon)...]
        hostPart = hostPart[..<colon]
        if hostPart.hasPrefix("[") && hostPart.hasSuffix("]") { hostPart = hostPart.dropFirst().dropLast() }
        guard !hostPart.isEmpty, !hostPart.contains(where: { $0 == " " || $0 == "/" }),
            let port = Int(portPart), (1...65535).contains(port)
        else { return nil }
        self.init(host: String(hostPart), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which master serves each of the 16384 slots, as the cluster reported it (`CLUSTER SLOTS`).
///
/// A value: a refresh builds a new map and swaps it in whole, so a reader never sees half of one.
struct RedisClusterMap: Sendable, Equatable {
    /// The masters that serve at least one slot, in the order the reply named them.
    private(set) var masters: [RedisNodeAddress]
    /// For each slot, the index of its master in `masters`, or -1 when no master serves it.
    private var owners: [Int16]

    /// A map in which no slot has a master.
    init() {
        masters = []
        owners = Array(repeating: -1, count: HashSlot.count)
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[first, last, [host, port, id, …], replica…], …]`.
    /// An empty host means "the node you asked" (`answeredBy`).
    init(clusterSlots reply: RESPValue, answeredBy node: RedisNodeAddress) throws(RedisError) {
        self.init()
        guard let ranges = reply.array else {
            throw RedisError(.protocolError, "CLUSTER SLOTS from \(node) is not an array: \(reply)")
        }
        for range in ranges {
            guard let fields = range.array, fields.count >= 3,
                let first = fields[0].int, let last = fields[1].int,
                first >= 0, first <= last, last < HashSlot.count,
                let master = fields[2].array, master.count >= 2,
                let host = master[0].string, let port = master[1].int
            else {
                throw RedisError(.protocolError, "CLUSTER SLOTS from \(node) has a malformed range: \(range)")
            }
            let address = RedisNodeAddress(host: host.isEmpty || host == "?" ? node.host : host, port: port)
            assign(first...last, to: address)
        }
    }

    /// Gives `slots` to `master` (a `MOVED` reply says where one slot lives now).
    mutating func assign(_ slots: ClosedRange<Int>, to master: RedisNodeAddress) {
        let index: Int
        if let known = masters.firstIndex(of: master) {
            index = known
        } else {
            index = masters.count
            masters.append(master)
        }
        for slot in slots { owners[slot] = Int16(index) }
    }

    /// The master serving `slot`, if any.
    func master(of slot: HashSlot) -> RedisNodeAddress? {
        let index = owners[Int(slot.rawValue)]
        return index < 0 ? nil : masters[Int(index)]
    }

    /// The masters that serve at least one slot now (after `assign`, one may serve none).
    var servingMasters: [RedisNodeAddress] {
        var serving = Set<Int16>()
        for owner in owners where owner >= 0 { serving.insert(owner) }
        return masters.indices.filter { serving.contains(Int16($0)) }.map { masters[$0] }
    }

    /// The slots no master serves, as ranges (empty when the map covers every slot).
    var unassignedRanges: [ClosedRange<Int>] {
        var ranges: [ClosedRange<Int>] = []
        var start: Int?
        for slot in 0...HashSlot.count {
            let free = slot < HashSlot.count && owners[slot] < 0
            if free, start == nil { start = slot }
            if !free, let first = start {
                ranges.append(first...(slot - 1))
                start = nil
            }
        }
        return ranges
    }

    var coversEverySlot: Bool { !owners.contains(-1) }
}

extension Array where Element == ClosedRange<Int> {
    /// `0-5460, 10923` — for error messages.
    var slotList: String {
        map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ", ")
    }
}
