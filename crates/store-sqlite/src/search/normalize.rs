//! Normalisation of string search terms, identical to how `caduceus-index` normalised the
//! indexed values (`caduceus_index::normalize_string`): lower case, NFD with combining marks
//! removed, runs of whitespace collapsed to one space, trimmed. The store cannot depend on
//! `caduceus-index` (it pulls in FHIRPath), so the rules are replicated here and a test
//! compares both on tricky inputs.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, no accents, single spaces, trimmed.
pub(crate) fn normalize(text: &str) -> String {
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
        assert_eq!(normalize("  Zoë  Ångström\tMÜLLER "), "zoe angstrom muller");
        assert_eq!(normalize(""), "");
    }

    /// The same answers as the indexer's normaliser, which wrote the indexed values.
    #[test]
    fn agrees_with_the_indexer() {
        for text in [
            "  Zoë  Ångström\tMÜLLER ",
            "Ærø",
            "İstanbul",
            "ΣΊΣΥΦΟΣ",
            "straße STRASSE",
            "e\u{301}\u{302}x",
            "\u{1E9E}",
            "ﬁ ligature",
            "a\u{00A0}b\u{2003}c\n\rd",
            "日本語 テキスト",
            "\u{10FFFF}",
            "Ǆ ǅ ǆ",
            "Å vs A\u{30A}",
            "",
            "   ",
        ] {
            assert_eq!(
                normalize(text),
                caduceus_index::normalize_string(text),
                "{text:?}"
            );
        }
    }
}
