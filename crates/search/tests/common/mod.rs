//! Helpers shared by the test files: decode a query string, parse it, render results compactly.
#![allow(dead_code)]

use caduceus_model::Issue;
use caduceus_model::ids::format_instant;
use caduceus_search::{Criterion, Handling, Link, ParseOptions, SearchQuery, SearchValue, parse};

/// The decoded parameters of a query string (`a=1&b=2`).
pub fn decode(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn lenient() -> ParseOptions {
    ParseOptions::default()
}

pub fn strict() -> ParseOptions {
    ParseOptions {
        handling: Handling::Strict,
        ..ParseOptions::default()
    }
}

/// Parses `query` on `types` (comma-separated; empty for a system search).
pub fn run(types: &str, query: &str, options: &ParseOptions) -> Result<SearchQuery, Vec<Issue>> {
    let types: Vec<&str> = types.split(',').filter(|t| !t.is_empty()).collect();
    parse(&types, &decode(query), options)
}

/// Parses leniently and panics on errors.
pub fn ok(types: &str, query: &str) -> SearchQuery {
    match run(types, query, &lenient()) {
        Ok(q) => q,
        Err(issues) => panic!("{types}?{query}: {}", show_issues(&issues)),
    }
}

/// Parses leniently and panics on success.
pub fn err(types: &str, query: &str, options: &ParseOptions) -> Vec<Issue> {
    match run(types, query, options) {
        Ok(q) => panic!("{types}?{query} parsed: {}", show_criteria(&q)),
        Err(issues) => issues,
    }
}

/// `code|expression|diagnostics` per issue, `; `-separated.
pub fn show_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| {
            format!(
                "{}|{}|{}|{}",
                i.severity.code(),
                i.code.code(),
                i.expression.join(","),
                i.diagnostics
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line per criterion: path, parameter, modifier, values.
pub fn show_criteria(q: &SearchQuery) -> String {
    q.criteria.iter().map(show).collect::<Vec<_>>().join("\n")
}

pub fn show(c: &Criterion) -> String {
    let mut s = String::new();
    for link in &c.path {
        match link {
            Link::Chain {
                param,
                explicit_type,
                targets,
            } => {
                s.push_str(&format!("{param:?}"));
                if let Some(t) = explicit_type {
                    s.push_str(&format!(":{t}"));
                }
                s.push_str(&format!("->[{}] . ", targets.join(",")));
            }
            Link::Has { source_type, param } => {
                s.push_str(&format!("has {source_type}<-{param:?} . "));
            }
        }
    }
    s.push_str(&format!("{:?}", c.param));
    if let Some(m) = c.modifier {
        s.push_str(&format!(" :{}", m.code()));
    }
    let values: Vec<String> = c.values.iter().map(show_value).collect();
    s.push_str(&format!(" = {}", values.join(" OR ")));
    s
}

pub fn show_value(v: &SearchValue) -> String {
    match v {
        SearchValue::Date(d) => format!(
            "Date({:?} {:?} {:?} [{}, {}))",
            d.prefix,
            d.text,
            d.precision,
            format_instant(d.start),
            format_instant(d.end)
        ),
        SearchValue::Composite(parts) => format!(
            "Composite({})",
            parts.iter().map(show_value).collect::<Vec<_>>().join(" $ ")
        ),
        other => format!("{other:?}"),
    }
}

/// The query with criteria and includes in a fixed order and no warnings, for comparing a
/// query with the parse of its canonical form.
pub fn normalised(q: &SearchQuery) -> SearchQuery {
    let mut q = q.clone();
    q.criteria.sort_by_key(|c| format!("{c:?}"));
    q.includes.sort_by_key(|i| format!("{i:?}"));
    q.revincludes.sort_by_key(|i| format!("{i:?}"));
    q.ignored.clear();
    q
}

/// Checks that the canonical form parses back to the same query, both as decoded
/// parameters and as a percent-encoded query string, and is a fixed point.
pub fn assert_round_trip(types: &str, q: &SearchQuery) {
    let canonical = q.to_params();
    let types_list: Vec<&str> = types.split(',').filter(|t| !t.is_empty()).collect();
    let again = parse(&types_list, &canonical, &lenient())
        .unwrap_or_else(|e| panic!("{types}?{canonical:?}: {}", show_issues(&e)));
    assert_eq!(normalised(&again), normalised(q), "{types}?{canonical:?}");
    assert_eq!(again.to_params(), canonical, "{types}: not a fixed point");
    let text = q.to_query_string();
    let from_text = parse(&types_list, &decode(&text), &lenient())
        .unwrap_or_else(|e| panic!("{types}?{text}: {}", show_issues(&e)));
    assert_eq!(from_text.to_query_string(), text);
    assert_eq!(normalised(&from_text), normalised(q), "{types}?{text}");
}
