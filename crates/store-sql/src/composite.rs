//! Composite values and `:of-type` over `idx_composite` (the column layout is in
//! `columns`): a tuple row matches when *every* component matches in its own
//! position, each with the rules of its plain parameter type (`values`): tokens system and
//! code, quantities with prefixes and canonical UCUM units, dates as ranges with prefixes,
//! strings normalised and matched as prefixes, references, numbers, uris. Since all
//! components are tested on one row, they come from the same element.

use caduceus_search::{OfTypeValue, SearchValue, TokenValue};
use caduceus_store::StoreError;

use crate::columns::{POSITIONS, Position};
use crate::frag::Frag;
use crate::values::{self, QtyCols, RefCols};
use caduceus_store::index::normalize::normalize_string as normalize;

/// The column `x.<name>`.
fn col(name: &str) -> String {
    format!("x.{name}")
}

/// The row condition of a composite value: every component in its position.
pub fn composite(f: &mut Frag, parts: &[SearchValue], now: i64) -> Result<(), StoreError> {
    if parts.is_empty() || parts.len() > POSITIONS.len() {
        return Err(StoreError::Unsupported(format!(
            "composite parameters of {} components",
            parts.len()
        )));
    }
    f.push("(");
    for (k, (part, pos)) in parts.iter().zip(&POSITIONS).enumerate() {
        if k > 0 {
            f.push(" AND ");
        }
        component(f, pos, part, now)?;
    }
    f.push(")");
    Ok(())
}

/// One component compared in the columns of `pos`.
fn component(f: &mut Frag, pos: &Position, v: &SearchValue, now: i64) -> Result<(), StoreError> {
    match v {
        SearchValue::Token(t) => values::token_in(f, &col(pos.system), &col(pos.code), t),
        SearchValue::String(s) => values::starts_with(f, &col(pos.code), &normalize(s)),
        SearchValue::Uri(u) => {
            f.push(&col(pos.code)).push(" = ").bind(u.clone());
        }
        SearchValue::Reference(r) => {
            let (t, i, v, u) = (
                col(pos.system),
                col(pos.code),
                col(pos.version),
                col(pos.text),
            );
            let cols = RefCols {
                target_type: &t,
                target_id: &i,
                version: &v,
                url: &u,
            };
            values::reference_in(f, &cols, r, None);
        }
        SearchValue::Number(n) => {
            let (v, l, h) = (col(pos.value), col(pos.low), col(pos.high));
            values::number_cols(f, (&v, &l, &h), n.prefix, values::scaled(n, 1.0));
        }
        SearchValue::Quantity(q) => {
            let names = [
                col(pos.value),
                col(pos.low),
                col(pos.high),
                col(pos.system),
                col(pos.code),
                col(pos.canon_value),
                col(pos.canon_code),
            ];
            let cols = QtyCols {
                value: &names[0],
                low: &names[1],
                high: &names[2],
                system: &names[3],
                code: &names[4],
                canonical_value: &names[5],
                canonical_code: &names[6],
            };
            values::quantity_in(f, &cols, q);
        }
        SearchValue::Date(d) => values::date(f, &col(pos.low), &col(pos.high), d, now),
        _ => {
            return Err(StoreError::Unsupported(
                "a composite component of this kind".into(),
            ));
        }
    }
    Ok(())
}

/// `:of-type` (`system|code|value`): an `(Identifier.type coding, Identifier value)` tuple
/// of the token parameter whose type coding has that system and code and whose identifier
/// value is `value` (any identifier system).
pub fn of_type(f: &mut Frag, v: &OfTypeValue) {
    let (kind, value) = (&POSITIONS[0], &POSITIONS[1]);
    let of_kind = TokenValue {
        system: Some(v.system.clone()),
        code: Some(v.code.clone()),
    };
    let of_value = TokenValue {
        system: None,
        code: Some(v.value.clone()),
    };
    f.push("(");
    values::token_in(f, &col(kind.system), &col(kind.code), &of_kind);
    f.push(" AND ");
    values::token_in(f, &col(value.system), &col(value.code), &of_value);
    f.push(")");
}
