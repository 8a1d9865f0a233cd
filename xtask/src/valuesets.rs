//! Enumerating the codes of the value sets used by required bindings.
//!
//! Only value sets that are fully enumerable from the package are kept: an include of a whole
//! CodeSystem whose content is `complete` in the package, explicit concept lists, and includes
//! of other enumerable value sets. Anything with a filter, or a system the package does not
//! define completely (UCUM, MIME types, languages), makes the value set non-enumerable and it
//! is left out, so the validator simply does not check those bindings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::package::{Package, arr_of, str_of};

/// A value set with all its codes and the code systems they come from, sorted.
#[derive(Debug)]
pub struct ValueSet {
    pub url: String,
    pub codes: Vec<String>,
    pub systems: Vec<String>,
}

/// Codes and systems of a value set or include, while resolving.
#[derive(Debug, Default)]
struct Codes {
    codes: BTreeSet<String>,
    systems: BTreeSet<String>,
}

/// Enumerates each of `urls` that can be; returns them sorted by URL.
pub fn resolve(pkg: &Package, urls: &BTreeSet<String>) -> Vec<ValueSet> {
    let value_sets: HashMap<&str, &Value> = pkg
        .with_prefix("ValueSet-")
        .map(|v| (str_of(v, "url"), v))
        .collect();
    let code_systems: HashMap<&str, &Value> = pkg
        .with_prefix("CodeSystem-")
        .map(|v| (str_of(v, "url"), v))
        .collect();
    let resolver = Resolver {
        value_sets,
        code_systems,
    };
    let mut out = BTreeMap::new();
    for url in urls {
        if let Some(found) = resolver.value_set(url, 0)
            && !found.codes.is_empty()
        {
            out.insert(url.clone(), found);
        }
    }
    out.into_iter()
        .map(|(url, found)| ValueSet {
            url,
            codes: found.codes.into_iter().collect(),
            systems: found.systems.into_iter().collect(),
        })
        .collect()
}

struct Resolver<'a> {
    value_sets: HashMap<&'a str, &'a Value>,
    code_systems: HashMap<&'a str, &'a Value>,
}

impl Resolver<'_> {
    fn value_set(&self, url: &str, depth: usize) -> Option<Codes> {
        if depth > 8 {
            return None;
        }
        let url = url.split('|').next().unwrap_or(url);
        let vs = self.value_sets.get(url)?;
        let compose = vs.get("compose")?;
        let mut all = Codes::default();
        for include in arr_of(compose, "include") {
            let found = self.include(include, depth)?;
            all.codes.extend(found.codes);
            all.systems.extend(found.systems);
        }
        for exclude in arr_of(compose, "exclude") {
            for c in self.include(exclude, depth)?.codes {
                all.codes.remove(&c);
            }
        }
        Some(all)
    }

    fn include(&self, include: &Value, depth: usize) -> Option<Codes> {
        if !arr_of(include, "filter").is_empty() {
            return None;
        }
        let concepts = arr_of(include, "concept");
        let system = str_of(include, "system");
        let mut found: Option<Codes> = None;
        if !concepts.is_empty() {
            found = Some(Codes {
                codes: concepts
                    .iter()
                    .map(|c| str_of(c, "code").to_owned())
                    .collect(),
                systems: BTreeSet::from([system.to_owned()]),
            });
        } else if !system.is_empty() {
            let cs = self.code_systems.get(system)?;
            if str_of(cs, "content") != "complete" {
                return None;
            }
            let mut codes = BTreeSet::new();
            collect_concepts(arr_of(cs, "concept"), &mut codes);
            found = Some(Codes {
                codes,
                systems: BTreeSet::from([system.to_owned()]),
            });
        }
        for vs in arr_of(include, "valueSet") {
            let nested = self.value_set(vs.as_str()?, depth + 1)?;
            found = Some(match found {
                // With a system too, the include is the intersection.
                Some(mut f) if !system.is_empty() => {
                    f.codes = f.codes.intersection(&nested.codes).cloned().collect();
                    f
                }
                Some(mut f) => {
                    f.codes.extend(nested.codes);
                    f.systems.extend(nested.systems);
                    f
                }
                None => nested,
            });
        }
        if let Some(f) = &mut found {
            f.systems.remove("");
        }
        found
    }
}

fn collect_concepts(concepts: &[Value], out: &mut BTreeSet<String>) {
    for c in concepts {
        let code = str_of(c, "code");
        if !code.is_empty() {
            out.insert(code.to_owned());
        }
        collect_concepts(arr_of(c, "concept"), out);
    }
}
