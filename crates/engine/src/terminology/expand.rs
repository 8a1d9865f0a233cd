//! One request's expansions: ValueSets (`expansion`, `compose` with includes, filters,
//! imports and excludes) and code hierarchies turned into code sets, resumable when a
//! resource still has to be read from the store ([`Stop::Need`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use caduceus_model::IssueCode;
use caduceus_search::{Modifier, ParamKind, SearchQuery, SearchValue};
use serde_json::Value;

use super::hierarchy::Hierarchy;
use super::*;

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
pub(super) fn terminology_modifier(c: &caduceus_search::Criterion) -> Option<Modifier> {
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
pub(super) fn expansion_codes(expansion: &Value, label: &str) -> Result<BTreeSet<Code>, Stop> {
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
