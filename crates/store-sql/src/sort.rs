//! `_sort`: the sort value of each resource, and the keyset condition that starts a page
//! after the previous page's last row.
//!
//! A resource's sort value for a parameter is the smallest of its indexed values for an
//! ascending key and the largest for a descending one (strings: normalised text; tokens:
//! code; dates: start ascending, end descending; numbers and quantities: value as written;
//! references: `Type/id` or URL; uris: the URI). `_id` sorts by id and `_lastUpdated` by the
//! current version's time. Resources without a value come last in either direction: each
//! key is the pair (absent flag, value with absent as 0), so every compared column is
//! non-NULL and a keyset comparison is exact. Ties are broken by type and id, which are
//! unique, so the order is total and paging neither repeats nor skips.

use caduceus_search::{ParamKind, SortKey};
use caduceus_store::StoreError;

use crate::frag::Frag;

/// The scalar subquery giving one resource's (the row `r`'s) sort value, and a constant
/// of the value's type that stands in for an absent value (`''` or `0`).
pub fn value_expr(key: &SortKey) -> Result<(Frag, &'static str), StoreError> {
    let mut f = Frag::new();
    let code = key.param.code;
    let agg = if key.descending { "max" } else { "min" };
    match code {
        "_id" => {
            f.push("r.id");
            return Ok((f, "''"));
        }
        "_lastUpdated" => {
            f.push("(SELECT lv.last_updated FROM versions lv WHERE lv.tenant = r.tenant AND lv.seq = r.seq)");
            return Ok((f, "0"));
        }
        _ => {}
    }
    let absent = match key.param.kind {
        ParamKind::Date | ParamKind::Number | ParamKind::Quantity => "0",
        _ => "''",
    };
    let (table, column) = match key.param.kind {
        ParamKind::String => ("idx_string", "x.normalized"),
        ParamKind::Token => ("idx_token", "x.code"),
        ParamKind::Date if key.descending => ("idx_date", "x.end_us"),
        ParamKind::Date => ("idx_date", "x.start_us"),
        ParamKind::Number => ("idx_number", "x.value"),
        ParamKind::Quantity => ("idx_quantity", "x.value"),
        ParamKind::Reference => (
            "idx_reference",
            "coalesce(x.target_type || '/' || x.target_id, x.url)",
        ),
        ParamKind::Uri => ("idx_uri", "x.value"),
        ParamKind::Composite | ParamKind::Special => {
            return Err(StoreError::Unsupported(format!(
                "_sort on a {} parameter",
                key.param.kind.code()
            )));
        }
    };
    f.push("(SELECT ")
        .push(agg)
        .push("(")
        .push(column)
        .push(") FROM ")
        .push(table)
        // `+x.param`: seek the resource's own rows (`idx_*_resource`), never the
        // parameter's rows of every resource (`idx_*_lookup`), which made sorting quadratic.
        .push(" x WHERE x.tenant = r.tenant AND x.type = r.type AND x.id = r.id AND +x.param = ")
        .text(code)
        .push(")");
    Ok((f, absent))
}

/// One compared column of the keyset: its name and whether it sorts descending.
pub struct Col {
    pub name: String,
    pub descending: bool,
}

/// `ORDER BY` text over the columns.
pub fn order_by(cols: &[Col]) -> String {
    cols.iter()
        .map(|c| {
            if c.descending {
                format!("{} DESC", c.name)
            } else {
                c.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows strictly after `after` in the order of `cols`: the lexicographic expansion
/// `c0 > a0 OR (c0 = a0 AND (c1 > a1 OR ...))`, with `<` for descending columns.
pub fn after(cols: &[Col], after: &[crate::SqlValue]) -> Frag {
    let mut f = Frag::new();
    f.push("(");
    for (j, col) in cols.iter().enumerate() {
        if j > 0 {
            f.push(" OR ");
        }
        f.push("(");
        for (l, prev) in cols.iter().enumerate().take(j) {
            f.push(&prev.name).push(" = ");
            if let Some(v) = after.get(l) {
                f.bind(v.clone());
            }
            f.push(" AND ");
        }
        f.push(&col.name)
            .push(if col.descending { " < " } else { " > " });
        if let Some(v) = after.get(j) {
            f.bind(v.clone());
        }
        f.push(")");
    }
    if cols.is_empty() {
        f.push("TRUE");
    }
    f.push(")");
    f
}
