//! How a search index row is laid out in the `idx_*` tables: the table of each
//! [`IndexValue`] kind, its value columns, and the values in column order. Both stores
//! write rows through this one mapping, so what the search SQL reads is what was written.
//!
//! Every table starts with the key columns `tenant, type, id, param` ([`KEY_COLUMNS`]).
//!
//! A composite tuple is one `idx_composite` row: component `k` (1 to 3) in the columns of
//! position `k` ([`POSITIONS`]) that its kind uses, the others NULL:
//! - token: `system_k`, `code_k`;
//! - string: `code_k` normalised, `text_k` as written; uri: `code_k`;
//! - reference: `system_k` target type, `code_k` target id, `version_k`, `text_k` URL;
//! - number: `value_k`, `low_k`, `high_k`;
//! - quantity: `value_k`, `low_k`, `high_k`, `system_k`, `code_k` and the canonical
//!   `canon_value_k`, `canon_code_k`;
//! - date: `low_k` start and `high_k` end, in µs (integers in SQLite, whose columns there
//!   have no type affinity; doubles in PostgreSQL, exact for every µs instant of the years
//!   0001-9999).
//!
//! Contained resources: each gets the rows of its own type under the key [`contained_key`]
//! (`ContainerType/containerId#localId`). Local references (`#localId`, `#`) are stored
//! resolved ([`stored_target`]): `target_id` becomes the contained resource's key (the
//! container's id for `#`), so a chain reaches the contained resource through
//! `idx_reference` like any other target.

use std::borrow::Cow;

use caduceus_store::index::{IndexRow, IndexValue};

use crate::frag::SqlValue;

/// The key columns every index table starts with.
pub const KEY_COLUMNS: [&str; 4] = ["tenant", "type", "id", "param"];

/// An index table and its value columns (after [`KEY_COLUMNS`]).
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// Value columns, in the order [`row_values`] gives them.
    pub columns: &'static [&'static str],
}

/// The columns of one component position of `idx_composite`.
pub struct Position {
    /// Token/quantity system, reference target type.
    pub system: &'static str,
    /// Token/quantity code, normalised string, uri, reference target id.
    pub code: &'static str,
    /// String as written, reference URL.
    pub text: &'static str,
    /// Reference version.
    pub version: &'static str,
    /// Number/quantity value.
    pub value: &'static str,
    /// Range start (numbers, quantities, dates).
    pub low: &'static str,
    /// Range end.
    pub high: &'static str,
    /// Quantity value in canonical units.
    pub canon_value: &'static str,
    /// Canonical unit code.
    pub canon_code: &'static str,
}

macro_rules! position {
    ($k:literal) => {
        Position {
            system: concat!("system_", $k),
            code: concat!("code_", $k),
            text: concat!("text_", $k),
            version: concat!("version_", $k),
            value: concat!("value_", $k),
            low: concat!("low_", $k),
            high: concat!("high_", $k),
            canon_value: concat!("canon_value_", $k),
            canon_code: concat!("canon_code_", $k),
        }
    };
}

/// The component positions of `idx_composite`: R4's composites have 2 or 3 components.
pub const POSITIONS: [Position; 3] = [position!("1"), position!("2"), position!("3")];

macro_rules! composite_columns {
    ($($k:literal),*) => {
        &[$(
            concat!("system_", $k), concat!("code_", $k), concat!("text_", $k),
            concat!("version_", $k), concat!("value_", $k), concat!("low_", $k),
            concat!("high_", $k), concat!("canon_value_", $k), concat!("canon_code_", $k),
        )*]
    };
}

/// `idx_string`.
pub const STRING: Table = Table {
    name: "idx_string",
    columns: &["normalized", "exact"],
};
/// `idx_token`.
pub const TOKEN: Table = Table {
    name: "idx_token",
    columns: &["system", "code", "text"],
};
/// `idx_reference`.
pub const REFERENCE: Table = Table {
    name: "idx_reference",
    columns: &["target_type", "target_id", "target_version", "url"],
};
/// `idx_date`.
pub const DATE: Table = Table {
    name: "idx_date",
    columns: &["start_us", "end_us"],
};
/// `idx_number`.
pub const NUMBER: Table = Table {
    name: "idx_number",
    columns: &["value", "low", "high"],
};
/// `idx_quantity`.
pub const QUANTITY: Table = Table {
    name: "idx_quantity",
    columns: &[
        "value",
        "low",
        "high",
        "system",
        "code",
        "canonical_value",
        "canonical_code",
    ],
};
/// `idx_uri`.
pub const URI: Table = Table {
    name: "idx_uri",
    columns: &["value"],
};
/// `idx_composite`.
pub const COMPOSITE: Table = Table {
    name: "idx_composite",
    columns: composite_columns!("1", "2", "3"),
};

/// Every index table.
pub const TABLES: [&Table; 8] = [
    &STRING, &TOKEN, &REFERENCE, &DATE, &NUMBER, &QUANTITY, &URI, &COMPOSITE,
];

/// The key of a contained resource's index rows: its address relative to the server base.
pub fn contained_key(container_type: &str, container_id: &str, local_id: &str) -> String {
    format!("{container_type}/{container_id}#{local_id}")
}

/// A reference target id as stored: a local `#localId` becomes the contained resource's
/// key, a bare `#` the container's id (`container` is (type, id) of the container, which for
/// a top-level resource is itself).
pub fn stored_target<'a>(
    target_id: &'a Option<String>,
    container: (&str, &str),
) -> Option<Cow<'a, str>> {
    match target_id.as_deref() {
        Some("#") => Some(Cow::Owned(container.1.to_owned())),
        Some(t) => match t.strip_prefix('#') {
            Some(local) => Some(Cow::Owned(contained_key(container.0, container.1, local))),
            None => Some(Cow::Borrowed(t)),
        },
        None => None,
    }
}

fn opt(s: &Option<String>) -> SqlValue {
    s.clone().map_or(SqlValue::Null, SqlValue::Text)
}

/// The table of a row and its value columns' values, in [`Table::columns`] order. `None`
/// for a row no table holds (a composite of more components than [`POSITIONS`], none in
/// R4, or with a nested composite).
pub fn row_values(
    row: &IndexRow,
    container: (&str, &str),
) -> Option<(&'static Table, Vec<SqlValue>)> {
    use SqlValue::{Int, Real, Text};
    Some(match &row.value {
        IndexValue::String { normalized, exact } => {
            (&STRING, vec![Text(normalized.clone()), Text(exact.clone())])
        }
        IndexValue::Token { system, code, text } => {
            (&TOKEN, vec![opt(system), opt(code), opt(text)])
        }
        IndexValue::Reference {
            target_type,
            target_id,
            version,
            url,
        } => (
            &REFERENCE,
            vec![
                opt(target_type),
                stored_target(target_id, container)
                    .map_or(SqlValue::Null, |t| Text(t.into_owned())),
                opt(version),
                opt(url),
            ],
        ),
        IndexValue::Date { start, end } => (&DATE, vec![Int(*start), Int(*end)]),
        IndexValue::Number { value, low, high } => {
            (&NUMBER, vec![Real(*value), Real(*low), Real(*high)])
        }
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            canonical_value,
            canonical_code,
        } => (
            &QUANTITY,
            vec![
                Real(*value),
                Real(*low),
                Real(*high),
                opt(system),
                opt(code),
                canonical_value.map_or(SqlValue::Null, Real),
                opt(canonical_code),
            ],
        ),
        IndexValue::Uri(u) => (&URI, vec![Text(u.clone())]),
        IndexValue::Composite(parts) => {
            if parts.is_empty() || parts.len() > POSITIONS.len() {
                return None;
            }
            let mut values = Vec::with_capacity(COMPOSITE.columns.len());
            for k in 0..POSITIONS.len() {
                match parts.get(k) {
                    Some(v) => values.extend(component_columns(v, container)?),
                    None => values.extend(std::iter::repeat_n(SqlValue::Null, 9)),
                }
            }
            (&COMPOSITE, values)
        }
    })
}

/// The 9 column values of one component, in [`Position`] order; `None` for a value that
/// cannot be a component (a nested composite).
fn component_columns(v: &IndexValue, container: (&str, &str)) -> Option<[SqlValue; 9]> {
    const SYSTEM: usize = 0;
    const CODE: usize = 1;
    const TEXT: usize = 2;
    const VERSION: usize = 3;
    const VALUE: usize = 4;
    const LOW: usize = 5;
    const HIGH: usize = 6;
    const CANON_VALUE: usize = 7;
    const CANON_CODE: usize = 8;
    use SqlValue::{Int, Real, Text};
    let mut c: [SqlValue; 9] = std::array::from_fn(|_| SqlValue::Null);
    match v {
        IndexValue::Token { system, code, .. } => {
            c[SYSTEM] = opt(system);
            c[CODE] = opt(code);
        }
        IndexValue::String { normalized, exact } => {
            c[CODE] = Text(normalized.clone());
            c[TEXT] = Text(exact.clone());
        }
        IndexValue::Uri(u) => c[CODE] = Text(u.clone()),
        IndexValue::Reference {
            target_type,
            target_id,
            version,
            url,
        } => {
            c[SYSTEM] = opt(target_type);
            c[CODE] = stored_target(target_id, container)
                .map_or(SqlValue::Null, |t| Text(t.into_owned()));
            c[TEXT] = opt(url);
            c[VERSION] = opt(version);
        }
        IndexValue::Number { value, low, high } => {
            c[VALUE] = Real(*value);
            c[LOW] = Real(*low);
            c[HIGH] = Real(*high);
        }
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            canonical_value,
            canonical_code,
        } => {
            c[SYSTEM] = opt(system);
            c[CODE] = opt(code);
            c[VALUE] = Real(*value);
            c[LOW] = Real(*low);
            c[HIGH] = Real(*high);
            c[CANON_VALUE] = canonical_value.map_or(SqlValue::Null, Real);
            c[CANON_CODE] = opt(canonical_code);
        }
        IndexValue::Date { start, end } => {
            c[LOW] = Int(*start);
            c[HIGH] = Int(*end);
        }
        IndexValue::Composite(_) => return None,
    }
    Some(c)
}

/// The `INSERT` statement of one row of `table` with `?` placeholders.
pub fn insert_sql(table: &Table) -> String {
    let cols: Vec<&str> = KEY_COLUMNS.iter().chain(table.columns).copied().collect();
    let marks = vec!["?"; cols.len()].join(", ");
    format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        table.name,
        cols.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_layout_matches_positions() {
        assert_eq!(COMPOSITE.columns.len(), 9 * POSITIONS.len());
        for (k, p) in POSITIONS.iter().enumerate() {
            assert_eq!(COMPOSITE.columns[9 * k], p.system);
            assert_eq!(COMPOSITE.columns[9 * k + 8], p.canon_code);
        }
    }
}
