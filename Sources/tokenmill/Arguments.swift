import TokenmillCore

/// A small argument parser: `--flag`, `--key value`, `--key=value`, positionals.
/// Unknown options are usage errors (exit 2) naming the option.
struct Arguments {
    var positionals: [String] = []
    var options: [String: String] = [:]
    var flags: Set<String> = []

    init(_ args: ArraySlice<String>, valued: Set<String>, flags allowedFlags: Set<String>) throws {
        var it = args.makeIterator()
        while let a = it.next() {
            if a == "-" || !a.hasPrefix("-") { positionals.append(a); continue }
            var name = a
            var value: String? = nil
            if let eq = a.firstIndex(of: "=") {
                name = String(a[..<eq]); value = String(a[a.index(after: eq)...])
            }
            if valued.contains(name) {
                if value == nil { value = it.next() }
                guard let v = value else { throw TokenmillError.usage("option \(name) needs a value") }
                options[name] = v
            } else if allowedFlags.contains(name) && value == nil {
                flags.insert(name)
            } else {
                throw TokenmillError.usage("unknown option '\(a)' (see 'tokenmill help')")
            }
        }
    }

    func int(_ name: String, default d: Int, min lo: Int = Int.min) throws -> Int {
        guard let s = options[name] else { return d }
        guard let v = Int(s), v >= lo else { throw TokenmillError.usage("option \(name) expects an integer >= \(lo), got '\(s)'") }
        return v
    }
}
