//! Checks of primitive values: JSON type, then format.
//!
//! The format of each primitive type is the regular expression published on its
//! StructureDefinition (compiled once, anchored, from the generated type table), plus what a
//! regex cannot say: dates must exist in the calendar (no 30 February), `integer`,
//! `unsignedInt` and `positiveInt` are 32-bit, strings must not be empty or only whitespace,
//! and `xhtml` narrative must be a `<div>` element. Numbers are checked on their literal text,
//! which `serde_json`'s `arbitrary_precision` keeps exactly as written.

use std::sync::LazyLock;

use caduceus_model::defs::{self, JsonKind, TypeId, type_ids};
use regex::Regex;
use serde_json::Value;

/// Why a primitive value is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The JSON type does not fit the FHIR type (a number for a string, ...).
    WrongJsonType(JsonKind),
    /// An empty string.
    Empty,
    /// A string of whitespace only.
    Whitespace,
    /// The text does not match the type's regular expression.
    Format,
    /// A date that does not exist (e.g. 2023-02-30).
    NotADate,
    /// An integer outside the type's range.
    OutOfRange,
    /// Narrative that is not a `<div>` element.
    NotXhtml,
}

impl Problem {
    /// What went wrong, for diagnostics (never the value itself).
    pub fn describe(self) -> &'static str {
        match self {
            Problem::WrongJsonType(JsonKind::String) => "must be a JSON string",
            Problem::WrongJsonType(JsonKind::Boolean) => "must be a JSON boolean",
            Problem::WrongJsonType(JsonKind::Number) => "must be a JSON number",
            Problem::WrongJsonType(JsonKind::Object) => "must be a JSON object",
            Problem::Empty => "must not be empty",
            Problem::Whitespace => "must not consist of whitespace only",
            Problem::Format => "does not match the format of its type",
            Problem::NotADate => "is not a date of the calendar",
            Problem::OutOfRange => "is outside the range of its type",
            Problem::NotXhtml => "must be an XHTML <div> element",
        }
    }
}

/// Whitespace as the published regexes mean it (XML Schema / Java `\s`: ASCII only).
const XML_WHITESPACE: &[char] = &[' ', '\t', '\n', '\u{b}', '\u{c}', '\r'];

/// The anchored regex of each type, indexed by `TypeId` (`None` when the type has none).
static REGEXES: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    defs::types()
        .iter()
        .map(|t| {
            if t.regex.is_empty() {
                None
            } else {
                Regex::new(&format!("^(?:{})$", ascii_whitespace_classes(t.regex))).ok()
            }
        })
        .collect()
});

/// Rewrites `\s` and `\S` to ASCII classes: the specification's regexes follow XML Schema and
/// Java, where a no-break space is not whitespace, whereas the `regex` crate's `\s` is Unicode.
/// Nested classes keep the rewrite valid inside brackets (`[ \r\n\t\S]`).
fn ascii_whitespace_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push_str("[ \\t\\n\\x0B\\f\\r]"),
            Some('S') => out.push_str("[^ \\t\\n\\x0B\\f\\r]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn matches(ty: TypeId, text: &str) -> bool {
    match REGEXES.get(usize::from(ty)) {
        Some(Some(re)) => re.is_match(text),
        _ => true,
    }
}

/// Checks a non-null primitive value of type `ty`.
pub fn check(ty: TypeId, value: &Value) -> Result<(), Problem> {
    let def = defs::type_def(ty);
    match (def.json, value) {
        (JsonKind::String, Value::String(s)) => check_text(ty, s),
        (JsonKind::Boolean, Value::Bool(_)) => Ok(()),
        (JsonKind::Number, Value::Number(n)) => check_number(ty, n.as_str()),
        (kind, _) => Err(Problem::WrongJsonType(kind)),
    }
}

fn check_text(ty: TypeId, s: &str) -> Result<(), Problem> {
    if s.is_empty() {
        return Err(Problem::Empty);
    }
    if s.trim_matches(XML_WHITESPACE).is_empty() {
        return Err(Problem::Whitespace);
    }
    if ty == type_ids::xhtml {
        return if s.trim_start().starts_with("<div") {
            Ok(())
        } else {
            Err(Problem::NotXhtml)
        };
    }
    if !matches(ty, s) {
        return Err(Problem::Format);
    }
    if (ty == type_ids::date || ty == type_ids::dateTime || ty == type_ids::instant)
        && !is_calendar_date(s)
    {
        return Err(Problem::NotADate);
    }
    Ok(())
}

fn check_number(ty: TypeId, text: &str) -> Result<(), Problem> {
    if !matches(ty, text) {
        return Err(Problem::Format);
    }
    let min = match ty {
        t if t == type_ids::integer => i64::from(i32::MIN),
        t if t == type_ids::unsignedInt => 0,
        t if t == type_ids::positiveInt => 1,
        _ => return Ok(()),
    };
    match text.parse::<i64>() {
        Ok(n) if n >= min && n <= i64::from(i32::MAX) => Ok(()),
        _ => Err(Problem::OutOfRange),
    }
}

/// True unless the text starts with a year-month-day that does not exist. The regex has
/// already checked the shape (`YYYY`, `YYYY-MM` or `YYYY-MM-DD...`, month 01-12, day 01-31).
fn is_calendar_date(s: &str) -> bool {
    let (Some(y), Some(m), Some(d)) = (s.get(0..4), s.get(5..7), s.get(8..10)) else {
        return true;
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(ty: TypeId, v: Value) -> bool {
        check(ty, &v).is_ok()
    }

    #[test]
    fn every_published_regex_compiles() {
        for (i, t) in defs::types().iter().enumerate() {
            if !t.regex.is_empty() {
                assert!(REGEXES[i].is_some(), "regex of {} does not compile", t.name);
            }
        }
    }

    #[test]
    fn whitespace_is_ascii_as_in_xml_schema() {
        assert_eq!(ascii_whitespace_classes(r"[^\s]+"), r"[^[ \t\n\x0B\f\r]]+");
        assert_eq!(ascii_whitespace_classes(r"a\\s"), r"a\\s");
        // A no-break space is content, not whitespace.
        assert!(ok(type_ids::string, json!("\u{a0}")));
        assert!(ok(type_ids::code, json!("a\u{a0}b")));
    }

    #[test]
    fn id_regex_agrees_with_the_model() {
        let long = "a".repeat(65);
        for id in [
            "a",
            "A-1.b",
            "",
            "has space",
            "a_b",
            "é",
            long.as_str(),
            &long[1..],
        ] {
            assert_eq!(
                check(type_ids::id, &json!(id)).is_ok(),
                caduceus_model::ids::is_valid_id(id),
                "{id:?}"
            );
        }
    }

    #[test]
    fn dates_must_exist() {
        use type_ids::{date, dateTime, instant};
        assert!(ok(date, json!("2024-02-29")));
        assert!(ok(date, json!("2024")));
        assert!(ok(date, json!("2024-02")));
        assert_eq!(check(date, &json!("2023-02-29")), Err(Problem::NotADate));
        assert_eq!(check(date, &json!("2023-04-31")), Err(Problem::NotADate));
        assert_eq!(check(date, &json!("2023-13-01")), Err(Problem::Format));
        assert!(ok(dateTime, json!("2015-02-07T13:28:17-05:00")));
        assert_eq!(
            check(dateTime, &json!("2015-02-07T13:28:17")),
            Err(Problem::Format),
            "a time needs a zone"
        );
        assert_eq!(
            check(dateTime, &json!("1900-02-29T00:00:00Z")),
            Err(Problem::NotADate)
        );
        assert!(ok(instant, json!("2015-02-07T13:28:17.239+02:00")));
        assert_eq!(check(instant, &json!("2015-02-07")), Err(Problem::Format));
    }

    #[test]
    fn integers_are_32_bit() {
        use type_ids::{decimal, integer, positiveInt, unsignedInt};
        let n = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
        assert!(ok(integer, n("-2147483648")));
        assert_eq!(check(integer, &n("2147483648")), Err(Problem::OutOfRange));
        assert_eq!(check(integer, &n("1.5")), Err(Problem::Format));
        assert_eq!(check(positiveInt, &n("0")), Err(Problem::Format));
        assert!(ok(unsignedInt, n("0")));
        assert_eq!(check(unsignedInt, &n("-1")), Err(Problem::Format));
        assert!(ok(decimal, n("200.00")));
        assert!(ok(decimal, n("1.5e3")));
        assert_eq!(
            check(integer, &json!("1")),
            Err(Problem::WrongJsonType(JsonKind::Number))
        );
    }

    #[test]
    fn strings_and_codes() {
        use type_ids::{boolean, code, id, string, uri, xhtml};
        assert_eq!(check(string, &json!("")), Err(Problem::Empty));
        assert_eq!(check(string, &json!(" \t")), Err(Problem::Whitespace));
        assert!(ok(string, json!("Jim")));
        assert_eq!(check(code, &json!("a  b")), Err(Problem::Format));
        assert_eq!(check(id, &json!("a".repeat(65))), Err(Problem::Format));
        assert!(ok(id, json!("a".repeat(64))));
        assert_eq!(check(uri, &json!("has space")), Err(Problem::Format));
        assert_eq!(
            check(boolean, &json!("true")),
            Err(Problem::WrongJsonType(JsonKind::Boolean))
        );
        assert!(ok(
            xhtml,
            json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>")
        ));
        assert_eq!(check(xhtml, &json!("<p>x</p>")), Err(Problem::NotXhtml));
    }
}
