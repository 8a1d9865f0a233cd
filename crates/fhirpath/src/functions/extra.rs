//! Functions of later FHIRPath versions that the R4 test suite exercises: `sort`, `type`,
//! `lowBoundary`/`highBoundary`, `precision`, `comparable`, `encode`/`decode`,
//! `escape`/`unescape`.

use super::{Func, single};
use crate::ast::Expr;
use crate::datetime::{DateTime, Precision, Time};
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::ops;
use crate::quantity::Quantity;
use crate::value::{Item, Node};
use base64::Engine;
use caduceus_model::defs::NONE;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The `{namespace, name}` object `type()` returns. There are a few hundred type names in
/// all, so each is built once and kept for the life of the process.
fn type_info(namespace: &'static str, name: &'static str) -> Option<&'static Value> {
    static CACHE: OnceLock<Mutex<HashMap<(&'static str, &'static str), &'static Value>>> =
        OnceLock::new();
    let mut map = CACHE.get_or_init(Default::default).lock().ok()?;
    Some(*map.entry((namespace, name)).or_insert_with(|| {
        Box::leak(Box::new(
            serde_json::json!({"namespace": namespace, "name": name}),
        ))
    }))
}

fn digits_of_datetime(p: Precision) -> i64 {
    match p {
        Precision::Year => 4,
        Precision::Month => 6,
        Precision::Day => 8,
        Precision::Hour => 10,
        Precision::Minute => 12,
        Precision::Second => 14,
        Precision::Millisecond => 17,
    }
}

fn datetime_precision_of(digits: i64) -> Option<Precision> {
    Some(match digits {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 => Precision::Second,
        17 => Precision::Millisecond,
        _ => return None,
    })
}

fn time_precision_of(digits: i64) -> Option<Precision> {
    Some(match digits {
        2 => Precision::Hour,
        4 => Precision::Minute,
        6 => Precision::Second,
        9 => Precision::Millisecond,
        _ => return None,
    })
}

/// The lowest (`high` false) or highest value a decimal written with its precision stands for,
/// at `digits` decimal places.
fn decimal_boundary(v: Decimal, digits: u32, high: bool) -> Option<Decimal> {
    let half = Decimal::try_new(5, v.scale() + 1).ok()?;
    let b = if high {
        v.checked_add(half)?
    } else {
        v.checked_sub(half)?
    };
    let positive = b.is_sign_positive() && !b.is_zero() || b.is_zero();
    let r = match (high, positive) {
        (false, true) | (true, false) => b.round_dp_with_strategy(digits, RoundingStrategy::ToZero),
        _ => b.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero),
    };
    let mut r = r;
    if r.is_zero() {
        // a low boundary below zero keeps its sign (`-0.0`); a high one is plain zero
        r.set_sign_negative(!high && b.is_sign_negative());
    }
    r.rescale(digits);
    Some(r)
}

fn datetime_boundary(d: &DateTime, p: Precision, high: bool) -> DateTime {
    let mut r = *d;
    if d.precision < Precision::Month {
        r.month = if high { 12 } else { 1 };
    }
    if d.precision < Precision::Day {
        r.day = if high {
            crate::datetime::days_in_month(r.year, r.month)
        } else {
            1
        };
    }
    if d.precision < Precision::Hour {
        r.hour = if high { 23 } else { 0 };
    }
    if d.precision < Precision::Minute {
        r.minute = 0;
    }
    if d.precision < Precision::Second {
        r.second = if high { 59 } else { 0 };
    }
    if d.precision < Precision::Millisecond {
        r.millis = if high { 999 } else { 0 };
    }
    if p >= Precision::Hour && r.tz.is_none() {
        r.tz = Some(if high { -12 * 60 } else { 14 * 60 });
    }
    if p < Precision::Hour {
        r.tz = None;
    }
    r.precision = p;
    r
}

fn boundary<'a>(item: &Item<'a>, digits: Option<i64>, high: bool) -> Option<Item<'a>> {
    match item.to_system()? {
        Item::Integer(i) => boundary(&Item::Decimal(Decimal::from(i)), digits, high),
        Item::Decimal(d) => {
            let p = u32::try_from(digits.unwrap_or(8))
                .ok()
                .filter(|p| *p <= 28)?;
            decimal_boundary(d, p, high).map(Item::Decimal)
        }
        Item::Quantity(q) => {
            let p = u32::try_from(digits.unwrap_or(8))
                .ok()
                .filter(|p| *p <= 28)?;
            decimal_boundary(q.value, p, high).map(|value| Item::Quantity(Quantity { value, ..q }))
        }
        Item::Date(d) => {
            let p = datetime_precision_of(digits.unwrap_or(8))?;
            if p > Precision::Day {
                return Some(Item::DateTime(datetime_boundary(&d.0, p, high)));
            }
            Some(Item::Date(crate::datetime::Date(datetime_boundary(
                &d.0, p, high,
            ))))
        }
        Item::DateTime(d) => {
            let p = datetime_precision_of(digits.unwrap_or(17))?;
            let r = datetime_boundary(&d, p, high);
            Some(if p <= Precision::Day {
                Item::Date(crate::datetime::Date(r))
            } else {
                Item::DateTime(r)
            })
        }
        Item::Time(t) => {
            let p = time_precision_of(digits.unwrap_or(9))?;
            let mut r = t;
            if t.precision < Precision::Minute {
                r.minute = if high { 59 } else { 0 };
            }
            if t.precision < Precision::Second {
                r.second = if high { 59 } else { 0 };
            }
            if t.precision < Precision::Millisecond {
                r.millis = if high { 999 } else { 0 };
            }
            r.precision = p;
            Some(Item::Time(Time { ..r }))
        }
        _ => None,
    }
}

fn precision_of(item: &Item<'_>) -> Option<i64> {
    match item.to_system()? {
        Item::Decimal(d) => Some(i64::from(d.scale())),
        Item::Integer(_) => Some(0),
        Item::Date(d) => Some(digits_of_datetime(d.0.precision)),
        Item::DateTime(d) => Some(digits_of_datetime(d.precision)),
        Item::Time(t) => Some(match t.precision {
            Precision::Hour => 2,
            Precision::Minute => 4,
            Precision::Second => 6,
            _ => 9,
        }),
        _ => None,
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape_json(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or("")
        .to_string()
}

fn unescape_json(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Compares sort keys; an empty key sorts first whichever the direction.
fn sort_key_cmp(a: &[Item<'_>], b: &[Item<'_>], descending: bool) -> Ordering {
    match (a.first(), b.first()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => {
            let o = ops::compare_items(x, y).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        }
    }
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    let name = func.name();
    if func == Func::Sort {
        // each argument is a key, evaluated per item; a leading `-` sorts it descending
        let keys: Vec<(&Expr, bool)> = args
            .iter()
            .map(|a| match a {
                Expr::Neg(inner) => (inner.as_ref(), true),
                other => (other, false),
            })
            .collect();
        let mut rows = Vec::with_capacity(input.len());
        for (i, item) in input.into_iter().enumerate() {
            let mut ks = Vec::with_capacity(keys.len().max(1));
            if keys.is_empty() {
                ks.push(vec![item.clone()]);
            }
            for (k, _) in &keys {
                ks.push(ev.eval_on(k, &item, i, None)?);
            }
            rows.push((ks, item));
        }
        rows.sort_by(|(a, _), (b, _)| {
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                let desc = keys.get(j).is_some_and(|(_, d)| *d);
                let o = sort_key_cmp(x, y, desc);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        return Ok(rows.into_iter().map(|(_, item)| item).collect());
    }
    if func == Func::Type {
        return Ok(input
            .iter()
            .filter_map(|i| {
                let (ns, n) = i.type_name();
                type_info(ns, n).map(|v| {
                    Item::Node(Node {
                        value: Some(v),
                        ext: None,
                        ty: NONE,
                        node: NONE,
                    })
                })
            })
            .collect());
    }
    let arg = match args.first() {
        Some(a) => {
            let v = ev.eval(a, scope)?;
            match single(name, &v)? {
                Some(i) => Some(i.clone()),
                None => return Ok(Vec::new()),
            }
        }
        None => None,
    };
    let Some(item) = single(name, &input)? else {
        return Ok(Vec::new());
    };
    let text_arg = || arg.as_ref().and_then(Item::as_str).unwrap_or_default();
    let r: Option<Item<'a>> = match func {
        Func::LowBoundary | Func::HighBoundary => {
            let digits = match arg.as_ref().map(Item::to_system) {
                None => None,
                Some(Some(Item::Integer(n))) => Some(n),
                Some(_) => {
                    return Err(EvalError::Type(format!(
                        "{name}(): precision must be an integer"
                    )));
                }
            };
            boundary(item, digits, func == Func::HighBoundary)
        }
        Func::Precision => precision_of(item).map(Item::Integer),
        Func::Comparable => match (item.to_system(), arg.as_ref().and_then(Item::to_system)) {
            (Some(Item::Quantity(a)), Some(Item::Quantity(b))) => {
                Some(Item::Boolean(b.convert_to(&a.unit).is_some()))
            }
            _ => None,
        },
        Func::Encode | Func::Decode | Func::Escape | Func::Unescape => {
            let Some(s) = item.as_str() else {
                return Err(EvalError::Type(format!("{name}() needs a string")));
            };
            let std_b64 = base64::engine::general_purpose::STANDARD;
            let url_b64 = base64::engine::general_purpose::URL_SAFE;
            let out: Option<String> = match (func, text_arg().as_ref()) {
                (Func::Encode, "base64") => Some(std_b64.encode(s.as_bytes())),
                (Func::Encode, "urlbase64") => Some(url_b64.encode(s.as_bytes())),
                (Func::Encode, "hex") => Some(s.bytes().map(|b| format!("{b:02x}")).collect()),
                (Func::Decode, "base64") => std_b64
                    .decode(s.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok()),
                (Func::Decode, "urlbase64") => url_b64
                    .decode(s.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok()),
                (Func::Decode, "hex") => {
                    let bytes: Option<Vec<u8>> = (0..s.len())
                        .step_by(2)
                        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                        .collect();
                    bytes.and_then(|b| String::from_utf8(b).ok())
                }
                (Func::Escape, "html") => Some(escape_html(&s)),
                (Func::Escape, "json") => Some(escape_json(&s)),
                (Func::Unescape, "html") => Some(unescape_html(&s)),
                (Func::Unescape, "json") => unescape_json(&s),
                _ => None,
            };
            out.map(|o| Item::String(Cow::Owned(o)))
        }
        _ => None,
    };
    Ok(r.into_iter().collect())
}
