//! Turning FHIRPath results into index values, by search parameter type.
//!
//! Which parts of a complex value a search type matches follows the specification's
//! search page: string parameters match the parts of a HumanName or Address, token
//! parameters the codings of a CodeableConcept and the system/value of an Identifier,
//! date parameters the range of a date, dateTime, instant, Period or Timing event, and so
//! on. Two additions serve modifiers: an Identifier also gives, per `Identifier.type` coding,
//! a `(type coding, value)` composite for `:of-type`, and a Reference its
//! `Reference.identifier` as a token for `:identifier`.

use caduceus_fhirpath::Item;
use caduceus_model::defs::{self, NONE};
use caduceus_model::ids::parse_date_range;
use caduceus_store::index::{IndexRow, IndexValue};
use serde_json::{Map, Value};

use caduceus_store::index::normalize::normalize_string;
use caduceus_store::index::units::canonical;

/// Appends the rows `item` gives a parameter of type `kind`.
pub(crate) fn convert(param: &'static str, kind: &str, item: &Item<'_>, rows: &mut Vec<IndexRow>) {
    values(kind, item, &mut |value| {
        rows.push(IndexRow { param, value })
    });
}

/// Passes `push` the values `item` gives a parameter of type `kind`.
pub(crate) fn values(kind: &str, item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    match item {
        Item::Node(node) => {
            let type_name = if node.ty == NONE {
                ""
            } else {
                defs::type_def(node.ty).name
            };
            if let Some(value) = node.value {
                convert_node(kind, type_name, value, push)
            }
        }
        other => {
            // A value the expression computed (e.g. a string from a function).
            if let Some(text) = other.to_text() {
                convert_node(kind, "string", &Value::String(text), push);
            }
        }
    }
}

fn convert_node(kind: &str, type_name: &str, value: &Value, push: &mut impl FnMut(IndexValue)) {
    match kind {
        "string" => strings(type_name, value, push),
        "token" => tokens(type_name, value, push),
        "reference" => references(type_name, value, push),
        "date" => dates(type_name, value, push),
        "number" => {
            if let Some((v, low, high)) = number(value) {
                push(IndexValue::Number {
                    value: v,
                    low,
                    high,
                });
            }
        }
        "quantity" => quantities(type_name, value, push),
        "uri" => {
            if let Value::String(s) = value {
                push(IndexValue::Uri(s.clone()));
            }
        }
        _ => {}
    }
}

fn str_of<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    obj.get(key).and_then(Value::as_str)
}

/// Strings of a key that may hold one string or an array of them.
fn strs<'v>(obj: &'v Map<String, Value>, key: &str) -> impl Iterator<Item = &'v str> {
    let v = obj.get(key);
    let single = v.and_then(Value::as_str);
    let many = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    single.into_iter().chain(many)
}

fn string_value(text: &str) -> IndexValue {
    IndexValue::String {
        normalized: normalize_string(text),
        exact: text.to_owned(),
    }
}

fn strings(type_name: &str, value: &Value, push: &mut impl FnMut(IndexValue)) {
    match value {
        Value::String(s) => push(string_value(s)),
        Value::Object(obj) => {
            let parts: &[&str] = match type_name {
                "HumanName" => &["text", "family", "given", "prefix", "suffix"],
                "Address" => &[
                    "text",
                    "line",
                    "city",
                    "district",
                    "state",
                    "postalCode",
                    "country",
                ],
                _ => &[],
            };
            if parts.is_empty() {
                // Another complex type: its direct string elements.
                for v in obj.values() {
                    if let Value::String(s) = v {
                        push(string_value(s));
                    }
                }
            }
            for part in parts {
                for s in strs(obj, part) {
                    push(string_value(s));
                }
            }
        }
        _ => {}
    }
}

fn token(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(str::to_owned),
        code: code.map(str::to_owned),
        text: text.map(normalize_string),
    }
}

fn tokens(type_name: &str, value: &Value, push: &mut impl FnMut(IndexValue)) {
    match value {
        Value::String(s) => push(token(None, Some(s), None)),
        Value::Bool(b) => push(token(None, Some(if *b { "true" } else { "false" }), None)),
        Value::Number(n) => push(token(None, Some(n.as_str()), None)),
        Value::Object(obj) => match type_name {
            "CodeableConcept" => {
                let text = str_of(obj, "text");
                let mut any = false;
                for coding in obj
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(c) = coding.as_object() {
                        any = true;
                        push(token(
                            str_of(c, "system"),
                            str_of(c, "code"),
                            str_of(c, "display").or(text),
                        ));
                    }
                }
                // `:text` searches CodeableConcept.text as well as each display, so the
                // concept's own text gets a row of its own when a coding showed another.
                let shown = obj
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c.get("display").and_then(Value::as_str) == text);
                if text.is_some() && (!any || !shown) {
                    push(token(None, None, text));
                }
            }
            "Identifier" => {
                let type_text = obj
                    .get("type")
                    .and_then(|t| t.get("text"))
                    .and_then(Value::as_str);
                push(token(
                    str_of(obj, "system"),
                    str_of(obj, "value"),
                    type_text,
                ));
                identifier_types(obj, push);
            }
            "ContactPoint" => push(token(str_of(obj, "system"), str_of(obj, "value"), None)),
            // Coding and anything coding-shaped.
            _ => push(token(
                str_of(obj, "system"),
                str_of(obj, "code"),
                str_of(obj, "display"),
            )),
        },
        _ => {}
    }
}

/// For `:of-type`: one `(type coding, value)` composite per coding of `Identifier.type`
/// that has a code, when the identifier has a value.
fn identifier_types(identifier: &Map<String, Value>, push: &mut impl FnMut(IndexValue)) {
    let Some(value) = str_of(identifier, "value") else {
        return;
    };
    let codings = identifier
        .get("type")
        .and_then(|t| t.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object);
    for coding in codings {
        if let Some(code) = str_of(coding, "code") {
            push(IndexValue::Composite(vec![
                token(str_of(coding, "system"), Some(code), None),
                token(str_of(identifier, "system"), Some(value), None),
            ]));
        }
    }
}

fn references(type_name: &str, value: &Value, push: &mut impl FnMut(IndexValue)) {
    match value {
        // canonical / uri targets: the URL, with `|version` split off.
        Value::String(s) => {
            let (url, version) = match s.split_once('|') {
                Some((u, v)) => (u, Some(v.to_owned())),
                None => (s.as_str(), None),
            };
            push(IndexValue::Reference {
                target_type: None,
                target_id: None,
                version,
                url: Some(url.to_owned()),
            });
        }
        Value::Object(obj) if type_name == "Reference" || obj.contains_key("reference") => {
            if let Some(reference) = str_of(obj, "reference")
                && let Some(v) = parse_reference(reference)
            {
                push(v);
            }
            // `:identifier` matches `Reference.identifier` as a token (system|value): a
            // token row of the reference parameter.
            if let Some(identifier) = obj.get("identifier").and_then(Value::as_object) {
                let (system, value) = (str_of(identifier, "system"), str_of(identifier, "value"));
                if system.is_some() || value.is_some() {
                    push(token(system, value, None));
                }
            }
        }
        _ => {}
    }
}

/// Splits a literal reference: `Type/id`, `Type/id/_history/v`, or an absolute URL ending
/// in one of those (kept whole in `url` too). A local reference (`#id`, or `#` for the
/// container) keeps its text as `target_id` and no type yet: `extract` gives it the type of
/// the contained resource it names, or drops it (see `caduceus_store::index::ContainedIndex`).
pub(crate) fn parse_reference(reference: &str) -> Option<IndexValue> {
    if reference.is_empty() {
        return None;
    }
    if reference.starts_with('#') {
        return Some(IndexValue::Reference {
            target_type: None,
            target_id: Some(reference.to_owned()),
            version: None,
            url: None,
        });
    }
    let absolute = reference.contains("://") || reference.starts_with("urn:");
    let segments: Vec<&str> = reference.split('/').collect();
    let n = segments.len();
    let typed = |t: &str| defs::is_resource_type(t);
    let (target_type, target_id, version) =
        if n >= 4 && segments[n - 2] == "_history" && typed(segments[n - 4]) {
            (
                Some(segments[n - 4]),
                Some(segments[n - 3]),
                Some(segments[n - 1]),
            )
        } else if n >= 2 && typed(segments[n - 2]) {
            (Some(segments[n - 2]), Some(segments[n - 1]), None)
        } else {
            (None, None, None)
        };
    Some(IndexValue::Reference {
        target_type: target_type.map(str::to_owned),
        target_id: target_id.map(str::to_owned),
        version: version.map(str::to_owned),
        url: absolute.then(|| reference.to_owned()),
    })
}

fn date_range(text: &str) -> Option<(i64, i64)> {
    parse_date_range(text)
}

fn dates(type_name: &str, value: &Value, push: &mut impl FnMut(IndexValue)) {
    match value {
        Value::String(s) => {
            if let Some((start, end)) = date_range(s) {
                push(IndexValue::Date { start, end });
            }
        }
        Value::Object(obj) => match type_name {
            "Timing" => {
                for s in strs(obj, "event") {
                    if let Some((start, end)) = date_range(s) {
                        push(IndexValue::Date { start, end });
                    }
                }
            }
            // Period and Period-shaped values.
            _ => {
                let start = str_of(obj, "start")
                    .and_then(date_range)
                    .map_or(i64::MIN, |r| r.0);
                let end = str_of(obj, "end")
                    .and_then(date_range)
                    .map_or(i64::MAX, |r| r.1);
                if obj.contains_key("start") || obj.contains_key("end") {
                    push(IndexValue::Date { start, end });
                }
            }
        },
        _ => {}
    }
}

/// A number's value and the range its written precision implies: `100` covers
/// [99.5, 100.5), `1.50` covers [1.495, 1.505).
pub(crate) fn number(value: &Value) -> Option<(f64, f64, f64)> {
    let text = match value {
        Value::Number(n) => n.as_str().to_owned(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let v: f64 = text.parse().ok()?;
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().unwrap_or(0)),
        None => (text.as_str(), 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Some((v, v - half, v + half))
}

fn quantities(type_name: &str, value: &Value, push: &mut impl FnMut(IndexValue)) {
    let Value::Object(obj) = value else { return };
    let Some((v, low, high)) = obj.get("value").and_then(number) else {
        return;
    };
    let (system, code) = if type_name == "Money" {
        (Some("urn:iso:std:iso:4217"), str_of(obj, "currency"))
    } else {
        (
            str_of(obj, "system"),
            str_of(obj, "code").or_else(|| str_of(obj, "unit")),
        )
    };
    let canon = (system == Some("http://unitsofmeasure.org"))
        .then_some(())
        .and(code)
        .and_then(canonical);
    push(IndexValue::Quantity {
        value: v,
        low,
        high,
        system: system.map(str::to_owned),
        code: code.map(str::to_owned),
        canonical_value: canon.map(|(factor, _)| v * factor),
        canonical_code: canon.map(|(_, unit)| unit.to_owned()),
    });
}
