//! `_contained=true|both` and `_containedType` (search.html, "Contained resources"): pages
//! of contained resources, or of their containers, from the `contained` table (migration 5)
//! and the contained resources' own index rows (keys `ContainerType/id#local`).
//!
//! The criteria are the usual WHERE clause over `contained k` instead of `resources r`
//! (`filter::build_scoped`). Then:
//! - `_containedType=contained`: the matching contained resources in (type, key) order; each
//!   comes back with its container's version and the `contained` entry, sliced from the
//!   container's stored bytes (so numbers keep their spelling), as its body.
//! - `_containedType=container` (the default): their containers, each once, in (type, id)
//!   order: the distinct container keys of the matches after the cursor, then their current
//!   versions.
//!
//! `_contained=both` merges a top-level page with a contained one (both in key order, each
//! of at most `count + 1` rows after the same cursor), without repeats; its total counts the
//! union. Containers are always live: a container's write replaces its contained rows and its
//! delete removes them, in the same transaction.

use bytes::Bytes;
use caduceus_store::{StoreError, StoredVersion};

use crate::frag::{Frag, SqlValue as Value};
use crate::{Row, SearchDb, VERSION_COLUMNS, limit_arg};

/// A page of the contained resources matching `filter` (over `contained k`), as themselves.
pub async fn page_contained<D: SearchDb>(
    db: &D,
    filter: Frag,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let f = page_contained_sql(filter, after, limit)?;
    let rows = db.rows(f, 2).await?;
    rows.into_iter()
        .map(|(container, keys)| Ok((as_contained(container, &keys)?, keys)))
        .collect()
}

/// The query of [`page_contained`]: version columns, then the contained type and key.
pub fn page_contained_sql(
    filter: Frag,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Frag, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT ")
        .push(VERSION_COLUMNS)
        .push(
            ", k.type, k.id FROM contained k JOIN resources o ON o.tenant = k.tenant \
         AND o.type = k.container_type AND o.id = k.container_id \
         JOIN versions v ON v.tenant = o.tenant AND v.seq = o.seq WHERE ",
        )
        .append(filter);
    keyset(&mut f, "k", after)?;
    f.push(" ORDER BY k.type, k.id LIMIT ")
        .bind(limit_arg(limit));
    Ok(f)
}

/// A page of the containers of the contained resources matching `filter`, each once.
pub async fn page_containers<D: SearchDb>(
    db: &D,
    tenant: i64,
    filter: Frag,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    db.rows(page_containers_sql(tenant, filter, after, limit)?, 0)
        .await
}

/// The query of [`page_containers`]: the version columns of each container.
pub fn page_containers_sql(
    tenant: i64,
    filter: Frag,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Frag, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT ")
        .push(VERSION_COLUMNS)
        .push(
            " FROM (SELECT DISTINCT +k.container_type AS t, +k.container_id AS i \
         FROM contained k WHERE ",
        )
        .append(filter);
    if let Some(after) = after {
        let (Some(t), Some(i)) = (after.first(), after.get(1)) else {
            return Err(StoreError::InvalidCursor);
        };
        f.push(" AND (+k.container_type, +k.container_id) > (")
            .bind(t.clone())
            .push(", ")
            .bind(i.clone())
            .push(")");
    }
    // `+`: the containers of the matches are sorted, never read in order from
    // `contained_container` (a walk over every contained resource).
    f.push(" ORDER BY 1, 2 LIMIT ")
        .bind(limit_arg(limit))
        .push(") m JOIN resources r ON r.tenant = ")
        .bind(tenant)
        .push(
            " AND r.type = m.t AND r.id = m.i JOIN versions v ON v.tenant = r.tenant AND v.seq = r.seq ORDER BY m.t, m.i",
        );
    Ok(f)
}

/// The number of contained resources matching `filter`.
pub async fn count_contained<D: SearchDb>(db: &D, filter: Frag) -> Result<u64, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT count(*) FROM contained k WHERE ")
        .append(filter);
    db.count(f).await
}

/// The number of distinct containers of the contained resources matching `filter`, plus
/// (for `_contained=both`) the top-level matches of `top` (over `resources r`) that are not
/// among them.
pub async fn count_containers<D: SearchDb>(
    db: &D,
    filter: Frag,
    top: Option<Frag>,
) -> Result<u64, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT count(*) FROM (");
    if let Some(top) = top {
        f.push("SELECT r.type, r.id FROM resources r WHERE ")
            .append(top)
            .push(" UNION ");
    }
    f.push("SELECT DISTINCT +k.container_type, +k.container_id FROM contained k WHERE ")
        .append(filter)
        .push(") AS u");
    db.count(f).await
}

/// Merges two pages in key order into one of at most `limit + 1` rows, each key once.
pub fn merge(a: Vec<Row>, b: Vec<Row>, limit: usize) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(limit.saturating_add(1));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let key = |r: &Row| (r.0.resource_type.clone(), r.0.id.clone());
    while out.len() <= limit {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    b.next();
                    a.next()
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => None,
        };
        match next {
            Some(row) => out.push(row),
            None => break,
        }
    }
    out
}

/// Appends the keyset condition `(a.type, a.id) > cursor`.
fn keyset(f: &mut Frag, a: &str, after: Option<&[Value]>) -> Result<(), StoreError> {
    if let Some(after) = after {
        let (Some(t), Some(i)) = (after.first(), after.get(1)) else {
            return Err(StoreError::InvalidCursor);
        };
        f.push(&format!(" AND ({a}.type, {a}.id) > ("))
            .bind(t.clone())
            .push(", ")
            .bind(i.clone())
            .push(")");
    }
    Ok(())
}

/// The contained resource `keys` = [type, key] as a match: its container's version with the
/// contained entry as body.
fn as_contained(container: StoredVersion, keys: &[Value]) -> Result<StoredVersion, StoreError> {
    let (Some(Value::Text(t)), Some(Value::Text(key))) = (keys.first(), keys.get(1)) else {
        return Err(StoreError::Internal("contained search key".into()));
    };
    let local = key.rsplit_once('#').map_or("", |(_, l)| l);
    let body = container
        .body
        .as_deref()
        .and_then(|b| contained_entry(b, local))
        .map(Bytes::copy_from_slice);
    if body.is_none() {
        // The index says the container holds it; its stored bytes disagree.
        return Err(StoreError::Internal(format!(
            "version seq {}: contained entry not found",
            container.seq
        )));
    }
    Ok(StoredVersion {
        resource_type: t.clone(),
        id: key.clone(),
        body,
        ..container
    })
}

/// The bytes of the entry of the top-level `contained` array of `json` whose `id` is `id`
/// (the first such entry), exactly as stored.
pub fn contained_entry<'a>(json: &'a [u8], id: &str) -> Option<&'a [u8]> {
    let mut p = Scanner { s: json, i: 0 };
    let mut found = None;
    p.object(|p, key| {
        if found.is_none() && key == b"contained" {
            p.ws();
            if p.peek() != Some(b'[') {
                return p.value();
            }
            p.i += 1;
            loop {
                p.ws();
                if p.peek() == Some(b']') {
                    p.i += 1;
                    return Some(());
                }
                let start = p.i;
                let mut entry_id: Option<&[u8]> = None;
                if p.peek() == Some(b'{') {
                    p.object(|p, k| {
                        if k == b"id" {
                            p.ws();
                            let s = p.string()?;
                            entry_id.get_or_insert(s);
                            Some(())
                        } else {
                            p.value()
                        }
                    })?;
                } else {
                    p.value()?;
                }
                if found.is_none() && entry_id == Some(id.as_bytes()) {
                    found = Some(&json[start..p.i]);
                }
                p.ws();
                match p.peek() {
                    Some(b',') => p.i += 1,
                    Some(b']') => {}
                    _ => return None,
                }
            }
        } else {
            p.value()
        }
    })?;
    found
}

/// A minimal JSON walker over stored (valid, canonical) bytes: enough to find a value's
/// byte range without building it. Strings are compared raw (ids need no escapes).
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    /// A string; returns its raw content (escapes left as written).
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    let s = &self.s[start..self.i];
                    self.i += 1;
                    return Some(s);
                }
                _ => self.i += 1,
            }
        }
    }

    /// An object, calling `member` with the walker before each member's value (which it
    /// must consume).
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Scanner<'a>, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'{') {
            return None;
        }
        self.i += 1;
        loop {
            self.ws();
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => self.i += 1,
                _ => {
                    let key = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return None;
                    }
                    self.i += 1;
                    member(self, key)?;
                }
            }
        }
    }

    /// Any value.
    fn value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => self.object(|p, _| p.value()),
            b'[' => {
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek()? {
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        b',' => self.i += 1,
                        _ => self.value()?,
                    }
                }
            }
            _ => {
                // number, true, false, null
                let start = self.i;
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_entry_exactly() {
        let json = br#"{"resourceType":"MedicationRequest","id":"1","note":[{"text":"a \"}\" b"}],"contained":[{"resourceType":"Patient","id":"p0","name":[{"family":"x]"}]},{"resourceType":"Medication","code":{"text":"y"},"id":"m1","amount":{"numerator":{"value":1.50e3}}}],"status":"active"}"#;
        assert_eq!(
            contained_entry(json, "m1"),
            Some(
                &br#"{"resourceType":"Medication","code":{"text":"y"},"id":"m1","amount":{"numerator":{"value":1.50e3}}}"#[..]
            )
        );
        assert_eq!(
            contained_entry(json, "p0"),
            Some(&br#"{"resourceType":"Patient","id":"p0","name":[{"family":"x]"}]}"#[..])
        );
        assert_eq!(contained_entry(json, "m2"), None);
        assert_eq!(contained_entry(br#"{"id":"m1"}"#, "m1"), None);
        assert_eq!(contained_entry(br#"{"contained":[{"id":"m1""#, "m1"), None);
        assert_eq!(contained_entry(b"", "m1"), None);
    }
}
