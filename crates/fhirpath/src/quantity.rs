//! Quantities: a decimal value with a UCUM unit or a calendar duration unit, and the
//! small unit-conversion table used to compare them.

use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A quantity. Calendar durations (`4 days`) are kept with the unit as its keyword,
/// singular (`day`) and `calendar` set; UCUM quantities keep the UCUM code (`'d'`).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    /// The value.
    pub value: Decimal,
    /// The unit: a UCUM code, or a calendar keyword in the singular.
    pub unit: String,
    /// True for a calendar duration written with a keyword (`1 year`).
    pub calendar: bool,
}

/// The calendar keyword for a word written after a number (`days` → `day`).
pub fn calendar_unit(word: &str) -> Option<&'static str> {
    Some(match word {
        "year" | "years" => "year",
        "month" | "months" => "month",
        "week" | "weeks" => "week",
        "day" | "days" => "day",
        "hour" | "hours" => "hour",
        "minute" | "minutes" => "minute",
        "second" | "seconds" => "second",
        "millisecond" | "milliseconds" => "millisecond",
        _ => return None,
    })
}

/// The calendar keyword that a UCUM time unit stands for (for date arithmetic).
pub fn ucum_to_calendar(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "a" => "year",
        "mo" => "month",
        "wk" => "week",
        "d" => "day",
        "h" => "hour",
        "min" => "minute",
        "s" => "second",
        "ms" => "millisecond",
        other => return calendar_unit(other),
    })
}

/// (dimension, factor to the dimension's base unit) for the units we know.
fn unit_info(unit: &str) -> Option<(&'static str, &'static str)> {
    Some(match unit {
        "g" => ("mass", "1"),
        "mg" => ("mass", "0.001"),
        "ug" => ("mass", "0.000001"),
        "ng" => ("mass", "0.000000001"),
        "kg" => ("mass", "1000"),
        "[lb_av]" => ("mass", "453.59237"),
        "[oz_av]" => ("mass", "28.349523125"),
        "m" => ("length", "1"),
        "cm" => ("length", "0.01"),
        "mm" => ("length", "0.001"),
        "km" => ("length", "1000"),
        "[in_i]" => ("length", "0.0254"),
        "[ft_i]" => ("length", "0.3048"),
        "L" | "l" => ("volume", "1"),
        "dL" | "dl" => ("volume", "0.1"),
        "mL" | "ml" => ("volume", "0.001"),
        "uL" | "ul" => ("volume", "0.000001"),
        "s" | "second" => ("time", "1"),
        "ms" | "millisecond" => ("time", "0.001"),
        "min" | "minute" => ("time", "60"),
        "h" | "hour" => ("time", "3600"),
        "d" | "day" => ("time", "86400"),
        "wk" | "week" => ("time", "604800"),
        "mo" | "month" => ("time", "2629800"),
        "a" | "year" => ("time", "31557600"),
        "1" => ("one", "1"),
        "%" => ("one", "0.01"),
        "mmHg" | "mm[Hg]" => ("pressure", "1"),
        "Cel" => ("celsius", "1"),
        _ => return None,
    })
}

/// The base unit of a known unit's dimension (`cm` → `m`), for products of quantities.
fn base_unit(unit: &str) -> Option<&'static str> {
    Some(match unit_info(unit)?.0 {
        "mass" => "g",
        "length" => "m",
        "volume" => "L",
        "time" => "s",
        "one" => "1",
        _ => return None,
    })
}

impl Quantity {
    /// The product of two quantities: units of one dimension are brought to its base unit
    /// first (`2 'cm' * 2 'm'` = `0.04 'm2'`); other units are combined as written.
    pub fn multiply(&self, other: &Quantity) -> Option<Quantity> {
        let (a, b, unit) = match (self.unit.as_str(), other.unit.as_str()) {
            ("1", u) | (u, "1") => (self.value, other.value, u.to_string()),
            (p, q) if p == q => (self.value, other.value, format!("{p}2")),
            (p, q) => match (base_unit(p), base_unit(q)) {
                (Some(x), Some(y)) if x == y => {
                    (self.convert_to(x)?, other.convert_to(x)?, format!("{x}2"))
                }
                _ => (self.value, other.value, format!("{p}.{q}")),
            },
        };
        Some(Quantity::new(a.checked_mul(b)?, unit))
    }

    /// A UCUM quantity.
    pub fn new(value: Decimal, unit: impl Into<String>) -> Self {
        Quantity {
            value,
            unit: unit.into(),
            calendar: false,
        }
    }

    /// Converts to `unit`, if both units are known and of one dimension.
    pub fn convert_to(&self, unit: &str) -> Option<Decimal> {
        if self.unit == unit {
            return Some(self.value);
        }
        let (d1, f1) = unit_info(&self.unit)?;
        let (d2, f2) = unit_info(unit)?;
        if d1 != d2 {
            return None;
        }
        let f1 = Decimal::from_str(f1).ok()?;
        let f2 = Decimal::from_str(f2).ok()?;
        self.value.checked_mul(f1)?.checked_div(f2)
    }

    /// True when the unit is a year or month (calendar keyword or UCUM `a`/`mo`): these do not
    /// compare as equal across calendar and UCUM forms.
    fn is_variable_length(&self) -> bool {
        matches!(self.unit.as_str(), "year" | "month" | "a" | "mo")
    }

    /// Compares two quantities; `None` when their units are not comparable.
    pub fn compare(&self, other: &Quantity) -> Option<Ordering> {
        if self.unit == other.unit && self.calendar == other.calendar {
            return Some(self.value.cmp(&other.value));
        }
        if (self.calendar != other.calendar)
            && (self.is_variable_length() || other.is_variable_length())
        {
            return None;
        }
        let v = other.convert_to(&self.unit)?;
        Some(self.value.cmp(&v))
    }

    /// Equivalence (`~`): like comparison, but calendar years/months match UCUM `a`/`mo`, and
    /// values are compared at the precision of the less precise one.
    pub fn equivalent(&self, other: &Quantity) -> bool {
        let mut o = other.clone();
        if self.calendar != other.calendar {
            o.calendar = self.calendar;
            if let Some(c) = ucum_to_calendar(&other.unit) {
                o.unit = if self.calendar {
                    c.into()
                } else {
                    other.unit.clone()
                };
            }
        }
        let Some(v) = o
            .convert_to(&self.unit)
            .or_else(|| ucum_to_calendar(&self.unit).and_then(|c| o.convert_to(c)))
        else {
            return false;
        };
        let scale = self.value.scale().min(v.scale());
        self.value.round_dp(scale) == v.round_dp(scale)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.calendar {
            let plural = if self.value == Decimal::ONE { "" } else { "s" };
            write!(f, "{} {}{}", self.value, self.unit, plural)
        } else {
            write!(f, "{} '{}'", self.value, self.unit)
        }
    }
}
