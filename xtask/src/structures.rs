//! Types and element trees from the base StructureDefinitions.
//!
//! Every base type (primitive, complex and resource, abstract ones included) becomes a
//! [`Type`]; the snapshot of its definition becomes a tree of [`Node`]s: one for the type
//! itself and one for each backbone element that has children of its own
//! (`Patient.contact`, `Timing.repeat`). `contentReference` elements (`Questionnaire.item.item`)
//! point at the node of the element they reuse, so no structure is duplicated.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::package::{Package, arr_of, str_of};

const FHIRPATH_SYSTEM: &str = "http://hl7.org/fhirpath/System.";
const FHIR_TYPE_EXT: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
const REGEX_EXT: &str = "http://hl7.org/fhir/StructureDefinition/regex";

/// What kind of type a definition describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Primitive,
    Complex,
    Resource,
}

/// How a value of a type is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    String,
    Boolean,
    Number,
    Object,
}

/// One base type.
#[derive(Debug)]
pub struct Type {
    pub name: String,
    pub kind: Kind,
    pub is_abstract: bool,
    pub base: Option<String>,
    pub json: Json,
    /// The value regex of a primitive type, "" otherwise.
    pub regex: String,
    pub node: usize,
}

/// One element of a node.
#[derive(Debug)]
pub struct Element {
    /// The last path segment, `[x]` included for choices.
    pub name: String,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    pub types: Vec<String>,
    /// The node describing the children, for backbone and contentReference elements.
    pub node: Option<usize>,
    /// The value set of a required binding on a `code`, `Coding` or `CodeableConcept` element
    /// (version stripped).
    pub binding: Option<String>,
    /// `isSummary`: part of the `_summary=true` view.
    pub summary: bool,
    /// The error-severity invariants of the element itself when it has no node of its own
    /// (those of backbone elements are on their [`Node`]).
    pub constraints: Vec<Constraint>,
    content_ref: Option<String>,
}

/// One invariant (`ElementDefinition.constraint`) of severity `error`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Constraint {
    pub key: String,
    pub expression: String,
    pub human: String,
}

impl Element {
    pub fn is_choice(&self) -> bool {
        self.name.ends_with("[x]")
    }

    /// The JSON property name stem: `value` for `value[x]`.
    pub fn stem(&self) -> &str {
        self.name.strip_suffix("[x]").unwrap_or(&self.name)
    }
}

/// A set of sibling elements: the content of a type or of a backbone element.
#[derive(Debug)]
pub struct Node {
    /// The element path, e.g. `Patient.contact`.
    pub path: String,
    pub elements: Vec<Element>,
    /// The error-severity invariants of every instance of the node: those of the type's
    /// root element, or of the backbone element.
    pub constraints: Vec<Constraint>,
}

/// All types (sorted by name) and all nodes.
#[derive(Debug)]
pub struct Structures {
    pub types: Vec<Type>,
    pub nodes: Vec<Node>,
}

impl Structures {
    /// The index of the type called `name`.
    pub fn type_index(&self, name: &str) -> Option<usize> {
        self.types
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
    }

    /// Every value set used by a required binding.
    pub fn required_bindings(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .flat_map(|n| &n.elements)
            .filter_map(|e| e.binding.clone())
            .collect()
    }

    /// True when `ty` is `ancestor` or derives from it.
    pub fn derives_from(&self, ty: &str, ancestor: &str) -> bool {
        let mut current = Some(ty);
        while let Some(name) = current {
            if name == ancestor {
                return true;
            }
            current = self
                .type_index(name)
                .and_then(|i| self.types[i].base.as_deref());
        }
        false
    }
}

/// True for the definitions Caduceus compiles: base types, not profiles or logical models.
fn is_base_definition(sd: &Value) -> bool {
    let kind = str_of(sd, "kind");
    let derivation = str_of(sd, "derivation");
    matches!(kind, "primitive-type" | "complex-type" | "resource")
        && (derivation == "specialization"
            || (derivation.is_empty() && sd.get("baseDefinition").is_none()))
}

/// Builds the types and nodes from the package.
pub fn build(pkg: &Package) -> Result<Structures> {
    let mut sds: Vec<&Value> = pkg
        .with_prefix("StructureDefinition-")
        .filter(|sd| is_base_definition(sd))
        .collect();
    sds.sort_by(|a, b| str_of(a, "type").cmp(str_of(b, "type")));

    let mut types = Vec::new();
    let mut nodes = Vec::new();
    let mut node_by_path: HashMap<String, usize> = HashMap::new();
    for sd in sds {
        let name = str_of(sd, "type");
        let ty = build_type(sd, &mut nodes, &mut node_by_path)
            .with_context(|| format!("StructureDefinition {name}"))?;
        types.push(ty);
    }
    resolve_content_references(&mut nodes, &node_by_path)?;
    inherit_json_kinds(&mut types);
    Ok(Structures { types, nodes })
}

fn build_type(
    sd: &Value,
    nodes: &mut Vec<Node>,
    node_by_path: &mut HashMap<String, usize>,
) -> Result<Type> {
    let name = str_of(sd, "type").to_owned();
    let kind = match str_of(sd, "kind") {
        "primitive-type" => Kind::Primitive,
        "complex-type" => Kind::Complex,
        _ => Kind::Resource,
    };
    let elements = sd
        .pointer("/snapshot/element")
        .and_then(Value::as_array)
        .context("no snapshot")?;

    // Paths that have children get a node, in document order (the root first).
    let mut parents: Vec<&str> = Vec::new();
    for e in elements {
        let path = str_of(e, "path");
        if let Some((parent, _)) = path.rsplit_once('.')
            && !parents.contains(&parent)
        {
            parents.push(parent);
        }
    }
    if parents.first().copied() != Some(name.as_str()) && !parents.is_empty() {
        bail!("snapshot does not start at the root");
    }
    let root = nodes.len();
    for p in &parents {
        node_by_path.insert((*p).to_owned(), nodes.len());
        nodes.push(Node {
            path: (*p).to_owned(),
            elements: Vec::new(),
            constraints: Vec::new(),
        });
    }
    if parents.is_empty() {
        node_by_path.insert(name.clone(), root);
        nodes.push(Node {
            path: name.clone(),
            elements: Vec::new(),
            constraints: Vec::new(),
        });
    }
    if let Some(first) = elements.first() {
        nodes[root].constraints = constraints_of(first);
    }

    let mut regex = String::new();
    let mut json = if kind == Kind::Primitive {
        Json::String
    } else {
        Json::Object
    };
    for e in elements.iter().skip(1) {
        let path = str_of(e, "path");
        let Some((parent, elem_name)) = path.rsplit_once('.') else {
            continue;
        };
        if kind == Kind::Primitive && path == format!("{name}.value") {
            // The primitive's value is not a JSON property: it gives the JSON type and regex.
            if let Some(t) = arr_of(e, "type").first() {
                json = match str_of(t, "code") {
                    "http://hl7.org/fhirpath/System.Boolean" => Json::Boolean,
                    "http://hl7.org/fhirpath/System.Integer"
                    | "http://hl7.org/fhirpath/System.Decimal" => Json::Number,
                    _ => Json::String,
                };
                for ext in arr_of(t, "extension") {
                    if str_of(ext, "url") == REGEX_EXT {
                        regex = str_of(ext, "valueString").to_owned();
                    }
                }
            }
            continue;
        }
        let mut types: Vec<String> = arr_of(e, "type").iter().map(type_name).collect();
        // Erratum in the 4.0.1 definitions: `Resource.id` is declared a FHIRPath string, but
        // the specification (resource.html) and every validator treat it as an `id`.
        if e.pointer("/base/path").and_then(Value::as_str) == Some("Resource.id") {
            types = vec!["id".to_owned()];
        }
        let max = match str_of(e, "max") {
            "*" => None,
            m => Some(m.parse().with_context(|| format!("max of {path}"))?),
        };
        let min = e
            .get("min")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);
        let binding = e
            .get("binding")
            .filter(|b| str_of(b, "strength") == "required")
            .filter(|_| {
                types.len() == 1
                    && matches!(types[0].as_str(), "code" | "Coding" | "CodeableConcept")
            })
            .map(|b| {
                let vs = str_of(b, "valueSet");
                vs.split('|').next().unwrap_or(vs).to_owned()
            })
            .filter(|vs| !vs.is_empty());
        let content_ref = e
            .get("contentReference")
            .and_then(Value::as_str)
            .map(|r| r.trim_start_matches('#').to_owned());
        let own_node = node_by_path.get(path).copied().filter(|&n| n >= root);
        let mut constraints = constraints_of(e);
        if let Some(n) = own_node {
            nodes[n].constraints = std::mem::take(&mut constraints);
        }
        let element = Element {
            name: elem_name.to_owned(),
            min,
            max,
            types,
            node: own_node,
            binding,
            summary: e.get("isSummary").and_then(Value::as_bool).unwrap_or(false),
            constraints,
            content_ref,
        };
        let parent_node = *node_by_path
            .get(parent)
            .with_context(|| format!("no parent node for {path}"))?;
        nodes[parent_node].elements.push(element);
    }
    let base = sd
        .get("baseDefinition")
        .and_then(Value::as_str)
        .and_then(|b| b.rsplit('/').next())
        .map(str::to_owned);
    Ok(Type {
        name,
        kind,
        is_abstract: sd.get("abstract").and_then(Value::as_bool).unwrap_or(false),
        base,
        json,
        regex,
        node: root,
    })
}

/// The invariants of an element definition that Caduceus evaluates: severity `error` and
/// not in [`crate::constraints::SKIPPED`], sorted by key.
fn constraints_of(e: &Value) -> Vec<Constraint> {
    let mut out: Vec<Constraint> = arr_of(e, "constraint")
        .iter()
        .filter(|c| str_of(c, "severity") == "error")
        .filter(|c| !crate::constraints::is_skipped(str_of(c, "key")))
        .filter(|c| !str_of(c, "expression").is_empty())
        .map(|c| Constraint {
            key: str_of(c, "key").to_owned(),
            expression: crate::constraints::expression(str_of(c, "key"), str_of(c, "expression"))
                .to_owned(),
            human: crate::constraints::short_human(str_of(c, "human")),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Primitives specialising a number type are JSON numbers too: the 4.0.1 definitions give
/// `positiveInt.value` and `unsignedInt.value` the FHIRPath type `String`, but they derive from
/// `integer` and the JSON format writes them as numbers.
fn inherit_json_kinds(types: &mut [Type]) {
    let number_types: Vec<String> = types
        .iter()
        .filter(|t| t.kind == Kind::Primitive && t.json == Json::Number)
        .map(|t| t.name.clone())
        .collect();
    for t in types.iter_mut() {
        if t.kind == Kind::Primitive && t.base.as_ref().is_some_and(|b| number_types.contains(b)) {
            t.json = Json::Number;
        }
    }
}

/// The FHIR type name of an `ElementDefinition.type`: FHIRPath system types carry the FHIR
/// type in an extension (`Element.id` is a `string`, `Extension.url` a `uri`).
fn type_name(t: &Value) -> String {
    let code = str_of(t, "code");
    if let Some(system) = code.strip_prefix(FHIRPATH_SYSTEM) {
        for ext in arr_of(t, "extension") {
            if str_of(ext, "url") == FHIR_TYPE_EXT {
                let v = str_of(ext, "valueUrl");
                let v = if v.is_empty() {
                    str_of(ext, "valueString")
                } else {
                    v
                };
                if !v.is_empty() {
                    return v.to_owned();
                }
            }
        }
        return match system {
            "Boolean" => "boolean",
            "Integer" => "integer",
            "Decimal" => "decimal",
            "Date" => "date",
            "DateTime" => "dateTime",
            "Time" => "time",
            _ => "string",
        }
        .to_owned();
    }
    code.to_owned()
}

fn resolve_content_references(
    nodes: &mut [Node],
    node_by_path: &HashMap<String, usize>,
) -> Result<()> {
    // Element types of the referenced elements, looked up before mutating.
    let mut fixes = Vec::new();
    for (ni, node) in nodes.iter().enumerate() {
        for (ei, e) in node.elements.iter().enumerate() {
            if let Some(target) = &e.content_ref {
                let tn = *node_by_path
                    .get(target)
                    .with_context(|| format!("contentReference {target} has no node"))?;
                let (parent, last) = target.rsplit_once('.').context("bad contentReference")?;
                let parent_node = node_by_path.get(parent).context("no parent")?;
                let types = nodes[*parent_node]
                    .elements
                    .iter()
                    .find(|x| x.name == last)
                    .map(|x| x.types.clone())
                    .unwrap_or_default();
                fixes.push((ni, ei, tn, types));
            }
        }
    }
    for (ni, ei, tn, types) in fixes {
        let e = &mut nodes[ni].elements[ei];
        e.node = Some(tn);
        e.types = types;
    }
    Ok(())
}
