import TokenmillCore

/// A Hugging Face dataset folder as a source path: the data files of one split.
///
/// Files are looked for in `data/` when the folder has one, else in the folder itself
/// (one level, as `datasets` lays out `data/train-00000-of-00002.parquet`). Only data
/// formats count (`.parquet`, `.jsonl`, `.ndjson`, `.json`, `.csv`, each optionally
/// `.gz`/`.zst`): a README.md beside them is skipped, and so are the JSON files `datasets`
/// writes about a dataset (`dataset_info.json`, `state.json`, ...). A split keeps the files whose name starts with it followed by
/// `-`, `_` or `.` (`train-…`, `train.jsonl`); when no file is named for any split, the
/// default split (`train`) takes them all, while a split asked for by name must exist.
public enum DatasetFolder {
    static let metadataNames: Set<String> = ["dataset_info.json", "dataset_infos.json", "state.json", "dataset_dict.json"]

    public static func files(in folder: String, split: String?) throws -> [String] {
        let dataDir = FileSystem.join(folder, "data")
        let base = FileSystem.isDirectory(dataDir) ? dataDir : folder
        let names = try FileSystem.listDirectory(base).filter { name in
            guard !name.hasPrefix("."), !metadataNames.contains(name) else { return false }
            guard let f = SourceConfig.inferFormat(name), f != .text, f != .lines else { return false }
            return FileSystem.fileExists(FileSystem.join(base, name))
        }.sorted()
        if names.isEmpty {
            throw TokenmillError.badInput(path: base, line: 0, message: "no data files (.parquet, .jsonl, .json, .csv) in this folder")
        }
        let wanted = split ?? "train"
        let chosen = names.filter { isOfSplit($0, wanted) }
        if chosen.isEmpty {
            if split == nil { return names.map { FileSystem.join(base, $0) } }
            throw TokenmillError.badInput(path: base, line: 0, message: "no files of split '\(wanted)' (names starting '\(wanted)-', '\(wanted)_' or '\(wanted).'); files here: \(names.prefix(5).joined(separator: ", "))")
        }
        return chosen.map { FileSystem.join(base, $0) }
    }

    static func isOfSplit(_ name: String, _ split: String) -> Bool {
        guard name.hasPrefix(split) else { return false }
        let rest = name.dropFirst(split.count)
        return rest.first.map { $0 == "-" || $0 == "_" || $0 == "." } ?? false
    }
}
