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

/// A value set with all its codes, sorted.
#[derive(Debug)]
pub struct ValueSet {
    pub url: String,
    pub codes: Vec<String>,
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
        if let Some(codes) = resolver.value_set(url, 0)
            && !codes.is_empty()
        {
            out.insert(url.clone(), codes.into_iter().collect());
        }
    }
    out.into_iter()
        .map(|(url, codes)| ValueSet { url, codes })
        .collect()
}

struct Resolver<'a> {
    value_sets: HashMap<&'a str, &'a Value>,
    code_systems: HashMap<&'a str, &'a Value>,
}

impl Resolver<'_> {
    fn value_set(&self, url: &str, depth: usize) -> Option<BTreeSet<String>> {
        if depth > 8 {
            return None;
        }
        let url = url.split('|').next().unwrap_or(url);
        let vs = self.value_sets.get(url)?;
        let compose = vs.get("compose")?;
        let mut codes = BTreeSet::new();
        for include in arr_of(compose, "include") {
            codes.extend(self.include(include, depth)?);
        }
        for exclude in arr_of(compose, "exclude") {
            for c in self.include(exclude, depth)? {
                codes.remove(&c);
            }
        }
        Some(codes)
    }

    fn include(&self, include: &Value, depth: usize) -> Option<BTreeSet<String>> {
        if !arr_of(include, "filter").is_empty() {
            return None;
        }
        let concepts = arr_of(include, "concept");
        let system = str_of(include, "system");
        let mut codes: Option<BTreeSet<String>> = None;
        if !concepts.is_empty() {
            codes = Some(
                concepts
                    .iter()
                    .map(|c| str_of(c, "code").to_owned())
                    .collect(),
            );
        } else if !system.is_empty() {
            let cs = self.code_systems.get(system)?;
            if str_of(cs, "content") != "complete" {
                return None;
            }
            let mut all = BTreeSet::new();
            collect_concepts(arr_of(cs, "concept"), &mut all);
            codes = Some(all);
        }
        for vs in arr_of(include, "valueSet") {
            let nested = self.value_set(vs.as_str()?, depth + 1)?;
            codes = Some(match codes {
                // With a system too, the include is the intersection.
                Some(c) if !system.is_empty() => c.intersection(&nested).cloned().collect(),
                Some(mut c) => {
                    c.extend(nested);
                    c
                }
                None => nested,
            });
        }
        codes
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
