//! Conversion functions (`toInteger`, `convertsToDate`, ...) and the clock functions.

use super::{Func, single};
use crate::ast::Expr;
use crate::datetime::{Date, DateTime, Precision, Time};
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::quantity::{Quantity, calendar_unit};
use crate::value::Item;
use rust_decimal::Decimal;
use std::borrow::Cow;

pub(crate) fn to_boolean_value(i: &Item<'_>) -> Option<bool> {
    match i.to_system()? {
        Item::Boolean(b) => Some(b),
        Item::Integer(1) => Some(true),
        Item::Integer(0) => Some(false),
        Item::Decimal(d) if d == Decimal::ONE => Some(true),
        Item::Decimal(d) if d.is_zero() => Some(false),
        Item::String(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn to_integer_value(i: &Item<'_>) -> Option<i64> {
    match i.to_system()? {
        Item::Integer(n) => Some(n),
        Item::Boolean(b) => Some(i64::from(b)),
        Item::String(s) => {
            let t = s.strip_prefix('+').unwrap_or(&s);
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        }
        _ => None,
    }
}

pub(crate) fn to_decimal_value(i: &Item<'_>) -> Option<Decimal> {
    match i.to_system()? {
        Item::Integer(n) => Some(Decimal::from(n)),
        Item::Decimal(d) => Some(d),
        Item::Boolean(b) => Some(if b { Decimal::ONE } else { Decimal::ZERO }),
        Item::String(s) => Item::parse_decimal(&s),
        _ => None,
    }
}

fn to_date(i: &Item<'_>) -> Option<Date> {
    match i.to_system()? {
        Item::Date(d) => Some(d),
        Item::DateTime(d) => {
            let mut x = d;
            x.precision = x.precision.min(Precision::Day);
            x.tz = None;
            x.hour = 0;
            x.minute = 0;
            x.second = 0;
            x.millis = 0;
            Some(Date(x))
        }
        Item::String(s) => {
            Date::parse(&s).or_else(|| to_date(&Item::DateTime(DateTime::parse(&s)?)))
        }
        _ => None,
    }
}

fn to_datetime(i: &Item<'_>) -> Option<DateTime> {
    match i.to_system()? {
        Item::DateTime(d) => Some(d),
        Item::Date(d) => Some(d.0),
        Item::String(s) => DateTime::parse(&s),
        _ => None,
    }
}

fn to_time(i: &Item<'_>) -> Option<Time> {
    match i.to_system()? {
        Item::Time(t) => Some(t),
        Item::String(s) => Time::parse(s.strip_prefix('T').unwrap_or(&s)),
        _ => None,
    }
}

fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let (num, rest) = match s.find([' ', '\'']) {
        Some(p) => (&s[..p], s[p..].trim()),
        None => (s, ""),
    };
    let value = Item::parse_decimal(num)?;
    if rest.is_empty() {
        return Some(Quantity::new(value, "1"));
    }
    if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Some(Quantity::new(value, u));
    }
    calendar_unit(rest).map(|u| Quantity {
        value,
        unit: u.to_string(),
        calendar: true,
    })
}

fn to_quantity(i: &Item<'_>) -> Option<Quantity> {
    match i.to_system()? {
        Item::Quantity(q) => Some(q),
        Item::Integer(n) => Some(Quantity::new(Decimal::from(n), "1")),
        Item::Decimal(d) => Some(Quantity::new(d, "1")),
        Item::Boolean(b) => Some(Quantity::new(
            if b { Decimal::ONE } else { Decimal::ZERO },
            "1",
        )),
        Item::String(s) => parse_quantity(&s),
        _ => None,
    }
}

fn to_string_value<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    if let Some(s) = i.as_str() {
        return Some(Item::String(s));
    }
    i.to_text().map(|t| Item::String(Cow::Owned(t)))
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    match func {
        Func::Now => return Ok(vec![Item::DateTime(ev.ctx.now())]),
        Func::Today => {
            let mut d = ev.ctx.now();
            d.precision = Precision::Day;
            d.tz = None;
            return Ok(vec![Item::Date(Date(d))]);
        }
        Func::TimeOfDay => {
            let d = ev.ctx.now();
            return Ok(vec![Item::Time(Time {
                hour: d.hour,
                minute: d.minute,
                second: d.second,
                millis: d.millis,
                precision: Precision::Millisecond,
            })]);
        }
        _ => {}
    }
    let unit = match args.first() {
        Some(a) => {
            let v = ev.eval(a, scope)?;
            single("toQuantity", &v)?
                .and_then(Item::as_str)
                .map(Cow::into_owned)
        }
        None => None,
    };
    let Some(item) = single(func.name(), &input)? else {
        return Ok(Vec::new());
    };
    if matches!(item, Item::Node(n) if n.value.is_some_and(serde_json::Value::is_object))
        && !matches!(func, Func::ToQuantity | Func::ConvertsToQuantity)
    {
        return Ok(match func.name().starts_with("convertsTo") {
            true => vec![Item::Boolean(false)],
            false => Vec::new(),
        });
    }
    let quantity = || {
        let q = to_quantity(item)?;
        match &unit {
            None => Some(q),
            Some(u) => q.convert_to(u).map(|v| Quantity::new(v, u.clone())),
        }
    };
    let r: Option<Item<'a>> = match func {
        Func::ToBoolean => to_boolean_value(item).map(Item::Boolean),
        Func::ConvertsToBoolean => Some(Item::Boolean(to_boolean_value(item).is_some())),
        Func::ToInteger => to_integer_value(item).map(Item::Integer),
        Func::ConvertsToInteger => Some(Item::Boolean(to_integer_value(item).is_some())),
        Func::ToDecimal => to_decimal_value(item).map(Item::Decimal),
        Func::ConvertsToDecimal => Some(Item::Boolean(to_decimal_value(item).is_some())),
        Func::ToDate => to_date(item).map(Item::Date),
        Func::ConvertsToDate => Some(Item::Boolean(to_date(item).is_some())),
        Func::ToDateTime => to_datetime(item).map(Item::DateTime),
        Func::ConvertsToDateTime => Some(Item::Boolean(to_datetime(item).is_some())),
        Func::ToTime => to_time(item).map(Item::Time),
        Func::ConvertsToTime => Some(Item::Boolean(to_time(item).is_some())),
        Func::ToQuantity => quantity().map(Item::Quantity),
        Func::ConvertsToQuantity => Some(Item::Boolean(quantity().is_some())),
        Func::ToString => to_string_value(item),
        Func::ConvertsToString => Some(Item::Boolean(to_string_value(item).is_some())),
        _ => None,
    };
    Ok(r.into_iter().collect())
}
