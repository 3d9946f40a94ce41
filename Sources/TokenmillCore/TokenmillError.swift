/// Every failure Tokenmill reports, with where it happened and how to fix it.
///
/// The case decides the process exit status (DESIGN.md): usage/spec problems are 2, bad
/// input data 65, I/O failures 74, anything else 1. `description` is the one line printed
/// on stderr: `path:line: what is wrong (fix: ...)`.
public enum TokenmillError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The command line or the build spec is wrong (exit 2). `key` names the spec key.
    case usage(String)
    case spec(path: String, key: String, message: String)
    /// An input row is bad (exit 65). `line` is 1-based; 0 when unknown.
    case badInput(path: String, line: Int, message: String)
    /// A file could not be read or written (exit 74).
    case io(path: String, message: String)
    /// One of our own files is damaged (exit 65): shard, chunk and what failed.
    case corrupt(path: String, message: String)
    /// A tokenizer or other component that cannot be used exactly (exit 2).
    case unsupported(String)
    case other(String)

    public var exitCode: Int32 {
        switch self {
        case .usage, .spec, .unsupported: return 2
        case .badInput, .corrupt: return 65
        case .io: return 74
        case .other: return 1
        }
    }

    public var description: String {
        switch self {
        case .usage(let m): return "usage: \(m)"
        case .spec(let p, let k, let m): return "\(p): spec key '\(k)': \(m)"
        case .badInput(let p, let l, let m): return l > 0 ? "\(p):\(l): \(m)" : "\(p): \(m)"
        case .io(let p, let m): return "\(p): \(m)"
        case .corrupt(let p, let m): return "\(p): damaged: \(m)"
        case .unsupported(let m): return "unsupported: \(m)"
        case .other(let m): return m
        }
    }
}

/// The tool version written into `index.json` (the output depends on it).
public let toolVersion = "0.1.0"
