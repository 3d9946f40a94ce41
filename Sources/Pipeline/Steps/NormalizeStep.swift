import Normalize
import TokenmillCore

/// Normalize + filter, record by record (block-local). Drop reasons are the filter's
/// names (`empty_response`, `empty_assistant_turn`, `min_chars`, `max_chars`, `min_words`,
/// `non_text_ratio`), counted per source under `filtered`; the shape stage adds
/// `no_trained_tokens`.
struct NormalizeStep {
    let normalizer: Normalizer
    let normalize: Bool
    let filter: RecordFilter

    init(_ spec: BuildSpec) {
        normalizer = spec.normalizer; normalize = spec.normalize; filter = spec.filter
    }

    /// Normalizes `r` in place; returns the reason it is dropped, or nil to keep it.
    func apply(_ r: inout Record) -> String? {
        if let d = r.dropReason { return d }
        if normalize { r.transformTexts(normalizer.apply) }
        return filter.reject(r)
    }
}
