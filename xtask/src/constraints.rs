//! Which invariants (`ElementDefinition.constraint`) the generated tables carry.
//!
//! Every constraint of severity `error` in the base definitions is carried (once, in a table
//! sorted by key, referenced from the nodes and elements it applies to) and evaluated by
//! `caduceus-validate` with `caduceus-fhirpath`, except the ones listed in [`SKIPPED`], each
//! with its reason; the few published expressions that are wrong in 4.0.1 are replaced by
//! the ones in [`CORRECTED`], each with its reason. Warnings (`dom-6`, `*-0` name checks, ...) are not carried at all.

/// Error-severity invariants that are deliberately not carried, with the reason.
pub const SKIPPED: &[(&str, &str)] = &[
    // Checked natively by caduceus-validate (cheaper, and with a precise location).
    (
        "dom-2",
        "native in caduceus-validate: a contained resource contains no resources",
    ),
    (
        "dom-3",
        "native in caduceus-validate: each contained resource is referenced",
    ),
    (
        "dom-4",
        "native in caduceus-validate: no versionId/lastUpdated in contained meta",
    ),
    (
        "dom-5",
        "native in caduceus-validate: no security labels on contained resources",
    ),
    (
        "txt-1",
        "native in caduceus-validate (narrative.rs): allowlisted XHTML only",
    ),
    (
        "txt-2",
        "native in caduceus-validate (narrative.rs): the div has non-whitespace content",
    ),
    (
        "ext-1",
        "native in caduceus-validate: an extension has a value or extensions, not both",
    ),
    (
        "ref-1",
        "native in caduceus-validate (with dom-3's contained ids; per reference in FHIRPath it is quadratic), '#' allowed in contained resources as in R5",
    ),
    (
        "ele-1",
        "native in caduceus-validate: no empty objects, arrays or nulls, no id-only elements",
    ),
];

/// Invariants whose published 4.0.1 expression is wrong, carried with a corrected expression:
/// (key, corrected expression, reason).
pub const CORRECTED: &[(&str, &str, &str)] = &[(
    "que-7",
    "operator = 'exists' implies (answer is boolean)",
    "4.0.1 tests the System type Boolean, which a FHIR boolean answer is not (FHIRPath suite testType12); R5 tests boolean",
)];

/// The expression Caduceus evaluates for invariant `key` published as `expression`.
pub fn expression<'a>(key: &str, expression: &'a str) -> &'a str {
    CORRECTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(expression, |(_, corrected, _)| corrected)
}

/// True when `key` is in [`SKIPPED`].
pub fn is_skipped(key: &str) -> bool {
    SKIPPED.iter().any(|(k, _)| *k == key)
}

/// The most characters of `human` text the tables keep.
const HUMAN_MAX: usize = 100;

/// The constraint's description, cut to [`HUMAN_MAX`] characters (at a word boundary).
pub fn short_human(human: &str) -> String {
    let human = human.split_whitespace().collect::<Vec<_>>().join(" ");
    if human.chars().count() <= HUMAN_MAX {
        return human;
    }
    let cut: String = human.chars().take(HUMAN_MAX).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a);
    format!("{cut}...")
}
