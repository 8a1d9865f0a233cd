//! Row conditions, one per search value, over an index table aliased `x`: how each
//! parameter type compares a searched value with an indexed one (FHIR R4 search.html).
//!
//! Ranges (search.html#prefix): a date value covers `[S, E)`, an indexed date `[s, e)`.
//! - `eq`: the search range contains the target range: `s >= S AND e <= E`
//! - `ne`: not `eq`: `s < S OR e > E`
//! - `gt`: the range above the search value overlaps the target: `e > E`
//! - `lt`: the range below the search value overlaps the target: `s < S`
//! - `ge`: `gt` or `eq`; `le`: `lt` or `eq`
//! - `sa`: the target starts after the search range: `s >= E`
//! - `eb`: the target ends before the search range: `e <= S`
//! - `ap`: the target overlaps the search range widened on both sides by 10% of the
//!   distance between its start and now (so `ap2020` today is about ±7 months).
//!
//! Numbers and quantities follow the examples of search.html#number: `eq`/`ne` test the
//! indexed value against the search value's precision range `[low, high)` (`100` is
//! `[99.5, 100.5)`), `gt`/`lt`/`ge`/`le` compare with the exact value, `sa`/`eb` compare the
//! indexed value's own precision range with the search range, and `ap` accepts values
//! within 10% of the search value (at least its precision range).
//!
//! Strings compare normalised text (see `normalize`): the default is starts-with, written as
//! a range on `normalized` so the lookup index serves it; `:contains` is `instr` (a
//! substring test that needs no escaping); `:exact` is equality on the text as written.
//! Uri `:below` is the same prefix test on the URI and `:above` its reverse (the indexed
//! URI is a prefix of the searched one).
//!
//! Composite components (`search/composite.rs`) use these same comparisons over the
//! columns of their position in `idx_composite` (the `*_in` forms take the columns).

use caduceus_search::{DateValue, NumberValue, Prefix, QuantityValue, ReferenceValue, TokenValue};

use crate::frag::Frag;
use caduceus_store::index::normalize::normalize_string as normalize;
use caduceus_store::index::units::{UCUM, canonical};

/// The largest character: `p || MAX_CHAR` is above every string starting with `p` that
/// does not itself continue with U+10FFFF (the exact prefix test below covers that case).
const MAX_CHAR: char = '\u{10FFFF}';

/// A starts-with test on `col` that can use an index on `col`: a range, then the exact
/// prefix comparison.
pub fn starts_with(f: &mut Frag, col: &str, prefix: &str) {
    let upper = format!("{prefix}{MAX_CHAR}");
    let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
    f.push("(").push(col).push(" >= ").bind(prefix.to_owned());
    f.push(" AND ").push(col).push(" < ").bind(upper);
    f.push(" AND substr(").push(col).push(", 1, ").bind(chars);
    f.push(") = ").bind(prefix.to_owned()).push(")");
}

/// `string` (no modifier): the normalised value starts with the normalised term.
pub fn string_prefix(f: &mut Frag, term: &str) {
    starts_with(f, "x.normalized", &normalize(term));
}

/// `string:exact`: the text as written equals the term (the normalised equality lets the
/// lookup index find the candidates).
pub fn string_exact(f: &mut Frag, term: &str) {
    f.push("(x.normalized = ")
        .bind(normalize(term))
        .push(" AND x.exact = ")
        .bind(term.to_owned())
        .push(")");
}

/// `string:contains`: the normalised term occurs anywhere in the normalised value.
pub fn string_contains(f: &mut Frag, term: &str) {
    f.push("instr(x.normalized, ")
        .bind(normalize(term))
        .push(") > 0");
}

/// `token`: `code`, `system|code`, `|code`, `system|`.
pub fn token(f: &mut Frag, v: &TokenValue) {
    token_in(f, "x.system", "x.code", v);
}

/// [`token`] over the given system and code columns (composite components).
pub fn token_in(f: &mut Frag, system_col: &str, code_col: &str, v: &TokenValue) {
    let mut parts = 0;
    f.push("(");
    if let Some(code) = &v.code {
        f.push(code_col).push(" = ").bind(code.clone());
        parts += 1;
    }
    match v.system.as_deref() {
        None => {}
        Some("") => {
            if parts > 0 {
                f.push(" AND ");
            }
            f.push(system_col).push(" IS NULL");
            parts += 1;
        }
        Some(s) => {
            if parts > 0 {
                f.push(" AND ");
            }
            f.push(system_col).push(" = ").bind(s.to_owned());
            parts += 1;
        }
    }
    if parts == 0 {
        f.push("TRUE");
    }
    f.push(")");
}

/// A token in a set of `(system, code)` pairs (a resolved `:in`, `:above`, `:below`), any
/// size: the pairs are one bound JSON array read by `json_each`, so the lookup index is
/// sought once per code instead of one `UNION ALL` arm per code (which SQLite's
/// compound-select limit caps at 500). With 400 codes over 200,000 index rows this took
/// about half the time of the `UNION ALL` form; 10,000 codes take about 0.1 s.
pub fn token_set(f: &mut Frag, codes: &[(String, String)]) {
    let json = serde_json::to_string(codes).unwrap_or_else(|_| "[]".to_owned());
    f.push("(x.code, x.system) IN (")
        .push(TOKEN_SET_PAIRS)
        .bind(json)
        .push("))");
}

/// The (code, system) pairs of a bound JSON array `[[system, code], ...]`, with SQLite's
/// JSON functions; followed by the bound array and `)`. `postgres::render` swaps the whole
/// `TOKEN_SET_PAIRS ?)` for [`TOKEN_SET_PAIRS_POSTGRES`].
pub const TOKEN_SET_PAIRS: &str =
    "SELECT json_extract(value, '$[1]'), json_extract(value, '$[0]') FROM json_each(";

/// `TOKEN_SET_PAIRS ?)` with PostgreSQL's JSON functions: the same pairs, as text.
pub const TOKEN_SET_PAIRS_POSTGRES: &str =
    "SELECT e ->> 1, e ->> 0 FROM jsonb_array_elements(CAST(? AS jsonb)) AS e";

/// `token:text`: the normalised text starts with the term, or has a word starting with it.
pub fn token_text(f: &mut Frag, term: &str) {
    let term = normalize(term);
    f.push("(");
    starts_with(f, "x.text", &term);
    f.push(" OR instr(x.text, ")
        .bind(format!(" {term}"))
        .push(") > 0)");
}

/// The columns a reference is compared on.
pub struct RefCols<'a> {
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub version: &'a str,
    pub url: &'a str,
}

/// `reference`: local (`Type/id`, bare id, with version) or by URL; `only_type` from
/// `:[type]`.
pub fn reference(f: &mut Frag, v: &ReferenceValue, only_type: Option<&str>) {
    let cols = RefCols {
        target_type: "x.target_type",
        target_id: "x.target_id",
        version: "x.target_version",
        url: "x.url",
    };
    reference_in(f, &cols, v, only_type);
}

/// [`reference`] over the given columns (composite components).
pub fn reference_in(f: &mut Frag, c: &RefCols<'_>, v: &ReferenceValue, only_type: Option<&str>) {
    f.push("(");
    match v {
        ReferenceValue::Local {
            resource_type,
            id,
            version,
        } => {
            f.push(c.target_id).push(" = ").bind(id.clone());
            if let Some(t) = resource_type {
                f.push(" AND ")
                    .push(c.target_type)
                    .push(" = ")
                    .bind(t.to_string());
            }
            if let Some(ver) = version {
                f.push(" AND ")
                    .push(c.version)
                    .push(" = ")
                    .bind(ver.clone());
            }
        }
        ReferenceValue::Url { url, version } => {
            f.push(c.url).push(" = ").bind(url.clone());
            if let Some(ver) = version {
                f.push(" AND ")
                    .push(c.version)
                    .push(" = ")
                    .bind(ver.clone());
            }
        }
    }
    if let Some(t) = only_type {
        f.push(" AND ")
            .push(c.target_type)
            .push(" = ")
            .bind(t.to_owned());
    }
    f.push(")");
}

/// `uri` (exact), `:below` (indexed URI starts with the term), `:above` (the term starts
/// with the indexed URI).
pub fn uri(f: &mut Frag, term: &str, above: bool, below: bool) {
    if below {
        starts_with(f, "x.value", term);
    } else if above {
        f.push("(x.value <> '' AND substr(")
            .bind(term.to_owned())
            .push(", 1, length(x.value)) = x.value)");
    } else {
        f.push("x.value = ").bind(term.to_owned());
    }
}

/// A date comparison on the half-open range `[start_col, end_col)`. `now` (µs) anchors
/// `ap`.
pub fn date(f: &mut Frag, start_col: &str, end_col: &str, v: &DateValue, now: i64) {
    let (s, e) = (start_col, end_col);
    let (lo, hi) = (v.start, v.end);
    match v.prefix {
        Prefix::Eq => {
            // `s < E` is implied (s < e <= E); stated, it bounds the index range on start.
            f.push("(").push(s).push(" >= ").bind(lo);
            f.push(" AND ").push(s).push(" < ").bind(hi);
            f.push(" AND ").push(e).push(" <= ").bind(hi).push(")");
        }
        Prefix::Ne => {
            f.push("(").push(s).push(" < ").bind(lo);
            f.push(" OR ").push(e).push(" > ").bind(hi).push(")");
        }
        Prefix::Gt => {
            f.push(e).push(" > ").bind(hi);
        }
        Prefix::Lt => {
            f.push(s).push(" < ").bind(lo);
        }
        Prefix::Ge => {
            f.push("(").push(e).push(" > ").bind(hi);
            f.push(" OR (").push(s).push(" >= ").bind(lo);
            f.push(" AND ").push(e).push(" <= ").bind(hi).push("))");
        }
        Prefix::Le => {
            // Every match starts before E (`lt`: s < S; `eq`: s < e <= E): an index bound.
            f.push("(")
                .push(s)
                .push(" < ")
                .bind(hi)
                .push(" AND (")
                .push(s)
                .push(" < ")
                .bind(lo);
            f.push(" OR (").push(s).push(" >= ").bind(lo);
            f.push(" AND ").push(e).push(" <= ").bind(hi).push(")))");
        }
        Prefix::Sa => {
            f.push(s).push(" >= ").bind(hi);
        }
        Prefix::Eb => {
            f.push(e).push(" <= ").bind(lo);
        }
        Prefix::Ap => {
            let delta = i64::try_from(now.abs_diff(lo) / 10).unwrap_or(i64::MAX);
            let (lo, hi) = (lo.saturating_sub(delta), hi.saturating_add(delta));
            f.push("(").push(s).push(" < ").bind(hi);
            f.push(" AND ").push(e).push(" > ").bind(lo).push(")");
        }
    }
}

/// The searched number as f64s: (value, low, high), each multiplied by `factor`.
pub fn scaled(n: &NumberValue, factor: f64) -> (f64, f64, f64) {
    (
        n.value.to_f64() * factor,
        n.low.to_f64() * factor,
        n.high.to_f64() * factor,
    )
}

/// A number comparison over columns `value`, `low`, `high` (`low`/`high`: the indexed
/// value's precision range).
pub fn number_cols(f: &mut Frag, cols: (&str, &str, &str), prefix: Prefix, n: (f64, f64, f64)) {
    let (vc, lc, hc) = cols;
    let (v, lo, hi) = n;
    match prefix {
        Prefix::Eq => {
            f.push("(").push(vc).push(" >= ").bind(lo);
            f.push(" AND ").push(vc).push(" < ").bind(hi).push(")");
        }
        Prefix::Ne => {
            f.push("(").push(vc).push(" < ").bind(lo);
            f.push(" OR ").push(vc).push(" >= ").bind(hi).push(")");
        }
        Prefix::Gt => {
            f.push(vc).push(" > ").bind(v);
        }
        Prefix::Lt => {
            f.push(vc).push(" < ").bind(v);
        }
        Prefix::Ge => {
            f.push(vc).push(" >= ").bind(v);
        }
        Prefix::Le => {
            f.push(vc).push(" <= ").bind(v);
        }
        Prefix::Sa => {
            f.push(lc).push(" >= ").bind(hi);
        }
        Prefix::Eb => {
            f.push(hc).push(" <= ").bind(lo);
        }
        Prefix::Ap => {
            let d = (v * 0.1).abs();
            let (lo, hi) = (lo.min(v - d), hi.max(v + d));
            f.push("(").push(vc).push(" >= ").bind(lo);
            f.push(" AND ").push(vc).push(" < ").bind(hi).push(")");
        }
    }
}

/// `number`.
pub fn number(f: &mut Frag, n: &NumberValue) {
    number_cols(f, ("x.value", "x.low", "x.high"), n.prefix, scaled(n, 1.0));
}

/// The columns a quantity is compared on.
pub struct QtyCols<'a> {
    pub value: &'a str,
    pub low: &'a str,
    pub high: &'a str,
    pub system: &'a str,
    pub code: &'a str,
    pub canonical_value: &'a str,
    pub canonical_code: &'a str,
}

/// `quantity`: the number, plus the unit. A UCUM unit the canonical table knows compares
/// canonical values (`5 mg` finds `0.005 g`); any other unit compares system and code
/// (the index keeps the unit text as code when there is no code).
pub fn quantity(f: &mut Frag, q: &QuantityValue) {
    let cols = QtyCols {
        value: "x.value",
        low: "x.low",
        high: "x.high",
        system: "x.system",
        code: "x.code",
        canonical_value: "x.canonical_value",
        canonical_code: "x.canonical_code",
    };
    quantity_in(f, &cols, q);
}

/// [`quantity`] over the given columns (composite components).
pub fn quantity_in(f: &mut Frag, c: &QtyCols<'_>, q: &QuantityValue) {
    let canon = match (q.system.as_deref(), q.code.as_deref()) {
        (Some(UCUM), Some(code)) => canonical(code),
        _ => None,
    };
    f.push("(");
    if let Some((factor, unit)) = canon {
        f.push(c.canonical_code)
            .push(" = ")
            .text(unit)
            .push(" AND ");
        let cols = (c.canonical_value, c.canonical_value, c.canonical_value);
        number_cols(f, cols, q.number.prefix, scaled(&q.number, factor));
    } else {
        if let Some(system) = &q.system {
            f.push(c.system)
                .push(" = ")
                .bind(system.clone())
                .push(" AND ");
        }
        if let Some(code) = &q.code {
            f.push(c.code).push(" = ").bind(code.clone()).push(" AND ");
        }
        let cols = (c.value, c.low, c.high);
        number_cols(f, cols, q.number.prefix, scaled(&q.number, 1.0));
    }
    f.push(")");
}
