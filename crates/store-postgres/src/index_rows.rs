//! A write's search index rows, in bulk: every `idx_*` row (and `contained` entry) of all
//! the operations of one write is gathered into column arrays ([`IndexBatch`]) and inserted
//! by one statement ([`INSERT`]: one `INSERT … SELECT … FROM unnest(…)` per table, as
//! data-modifying CTEs of a single statement); the rows they replace are removed by one
//! other ([`DELETE`]). A write costs two round trips for its index, whatever its size:
//! per-row statements made imports round-trip bound.
//!
//! The mapping of values to rows is exactly that of `caduceus-store-sqlite`'s
//! `index_rows.rs` (the search SQL is shared):
//! - one table per [`IndexValue`] kind, same columns;
//! - a composite tuple is one `idx_composite` row, component `k` (1..3) in the columns of
//!   position `k` its kind uses (token system/code; string code normalised and text as
//!   written; uri code; reference system = target type, code = target id, version, text =
//!   url; number value/low/high; quantity value/low/high, system/code, canon_value and
//!   canon_code; date low/high = start/end µs), the others NULL; a tuple of no or more than
//!   3 components, or holding a composite, is skipped;
//! - a contained resource gets the rows of its own type under the key
//!   `ContainerType/containerId#localId` ([`contained_key`]), and a `contained` entry; a
//!   local id given twice keeps its first rows;
//! - local references are stored resolved: `#localId` becomes the contained resource's key,
//!   a bare `#` the container's id.

use std::borrow::Cow;
use std::collections::HashSet;

use caduceus_store::index::{ContainedIndex, IndexRow, IndexValue};
use tokio_postgres::types::ToSql;

/// The key of a contained resource's index rows: its address relative to the server base.
pub(crate) fn contained_key(container_type: &str, container_id: &str, local_id: &str) -> String {
    format!("{container_type}/{container_id}#{local_id}")
}

/// A reference target id as stored (see the module doc); `container` is (type, id) of the
/// container, which for a top-level resource is itself.
fn stored_target<'a>(
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

type Text<'a> = Vec<Cow<'a, str>>;
type OptText<'a> = Vec<Option<Cow<'a, str>>>;

/// Columns of one component position of `idx_composite`.
#[derive(Default)]
struct Position<'a> {
    system: OptText<'a>,
    code: OptText<'a>,
    text: OptText<'a>,
    version: OptText<'a>,
    value: Vec<Option<f64>>,
    low: Vec<Option<f64>>,
    high: Vec<Option<f64>>,
    canon_value: Vec<Option<f64>>,
    canon_code: OptText<'a>,
}

impl<'a> Position<'a> {
    /// Appends one component (`None`: no component at this position).
    fn push(&mut self, v: Option<&'a IndexValue>, container: (&str, &str)) {
        let b = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        let (mut system, mut code, mut text, mut version) = (None, None, None, None);
        let (mut value, mut low, mut high, mut canon_value, mut canon_code) =
            (None, None, None, None, None);
        match v {
            None | Some(IndexValue::Composite(_)) => {}
            Some(IndexValue::Token {
                system: s, code: c, ..
            }) => {
                system = b(s);
                code = b(c);
            }
            Some(IndexValue::String { normalized, exact }) => {
                code = Some(Cow::Borrowed(normalized.as_str()));
                text = Some(Cow::Borrowed(exact.as_str()));
            }
            Some(IndexValue::Uri(u)) => code = Some(Cow::Borrowed(u.as_str())),
            Some(IndexValue::Reference {
                target_type,
                target_id,
                version: v,
                url,
            }) => {
                system = b(target_type);
                code = stored_target(target_id, container).map(|t| Cow::Owned(t.into_owned()));
                text = b(url);
                version = b(v);
            }
            Some(IndexValue::Number {
                value: v,
                low: l,
                high: h,
            }) => {
                value = Some(*v);
                low = Some(*l);
                high = Some(*h);
            }
            Some(IndexValue::Quantity {
                value: v,
                low: l,
                high: h,
                system: s,
                code: c,
                canonical_value,
                canonical_code,
            }) => {
                system = b(s);
                code = b(c);
                value = Some(*v);
                low = Some(*l);
                high = Some(*h);
                canon_value = *canonical_value;
                canon_code = b(canonical_code);
            }
            // µs since the epoch: exact in a double up to 2^53 µs (year 287,396); the open
            // ends (the i64 extremes) stay beyond every real instant.
            #[allow(clippy::cast_precision_loss)]
            Some(IndexValue::Date { start, end }) => {
                low = Some(*start as f64);
                high = Some(*end as f64);
            }
        }
        self.system.push(system);
        self.code.push(code);
        self.text.push(text);
        self.version.push(version);
        self.value.push(value);
        self.low.push(low);
        self.high.push(high);
        self.canon_value.push(canon_value);
        self.canon_code.push(canon_code);
    }
}

/// The index rows of one write, as column arrays per table (`type`, `id` and `param` first
/// in each), plus the `contained` entries.
/// Each table's tuple lists its columns in the order of [`INSERT`]'s parameters.
#[derive(Default)]
#[allow(clippy::type_complexity)]
pub(crate) struct IndexBatch<'a> {
    string: (Text<'a>, Text<'a>, Vec<&'static str>, Text<'a>, Text<'a>),
    token: (
        Text<'a>,
        Text<'a>,
        Vec<&'static str>,
        OptText<'a>,
        OptText<'a>,
        OptText<'a>,
    ),
    reference: (
        Text<'a>,
        Text<'a>,
        Vec<&'static str>,
        OptText<'a>,
        OptText<'a>,
        OptText<'a>,
        OptText<'a>,
    ),
    date: (Text<'a>, Text<'a>, Vec<&'static str>, Vec<i64>, Vec<i64>),
    number: (
        Text<'a>,
        Text<'a>,
        Vec<&'static str>,
        Vec<f64>,
        Vec<f64>,
        Vec<f64>,
    ),
    quantity: QuantityCols<'a>,
    uri: (Text<'a>, Text<'a>, Vec<&'static str>, Text<'a>),
    composite: (Text<'a>, Text<'a>, Vec<&'static str>, [Position<'a>; 3]),
    contained: (Text<'a>, Text<'a>, Text<'a>, Text<'a>),
    rows: usize,
}

#[derive(Default)]
struct QuantityCols<'a> {
    key: (Text<'a>, Text<'a>, Vec<&'static str>),
    value: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    system: OptText<'a>,
    code: OptText<'a>,
    canonical_value: Vec<Option<f64>>,
    canonical_code: OptText<'a>,
}

impl<'a> IndexBatch<'a> {
    /// True when there is nothing to insert.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds the rows of a top-level resource and of its contained resources.
    pub(crate) fn add_resource(
        &mut self,
        resource_type: &'a str,
        id: &'a str,
        rows: &'a [IndexRow],
        contained: &'a [ContainedIndex],
    ) {
        let container = (resource_type, id);
        self.add_rows(
            Cow::Borrowed(resource_type),
            Cow::Borrowed(id),
            rows,
            container,
        );
        let mut seen = HashSet::with_capacity(contained.len());
        for c in contained {
            // A local id given twice keeps its first rows (SQLite's INSERT OR IGNORE).
            if !seen.insert(c.id.as_str()) {
                continue;
            }
            let key = contained_key(resource_type, id, &c.id);
            self.contained.0.push(Cow::Borrowed(&c.resource_type));
            self.contained.1.push(Cow::Owned(key.clone()));
            self.contained.2.push(Cow::Borrowed(resource_type));
            self.contained.3.push(Cow::Borrowed(id));
            self.rows += 1;
            self.add_rows(
                Cow::Borrowed(&c.resource_type),
                Cow::Owned(key),
                &c.rows,
                container,
            );
        }
    }

    /// Adds rows keyed (`t`, `i`) whose local references resolve within `container`.
    fn add_rows(
        &mut self,
        t: Cow<'a, str>,
        i: Cow<'a, str>,
        rows: &'a [IndexRow],
        container: (&str, &str),
    ) {
        let b = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        for row in rows {
            let p = row.param;
            match &row.value {
                IndexValue::String { normalized, exact } => {
                    let c = &mut self.string;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    c.3.push(Cow::Borrowed(normalized));
                    c.4.push(Cow::Borrowed(exact));
                }
                IndexValue::Token { system, code, text } => {
                    let c = &mut self.token;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    c.3.push(b(system));
                    c.4.push(b(code));
                    c.5.push(b(text));
                }
                IndexValue::Reference {
                    target_type,
                    target_id,
                    version,
                    url,
                } => {
                    let target =
                        stored_target(target_id, container).map(|c| Cow::Owned(c.into_owned()));
                    let c = &mut self.reference;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    c.3.push(b(target_type));
                    c.4.push(target);
                    c.5.push(b(version));
                    c.6.push(b(url));
                }
                IndexValue::Date { start, end } => {
                    let c = &mut self.date;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    c.3.push(*start);
                    c.4.push(*end);
                }
                IndexValue::Number { value, low, high } => {
                    let c = &mut self.number;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    c.3.push(*value);
                    c.4.push(*low);
                    c.5.push(*high);
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
                    let c = &mut self.quantity;
                    c.key.0.push(t.clone());
                    c.key.1.push(i.clone());
                    c.key.2.push(p);
                    c.value.push(*value);
                    c.low.push(*low);
                    c.high.push(*high);
                    c.system.push(b(system));
                    c.code.push(b(code));
                    c.canonical_value.push(*canonical_value);
                    c.canonical_code.push(b(canonical_code));
                }
                IndexValue::Uri(value) => {
                    let c = &mut self.uri;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    c.3.push(Cow::Borrowed(value));
                }
                IndexValue::Composite(parts) => {
                    let positions = self.composite.3.len();
                    if parts.is_empty()
                        || parts.len() > positions
                        || parts.iter().any(|v| matches!(v, IndexValue::Composite(_)))
                    {
                        continue;
                    }
                    let c = &mut self.composite;
                    c.0.push(t.clone());
                    c.1.push(i.clone());
                    c.2.push(p);
                    for (k, pos) in c.3.iter_mut().enumerate() {
                        pos.push(parts.get(k), container);
                    }
                }
            }
            self.rows += 1;
        }
    }

    /// The parameters of [`INSERT`], `tenant` first.
    pub(crate) fn params<'s>(&'s self, tenant: &'s i64) -> Vec<&'s (dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![tenant];
        let s = &self.string;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2, &s.3, &s.4]);
        let s = &self.token;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2, &s.3, &s.4, &s.5]);
        let s = &self.reference;
        p.extend([
            &s.0 as &(dyn ToSql + Sync),
            &s.1,
            &s.2,
            &s.3,
            &s.4,
            &s.5,
            &s.6,
        ]);
        let s = &self.date;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2, &s.3, &s.4]);
        let s = &self.number;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2, &s.3, &s.4, &s.5]);
        let s = &self.quantity;
        p.extend([
            &s.key.0 as &(dyn ToSql + Sync),
            &s.key.1,
            &s.key.2,
            &s.value,
            &s.low,
            &s.high,
            &s.system,
            &s.code,
            &s.canonical_value,
            &s.canonical_code,
        ]);
        let s = &self.uri;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2, &s.3]);
        let s = &self.composite;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2]);
        for pos in &s.3 {
            p.extend([
                &pos.system as &(dyn ToSql + Sync),
                &pos.code,
                &pos.text,
                &pos.version,
                &pos.value,
                &pos.low,
                &pos.high,
                &pos.canon_value,
                &pos.canon_code,
            ]);
        }
        let s = &self.contained;
        p.extend([&s.0 as &(dyn ToSql + Sync), &s.1, &s.2, &s.3]);
        p
    }
}

/// Inserts an [`IndexBatch`] (parameters from [`IndexBatch::params`]): one statement, one
/// data-modifying CTE per table. Rows go in as the arrays hold them.
pub(crate) const INSERT: &str = r#"WITH
s AS (INSERT INTO idx_string (tenant, type, id, param, normalized, exact)
      SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])),
t AS (INSERT INTO idx_token (tenant, type, id, param, system, code, text)
      SELECT $1, * FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])),
r AS (INSERT INTO idx_reference (tenant, type, id, param, target_type, target_id, target_version, url)
      SELECT $1, * FROM unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[])),
d AS (INSERT INTO idx_date (tenant, type, id, param, start_us, end_us)
      SELECT $1, * FROM unnest($20::text[], $21::text[], $22::text[], $23::int8[], $24::int8[])),
n AS (INSERT INTO idx_number (tenant, type, id, param, value, low, high)
      SELECT $1, * FROM unnest($25::text[], $26::text[], $27::text[], $28::float8[], $29::float8[], $30::float8[])),
q AS (INSERT INTO idx_quantity (tenant, type, id, param, value, low, high, system, code, canonical_value, canonical_code)
      SELECT $1, * FROM unnest($31::text[], $32::text[], $33::text[], $34::float8[], $35::float8[], $36::float8[],
                               $37::text[], $38::text[], $39::float8[], $40::text[])),
u AS (INSERT INTO idx_uri (tenant, type, id, param, value)
      SELECT $1, * FROM unnest($41::text[], $42::text[], $43::text[], $44::text[])),
c AS (INSERT INTO idx_composite (tenant, type, id, param,
          system_1, code_1, text_1, version_1, value_1, low_1, high_1, canon_value_1, canon_code_1,
          system_2, code_2, text_2, version_2, value_2, low_2, high_2, canon_value_2, canon_code_2,
          system_3, code_3, text_3, version_3, value_3, low_3, high_3, canon_value_3, canon_code_3)
      SELECT $1, * FROM unnest($45::text[], $46::text[], $47::text[],
          $48::text[], $49::text[], $50::text[], $51::text[], $52::float8[], $53::float8[], $54::float8[], $55::float8[], $56::text[],
          $57::text[], $58::text[], $59::text[], $60::text[], $61::float8[], $62::float8[], $63::float8[], $64::float8[], $65::text[],
          $66::text[], $67::text[], $68::text[], $69::text[], $70::float8[], $71::float8[], $72::float8[], $73::float8[], $74::text[])),
k AS (INSERT INTO contained (tenant, type, id, container_type, container_id)
      SELECT $1, * FROM unnest($75::text[], $76::text[], $77::text[], $78::text[]))
SELECT 1"#;

/// Removes the index rows of the resources (`$2` types, `$3` ids; `$1` tenant) and of their
/// contained resources, and their `contained` entries: one statement.
pub(crate) const DELETE: &str = r#"WITH
keys AS (SELECT * FROM unnest($2::text[], $3::text[]) AS k(type, id)),
gone AS (DELETE FROM contained c USING keys k
         WHERE c.tenant = $1 AND c.container_type = k.type AND c.container_id = k.id
         RETURNING c.type, c.id),
a AS MATERIALIZED (SELECT type, id FROM keys UNION ALL SELECT type, id FROM gone),
s AS (DELETE FROM idx_string x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
t AS (DELETE FROM idx_token x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
r AS (DELETE FROM idx_reference x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
d AS (DELETE FROM idx_date x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
n AS (DELETE FROM idx_number x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
q AS (DELETE FROM idx_quantity x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
u AS (DELETE FROM idx_uri x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id),
c AS (DELETE FROM idx_composite x USING a WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id)
SELECT 1"#;
