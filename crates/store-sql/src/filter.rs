//! The WHERE clause of a search: which current, live resources match the criteria and the
//! compartment.
//!
//! Each criterion becomes a *set*: an uncorrelated `SELECT id` of the live resources of one
//! type that match it, built from the index tables (or from `resources` for `_id` and
//! `_lastUpdated`). The main query keeps `r.id IN (set)` per criterion (AND), so SQLite
//! evaluates each set once, through the lookup indexes, and seeks `resources` by primary
//! key; it never scans the searched type to test rows one by one. A top-level search with
//! several positive criteria is planned (`build_planned`): only the smallest set (by a
//! capped count from the index) stays `IN (set)` and drives; the other plain parameter
//! criteria become correlated `EXISTS` seeks on each candidate's own index rows, so a
//! broad criterion is never materialised to keep a few rows. The values of one
//! criterion (OR) are a `UNION ALL` of per-value selects, so each keeps its index seek.
//! Negative criteria (`:not`, `:missing=true`) are `r.id NOT IN (set)`: `gender:not=male`
//! also finds resources without a gender, and `code:not=a,b` finds resources with neither
//! code. Every other prefix and modifier is tested per indexed value: a resource matches
//! when any of its values does (so `birthdate=ne2000` is "has a value not in 2000").
//! Token `:in`/`:above`/`:below` arrive resolved by the engine to a `TokenSet` (the codes
//! of a ValueSet or of a CodeSystem hierarchy) and are one arm that seeks the lookup index
//! for each code of a bound JSON array (see `values::token_set`); `:not-in` is its `NOT IN`,
//! like `:not`.
//!
//! Chains nest sets: `subject:Patient.name=x` on Observation is the Observations whose
//! `subject` reference row has `target_id IN (Patients named x)` — driven from the target
//! side through `idx_reference_target`. `_has:Observation:subject:code=y` is the targets
//! of `subject` rows whose source `id IN (Observations with code y)`. Any depth nests the
//! same way.
//!
//! A search over several types (system search, `_type`, `Patient/1/*`) uses sets of
//! (type, id) pairs restricted with `x.type IN (types)`, compared as `(r.type, r.id) IN`,
//! so it too is driven by the index rows that match rather than by the searched types.
//!
//! Contained resources (`_contained`, migration 5) have index rows under keys
//! `ContainerType/id#local` and a row in `contained`, never in `resources`, so a set of ids
//! may hold such keys but a top-level search (`resources r`) never matches them. The same
//! WHERE clause over `contained k` ([`Scope::Contained`]) finds contained resources instead.
//! A chain's targets (and `_has` sources) are both kinds ([`Scope::Any`]): local references
//! are stored pointing at the contained resource's key, so `subject.name=x` follows `#p1`
//! into a contained Patient, as R4 evaluates chains inside contained resources. Where a set
//! needs "every resource of the type" (`:not` in a chain, `_id`, `_lastUpdated`,
//! `:missing` both ways) it is taken from the scope's tables; a contained resource's `_id` is
//! its local id, its `_lastUpdated` its container's.
//!
//! Composite values are one `idx_composite` row whose every component matches in its
//! position (`composite`), sought by the first component through `idx_composite_lookup`;
//! token `:of-type` reads the `(type coding, value)` tuples of the identifier parameter
//! there too, and reference `:identifier` reads the reference parameter's token rows
//! (`Reference.identifier`) in `idx_token`.

use caduceus_search::{
    CompartmentFilter, Criterion, Link, Modifier, ParamKind, SearchQuery, SearchValue,
};
use caduceus_store::StoreError;

use crate::composite;
use crate::frag::Frag;
use crate::values;

/// The resource types a set is restricted to: one (the set is of ids), or several (the
/// set is of (type, id) pairs, for system, `_type` and `Patient/1/*` searches).
#[derive(Clone, Copy)]
pub enum Ty<'a> {
    Fixed(&'a str),
    Many(&'a [&'static str]),
}

impl Ty<'_> {
    /// Appends the type restriction `col = ?` or `col IN (...)`.
    fn eq(self, f: &mut Frag, col: &str) {
        f.push(col);
        match self {
            Ty::Fixed(t) => {
                f.push(" = ").text(t);
            }
            Ty::Many(types) => {
                f.push(" IN ")
                    .bind_list(types.iter().map(|t| t.to_string()));
            }
        }
    }

    /// Appends `SELECT` and what a set of these types selects: the id, or type and id.
    fn select(self, f: &mut Frag, type_col: &str, id_col: &str) {
        f.push("SELECT ");
        if let Ty::Many(_) = self {
            f.push(type_col).push(", ");
        }
        f.push(id_col);
    }

    /// A set with no member.
    fn empty(self, f: &mut Frag) {
        f.push(match self {
            Ty::Fixed(_) => "SELECT NULL WHERE FALSE",
            Ty::Many(_) => "SELECT NULL, NULL WHERE FALSE",
        });
    }

    /// What the outer row (alias `a`) compares with such a set.
    fn key(self, a: &str) -> String {
        match self {
            Ty::Fixed(_) => format!("{a}.id"),
            Ty::Many(_) => format!("({a}.type, {a}.id)"),
        }
    }
}

/// Which resources a set (or the outer query) ranges over.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// Top-level resources (`resources`).
    Top,
    /// Contained resources (`contained`).
    Contained,
    /// Both: the targets of a chain, the sources of `_has`.
    Any,
}

impl Scope {
    /// The tables of the scope, each with the expression of a member's own id (a contained
    /// resource's local id is its key after `#`).
    fn arms(self) -> &'static [Scope] {
        match self {
            Scope::Top => &[Scope::Top],
            Scope::Contained => &[Scope::Contained],
            Scope::Any => &[Scope::Top, Scope::Contained],
        }
    }
}

/// The most values one criterion may OR together: each is one arm of a `UNION ALL`, and
/// SQLite allows 500 arms in a compound select.
const MAX_VALUES: usize = 400;

/// A set of live resources of one type, or its complement among them.
enum Set {
    In(Frag),
    NotIn(Frag),
}

/// The WHERE clause (without `WHERE`) over `resources r` for the query's types, criteria
/// and compartment. `now` (µs) anchors `ap` on dates.
pub fn build(tenant: i64, q: &SearchQuery, now: i64) -> Result<Frag, StoreError> {
    build_scoped(tenant, q, now, Scope::Top)
}

/// Counts the members of a set, stopping at the cap: a look at the index (a few hundred µs
/// at most) that tells which criterion is smallest.
pub type Estimate<'a> = &'a dyn Fn(&Frag, u64) -> Result<u64, StoreError>;

/// The most index rows one estimate reads.
const ESTIMATE_CAP: u64 = 5_000;

/// [`build`], planned: when several criteria AND together, the one with the fewest members
/// (by `estimate`) stays an `IN (set)` and drives the query, and every other plain
/// parameter criterion becomes a correlated `EXISTS` probe of the candidate's own index
/// rows. Materialising every set and intersecting them costs the size of the largest
/// (`Observation?patient=X&code=<a common code>` built the code's 2,835 ids to keep 13:
/// 2.4 ms); probing costs one index seek per candidate of the smallest (0.19 ms).
pub fn build_planned(
    tenant: i64,
    q: &SearchQuery,
    now: i64,
    estimate: Estimate<'_>,
) -> Result<Frag, StoreError> {
    build_inner(tenant, q, now, Scope::Top, Some(estimate))
}

/// [`build`] over `resources r` ([`Scope::Top`]) or over `contained k`
/// ([`Scope::Contained`]: the contained resources of live containers, whose rows exist only
/// while their container's current version holds them).
pub fn build_scoped(
    tenant: i64,
    q: &SearchQuery,
    now: i64,
    scope: Scope,
) -> Result<Frag, StoreError> {
    build_inner(tenant, q, now, scope, None)
}

fn build_inner(
    tenant: i64,
    q: &SearchQuery,
    now: i64,
    scope: Scope,
    estimate: Option<Estimate<'_>>,
) -> Result<Frag, StoreError> {
    let a = if scope == Scope::Contained { "k" } else { "r" };
    let mut f = Frag::new();
    f.push(&format!("{a}.tenant = ")).bind(tenant);
    if scope != Scope::Contained {
        f.push(" AND r.deleted = 0");
    }
    let ty = match q.types.as_slice() {
        [t] => {
            f.push(&format!(" AND {a}.type = ")).bind(t.to_string());
            Ty::Fixed(t)
        }
        types => {
            f.push(&format!(" AND {a}.type IN "))
                .bind_list(types.iter().map(|t| t.to_string()));
            Ty::Many(types)
        }
    };
    let mut sets = Vec::with_capacity(q.criteria.len());
    for c in &q.criteria {
        let set = criterion_set(tenant, ty, &c.path, c, now, scope)?;
        let probe = match (&set, ty, estimate) {
            (Set::In(_), Ty::Fixed(_), Some(_)) if scope == Scope::Top => probe(tenant, c, now, a)?,
            _ => None,
        };
        sets.push((set, probe));
    }
    let driver = match estimate {
        Some(est) => choose_driver(&sets, est)?,
        None => None,
    };
    for (i, (set, probe)) in sets.into_iter().enumerate() {
        let set = match probe {
            Some(p) if driver.is_some_and(|d| d != i) => {
                f.push(" AND ").append(p);
                continue;
            }
            _ => set,
        };
        match set {
            Set::In(s) => {
                f.push(" AND ")
                    .push(&ty.key(a))
                    .push(" IN (")
                    .append(s)
                    .push(")");
            }
            Set::NotIn(s) => {
                f.push(" AND ")
                    .push(&ty.key(a))
                    .push(" NOT IN (")
                    .append(s)
                    .push(")");
            }
        }
    }
    if let Some(comp) = &q.compartment {
        compartment(&mut f, tenant, comp, a);
    }
    Ok(f)
}

/// The criterion whose set should drive the query: the smallest `IN` set, when at least
/// one other `IN` criterion can be probed instead. Each estimate is capped at the smallest
/// size seen so far, so a large set is never counted in full.
fn choose_driver(
    sets: &[(Set, Option<Frag>)],
    estimate: Estimate<'_>,
) -> Result<Option<usize>, StoreError> {
    let positive: Vec<usize> = sets
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| matches!(s, Set::In(_)))
        .map(|(i, _)| i)
        .collect();
    if positive.len() < 2 || positive.iter().all(|&i| sets[i].1.is_none()) {
        return Ok(None);
    }
    let mut best: Option<(usize, u64)> = None;
    for &i in &positive {
        let Set::In(set) = &sets[i].0 else { continue };
        let cap = best.map_or(ESTIMATE_CAP, |(_, n)| n);
        let n = estimate(set, cap)?;
        if best.is_none_or(|(_, m)| n < m) {
            best = Some((i, n));
        }
    }
    Ok(best.map(|(i, _)| i))
}

/// A plain parameter criterion as a correlated test of the outer row `a`'s own index rows:
/// `EXISTS (SELECT 1 FROM idx_* x WHERE x.id = a.id AND x.param = ? AND (values))`.
/// `None` for what has no such form (chains, `_has`, `:missing`, `_id`, `_lastUpdated`,
/// negations).
fn probe(tenant: i64, c: &Criterion, now: i64, a: &str) -> Result<Option<Frag>, StoreError> {
    if !c.path.is_empty()
        || c.modifier == Some(Modifier::Missing)
        || matches!(c.param.code, "_id" | "_lastUpdated")
        || c.values.is_empty()
        || c.values.len() > MAX_VALUES
    {
        return Ok(None);
    }
    let Some(table) = table_for(c.param.kind, c.modifier) else {
        return Ok(None);
    };
    let mut f = Frag::new();
    f.push("EXISTS (SELECT 1 FROM ")
        .push(table)
        .push(" x WHERE x.tenant = ")
        .bind(tenant)
        .push(&format!(
            " AND x.type = {a}.type AND x.id = {a}.id AND x.param = "
        ))
        .text(c.param.code)
        .push(" AND (");
    for (k, value) in c.values.iter().enumerate() {
        if k > 0 {
            f.push(" OR ");
        }
        f.push("(");
        if value_cond(&mut f, c.param.kind, c.modifier, value, now)? {
            return Ok(None);
        }
        f.push(")");
    }
    f.push("))");
    Ok(Some(f))
}

/// Resources of the searched types that reference the compartment resource through any of
/// their type's compartment parameters. The compartment resource itself is not a member:
/// R4 (search.html#compartments, compartmentdefinition.html) defines the compartment by the
/// listed parameters only.
fn compartment(f: &mut Frag, tenant: i64, c: &CompartmentFilter, a: &str) {
    f.push(&format!(" AND ({a}.type, {a}.id) IN "))
        .push("(SELECT c.type, c.id FROM idx_reference c WHERE c.tenant = ")
        .bind(tenant)
        .push(" AND c.target_type = ")
        .bind(c.compartment_type.to_owned())
        .push(" AND c.target_id = ")
        .bind(c.id.clone())
        .push(" AND (");
    let mut any = false;
    for (t, params) in &c.links {
        if params.is_empty() {
            continue;
        }
        if any {
            f.push(" OR ");
        }
        any = true;
        f.push("(c.type = ")
            .bind(t.to_string())
            .push(" AND c.param IN ")
            .bind_list(params.iter().map(|p| p.to_string()))
            .push(")");
    }
    if !any {
        f.push("FALSE");
    }
    f.push("))");
}

/// The set of live resources of type `ty` in `scope` that match criterion `c` evaluated at
/// the end of `path`.
fn criterion_set(
    tenant: i64,
    ty: Ty<'_>,
    path: &[Link],
    c: &Criterion,
    now: i64,
    scope: Scope,
) -> Result<Set, StoreError> {
    let Some((link, rest)) = path.split_first() else {
        return param_set(tenant, ty, c, now, scope);
    };
    let mut f = Frag::new();
    match link {
        Link::Chain { param, targets, .. } => {
            if targets.is_empty() {
                ty.empty(&mut f);
            }
            for (k, target) in targets.iter().enumerate() {
                if k > 0 {
                    f.push(" UNION ALL ");
                }
                let inner = positive(
                    tenant,
                    Ty::Fixed(target),
                    Scope::Any,
                    criterion_set(tenant, Ty::Fixed(target), rest, c, now, Scope::Any)?,
                );
                ty.select(&mut f, "c.type", "c.id");
                f.push(" FROM idx_reference c WHERE c.tenant = ")
                    .bind(tenant)
                    .push(" AND c.target_type = ")
                    .bind(target.to_string())
                    .push(" AND c.target_id IN (")
                    .append(inner)
                    .push(") AND c.param = ")
                    .text(param.code);
                f.push(" AND ");
                ty.eq(&mut f, "c.type");
            }
        }
        Link::Has { source_type, param } => {
            let source = Ty::Fixed(source_type);
            let inner = positive(
                tenant,
                source,
                Scope::Any,
                criterion_set(tenant, source, rest, c, now, Scope::Any)?,
            );
            ty.select(&mut f, "h.target_type", "h.target_id");
            f.push(" FROM idx_reference h WHERE h.tenant = ")
                .bind(tenant)
                .push(" AND h.type = ")
                .bind(source_type.to_string())
                .push(" AND h.id IN (")
                .append(inner)
                .push(") AND h.param = ")
                .text(param.code)
                .push(" AND h.target_id IS NOT NULL AND ");
            ty.eq(&mut f, "h.target_type");
        }
    }
    Ok(Set::In(f))
}

/// A set as a positive `SELECT id` (a complement becomes "live resources of the type in
/// the scope not in the set").
fn positive(tenant: i64, ty: Ty<'_>, scope: Scope, set: Set) -> Frag {
    match set {
        Set::In(f) => f,
        Set::NotIn(inner) => live(tenant, ty, scope, false, |f, _| {
            f.push(match ty {
                Ty::Fixed(_) => "n.id",
                Ty::Many(_) => "(n.type, n.id)",
            })
            .push(" NOT IN (")
            .append(inner.clone())
            .push(")");
        }),
    }
}

/// Live resources of the type in the scope (the set of `_id`/`_lastUpdated` criteria), as
/// `n`, each table of the scope one arm of a `UNION ALL`; `cond` adds a condition to each
/// arm, given the expression of the member's own id. With `with_version`, `lv` is the
/// version row (the container's for a contained resource).
fn live(
    tenant: i64,
    ty: Ty<'_>,
    scope: Scope,
    with_version: bool,
    mut cond: impl FnMut(&mut Frag, &str),
) -> Frag {
    let mut f = Frag::new();
    for (k, arm) in scope.arms().iter().enumerate() {
        if k > 0 {
            f.push(" UNION ALL ");
        }
        ty.select(&mut f, "n.type", "n.id");
        let own_id = match arm {
            Scope::Contained => {
                f.push(" FROM contained n");
                if with_version {
                    f.push(
                        " JOIN resources cn ON cn.tenant = n.tenant AND cn.type = n.container_type \
                         AND cn.id = n.container_id JOIN versions lv ON lv.tenant = cn.tenant AND lv.seq = cn.seq",
                    );
                }
                "substr(n.id, instr(n.id, '#') + 1)"
            }
            _ => {
                f.push(" FROM resources n");
                if with_version {
                    f.push(" JOIN versions lv ON lv.tenant = n.tenant AND lv.seq = n.seq");
                }
                "n.id"
            }
        };
        f.push(" WHERE n.tenant = ").bind(tenant).push(" AND ");
        ty.eq(&mut f, "n.type");
        if *arm != Scope::Contained {
            f.push(" AND n.deleted = 0");
        }
        f.push(" AND ");
        cond(&mut f, own_id);
    }
    f
}

/// An unsupported feature, named (never a value).
fn unsupported(what: impl Into<String>) -> StoreError {
    StoreError::Unsupported(what.into())
}

/// A value whose type does not fit its parameter: the parser never builds one.
fn mismatch(kind: ParamKind) -> StoreError {
    StoreError::Internal(format!(
        "search value of another type for a {} parameter",
        kind.code()
    ))
}

/// The index table of a parameter type.
fn table(kind: ParamKind) -> Option<&'static str> {
    Some(match kind {
        ParamKind::String => "idx_string",
        ParamKind::Token => "idx_token",
        ParamKind::Reference => "idx_reference",
        ParamKind::Date => "idx_date",
        ParamKind::Number => "idx_number",
        ParamKind::Quantity => "idx_quantity",
        ParamKind::Uri => "idx_uri",
        ParamKind::Composite => "idx_composite",
        ParamKind::Special => return None,
    })
}

/// The index table a criterion reads: its parameter type's, except token `:of-type` (the
/// identifier type tuples are in `idx_composite`) and reference `:identifier`
/// (`Reference.identifier` is a token row of the reference parameter).
fn table_for(kind: ParamKind, modifier: Option<Modifier>) -> Option<&'static str> {
    match (kind, modifier) {
        (ParamKind::Token, Some(Modifier::OfType)) => Some("idx_composite"),
        (ParamKind::Reference, Some(Modifier::Identifier)) => Some("idx_token"),
        _ => table(kind),
    }
}

/// The set of one parameter criterion (no chain left).
fn param_set(
    tenant: i64,
    ty: Ty<'_>,
    c: &Criterion,
    now: i64,
    scope: Scope,
) -> Result<Set, StoreError> {
    let code = c.param.code;
    let kind = c.param.kind;
    if c.modifier == Some(Modifier::Missing) {
        return missing(tenant, ty, c, scope);
    }
    match code {
        "_id" => return id_set(tenant, ty, c, scope),
        "_lastUpdated" => return last_updated_set(tenant, ty, c, now, scope),
        _ => {}
    }
    if c.values.len() > MAX_VALUES {
        return Err(unsupported(format!(
            "more than {MAX_VALUES} values for one parameter"
        )));
    }
    let Some(table) = table_for(kind, c.modifier) else {
        return Err(unsupported(format!("the {code} parameter")));
    };
    let mut negate = false;
    let mut f = Frag::new();
    for (k, value) in c.values.iter().enumerate() {
        if k > 0 {
            f.push(" UNION ALL ");
        }
        ty.select(&mut f, "x.type", "x.id");
        f.push(" FROM ")
            .push(table)
            .push(" x WHERE x.tenant = ")
            .bind(tenant)
            .push(" AND ");
        ty.eq(&mut f, "x.type");
        f.push(" AND x.param = ").text(code).push(" AND ");
        negate |= value_cond(&mut f, kind, c.modifier, value, now)?;
    }
    Ok(if negate { Set::NotIn(f) } else { Set::In(f) })
}

/// Appends the row condition of one value; returns true when the criterion is negated
/// (`:not`).
fn value_cond(
    f: &mut Frag,
    kind: ParamKind,
    modifier: Option<Modifier>,
    value: &SearchValue,
    now: i64,
) -> Result<bool, StoreError> {
    match (kind, value) {
        (ParamKind::String, SearchValue::String(s)) => match modifier {
            None => values::string_prefix(f, s),
            Some(Modifier::Exact) => values::string_exact(f, s),
            Some(Modifier::Contains) => values::string_contains(f, s),
            Some(m) => return Err(unsupported(format!("string :{}", m.code()))),
        },
        (ParamKind::Token, SearchValue::OfType(v)) if modifier == Some(Modifier::OfType) => {
            composite::of_type(f, v)
        }
        (ParamKind::Token, SearchValue::Token(t)) => match modifier {
            None => values::token(f, t),
            Some(Modifier::Not) => {
                values::token(f, t);
                return Ok(true);
            }
            Some(m) => return Err(token_modifier(m)),
        },
        // `:in`, `:not-in`, `:above`, `:below`: the engine resolved the value to its codes.
        (ParamKind::Token, SearchValue::TokenSet(set)) => match modifier {
            Some(Modifier::In | Modifier::Above | Modifier::Below) => {
                values::token_set(f, &set.codes)
            }
            Some(Modifier::NotIn) => {
                values::token_set(f, &set.codes);
                return Ok(true);
            }
            _ => return Err(mismatch(kind)),
        },
        (ParamKind::Token, SearchValue::String(s)) if modifier == Some(Modifier::Text) => {
            values::token_text(f, s)
        }
        (ParamKind::Token, _) if modifier.is_some() => {
            return Err(token_modifier(modifier.unwrap_or(Modifier::Text)));
        }
        (ParamKind::Reference, SearchValue::Token(t)) if modifier == Some(Modifier::Identifier) => {
            values::token(f, t)
        }
        (ParamKind::Composite, SearchValue::Composite(parts)) if modifier.is_none() => {
            composite::composite(f, parts, now)?
        }
        (ParamKind::Reference, SearchValue::Reference(r)) => match modifier {
            None => values::reference(f, r, None),
            Some(Modifier::Type(t)) => values::reference(f, r, Some(t)),
            Some(m) => return Err(reference_modifier(m)),
        },
        (ParamKind::Reference, _) if modifier.is_some() => {
            return Err(reference_modifier(modifier.unwrap_or(Modifier::Identifier)));
        }
        (ParamKind::Date, SearchValue::Date(d)) if modifier.is_none() => {
            values::date(f, "x.start_us", "x.end_us", d, now)
        }
        (ParamKind::Number, SearchValue::Number(n)) if modifier.is_none() => values::number(f, n),
        (ParamKind::Quantity, SearchValue::Quantity(q)) if modifier.is_none() => {
            values::quantity(f, q)
        }
        (ParamKind::Uri, SearchValue::Uri(u)) => match modifier {
            None => values::uri(f, u, false, false),
            Some(Modifier::Above) => values::uri(f, u, true, false),
            Some(Modifier::Below) => values::uri(f, u, false, true),
            Some(m) => return Err(unsupported(format!("uri :{}", m.code()))),
        },
        (ParamKind::Date | ParamKind::Number | ParamKind::Quantity, _) if modifier.is_some() => {
            let m = modifier.map_or("", |m| m.code());
            return Err(unsupported(format!("{} :{m}", kind.code())));
        }
        _ => return Err(mismatch(kind)),
    }
    Ok(false)
}

/// Token modifiers without an implementation, with the reason.
fn token_modifier(m: Modifier) -> StoreError {
    match m {
        Modifier::In | Modifier::NotIn | Modifier::Above | Modifier::Below => unsupported(format!(
            "token :{} (the value was not resolved to codes)",
            m.code()
        )),
        _ => unsupported(format!("token :{}", m.code())),
    }
}

/// Reference modifiers without an implementation.
fn reference_modifier(m: Modifier) -> StoreError {
    unsupported(format!("reference :{}", m.code()))
}

/// `:missing=true|false`: the resources without (with) any index row for the parameter.
fn missing(tenant: i64, ty: Ty<'_>, c: &Criterion, scope: Scope) -> Result<Set, StoreError> {
    let mut want_missing = false;
    let mut want_present = false;
    for v in &c.values {
        match v {
            SearchValue::Boolean(true) => want_missing = true,
            SearchValue::Boolean(false) => want_present = true,
            _ => return Err(mismatch(c.param.kind)),
        }
    }
    let code = c.param.code;
    // Every live resource has an id and a lastUpdated.
    let has = if matches!(code, "_id" | "_lastUpdated") {
        live(tenant, ty, scope, false, |f, _| {
            f.push("TRUE");
        })
    } else {
        let Some(table) = table(c.param.kind) else {
            return Err(unsupported(format!("{} :missing", c.param.kind.code())));
        };
        let mut f = Frag::new();
        ty.select(&mut f, "x.type", "x.id");
        f.push(" FROM ")
            .push(table)
            .push(" x WHERE x.tenant = ")
            .bind(tenant)
            .push(" AND ");
        ty.eq(&mut f, "x.type");
        f.push(" AND x.param = ").text(code);
        f
    };
    Ok(match (want_missing, want_present) {
        (true, true) => Set::In(live(tenant, ty, scope, false, |f, _| {
            f.push("TRUE");
        })),
        (true, false) => Set::NotIn(has),
        _ => Set::In(has),
    })
}

/// `_id`: the logical id itself, no index rows needed.
fn id_set(tenant: i64, ty: Ty<'_>, c: &Criterion, scope: Scope) -> Result<Set, StoreError> {
    if let Some(m) = c.modifier
        && m != Modifier::Not
    {
        return Err(token_modifier(m));
    }
    let mut ids: Vec<String> = Vec::new();
    for v in &c.values {
        match v {
            SearchValue::Token(t) => {
                // An id has no system: `system|id` never matches.
                if matches!(t.system.as_deref(), None | Some(""))
                    && let Some(code) = &t.code
                {
                    ids.push(code.clone());
                }
            }
            _ => return Err(mismatch(c.param.kind)),
        }
    }
    let mut f = live(tenant, ty, scope, false, |f, own_id| {
        f.push(own_id).push(" IN ").bind_list(ids.iter().cloned());
    });
    if ids.is_empty() {
        f = Frag::new();
        ty.empty(&mut f);
    }
    Ok(match c.modifier {
        Some(Modifier::Not) => Set::NotIn(f),
        _ => Set::In(f),
    })
}

/// `_lastUpdated`: the current version's `last_updated`, a point in µs, as the range
/// `[t, t + 1)`.
fn last_updated_set(
    tenant: i64,
    ty: Ty<'_>,
    c: &Criterion,
    now: i64,
    scope: Scope,
) -> Result<Set, StoreError> {
    if let Some(m) = c.modifier {
        return Err(unsupported(format!("date :{}", m.code())));
    }
    let mut cond = Frag::new();
    cond.push("(");
    for (k, v) in c.values.iter().enumerate() {
        if k > 0 {
            cond.push(" OR ");
        }
        let SearchValue::Date(d) = v else {
            return Err(mismatch(c.param.kind));
        };
        values::date(
            &mut cond,
            "lv.last_updated",
            "(lv.last_updated + 1)",
            d,
            now,
        );
    }
    cond.push(")");
    Ok(Set::In(live(tenant, ty, scope, true, |f, _| {
        f.append(cond.clone());
    })))
}
