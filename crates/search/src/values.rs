//! Values: escaping, prefixes, and the typed forms of each parameter kind.
//!
//! Escaping (`\,` `\|` `\$` `\\`) is resolved last: a value is first split on the unescaped
//! separators (`,` between alternatives, `$` between composite components, `|` inside tokens,
//! quantities and references) and only the leaves are unescaped. A backslash before any other
//! character is kept as written.
//!
//! Errors are a short reason (`&'static str`) that never includes the value itself.

use std::fmt;

use caduceus_model::defs;
use caduceus_model::ids::{is_valid_id, parse_date_range};

use crate::ast::{
    DatePrecision, DateValue, NearValue, NumberValue, OfTypeValue, Prefix, QuantityValue,
    ReferenceValue, TokenValue,
};

/// Why a value was refused (never contains the value).
pub type Reason = &'static str;

/// Splits on `sep` where it is not escaped by a backslash; escapes are kept.
pub fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Resolves `\,` `\|` `\$` `\\`; any other backslash stays.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, ',' | '|' | '$' | '\\')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Escapes `\` `,` `|` `$` so the text survives [`split_unescaped`] + [`unescape`].
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '|' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Most significant digits a number may have.
const MAX_DIGITS: usize = 34;
/// Largest absolute exponent accepted.
const MAX_EXPONENT: i32 = 1000;

/// An exact decimal: `mantissa × 10^exponent`, keeping the scale as written (`100.00` is
/// `10000 × 10^-2`, not `1 × 10^2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits, with the sign.
    pub mantissa: i128,
    /// The power of ten of the last digit.
    pub exponent: i32,
}

impl Decimal {
    /// Parses `-?digits(.digits)?([eE][+-]?digits)?`.
    pub fn parse(text: &str) -> Result<Decimal, Reason> {
        const BAD: Reason = "not a decimal number";
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (number, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int, frac) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD);
        }
        if number.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
            return Err(BAD);
        }
        let digits = format!("{int}{frac}");
        let significant = digits.trim_start_matches('0');
        if significant.len() > MAX_DIGITS {
            return Err("too many digits");
        }
        let mut mantissa: i128 = 0;
        for b in significant.bytes() {
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        if negative {
            mantissa = -mantissa;
        }
        let mut exponent = -i32::try_from(frac.len()).map_err(|_| "too many digits")?;
        if let Some(e) = exp {
            let (neg, digits) = match e.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, e.strip_prefix('+').unwrap_or(e)),
            };
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(BAD);
            }
            let e: i32 = digits.parse().map_err(|_| BAD)?;
            exponent += if neg { -e } else { e };
        }
        if exponent.abs() > MAX_EXPONENT {
            return Err("exponent out of range");
        }
        Ok(Decimal { mantissa, exponent })
    }

    /// The implicit range of a written number: ± half a unit of its last digit.
    pub fn precision_range(self) -> (Decimal, Decimal) {
        let m = self.mantissa * 10;
        let e = self.exponent - 1;
        (
            Decimal {
                mantissa: m - 5,
                exponent: e,
            },
            Decimal {
                mantissa: m + 5,
                exponent: e,
            },
        )
    }

    /// The nearest `f64` (for stores that index numbers as floating point).
    pub fn to_f64(self) -> f64 {
        format!("{}e{}", self.mantissa, self.exponent)
            .parse()
            .unwrap_or(f64::NAN)
    }
}

impl fmt::Display for Decimal {
    /// Plain notation when the exponent is small, `me±e` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if negative { "-" } else { "" };
        if self.exponent == 0 {
            write!(f, "{sign}{digits}")
        } else if self.exponent > 0 && self.exponent <= 20 {
            write!(f, "{sign}{digits}{}", "0".repeat(self.exponent as usize))
        } else if self.exponent < 0 && self.exponent >= -40 {
            let scale = self.exponent.unsigned_abs() as usize;
            let padded = format!("{digits:0>width$}", width = scale + 1);
            let (i, frac) = padded.split_at(padded.len() - scale);
            write!(f, "{sign}{i}.{frac}")
        } else {
            write!(f, "{sign}{digits}e{}", self.exponent)
        }
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Splits a leading two-letter prefix off a number, date or quantity value.
fn split_prefix(text: &str) -> (Prefix, &str) {
    if let (Some(code), Some(rest)) = (text.get(..2), text.get(2..))
        && let Some(p) = Prefix::from_code(code)
    {
        return (p, rest);
    }
    (Prefix::Eq, text)
}

/// `[prefix]number`.
pub fn number(text: &str) -> Result<NumberValue, Reason> {
    let (prefix, rest) = split_prefix(text);
    let rest = unescape(rest);
    let value = Decimal::parse(&rest).map_err(|r| {
        if r == "not a decimal number" {
            "expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"
        } else {
            r
        }
    })?;
    let (low, high) = value.precision_range();
    Ok(NumberValue {
        prefix,
        text: rest,
        value,
        low,
        high,
    })
}

/// `[prefix]date`: YYYY, YYYY-MM, YYYY-MM-DD, or a dateTime to the minute, second or
/// fraction. A dateTime without a time zone is taken as UTC.
pub fn date(text: &str) -> Result<DateValue, Reason> {
    const BAD: Reason = "expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or \
                         YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap";
    let (prefix, rest) = split_prefix(text);
    let rest = unescape(rest);
    let (precision, normalised, widen) = date_shape(&rest).ok_or(BAD)?;
    let (start, end) = parse_date_range(&normalised).ok_or(BAD)?;
    // Minute precision is parsed with `:00` seconds; widen the range to the whole minute.
    let end = if widen { start + 60_000_000 } else { end };
    Ok(DateValue {
        prefix,
        text: rest,
        start,
        end,
        precision,
    })
}

/// Checks the shape of a date and returns its precision, the text to give
/// `parse_date_range` (seconds and zone added where missing) and whether the range must be
/// widened to a minute.
fn date_shape(text: &str) -> Option<(DatePrecision, String, bool)> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| !s.is_empty() && s.iter().all(u8::is_ascii_digit))
    };
    if !digits(0..4) {
        return None;
    }
    match b.len() {
        4 => return Some((DatePrecision::Year, text.to_owned(), false)),
        7 if b[4] == b'-' && digits(5..7) => {
            return Some((DatePrecision::Month, text.to_owned(), false));
        }
        10 if b[4] == b'-' && b[7] == b'-' && digits(5..7) && digits(8..10) => {
            return Some((DatePrecision::Day, text.to_owned(), false));
        }
        _ => {}
    }
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || !digits(5..7)
        || !digits(8..10)
        || !digits(11..13)
        || !digits(14..16)
    {
        return None;
    }
    let (date_time, zone) = split_zone(text)?;
    let mut precision = DatePrecision::Minute;
    let mut time = date_time.to_owned();
    match date_time.len() {
        16 => time.push_str(":00"),
        19 if b[16] == b':' && digits(17..19) => precision = DatePrecision::Second,
        n if n > 20 && b[16] == b':' && digits(17..19) && b[19] == b'.' && digits(20..n) => {
            precision = DatePrecision::Fraction;
        }
        _ => return None,
    }
    let zone = if zone.is_empty() { "Z" } else { zone };
    Some((
        precision,
        format!("{time}{zone}"),
        precision == DatePrecision::Minute,
    ))
}

/// Splits `Z`, `+hh:mm` or `-hh:mm` off the end of a dateTime (empty when absent).
fn split_zone(text: &str) -> Option<(&str, &str)> {
    if let Some(t) = text.strip_suffix('Z') {
        return Some((t, "Z"));
    }
    let b = text.as_bytes();
    let n = b.len();
    if n >= 22 && matches!(b[n - 6], b'+' | b'-') {
        let z = &b[n - 6..];
        let ok = z[1].is_ascii_digit()
            && z[2].is_ascii_digit()
            && z[3] == b':'
            && z[4].is_ascii_digit()
            && z[5].is_ascii_digit();
        // b[n - 6] is ASCII, so n - 6 is a character boundary.
        return ok.then(|| text.split_at(n - 6));
    }
    Some((text, ""))
}

/// `code`, `system|code`, `|code`, `system|`.
pub fn token(text: &str) -> Result<TokenValue, Reason> {
    let parts = split_unescaped(text, '|');
    match parts.as_slice() {
        [code] => Ok(TokenValue {
            system: None,
            code: Some(unescape(code)),
        }),
        [system, code] => {
            if system.is_empty() && code.is_empty() {
                return Err("expected [system]|[code] with a system or a code");
            }
            Ok(TokenValue {
                system: Some(unescape(system)),
                code: (!code.is_empty()).then(|| unescape(code)),
            })
        }
        _ => Err("expected [system]|[code]; escape a literal | as \\|"),
    }
}

/// `system|code|value` for `:of-type`.
pub fn of_type(text: &str) -> Result<OfTypeValue, Reason> {
    match split_unescaped(text, '|').as_slice() {
        [system, code, value] if !system.is_empty() && !code.is_empty() && !value.is_empty() => {
            Ok(OfTypeValue {
                system: unescape(system),
                code: unescape(code),
                value: unescape(value),
            })
        }
        _ => Err("expected system|code|value for :of-type"),
    }
}

/// `[prefix]number`, `[prefix]number|system|code`, `[prefix]number||code`.
pub fn quantity(text: &str) -> Result<QuantityValue, Reason> {
    let parts = split_unescaped(text, '|');
    let (num, system, code) = match parts.as_slice() {
        [n] => (*n, "", ""),
        [n, s, c] => (*n, *s, *c),
        _ => return Err("expected [prefix]number|[system]|[code]"),
    };
    let number = number(num)?;
    Ok(QuantityValue {
        number,
        system: (!system.is_empty()).then(|| unescape(system)),
        code: (!code.is_empty()).then(|| unescape(code)),
    })
}

/// A reference: `Type/id`, `id`, `Type/id/_history/vid`, an absolute URL (local when under
/// `base`), or `url|version`.
///
/// `only_type` is the type a `:[type]` modifier names; `targets` the parameter's targets
/// (empty: any type).
pub fn reference(
    text: &str,
    only_type: Option<&'static str>,
    targets: &[&'static str],
    base: Option<&str>,
) -> Result<ReferenceValue, Reason> {
    let text = unescape(text);
    if text.is_empty() {
        return Err("empty reference");
    }
    let local_part = base
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty())
        .and_then(|b| text.strip_prefix(b))
        .and_then(|rest| rest.strip_prefix('/'));
    let relative = match local_part {
        Some(rest) => Some(rest),
        None if !text.contains(':') => Some(text.as_str()),
        None => None,
    };
    let Some(relative) = relative else {
        let (url, version) = match text.split_once('|') {
            Some((u, v)) if !u.is_empty() => (u.to_owned(), (!v.is_empty()).then(|| v.to_owned())),
            _ => (text.clone(), None),
        };
        if url.chars().any(char::is_whitespace) {
            return Err("a URL cannot contain spaces");
        }
        return Ok(ReferenceValue::Url { url, version });
    };
    let segments: Vec<&str> = relative.split('/').collect();
    let (ty, id, version) = match segments.as_slice() {
        [id] => (None, *id, None),
        [ty, id] => (Some(*ty), *id, None),
        [ty, id, "_history", v] => (Some(*ty), *id, Some(*v)),
        _ => return Err("expected [type]/[id], [id], [type]/[id]/_history/[version] or a URL"),
    };
    if !is_valid_id(id) {
        return Err("the id is not a valid FHIR id");
    }
    if version.is_some_and(|v| !is_valid_id(v)) {
        return Err("the version is not a valid FHIR id");
    }
    let resource_type = match ty {
        Some(t) => {
            let t = static_type(t).ok_or("the reference names an unknown resource type")?;
            if only_type.is_some_and(|o| o != t) {
                return Err("the reference's type differs from the type modifier");
            }
            if !targets.is_empty() && !targets.contains(&t) {
                return Err("the reference's type is not a target of the parameter");
            }
            Some(t)
        }
        None => only_type.or(match targets {
            [single] => Some(*single),
            _ => None,
        }),
    };
    Ok(ReferenceValue::Local {
        resource_type,
        id: id.to_owned(),
        version: version.map(str::to_owned),
    })
}

/// `latitude|longitude|distance|units` (distance and units optional).
pub fn near(text: &str) -> Result<NearValue, Reason> {
    const BAD: Reason = "expected latitude|longitude[|distance[|units]]";
    let parts = split_unescaped(text, '|');
    if parts.len() < 2 || parts.len() > 4 {
        return Err(BAD);
    }
    let dec = |s: &str| Decimal::parse(&unescape(s)).map_err(|_| BAD);
    let latitude = dec(parts[0])?;
    let longitude = dec(parts[1])?;
    let distance = match parts.get(2) {
        Some(d) if !d.is_empty() => Some(dec(d)?),
        _ => None,
    };
    let units = parts.get(3).filter(|u| !u.is_empty()).map(|u| unescape(u));
    Ok(NearValue {
        latitude,
        longitude,
        distance,
        units,
    })
}

/// The static name of a concrete resource type.
pub fn static_type(name: &str) -> Option<&'static str> {
    let all = defs::resource_types();
    all.binary_search(&name).ok().map(|i| all[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale_and_print_plainly() {
        let d = |t: &str| Decimal::parse(t).expect(t);
        for (text, shown) in [
            ("100", "100"),
            ("100.00", "100.00"),
            ("-0.05", "-0.05"),
            ("1e2", "100"),
            ("1.5E-3", "0.0015"),
            ("+7", "7"),
            ("1e30", "1e30"),
            ("1e-50", "1e-50"),
        ] {
            assert_eq!(d(text).to_string(), shown, "{text}");
        }
        assert_eq!(d("100.00").to_f64(), 100.0);
        let (low, high) = d("-100").precision_range();
        assert_eq!(
            (low.to_string(), high.to_string()),
            ("-100.5".into(), "-99.5".into())
        );
        for bad in [
            "", "-", ".5", "5.", "1e", "1e+", "1.2.3", "0x10", "1_000", "١٢",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_split_and_resolve() {
        assert_eq!(split_unescaped(r"a\\,b,c\,d", ','), [r"a\\", r"b", r"c\,d"]);
        assert_eq!(unescape(r"a\,b\|c\$d\\e\x\"), r"a,b|c$d\e\x\");
        let text = r"odd, |$\ text\";
        assert_eq!(unescape(&escape(text)), text);
        assert_eq!(split_unescaped(&escape(text), ',').len(), 1);
    }
}
