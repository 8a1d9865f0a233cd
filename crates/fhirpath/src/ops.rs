//! Operators: equality and equivalence, comparison, arithmetic, string concatenation,
//! three-valued logic, union and membership.

use crate::ast::BinOp;
use crate::datetime::DateTime;
use crate::error::EvalError;
use crate::functions::single;
use crate::quantity::{Quantity, ucum_to_calendar};
use crate::value::{Item, Node};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

/// The three-valued boolean of an operand of `and`/`or`/`xor`/`implies`/`not`.
pub(crate) fn to_bool3(v: &[Item<'_>], op: BinOp) -> Result<Option<bool>, EvalError> {
    let _ = op;
    match single("boolean operator", v)? {
        None => Ok(None),
        Some(item) => Ok(Some(item.as_bool().unwrap_or(true))),
    }
}

/// Three-valued logic.
pub(crate) fn logic(op: BinOp, a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match op {
        BinOp::And => match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        BinOp::Or => match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        BinOp::Xor => Some(a? != b?),
        BinOp::Implies => match (a, b) {
            (Some(false), _) | (_, Some(true)) => Some(true),
            (Some(true), Some(false)) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn as_dt(i: &Item<'_>) -> Option<DateTime> {
    match i {
        Item::Date(d) => Some(d.0),
        Item::DateTime(d) => Some(*d),
        _ => None,
    }
}

fn num(i: &Item<'_>) -> Option<Decimal> {
    match i {
        Item::Integer(x) => Some(Decimal::from(*x)),
        Item::Decimal(d) => Some(*d),
        _ => None,
    }
}

/// Deep equality of two JSON nodes (complex values).
fn nodes_equal(a: &Node<'_>, b: &Node<'_>) -> bool {
    a.value == b.value && a.ext == b.ext
}

/// `=` on two items: `None` when unknown (date precision, incomparable units).
pub(crate) fn item_equals(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    if let (Item::Node(x), Item::Node(y)) = (a, b) {
        // the same node of the input (a union of overlapping paths): equal without a walk
        let same = |p: Option<&Value>, q: Option<&Value>| match (p, q) {
            (Some(p), Some(q)) => std::ptr::eq(p, q),
            (None, None) => true,
            _ => false,
        };
        if x.value.is_some() && same(x.value, y.value) && same(x.ext, y.ext) {
            return Some(true);
        }
    }
    if let (Item::Node(x), Item::Node(y)) = (a, b) {
        let xs = x.value.is_some_and(|v| !v.is_object());
        let ys = y.value.is_some_and(|v| !v.is_object());
        if !xs || !ys {
            if crate::types::is_quantity_type(x.ty) && crate::types::is_quantity_type(y.ty) {
                // compare as quantities below
            } else {
                return Some(nodes_equal(x, y));
            }
        }
    }
    let (Some(a), Some(b)) = (a.to_system(), b.to_system()) else {
        return Some(false);
    };
    match (&a, &b) {
        (Item::Boolean(x), Item::Boolean(y)) => Some(x == y),
        (Item::String(x), Item::String(y)) => Some(x == y),
        (Item::Integer(x), Item::Integer(y)) => Some(x == y),
        (Item::Time(x), Item::Time(y)) => x.compare(y).map(|o| o == Ordering::Equal),
        (Item::Quantity(x), Item::Quantity(y)) => x.compare(y).map(|o| o == Ordering::Equal),
        (Item::Quantity(q), other) | (other, Item::Quantity(q)) if num(other).is_some() => (q.unit
            == "1")
            .then(|| Some(num(other)? == q.value))
            .flatten(),
        _ => {
            if let (Some(x), Some(y)) = (num(&a), num(&b)) {
                return Some(x == y);
            }
            if let (Some(x), Some(y)) = (as_dt(&a), as_dt(&b)) {
                return x.compare(&y).map(|o| o == Ordering::Equal);
            }
            Some(false)
        }
    }
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `~` on two items.
pub(crate) fn item_equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && (x.value.is_some_and(Value::is_object) || y.value.is_some_and(Value::is_object))
        && !(crate::types::is_quantity_type(x.ty) && crate::types::is_quantity_type(y.ty))
    {
        return json_equivalent(x.value, y.value);
    }
    let (Some(a), Some(b)) = (a.to_system(), b.to_system()) else {
        return false;
    };
    match (&a, &b) {
        (Item::String(x), Item::String(y)) => normalize_ws(x) == normalize_ws(y),
        (Item::Boolean(x), Item::Boolean(y)) => x == y,
        (Item::Time(x), Item::Time(y)) => x.compare(y) == Some(Ordering::Equal),
        (Item::Quantity(x), Item::Quantity(y)) => x.equivalent(y),
        _ => {
            if let (Some(x), Some(y)) = (num(&a), num(&b)) {
                let scale = x.scale().min(y.scale());
                return x.round_dp(scale) == y.round_dp(scale);
            }
            if let (Some(x), Some(y)) = (as_dt(&a), as_dt(&b)) {
                return x.compare(&y) == Some(Ordering::Equal);
            }
            false
        }
    }
}

fn json_equivalent(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => normalize_ws(x) == normalize_ws(y),
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys = |o: &serde_json::Map<String, Value>| {
                let mut k: Vec<String> = o.keys().filter(|k| *k != "id").cloned().collect();
                k.sort();
                k
            };
            keys(x) == keys(y)
                && x.iter()
                    .filter(|(k, _)| *k != "id")
                    .all(|(k, v)| json_equivalent(Some(v), y.get(k)))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| json_equivalent(Some(p), Some(q)))
        }
        (x, y) => x == y,
    }
}

/// Collection `=`.
pub(crate) fn equals(a: &[Item<'_>], b: &[Item<'_>]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.len() != b.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (x, y) in a.iter().zip(b) {
        match item_equals(x, y) {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

/// Collection `~` (order does not matter).
pub(crate) fn equivalent(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    'outer: for x in a {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && item_equivalent(x, y) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Compares two items (for sorting): `None` when not comparable.
pub(crate) fn compare_items(a: &Item<'_>, b: &Item<'_>) -> Option<Ordering> {
    compare(a, b).ok().flatten()
}

/// Compares two singletons for `<` etc.
fn compare(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>, EvalError> {
    let (Some(x), Some(y)) = (a.to_system(), b.to_system()) else {
        return Err(EvalError::Type("cannot compare complex values".into()));
    };
    Ok(match (&x, &y) {
        (Item::String(p), Item::String(q)) => Some(p.cmp(q)),
        (Item::Time(p), Item::Time(q)) => p.compare(q),
        (Item::Quantity(p), Item::Quantity(q)) => p.compare(q),
        _ => {
            if let (Some(p), Some(q)) = (num(&x), num(&y)) {
                Some(p.cmp(&q))
            } else if let (Some(p), Some(q)) = (as_dt(&x), as_dt(&y)) {
                p.compare(&q)
            } else {
                return Err(EvalError::Type(format!(
                    "cannot compare {} with {}",
                    x.type_name().1,
                    y.type_name().1
                )));
            }
        }
    })
}

/// Adds `x` to `y`, with `sign` -1 for subtraction.
fn add(x: &Item<'_>, y: &Item<'_>, sign: i64) -> Result<Option<Item<'static>>, EvalError> {
    let bad = || {
        Err(EvalError::Type(format!(
            "cannot add {} and {}",
            x.type_name().1,
            y.type_name().1
        )))
    };
    Ok(match (x, y) {
        (Item::Integer(a), Item::Integer(b)) => b
            .checked_mul(sign)
            .and_then(|b| a.checked_add(b))
            .map(Item::Integer),
        (Item::String(a), Item::String(b)) if sign == 1 => {
            Some(Item::String(Cow::Owned(format!("{a}{b}"))))
        }
        (Item::Quantity(a), Item::Quantity(b)) => {
            let Some(v) = b.convert_to(&a.unit) else {
                return Ok(None);
            };
            let v = if sign < 0 { -v } else { v };
            a.value
                .checked_add(v)
                .map(|value| Item::Quantity(Quantity { value, ..a.clone() }))
        }
        (Item::Date(_) | Item::DateTime(_), Item::Quantity(q)) => {
            let Some(unit) = (if q.calendar {
                Some(q.unit.as_str())
            } else {
                ucum_to_calendar(&q.unit)
            }) else {
                return Err(EvalError::Type(format!(
                    "cannot add '{}' to a date",
                    q.unit
                )));
            };
            let unit = match unit {
                "year" | "month" | "week" | "day" | "hour" | "minute" | "second"
                | "millisecond" => unit,
                _ => return bad(),
            };
            let Ok(n) = q.value.trunc().to_i64().ok_or(()) else {
                return Ok(None);
            };
            if !q.calendar && matches!(q.unit.as_str(), "a" | "mo") {
                return Err(EvalError::Type(format!(
                    "'{}' has no fixed calendar length: use a calendar duration",
                    q.unit
                )));
            }
            let Some(n) = n.checked_mul(sign) else {
                return Ok(None);
            };
            match x {
                Item::Date(d) => {
                    // a date keeps whole days: smaller units are ignored
                    let r = match unit {
                        "hour" | "minute" | "second" | "millisecond" => Some(d.0),
                        _ => d.0.add(n, unit),
                    };
                    r.map(|r| Item::Date(crate::datetime::Date(r)))
                }
                Item::DateTime(d) => d.add(n, unit).map(Item::DateTime),
                _ => None,
            }
        }
        (Item::Time(t), Item::Quantity(q)) => {
            let unit = if q.calendar {
                Some(q.unit.as_str())
            } else {
                ucum_to_calendar(&q.unit)
            };
            let Some(unit) = unit else { return bad() };
            let n = q.value.trunc().to_i64().ok_or(()).unwrap_or(0);
            match n.checked_mul(sign).and_then(|n| t.add(n, unit)) {
                Some(t) => Some(Item::Time(t)),
                None => return bad(),
            }
        }
        _ => match (num(x), num(y)) {
            (Some(a), Some(b)) => {
                let b = if sign < 0 { -b } else { b };
                a.checked_add(b).map(Item::Decimal)
            }
            _ => return bad(),
        },
    })
}

fn mul_div(op: BinOp, x: &Item<'_>, y: &Item<'_>) -> Result<Option<Item<'static>>, EvalError> {
    if let (Item::Integer(a), Item::Integer(b)) = (x, y) {
        return Ok(match op {
            BinOp::Mul => a.checked_mul(*b).map(Item::Integer),
            BinOp::IntDiv => a.checked_div(*b).map(Item::Integer),
            BinOp::Mod => a.checked_rem(*b).map(Item::Integer),
            _ => {
                if *b == 0 {
                    None
                } else {
                    Decimal::from(*a)
                        .checked_div(Decimal::from(*b))
                        .map(|d| Item::Decimal(d.normalize()))
                }
            }
        });
    }
    if let (Item::Quantity(a), Item::Quantity(b)) = (x, y) {
        return Ok(match op {
            BinOp::Mul => a.multiply(b).map(Item::Quantity),
            BinOp::Div => {
                let Some(bv) = b.convert_to(&a.unit) else {
                    return Ok(a.value.checked_div(b.value).map(|v| {
                        Item::Quantity(Quantity::new(v, format!("{}/{}", a.unit, b.unit)))
                    }));
                };
                a.value
                    .checked_div(bv)
                    .map(|v| Item::Quantity(Quantity::new(v.normalize(), "1")))
            }
            _ => None,
        });
    }
    let scaled = match (x, y) {
        (Item::Quantity(q), o) => num(o).map(|n| (q, n)),
        (o, Item::Quantity(q)) if op == BinOp::Mul => num(o).map(|n| (q, n)),
        _ => None,
    };
    if let Some((a, b)) = scaled {
        return Ok(match op {
            BinOp::Mul => a.value.checked_mul(b),
            BinOp::Div => a.value.checked_div(b),
            _ => None,
        }
        .map(|value| Item::Quantity(Quantity { value, ..a.clone() })));
    }
    let (Some(a), Some(b)) = (num(x), num(y)) else {
        return Err(EvalError::Type(format!(
            "cannot apply arithmetic to {} and {}",
            x.type_name().1,
            y.type_name().1
        )));
    };
    Ok(match op {
        BinOp::Mul => a.checked_mul(b).map(Item::Decimal),
        BinOp::Div => a.checked_div(b).map(|d| Item::Decimal(d.normalize())),
        BinOp::IntDiv => a
            .checked_div(b)
            .map(|d| d.trunc())
            .and_then(|d| i64::try_from(d.mantissa()).ok())
            .map(Item::Integer),
        BinOp::Mod => a.checked_rem(b).map(Item::Decimal),
        _ => None,
    })
}

/// Appends `items` to `out`, skipping those already there (by `=`).
pub(crate) fn push_distinct<'a>(
    out: &mut Vec<Item<'a>>,
    items: impl IntoIterator<Item = Item<'a>>,
) {
    let items: Vec<Item<'a>> = items.into_iter().collect();
    // Large collections of strings (`isDistinct()` over a Bundle's entries for bdl-7, over a
    // Questionnaire's linkIds for que-2) are compared through a hash set: a string equals
    // only an equal string, so the result is the same without the quadratic scan, which a
    // big input could abuse.
    if out.len() + items.len() > 32 {
        let text = |i: &Item<'a>| -> Option<Cow<'a, str>> {
            match i {
                Item::String(s) => Some(s.clone()),
                Item::Node(_) => match i.to_system() {
                    Some(Item::String(s)) => Some(s),
                    _ => None,
                },
                _ => None,
            }
        };
        let seen: Option<HashSet<Cow<'a, str>>> = out.iter().map(text).collect();
        let keys: Option<Vec<Cow<'a, str>>> = items.iter().map(text).collect();
        if let (Some(mut seen), Some(keys)) = (seen, keys) {
            for (item, key) in items.into_iter().zip(keys) {
                if seen.insert(key) {
                    out.push(item);
                }
            }
            return;
        }
    }
    for i in items {
        if !out.iter().any(|o| item_equals(o, &i) == Some(true)) {
            out.push(i);
        }
    }
}

/// True when `needle` is in `haystack` (by `=`).
pub(crate) fn contains(haystack: &[Item<'_>], needle: &Item<'_>) -> bool {
    haystack
        .iter()
        .any(|h| item_equals(h, needle) == Some(true))
}

/// The non-logical binary operators.
pub(crate) fn binary<'a>(
    op: BinOp,
    left: Vec<Item<'a>>,
    right: Vec<Item<'a>>,
) -> Result<Vec<Item<'a>>, EvalError> {
    let b = |v: Option<bool>| Ok(v.map(Item::Boolean).into_iter().collect());
    match op {
        BinOp::Union => {
            let mut out = Vec::with_capacity(left.len() + right.len());
            push_distinct(&mut out, left);
            push_distinct(&mut out, right);
            Ok(out)
        }
        BinOp::Eq => b(equals(&left, &right)),
        BinOp::Ne => b(equals(&left, &right).map(|x| !x)),
        BinOp::Equiv => b(Some(equivalent(&left, &right))),
        BinOp::NotEquiv => b(Some(!equivalent(&left, &right))),
        BinOp::In | BinOp::Contains => {
            let (needle, hay) = if op == BinOp::In {
                (&left, &right)
            } else {
                (&right, &left)
            };
            match single("in/contains", needle)? {
                None => Ok(Vec::new()),
                Some(n) => b(Some(contains(hay, n))),
            }
        }
        BinOp::Xor => {
            let a = to_bool3(&left, op)?;
            let c = to_bool3(&right, op)?;
            b(logic(op, a, c))
        }
        BinOp::And | BinOp::Or | BinOp::Implies => {
            let a = to_bool3(&left, op)?;
            let c = to_bool3(&right, op)?;
            b(logic(op, a, c))
        }
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let (Some(x), Some(y)) = (single("comparison", &left)?, single("comparison", &right)?)
            else {
                return Ok(Vec::new());
            };
            let o = compare(x, y)?;
            b(o.map(|o| match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        BinOp::Concat => {
            let text = |v: &[Item<'a>]| -> Result<String, EvalError> {
                Ok(match single("&", v)? {
                    None => String::new(),
                    Some(i) => i
                        .as_str()
                        .map(Cow::into_owned)
                        .or_else(|| i.to_text())
                        .unwrap_or_default(),
                })
            };
            Ok(vec![Item::String(Cow::Owned(
                text(&left)? + &text(&right)?,
            ))])
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::IntDiv | BinOp::Mod => {
            let (Some(x), Some(y)) = (single("arithmetic", &left)?, single("arithmetic", &right)?)
            else {
                return Ok(Vec::new());
            };
            let (Some(x), Some(y)) = (x.to_system(), y.to_system()) else {
                return Err(EvalError::Type("arithmetic on complex values".into()));
            };
            let r = match op {
                BinOp::Add => add(&x, &y, 1)?,
                BinOp::Sub => add(&x, &y, -1)?,
                _ => mul_div(op, &x, &y)?,
            };
            Ok(r.into_iter().collect())
        }
    }
}
