//! A stored CodeSystem read into its codes, hierarchy (nested concepts, `parent` /
//! `subsumedBy` / `child` properties) and concept properties, for filters, `:above` and
//! `:below`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde_json::Value;

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

    pub(super) fn all(&self) -> BTreeSet<String> {
        self.codes.iter().cloned().collect()
    }

    /// The codes that pass one `compose.include.filter`, or `None` when this server does
    /// not evaluate the filter.
    pub(super) fn filter(&self, property: &str, op: &str, value: &str) -> Option<BTreeSet<String>> {
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
pub(super) fn property_value(prop: &Value) -> Option<String> {
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
