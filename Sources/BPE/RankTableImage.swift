#if canImport(Glibc)
import Glibc
#endif
import TokenmillCore

/// A `RankTable` as a file: its tables byte for byte, so a process that loads a vocabulary
/// it (or another process) has loaded before reads ~21 MB instead of building them
/// (o200k_base: 0.2 s of one core to build, a few ms to read; that load is most of a
/// short `tokenmill encode` and a fixed cost of every build and task).
///
/// Layout (little-endian): the header — magic `TMRANKS1`, `imageVersion`, the key the
/// caller derived from the vocabulary file, `count`, `mask`, `pairShift`,
/// `pairFilterShift`, flags, the xxh3 of the vocabulary file's bytes (the tokenizer's
/// `vocabHash`, known without reading the file), then each section's element count — then the sections in
/// `Section.allCases` order, each starting on a 64-byte boundary, then the checksum: the
/// xxh3-64 of the header's words followed by each section's own xxh3-64 (padding
/// excluded), so sections can be read and hashed on several workers.
///
/// The hot loops index with what these tables hold and check nothing, so a reader trusts
/// nothing: the checksum first, then every size against the header's and every rank, pair
/// and offset against the vocabulary's bounds. A file that fails is rebuilt, never used.
extension RankTable {
    static let imageMagic: UInt64 = 0x3153_4B4E_4152_4D54   // "TMRANKS1"
    /// Bump when a table's layout or how it is built changes.
    static let imageVersion: UInt64 = 7

    enum Section: Int, CaseIterable {
        case bytes, offsets, slots, byteRanks, pairSlots, pairSides, pairFilter, reachable, trigrams, bytePairs, pairTokens,
             byteHoles, priorityToID, charTokens, straddleTrigrams, straddlePairs
    }

    static let headerWords = 9 + Section.allCases.count

    /// The sections as raw bytes (priorityToID empty when absent).
    private var sections: [UnsafeRawBufferPointer] {
        func raw<T>(_ b: UnsafeMutableBufferPointer<T>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(b) }
        return Section.allCases.map { s -> UnsafeRawBufferPointer in
            switch s {
            case .bytes: return raw(bytes)
            case .offsets: return raw(offsets)
            case .slots: return raw(slots)
            case .byteRanks: return raw(byteRanks)
            case .pairSlots: return raw(pairSlots)
            case .pairSides: return raw(pairSides)
            case .pairFilter: return raw(pairFilter)
            case .reachable: return raw(reachable)
            case .trigrams: return raw(trigrams)
            case .bytePairs: return raw(bytePairs)
            case .pairTokens: return raw(pairTokens)
            case .byteHoles: return raw(byteHoles)
            case .priorityToID: return priorityToID.map { raw($0) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
            case .charTokens: return charStarts.map { raw($0.tokens) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
            case .straddleTrigrams: return charStarts.map { raw($0.straddleTrigrams) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
            case .straddlePairs: return charStarts.map { raw($0.straddlePairs) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
            }
        }
    }

    static func elementSize(_ s: Section) -> Int {
        switch s {
        case .bytes, .byteHoles: return 1
        case .offsets, .byteRanks, .bytePairs, .priorityToID, .charTokens: return 4
        default: return 8
        }
    }

    /// Writes the image to `path` (atomically: a unique temporary name, then a rename, so
    /// processes that build the same vocabulary at once never see a torn file).
    func writeImage(to path: String, key: UInt64, source: UInt64) throws {
        let secs = sections
        var header: [UInt64] = [RankTable.imageMagic, RankTable.imageVersion, key, UInt64(count), UInt64(mask), pairShift,
                                pairFilterShift, (wholeLookups ? 1 : 0) | (hasByteHoles ? 2 : 0) | (priorityToID != nil ? 4 : 0)]
        header.append(source)
        for (k, s) in secs.enumerated() { header.append(UInt64(s.count / RankTable.elementSize(Section(rawValue: k)!))) }
        // The whole file in one gathered write: the page cache then holds it in 2 MiB
        // folios wherever a whole aligned 2 MiB of the file falls inside the write (writes
        // cut at section boundaries leave small folios there), and a reader's mapping of
        // the image gets 2 MiB page-table entries for them (`init(imageFD:)`).
        let zeros = [UInt8](repeating: 0, count: 64)
        var summary = header.map(\.littleEndian)
        for s in secs { summary.append(XXH3.hash64(s).littleEndian) }
        var checksum = summary.withUnsafeBytes { XXH3.hash64($0) }.littleEndian
        let headerBytes = header.count * 8
        try summary.withUnsafeBytes { h in
            try zeros.withUnsafeBytes { z in
                try withUnsafeBytes(of: &checksum) { c in
                    var iov: [iovec] = [iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress!), iov_len: headerBytes)]
                    var written = headerBytes
                    func pad() {
                        let n = (64 - written % 64) % 64
                        if n > 0 { iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: z.baseAddress!), iov_len: n)); written += n }
                    }
                    for s in secs {
                        pad()
                        if s.count > 0 { iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: s.baseAddress!), iov_len: s.count)); written += s.count }
                    }
                    pad()
                    iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: c.baseAddress!), iov_len: 8))
                    var w = try AtomicFileWriter(path: path, durable: false)
                    try w.write(gathering: iov)
                    try w.commit()
                }
            }
        }
    }

    /// Reads an image written by `writeImage` for `key`; nil when the file is absent, of
    /// another version or key, or fails any check (the caller then builds the table).
    static func readImage(_ path: String, key: UInt64, threads: Int) -> (table: RankTable, source: UInt64)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let size = Int(st.st_size)
        var header = [UInt64](repeating: 0, count: headerWords)
        let headerBytes = headerWords * 8
        guard size > headerBytes, header.withUnsafeMutableBytes({ readFully(fd, $0, at: 0) }) else { return nil }
        header = header.map { UInt64(littleEndian: $0) }
        guard header[0] == imageMagic, header[1] == imageVersion, header[2] == key else { return nil }
        // Every header value in range before it becomes an Int or a size (the checksum comes
        // later): a count or mask near 2^64 must mean "rebuild", not an overflow trap.
        guard header[3] >= 1, header[3] <= UInt64(RankTable.maxPairVocabulary), header[4] < 1 << 40,
              header[5] < 64, header[6] < 64 else { return nil }
        let counts = Array(header[9...])
        // Sizes first: each section's offset, and the file's size from them.
        var offsets: [Int] = []
        var at = headerBytes
        for (k, c) in counts.enumerated() {
            guard c < 1 << 32 else { return nil }
            at = (at + 63) & ~63
            offsets.append(at)
            at += Int(c) * elementSize(Section(rawValue: k)!)
        }
        at = (at + 63) & ~63
        guard size == at + 8 else { return nil }
        guard let table = try? RankTable(imageFD: fd, size: size, header: header, sectionOffsets: offsets, checksumAt: at, threads: threads) else { return nil }
        return (table, header[8])
    }

    static func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// Checks that the tables an image holds are ones `init(tokens:)` could have built:
    /// every index the hot loops take from them stays inside its table, and each
    /// open-addressing table has a free slot (a probe ends). Sequential passes only (a
    /// slot's key length is not compared with its token's: the lookup compares lengths
    /// through `offsets` before it reads token bytes, so a wrong one cannot reach outside).
    func checkImage() -> Bool {
        let n = count
        guard n >= 1, n <= RankTable.maxPairVocabulary, offsets.count == n + 1, offsets[0] == 0 else { return false }
        let off = offsets.baseAddress!
        var previous: UInt32 = 0
        for r in 1...n { let o = off[r]; if o < previous { return false }; previous = o }
        guard Int(previous) <= bytes.count else { return false }
        let capacity = mask + 1
        guard capacity >= 16, capacity & mask == 0, slots.count == 3 * capacity else { return false }
        var empty = 0, bad = 0   // the slots themselves: `checkImageSlots`, on the worker that read them
        guard byteRanks.count == 256, byteHoles.count == 256 else { return false }
        for b in 0..<256 {
            guard byteRanks[b] == RankTable.none || Int(byteRanks[b]) < n, byteHoles[b] == (byteRanks[b] == RankTable.none) else { return false }
        }
        // Pair priorities are token ranks (tiktoken) or merge lines mapped to tokens.
        let priorities = priorityToID?.count ?? n
        if let ids = priorityToID { for i in 0..<ids.count where Int(ids[i]) >= n { return false } }
        let pc = pairSlots.count
        guard pc >= 16, pc & (pc - 1) == 0, pairShift == UInt64(64 - (pc >> 3).trailingZeroBitCount) else { return false }
        let ps = pairSlots.baseAddress!
        empty = 0
        // Branch-free (half the slots are empty, at random: a branch on it mispredicts).
        let un = UInt64(n), up = UInt64(priorities)
        var worst: UInt64 = 0
        for i in 0..<pc {
            let e = ps[i]
            let full = UInt64(bitPattern: -Int64(e != 0 ? 1 : 0))
            empty &+= e == 0 ? 1 : 0
            // a >= n, b >= n, or priority p outside 1...priorities (p - 1 wraps at 0), unless empty.
            worst |= ((e >> 41 >= un ? 1 : 0) | (e >> 21 & 0xF_FFFF >= un ? 1 : 0) | ((e & 0x1F_FFFF) &- 1 >= up ? 1 : 0)) & full
        }
        bad = Int(worst)
        guard bad == 0, empty > 0, pairSides.count == n / 32 + 1, reachable.count == n / 64 + 1 else { return false }
        let filterWords = pairFilter.count
        guard filterWords >= 64, filterWords & (filterWords - 1) == 0,
              pairFilterShift == UInt64(64 - filterWords.trailingZeroBitCount) else { return false }
        guard trigrams.count == (1 << 24) / 64, pairTokens.count == (1 << 16) / 64, bytePairs.count == 1 << 16 else { return false }
        for p in bytePairs where p != RankTable.none && Int(p) >= priorities { return false }
        return true
    }
}

/// Every slot of a rank table's image holds a rank below `count` or is empty, and one is
/// empty (a probe ends); `hash` gets the slots' xxh3-64. One pass in chunks of 192 KiB,
/// each hashed and then checked while it is in cache.
func checkImageSlots(_ raw: UnsafeRawBufferPointer, capacity: Int, count n: Int, hash: inout UInt64) -> Bool {
    guard capacity >= 16, capacity & (capacity - 1) == 0, raw.count == 24 * capacity else { return false }
    let sl = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
    var stream = XXH3Stream()
    var empty = 0, bad: UInt64 = 0
    let un = UInt64(n)
    let chunk = 8192   // slots
    var start = 0
    while start < capacity {
        let end = min(start + chunk, capacity)
        stream.update(UnsafeRawBufferPointer(rebasing: raw[24 * start..<24 * end]))
        for i in start..<end {
            let m = sl[3 * i]
            // rank + 1 in the low word, 0 only in an empty slot; rank + 1 - 1 >= n (or a
            // wrapped 0) in a slot that is not empty is bad. No branches: empties are random.
            empty &+= m == 0 ? 1 : 0
            bad |= ((m & 0xFFFF_FFFF) &- 1 >= un ? 1 : 0) & (m != 0 ? 1 : 0)
        }
        start = end
    }
    hash = stream.digest()
    return bad == 0 && empty > 0
}

/// Where compiled vocabularies are kept: `$TOKENMILL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tokenmill`, else `~/.cache/tokenmill`. `TOKENMILL_CACHE_DIR=off`
/// turns the cache off. A cache that cannot be written is skipped silently: it only
/// saves time, and every load without it gives the same tables.
public enum VocabularyCache {
    public static var directory: String? {
        if let v = getenv("TOKENMILL_CACHE_DIR") {
            let s = String(cString: v)
            return s.isEmpty || s == "off" ? nil : s
        }
        if let x = getenv("XDG_CACHE_HOME"), x.pointee != 0 { return FileSystem.join(String(cString: x), "tokenmill") }
        if let h = getenv("HOME"), h.pointee != 0 { return FileSystem.join(String(cString: h), ".cache/tokenmill") }
        return nil
    }

    /// The key of the table built by `kind` (how the file's bytes become tokens) from a
    /// vocabulary file whose bytes hash to `source`, by this very executable (its size
    /// and modification time: a rebuilt binary never reads a table an older build of the
    /// code made). Keyed by content, not by the file's name and time: a file rewritten in
    /// place within the file system's timestamp resolution (a few ms) keeps its mtime.
    static func key(source: UInt64, kind: String) -> UInt64 {
        var parts = [UInt8](kind.utf8)
        func add(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { parts.append(contentsOf: $0) } }
        add(source)
        var exe = stat()
        if stat("/proc/self/exe", &exe) == 0 {
            add(UInt64(exe.st_size)); add(UInt64(exe.st_mtim.tv_sec)); add(UInt64(exe.st_mtim.tv_nsec))
        }
        add(RankTable.imageVersion)
        return XXH3.hash64(parts)
    }

    /// Tables this process read from the cache rather than built (tests check that the
    /// cache is really used).
    nonisolated(unsafe) public static var imageReads = 0

    /// The table for `key` and the xxh3 of the vocabulary file it came from: from the
    /// cache, or from `build()`, whose result is then stored.
    static func rankTable(key: UInt64, threads: Int, _ build: () throws -> (RankTable, UInt64)) throws -> (RankTable, UInt64) {
        guard let dir = directory else { return try build() }
        let path = FileSystem.join(dir, "ranks-\(XXH3.hex(key)).tmrt")
        if let (table, source) = RankTable.readImage(path, key: key, threads: threads) {
            imageReads += 1
            return (table, source)
        }
        let (table, source) = try build()
        if (try? FileSystem.makeDirectories(dir)) != nil, (try? table.writeImage(to: path, key: key, source: source)) != nil {
            prune(dir)
        }
        return (table, source)
    }

    /// Images kept: the newest few (every rebuilt executable keys its own, ~21 MB each
    /// for o200k_base). A process still reading a removed file reads it to the end.
    static let kept = 8

    static func prune(_ dir: String) {
        guard let names = try? FileSystem.listDirectory(dir) else { return }
        var images: [(mtime: Int, path: String)] = []
        for n in names where n.hasPrefix("ranks-") && n.hasSuffix(".tmrt") {
            let p = FileSystem.join(dir, n)
            if let (_, m) = try? FileSystem.sizeAndMTime(p) { images.append((m, p)) }
        }
        guard images.count > kept else { return }
        for old in images.sorted(by: { $0.mtime > $1.mtime })[kept...] { FileSystem.remove(old.path) }
    }
}
