//! String normalisation for string search (shared by the indexer and the stores, so indexed
//! values and search terms are reduced by the same rules): FHIR string search is case- and
//! accent-insensitive, so values and search terms are both reduced to lower case without
//! combining marks, with runs of whitespace collapsed.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, no accents (NFD, combining marks dropped), single spaces, trimmed.
pub fn normalize_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfd().filter(|c| !is_combining_mark(*c)) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_spaces() {
        assert_eq!(
            normalize_string("  Zoë  Ångström\tMÜLLER "),
            "zoe angstrom muller"
        );
        assert_eq!(normalize_string("Ærø"), "ærø");
        assert_eq!(normalize_string(""), "");
    }
}
