//! Terminology for search, without a terminology service: token `:in`, `:not-in`, `:above`
//! and `:below` resolved against the ValueSets and CodeSystems stored on this server.
//!
//! Before the engine hands a `SearchQuery` to `Store::search`, [`Engine::resolve_terminology`]
//! replaces each value of such a criterion (at any depth of chains and `_has`, since the
//! criterion's value sits at the end of its path) with a `SearchValue::TokenSet`: the
//! `(system, code)` pairs it stands for, keeping the modifier. A store then only matches
//! codes (`:not-in` is "no coding in the set", like `:not`), so every store gets the
//! feature from this one module.
//!
//! - `:in` / `:not-in` take a canonical URL (`url` or `url|version`) or a literal reference
//!   `ValueSet/[id]`. A ValueSet's codes are its `expansion.contains` (nested) when it has
//!   one (a partial, paged expansion is refused), else its `compose`: each `include` is
//!   its `concept` list, or every code of the CodeSystem (`system` alone), or the codes
//!   that pass all of its `filter`s, intersected with the ValueSets it imports
//!   (`valueSet`, recursively, cycles refused, at most [`MAX_IMPORT_DEPTH`] deep);
//!   `exclude`s are computed the same way and subtracted.
//! - Filters are evaluated over a stored CodeSystem whose `content` is `complete`:
//!   `concept` `is-a`, `descendent-of`, `is-not-a`, `generalizes`, `=`, `in`, `not-in`;
//!   `parent =` / `child =`; `=` and `exists` on any other concept property.
//! - Several values OR: `code:in=a,b` is "a coding in a or in b", `code:not-in=a,b` "no
//!   coding in a nor in b" (as `:not` does with several codes).
//! - `:below` on `system|code` (or `code` when exactly one stored CodeSystem defines it) is
//!   the code and its descendants, `:above` the code and its ancestors.
//! - A CodeSystem's hierarchy is its nested `concept`s plus the `parent` / `subsumedBy`
//!   and `child` properties of its concepts (whatever its `hierarchyMeaning`).
//!
//! Anything else — a ValueSet or CodeSystem that is not stored, a CodeSystem whose content
//! is not complete, a filter this module does not evaluate — is a 400 OperationOutcome that
//! names the ValueSet or CodeSystem URL (never a searched code) and says that this server
//! has no terminology service. More than [`MAX_CODES`] codes is `too-costly`.
//!
//! Resources are read per request and kept for that request only (the data may change
//! between requests). The expansion itself ([`Terminology`]) is synchronous: when it needs a
//! resource it has not read yet it stops with [`Stop::Need`], the caller reads it from the
//! store and runs it again; finished expansions and hierarchies are memoised, so each run
//! picks up where the last one stopped.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use caduceus_model::IssueCode;
use caduceus_search::values::escape;
use caduceus_search::{
    Handling, Modifier, ParamKind, ParseOptions, SearchQuery, SearchValue, TokenSet, TokenValue,
};
use serde_json::Value;

use crate::{Engine, FhirError};

/// The most codes one terminology value may stand for.
pub const MAX_CODES: usize = 10_000;
/// How deep ValueSets may import ValueSets.
pub const MAX_IMPORT_DEPTH: usize = 8;
/// The most ValueSets and CodeSystems one search may read.
pub const MAX_READS: usize = 64;
/// The most CodeSystems searched for the system of a code given without one.
const MAX_SYSTEMS_SCANNED: u32 = 200;

/// A `(system, code)` pair.
pub type Code = (String, String);

/// A canonical reference: `url` or `url|version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Canonical {
    /// The URL.
    pub url: String,
    /// The version after `|`.
    pub version: Option<String>,
}

impl Canonical {
    /// Splits `url|version`.
    pub fn parse(text: &str) -> Canonical {
        match text.rsplit_once('|') {
            Some((url, version)) if !version.is_empty() => Canonical {
                url: url.to_owned(),
                version: Some(version.to_owned()),
            },
            Some((url, _)) => Canonical {
                url: url.to_owned(),
                version: None,
            },
            None => Canonical {
                url: text.to_owned(),
                version: None,
            },
        }
    }

    fn display(&self) -> String {
        match &self.version {
            Some(v) => format!("{}|{v}", self.url),
            None => self.url.clone(),
        }
    }
}

/// A resource (or resources) the expansion needs from the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The ValueSet with this canonical URL (the newest, when several match).
    ValueSet(Canonical),
    /// `ValueSet/[id]`.
    ValueSetId(String),
    /// The CodeSystem with this canonical URL.
    CodeSystem(Canonical),
    /// Every stored CodeSystem whose content is complete (to find the system of a code
    /// given without one).
    CompleteCodeSystems,
}

impl Key {
    fn display(&self) -> String {
        match self {
            Key::ValueSet(c) | Key::CodeSystem(c) => c.display(),
            Key::ValueSetId(id) => format!("ValueSet/{id}"),
            Key::CompleteCodeSystems => "the stored code systems".to_owned(),
        }
    }
}

/// Why an expansion stopped.
#[derive(Debug)]
pub enum Stop {
    /// It needs this resource: read it and run again.
    Need(Key),
    /// It cannot be done.
    Fail(FhirError),
}

impl From<FhirError> for Stop {
    fn from(e: FhirError) -> Self {
        Stop::Fail(e)
    }
}

fn fail<T>(code: IssueCode, diagnostics: String) -> Result<T, Stop> {
    Err(Stop::Fail(FhirError::new(400, code, diagnostics)))
}

/// "cannot be expanded on this server" for the ValueSet `url`.
fn cannot_expand<T>(url: &str, why: &str) -> Result<T, Stop> {
    fail(
        IssueCode::NotSupported,
        format!(
            "the value set {url} cannot be expanded on this server (there is no terminology service): {why}"
        ),
    )
}

fn too_costly<T>(what: &str) -> Result<T, Stop> {
    fail(
        IssueCode::TooCostly,
        format!("{what} stands for more than {MAX_CODES} codes, more than this server expands"),
    )
}

/// A stored CodeSystem's codes and hierarchy.
#[derive(Debug, Default)]
pub struct Hierarchy {
    /// The CodeSystem's URL.
    pub url: String,
    /// Every code, in definition order.
    pub codes: Vec<String>,
    defined: HashSet<String>,
    parents: HashMap<String, BTreeSet<String>>,
    children: HashMap<String, BTreeSet<String>>,
    /// `(property, value)` → codes that have it, for `=` and `exists` filters.
    properties: HashMap<(String, String), BTreeSet<String>>,
    /// Property codes that appear on some concept.
    property_codes: HashSet<String>,
}

impl Hierarchy {
    /// Reads a CodeSystem. Only `content: complete` lists every code; otherwise the error
    /// says why.
    pub fn build(cs: &Value) -> Result<Hierarchy, String> {
        let url = cs["url"].as_str().unwrap_or("(no url)").to_owned();
        let content = cs["content"].as_str().unwrap_or("");
        if content != "complete" {
            return Err(format!(
                "the code system {url} is stored with content '{content}', not 'complete', so this server does not know all its codes"
            ));
        }
        // Property codes that mean parent or child (declared by URI, or by name).
        let mut parent_props: HashSet<String> = ["parent", "subsumedBy"].map(str::to_owned).into();
        let mut child_props: HashSet<String> = HashSet::from(["child".to_owned()]);
        for p in cs["property"].as_array().into_iter().flatten() {
            let (Some(code), Some(uri)) = (p["code"].as_str(), p["uri"].as_str()) else {
                continue;
            };
            if uri.ends_with("#parent") || uri.ends_with("#subsumedBy") {
                parent_props.insert(code.to_owned());
            } else if uri.ends_with("#child") {
                child_props.insert(code.to_owned());
            }
        }
        let mut h = Hierarchy {
            url,
            ..Hierarchy::default()
        };
        let mut stack: Vec<(&Value, Option<String>)> = cs["concept"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .map(|c| (c, None))
            .collect();
        while let Some((concept, parent)) = stack.pop() {
            let Some(code) = concept["code"].as_str() else {
                continue;
            };
            if h.defined.insert(code.to_owned()) {
                h.codes.push(code.to_owned());
            }
            if let Some(p) = parent {
                h.edge(&p, code);
            }
            for prop in concept["property"].as_array().into_iter().flatten() {
                let Some(name) = prop["code"].as_str() else {
                    continue;
                };
                let Some(value) = property_value(prop) else {
                    continue;
                };
                if parent_props.contains(name) {
                    h.edge(&value, code);
                } else if child_props.contains(name) {
                    h.edge(code, &value);
                }
                h.property_codes.insert(name.to_owned());
                h.properties
                    .entry((name.to_owned(), value))
                    .or_default()
                    .insert(code.to_owned());
            }
            for child in concept["concept"].as_array().into_iter().flatten().rev() {
                stack.push((child, Some(code.to_owned())));
            }
        }
        Ok(h)
    }

    fn edge(&mut self, parent: &str, child: &str) {
        if parent == child {
            return;
        }
        self.children
            .entry(parent.to_owned())
            .or_default()
            .insert(child.to_owned());
        self.parents
            .entry(child.to_owned())
            .or_default()
            .insert(parent.to_owned());
    }

    /// True when the CodeSystem defines `code`.
    pub fn defines(&self, code: &str) -> bool {
        self.defined.contains(code)
    }

    fn walk(&self, code: &str, up: bool) -> BTreeSet<String> {
        let edges = if up { &self.parents } else { &self.children };
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([code.to_owned()]);
        while let Some(c) = queue.pop_front() {
            for next in edges.get(&c).into_iter().flatten() {
                if next != code && seen.insert(next.clone()) {
                    queue.push_back(next.clone());
                }
            }
        }
        seen
    }

    /// The descendants of `code` (not the code itself).
    pub fn descendants(&self, code: &str) -> BTreeSet<String> {
        self.walk(code, false)
    }

    /// The ancestors of `code` (not the code itself).
    pub fn ancestors(&self, code: &str) -> BTreeSet<String> {
        self.walk(code, true)
    }

    /// `code` and its descendants (`is-a`, `:below`).
    pub fn is_a(&self, code: &str) -> BTreeSet<String> {
        let mut s = self.descendants(code);
        s.insert(code.to_owned());
        s
    }

    /// `code` and its ancestors (`generalizes`, `:above`).
    pub fn generalizes(&self, code: &str) -> BTreeSet<String> {
        let mut s = self.ancestors(code);
        s.insert(code.to_owned());
        s
    }

    fn all(&self) -> BTreeSet<String> {
        self.codes.iter().cloned().collect()
    }

    /// The codes that pass one `compose.include.filter`, or `None` when this server does
    /// not evaluate the filter.
    fn filter(&self, property: &str, op: &str, value: &str) -> Option<BTreeSet<String>> {
        let defined = |codes: BTreeSet<String>| -> BTreeSet<String> {
            codes.into_iter().filter(|c| self.defines(c)).collect()
        };
        let list = || -> BTreeSet<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|c| self.defines(c))
                .map(str::to_owned)
                .collect()
        };
        Some(match (property, op) {
            ("concept" | "code", "is-a") => defined(self.is_a(value)),
            ("concept" | "code", "descendent-of") => defined(self.descendants(value)),
            ("concept" | "code", "is-not-a") => {
                let not = self.is_a(value);
                self.all()
                    .into_iter()
                    .filter(|c| !not.contains(c))
                    .collect()
            }
            ("concept" | "code", "generalizes") => defined(self.generalizes(value)),
            ("concept" | "code", "=") => defined(BTreeSet::from([value.to_owned()])),
            ("concept" | "code", "in") => list(),
            ("concept" | "code", "not-in") => {
                let not = list();
                self.all()
                    .into_iter()
                    .filter(|c| !not.contains(c))
                    .collect()
            }
            ("parent", "=") => defined(self.children.get(value).cloned().unwrap_or_default()),
            ("child", "=") => defined(self.parents.get(value).cloned().unwrap_or_default()),
            (p, "=") if self.property_codes.contains(p) => self
                .properties
                .get(&(p.to_owned(), value.to_owned()))
                .cloned()
                .unwrap_or_default(),
            (p, "exists") if matches!(value, "true" | "false") => {
                let with: BTreeSet<String> = self
                    .properties
                    .iter()
                    .filter(|((name, _), _)| name == p)
                    .flat_map(|(_, codes)| codes.iter().cloned())
                    .collect();
                if value == "true" {
                    with
                } else {
                    self.all()
                        .into_iter()
                        .filter(|c| !with.contains(c))
                        .collect()
                }
            }
            _ => return None,
        })
    }
}

/// A concept property's value as text (code, string, Coding code, integer, boolean).
fn property_value(prop: &Value) -> Option<String> {
    for key in ["valueCode", "valueString", "valueDateTime"] {
        if let Some(s) = prop[key].as_str() {
            return Some(s.to_owned());
        }
    }
    if let Some(s) = prop["valueCoding"]["code"].as_str() {
        return Some(s.to_owned());
    }
    for key in ["valueInteger", "valueBoolean", "valueDecimal"] {
        match &prop[key] {
            Value::Null => {}
            v => return Some(v.to_string()),
        }
    }
    None
}

/// One request's expansions: the resources read so far, and what was computed from them.
#[derive(Default)]
pub struct Terminology {
    /// What the store returned for each key (empty: not found), newest first.
    loaded: HashMap<Key, Vec<Arc<Value>>>,
    hierarchies: HashMap<Key, Arc<Hierarchy>>,
    expansions: HashMap<Key, Arc<BTreeSet<Code>>>,
}

impl Terminology {
    /// Records what the store returned for `key` (newest first; empty: nothing).
    pub fn provide(&mut self, key: Key, resources: Vec<Value>) {
        self.loaded
            .insert(key, resources.into_iter().map(Arc::new).collect());
    }

    fn get(&self, key: &Key) -> Result<&[Arc<Value>], Stop> {
        match self.loaded.get(key) {
            Some(v) => Ok(v),
            None => Err(Stop::Need(key.clone())),
        }
    }

    /// The hierarchy of the stored CodeSystem `system` (`None` version: the newest).
    /// `within`: the ValueSet being expanded, which the error then names.
    fn hierarchy(
        &mut self,
        system: &Canonical,
        within: Option<&str>,
    ) -> Result<Arc<Hierarchy>, Stop> {
        let key = Key::CodeSystem(system.clone());
        if let Some(h) = self.hierarchies.get(&key) {
            return Ok(h.clone());
        }
        let built = match self.get(&key)?.first() {
            Some(cs) => Hierarchy::build(cs),
            None => Err(format!(
                "the code system {} is not stored on this server",
                system.display()
            )),
        };
        match (built, within) {
            (Ok(h), _) => {
                let h = Arc::new(h);
                self.hierarchies.insert(key, h.clone());
                Ok(h)
            }
            (Err(why), Some(label)) => cannot_expand(label, &why),
            (Err(why), None) => fail(
                IssueCode::NotSupported,
                format!("{why}, and there is no terminology service"),
            ),
        }
    }

    /// The codes of the ValueSet named by an `:in` value: a canonical, or `ValueSet/[id]`.
    pub fn value_set_codes(
        &mut self,
        reference: &str,
        base: Option<&str>,
    ) -> Result<Arc<BTreeSet<Code>>, Stop> {
        let local = base
            .and_then(|b| reference.strip_prefix(b))
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(reference);
        let key = match local.strip_prefix("ValueSet/") {
            Some(id) if crate::interactions::check_id(id).is_ok() => Key::ValueSetId(id.to_owned()),
            _ => Key::ValueSet(Canonical::parse(reference)),
        };
        self.expand_key(&key, &mut Vec::new())
    }

    /// The codes of a ValueSet, by key; `stack` holds the ValueSets being expanded (imports).
    fn expand_key(&mut self, key: &Key, stack: &mut Vec<Key>) -> Result<Arc<BTreeSet<Code>>, Stop> {
        if let Some(done) = self.expansions.get(key) {
            return Ok(done.clone());
        }
        let Some(vs) = self.get(key)?.first().cloned() else {
            return fail(
                IssueCode::NotFound,
                format!(
                    "the value set {} is not stored on this server, and there is no terminology service",
                    key.display()
                ),
            );
        };
        let label = vs["url"]
            .as_str()
            .map_or_else(|| key.display(), str::to_owned);
        if stack.contains(key) {
            return cannot_expand(&label, "it imports itself");
        }
        if stack.len() >= MAX_IMPORT_DEPTH {
            return cannot_expand(
                &label,
                &format!("value sets import each other more than {MAX_IMPORT_DEPTH} deep"),
            );
        }
        stack.push(key.clone());
        let result = self.expand(&vs, &label, stack);
        stack.pop();
        let codes = Arc::new(result?);
        self.expansions.insert(key.clone(), codes.clone());
        Ok(codes)
    }

    /// The codes of one ValueSet resource.
    fn expand(
        &mut self,
        vs: &Value,
        label: &str,
        stack: &mut Vec<Key>,
    ) -> Result<BTreeSet<Code>, Stop> {
        if vs["resourceType"] != "ValueSet" {
            return cannot_expand(label, "it is not a ValueSet");
        }
        let expansion = &vs["expansion"];
        if expansion.is_object() {
            return expansion_codes(expansion, label);
        }
        let compose = &vs["compose"];
        let Some(includes) = compose["include"].as_array() else {
            return cannot_expand(label, "it has neither an expansion nor a compose.include");
        };
        let mut codes = BTreeSet::new();
        for include in includes {
            codes.extend(self.include(include, label, stack)?);
            if codes.len() > MAX_CODES {
                return too_costly(&format!("the value set {label}"));
            }
        }
        for exclude in compose["exclude"].as_array().into_iter().flatten() {
            let out = self.include(exclude, label, stack)?;
            codes.retain(|c| !out.contains(c));
        }
        Ok(codes)
    }

    /// The codes of one `compose.include` (or `exclude`).
    fn include(
        &mut self,
        include: &Value,
        label: &str,
        stack: &mut Vec<Key>,
    ) -> Result<BTreeSet<Code>, Stop> {
        let system = include["system"].as_str();
        let imports: Vec<&str> = include["valueSet"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut codes: Option<BTreeSet<Code>> = None;
        if let Some(system) = system {
            let canonical = Canonical {
                url: system.to_owned(),
                version: include["version"].as_str().map(str::to_owned),
            };
            let concepts = include["concept"].as_array();
            let filters = include["filter"].as_array().filter(|f| !f.is_empty());
            let mut own: BTreeSet<String> = match concepts {
                Some(list) => list
                    .iter()
                    .filter_map(|c| c["code"].as_str())
                    .map(str::to_owned)
                    .collect(),
                None => {
                    let h = self.hierarchy(&canonical, Some(label))?;
                    if h.codes.len() > MAX_CODES && filters.is_none() {
                        return too_costly(&format!("the value set {label}"));
                    }
                    h.all()
                }
            };
            if let Some(filters) = filters {
                let h = self.hierarchy(&canonical, Some(label))?;
                for filter in filters {
                    let (Some(property), Some(op), Some(value)) = (
                        filter["property"].as_str(),
                        filter["op"].as_str(),
                        filter["value"].as_str(),
                    ) else {
                        return cannot_expand(label, "a filter lacks its property, op or value");
                    };
                    let Some(passing) = h.filter(property, op, value) else {
                        return cannot_expand(
                            label,
                            &format!(
                                "this server does not evaluate the filter '{property} {op}' on {}",
                                h.url
                            ),
                        );
                    };
                    own.retain(|c| passing.contains(c));
                }
            }
            codes = Some(
                own.into_iter()
                    .map(|code| (system.to_owned(), code))
                    .collect(),
            );
        }
        for import in imports {
            let key = Key::ValueSet(Canonical::parse(import));
            let imported = self.expand_key(&key, stack)?;
            codes = Some(match codes {
                None => (*imported).clone(),
                Some(mut c) => {
                    c.retain(|code| imported.contains(code));
                    c
                }
            });
        }
        match codes {
            Some(c) if c.len() > MAX_CODES => too_costly(&format!("the value set {label}")),
            Some(c) => Ok(c),
            None => cannot_expand(label, "an include has neither a system nor a valueSet"),
        }
    }

    /// `:below` / `:above` on a token: the code with its descendants (ancestors) in the
    /// stored CodeSystem.
    pub fn hierarchy_codes(
        &mut self,
        token: &TokenValue,
        above: bool,
    ) -> Result<BTreeSet<Code>, Stop> {
        let Some(code) = token.code.as_deref().filter(|c| !c.is_empty()) else {
            return fail(
                IssueCode::Invalid,
                "':above' and ':below' on a token need a code (system|code)".to_owned(),
            );
        };
        let h = match token.system.as_deref() {
            Some("") => {
                return fail(
                    IssueCode::Invalid,
                    "':above' and ':below' need the code's system; a code without a system has no hierarchy".to_owned(),
                );
            }
            Some(system) => {
                let canonical = Canonical {
                    url: system.to_owned(),
                    version: None,
                };
                let h = self.hierarchy(&canonical, None)?;
                if !h.defines(code) {
                    return fail(
                        IssueCode::CodeInvalid,
                        format!("the code is not defined in the code system {}", h.url),
                    );
                }
                h
            }
            None => self.system_of(code)?,
        };
        let codes = if above {
            h.generalizes(code)
        } else {
            h.is_a(code)
        };
        if codes.len() > MAX_CODES {
            return too_costly(&format!("the code's hierarchy in {}", h.url));
        }
        Ok(codes.into_iter().map(|c| (h.url.clone(), c)).collect())
    }

    /// The one stored CodeSystem that defines `code`.
    fn system_of(&mut self, code: &str) -> Result<Arc<Hierarchy>, Stop> {
        let systems: Vec<Arc<Value>> = self.get(&Key::CompleteCodeSystems)?.to_vec();
        let mut found: Vec<Arc<Hierarchy>> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for cs in systems {
            // Newest first: only the newest version of each system counts.
            let Some(url) = cs["url"].as_str() else {
                continue;
            };
            if !seen.insert(url.to_owned()) {
                continue;
            }
            let Ok(h) = Hierarchy::build(&cs) else {
                continue;
            };
            if h.defines(code) {
                found.push(Arc::new(h));
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => fail(
                IssueCode::NotSupported,
                "no code system stored on this server defines the code, and there is no terminology service; search with system|code".to_owned(),
            ),
            _ => fail(
                IssueCode::Invalid,
                "several code systems stored on this server define the code; search with system|code".to_owned(),
            ),
        }
    }

    /// Resolves every terminology value of `query` (run again after [`Stop::Need`]).
    pub fn resolve(&mut self, query: &mut SearchQuery, base: Option<&str>) -> Result<(), Stop> {
        // Resolve first, replace after: a run that stops leaves the query as it was.
        let mut resolved: Vec<(usize, usize, Vec<Code>)> = Vec::new();
        for (ci, c) in query.criteria.iter().enumerate() {
            let Some(modifier) = terminology_modifier(c) else {
                continue;
            };
            let label = format!("{}:{}", c.param.code, modifier.code());
            for (vi, v) in c.values.iter().enumerate() {
                let codes = match (modifier, v) {
                    (Modifier::In | Modifier::NotIn, SearchValue::Uri(reference)) => self
                        .value_set_codes(reference, base)
                        .map(|c| c.iter().cloned().collect()),
                    (Modifier::Above | Modifier::Below, SearchValue::Token(t)) => self
                        .hierarchy_codes(t, modifier == Modifier::Above)
                        .map(|c| c.into_iter().collect()),
                    _ => continue,
                };
                match codes {
                    Ok(codes) => resolved.push((ci, vi, codes)),
                    Err(Stop::Fail(e)) => return Err(Stop::Fail(e.within(&label))),
                    Err(need) => return Err(need),
                }
            }
        }
        for (ci, vi, codes) in resolved {
            if let Some(v) = query
                .criteria
                .get_mut(ci)
                .and_then(|c| c.values.get_mut(vi))
            {
                let written = std::mem::replace(v, SearchValue::Boolean(false));
                *v = SearchValue::TokenSet(TokenSet {
                    written: Box::new(written),
                    codes,
                });
            }
        }
        Ok(())
    }
}

/// The terminology modifier of a token criterion, if it has one.
fn terminology_modifier(c: &caduceus_search::Criterion) -> Option<Modifier> {
    match c.modifier {
        Some(m @ (Modifier::In | Modifier::NotIn | Modifier::Above | Modifier::Below))
            if c.param.kind == ParamKind::Token =>
        {
            Some(m)
        }
        _ => None,
    }
}

/// The codes of a stored `ValueSet.expansion` (nested `contains`); a partial (paged)
/// expansion is refused.
fn expansion_codes(expansion: &Value, label: &str) -> Result<BTreeSet<Code>, Stop> {
    if expansion["offset"].as_u64().is_some_and(|o| o > 0) {
        return cannot_expand(label, "its stored expansion is one page of a larger one");
    }
    let mut codes = BTreeSet::new();
    let mut entries: u64 = 0;
    let mut stack: Vec<&Value> = expansion["contains"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(entry) = stack.pop() {
        entries += 1;
        if let (Some(system), Some(code)) = (entry["system"].as_str(), entry["code"].as_str()) {
            codes.insert((system.to_owned(), code.to_owned()));
            if codes.len() > MAX_CODES {
                return too_costly(&format!("the value set {label}"));
            }
        }
        stack.extend(entry["contains"].as_array().into_iter().flatten());
    }
    if expansion["total"].as_u64().is_some_and(|t| t > entries) {
        return cannot_expand(label, "its stored expansion lists only part of its codes");
    }
    Ok(codes)
}

impl Engine {
    /// Replaces the value of every token `:in`, `:not-in`, `:above` and `:below` criterion
    /// of `query` (chains and `_has` included) with the codes it stands for, read from the
    /// ValueSets and CodeSystems stored on this server. Queries without such criteria are
    /// returned as they are.
    pub(crate) async fn resolve_terminology(
        &self,
        mut query: SearchQuery,
        base: &str,
    ) -> Result<SearchQuery, FhirError> {
        if !query
            .criteria
            .iter()
            .any(|c| terminology_modifier(c).is_some())
        {
            return Ok(query);
        }
        let mut t = Terminology::default();
        let mut reads = 0;
        loop {
            match t.resolve(&mut query, Some(base)) {
                Ok(()) => return Ok(query),
                Err(Stop::Fail(e)) => return Err(e),
                Err(Stop::Need(key)) => {
                    reads += 1;
                    if reads > MAX_READS {
                        return Err(FhirError::new(
                            400,
                            IssueCode::TooCostly,
                            format!(
                                "the search needs more than {MAX_READS} value sets and code systems"
                            ),
                        ));
                    }
                    let found = self.read_terminology(&key).await?;
                    t.provide(key, found);
                }
            }
        }
    }

    /// Reads what `key` names from the store, newest first.
    async fn read_terminology(&self, key: &Key) -> Result<Vec<Value>, FhirError> {
        let (resource_type, params) = match key {
            Key::ValueSetId(id) => {
                let found = self.store.read("ValueSet", id).await?;
                return Ok(found
                    .and_then(|v| v.body)
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .into_iter()
                    .collect());
            }
            Key::ValueSet(c) | Key::CodeSystem(c) => {
                let mut params = vec![("url".to_owned(), escape(&c.url))];
                if let Some(v) = &c.version {
                    params.push(("version".to_owned(), escape(v)));
                }
                let t = if matches!(key, Key::ValueSet(_)) {
                    "ValueSet"
                } else {
                    "CodeSystem"
                };
                (t, params)
            }
            Key::CompleteCodeSystems => (
                "CodeSystem",
                vec![("content-mode".to_owned(), "complete".to_owned())],
            ),
        };
        let options = ParseOptions {
            handling: Handling::Strict,
            default_count: MAX_SYSTEMS_SCANNED,
            max_count: MAX_SYSTEMS_SCANNED,
            base_url: None,
        };
        let query = caduceus_search::parse(&[resource_type], &params, &options).map_err(|_| {
            FhirError::bad_request(format!("{} is not a usable canonical URL", key.display()))
        })?;
        let page = self.store.search(&query, None).await?;
        if key == &Key::CompleteCodeSystems && page.next_cursor.is_some() {
            return Err(FhirError::new(
                400,
                IssueCode::TooCostly,
                format!(
                    "more than {MAX_SYSTEMS_SCANNED} code systems are stored; search with system|code"
                ),
            ));
        }
        let mut versions = page.matches;
        versions.sort_by_key(|v| std::cmp::Reverse((v.last_updated, v.seq)));
        Ok(versions
            .into_iter()
            .filter_map(|v| v.body)
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests;
