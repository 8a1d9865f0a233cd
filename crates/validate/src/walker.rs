//! The walk over a resource, driven by the generated element tables.
//!
//! A resource is a node (the element tree of its type); each JSON property of an object is
//! looked up in the node's sorted key table (`valueQuantity` → element `value[x]`, type
//! `Quantity`), its shape checked against the element's cardinality, and its value checked by
//! its type: primitives by `primitives`, complex types by recursing into their node (or the
//! backbone / content-reference node of the element), resources by starting over with the
//! type named in `resourceType`. Presence of each element is kept in a small bit set per
//! object, which gives the required-element and one-choice-only checks without allocating.
//!
//! The invariants of contained resources are checked on the way: dom-2 (no nesting), dom-4
//! (no `meta.versionId`/`lastUpdated`), dom-5 (no `meta.security`) when a contained resource
//! starts, and dom-3 (each is referenced) when its container ends. For dom-3 every resource
//! that is not itself contained has a [`Container`] frame; only when it has contained
//! resources does the walk note the `#id` values of `reference`, `uri`, `url` and `canonical`
//! elements, so resources without contained resources pay nothing.

use caduceus_fhirpath::Node;
use caduceus_model::defs::{
    self, ConstraintId, ElementDef, KeyDef, MAX_NODE_ELEMENTS, NONE, NodeDef, NodeId, TypeId,
    TypeKind, type_ids,
};
use caduceus_model::{Issue, IssueCode};
use serde_json::{Map, Value};

use crate::invariants::{self, Outcome};
use crate::narrative;
use crate::path::Path;
use crate::primitives::{self, Problem};

/// Presence flags of the elements of one node.
#[derive(Default)]
struct Seen([u64; MAX_NODE_ELEMENTS.div_ceil(64)]);

impl Seen {
    fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn insert(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// Where a resource sits, which decides the extra rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The resource being validated.
    Root,
    /// In `contained`: must have an id, must not contain resources.
    Contained,
    /// Any other element of type `Resource` (`Bundle.entry.resource`, `Parameters...resource`).
    Nested,
}

/// One contained resource, for dom-3.
struct Contained<'a> {
    /// Its index in `contained`.
    index: usize,
    /// Its id (a contained resource without one is reported on its own).
    id: Option<&'a str>,
    /// True when it references its container (`#`).
    refers_to_container: bool,
}

/// A resource that may contain resources (dom-3): `%resource` of its contained resources.
#[derive(Default)]
struct Container<'a> {
    /// True when it has contained resources, the only case in which references are noted.
    active: bool,
    /// The ids of its contained resources, sorted (ref-1).
    ids: Vec<&'a str>,
    contained: Vec<Contained<'a>>,
    /// The targets of local references (`#id`, kept without `#`) anywhere in the resource,
    /// its contained resources included.
    targets: Vec<&'a str>,
    /// The item of `contained` being walked, if any.
    current: Option<usize>,
}

/// The most issues reported for one resource: enough to fix a resource, and a bound on the
/// size of the outcome for hostile input. Validation goes on; further issues are counted.
pub const MAX_ISSUES: usize = 1000;

/// Walks one resource and collects the issues.
#[derive(Default)]
pub struct Walker<'a> {
    path: Path<'a>,
    issues: Vec<Issue>,
    omitted: usize,
    /// The resources being walked that are not contained, innermost last.
    containers: Vec<Container<'a>>,
    /// Every resource being walked, innermost last, with the resource containing it when it
    /// is a contained one: `%resource` and `%rootResource` of the invariants.
    resources: Vec<(&'a Value, Option<&'a Value>)>,
}

impl<'a> Walker<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_issues(mut self) -> Vec<Issue> {
        if self.omitted > 0 {
            let note = format!(
                "{} further issues were found and are not listed (at most {MAX_ISSUES} are)",
                self.omitted
            );
            self.issues.push(Issue::warning(IssueCode::TooCostly, note));
        }
        self.issues
    }

    /// Validates the resource being submitted.
    pub fn root(&mut self, value: &'a Value) {
        self.resource(value, Placement::Root);
    }

    fn report(&mut self, code: IssueCode, rule: &str) {
        if self.issues.len() >= MAX_ISSUES {
            self.omitted += 1;
            return;
        }
        let at = self.path.render();
        let diagnostics = format!("{at}: {rule}");
        self.issues.push(Issue::error(code, diagnostics).at(at));
    }

    /// How many issues have been found so far (listed or not).
    fn found(&self) -> usize {
        self.issues.len() + self.omitted
    }

    /// Evaluates the invariants `ids` on `focus` (the instance at the current path).
    fn invariants(&mut self, ids: &[ConstraintId], focus: Node<'a>) {
        let Some(&(resource, root)) = self.resources.last() else {
            return;
        };
        for &id in ids {
            let failed = match invariants::check(id, focus, resource, root) {
                Outcome::Holds => continue,
                Outcome::Fails => true,
                Outcome::Error => false,
            };
            if self.issues.len() >= MAX_ISSUES {
                self.omitted += 1;
                continue;
            }
            let c = defs::constraint(id);
            let at = self.path.render();
            let issue = if failed {
                Issue::error(
                    IssueCode::Invariant,
                    format!("{at}: {}: {}", c.key, c.human),
                )
            } else {
                Issue::warning(
                    IssueCode::Invariant,
                    format!("{at}: {}: the invariant could not be evaluated here", c.key),
                )
            };
            self.issues.push(issue.at(at));
        }
    }

    fn report_child(&mut self, code: IssueCode, child: &str, rule: &str) {
        if self.issues.len() >= MAX_ISSUES {
            self.omitted += 1;
            return;
        }
        let at = self.path.render_child(child);
        let diagnostics = format!("{at}: {rule}");
        self.issues.push(Issue::error(code, diagnostics).at(at));
    }

    fn resource(&mut self, value: &'a Value, placement: Placement) {
        let root = placement == Placement::Root;
        let Some(map) = value.as_object() else {
            if root {
                self.path.push("Resource");
            }
            self.report(IssueCode::Structure, "a resource must be a JSON object");
            if root {
                self.path.pop();
            }
            return;
        };
        let Some(type_id) = self.resource_type(map, root) else {
            return;
        };
        let def = defs::type_def(type_id);
        if root {
            self.path.push(def.name);
        }
        let container = match placement {
            Placement::Contained => self.resources.last().map(|(r, _)| *r),
            Placement::Root | Placement::Nested => None,
        };
        self.resources.push((value, container));
        let before = self.found();
        let registered = match placement {
            Placement::Contained => self.contained_rules(map),
            Placement::Root | Placement::Nested => {
                let contained = map.get("contained").and_then(Value::as_array);
                let active = contained.is_some_and(|items| !items.is_empty());
                let mut ids: Vec<&'a str> = contained
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("id").and_then(Value::as_str))
                    .collect();
                ids.sort_unstable();
                self.containers.push(Container {
                    active,
                    ids,
                    ..Container::default()
                });
                false
            }
        };
        self.object(map, def.node, true);
        let own = defs::node(def.node).constraints;
        if !own.is_empty() && self.found() == before {
            self.invariants(own, Node::root(value));
        }
        self.resources.pop();
        if registered && let Some(container) = self.containers.last_mut() {
            container.current = None;
        }
        if placement != Placement::Contained
            && let Some(container) = self.containers.pop()
        {
            self.unreferenced_contained(container);
        }
        if root {
            self.path.pop();
        }
    }

    /// The rules of a contained resource (the path is at `contained[i]`): an id, dom-2, dom-4
    /// and dom-5. Registers it with its container for dom-3 and returns whether it did.
    fn contained_rules(&mut self, map: &'a Map<String, Value>) -> bool {
        if !map.contains_key("id") {
            self.report(IssueCode::Invalid, "a contained resource must have an id");
        }
        if map.contains_key("contained") {
            self.report_child(
                IssueCode::Invariant,
                "contained",
                "dom-2: a contained resource must not contain resources",
            );
        }
        if let Some(Value::Object(meta)) = map.get("meta") {
            for child in ["meta.versionId", "meta.lastUpdated"] {
                let key = child.trim_start_matches("meta.");
                if meta.contains_key(key) {
                    self.report_child(
                        IssueCode::Invariant,
                        child,
                        "dom-4: a contained resource must not have a meta.versionId or a meta.lastUpdated",
                    );
                }
            }
            if meta.contains_key("security") {
                self.report_child(
                    IssueCode::Invariant,
                    "meta.security",
                    "dom-5: a contained resource must not have a security label",
                );
            }
        }
        let index = self.path.index();
        match (self.containers.last_mut(), index) {
            // Not when nested in another contained resource: dom-2 already refuses that.
            (Some(container), Some(index)) if container.active && container.current.is_none() => {
                container.contained.push(Contained {
                    index,
                    id: map.get("id").and_then(Value::as_str),
                    refers_to_container: false,
                });
                container.current = Some(container.contained.len() - 1);
                true
            }
            _ => false,
        }
    }

    /// dom-3: every contained resource is referenced from elsewhere in the resource (`#id`)
    /// or references its container (`#`). The path is at the container.
    fn unreferenced_contained(&mut self, mut container: Container<'a>) {
        if container.contained.is_empty() {
            return;
        }
        container.targets.sort_unstable();
        for item in &container.contained {
            let Some(id) = item.id else { continue };
            if item.refers_to_container || container.targets.binary_search(&id).is_ok() {
                continue;
            }
            let child = format!("contained[{}]", item.index);
            self.report_child(
                IssueCode::Invariant,
                &child,
                "dom-3: the contained resource is not referenced from elsewhere in the resource (#id) and does not reference its container (#)",
            );
        }
    }

    /// Notes a local reference (`#...`) for dom-3, when the current resource has contained
    /// resources. `to_container`: whether `#` here counts as a reference to the container
    /// (it does in `reference` and `canonical` elements).
    fn local_reference(&mut self, value: &'a str, to_container: bool) {
        let Some(container) = self.containers.last_mut() else {
            return;
        };
        if !container.active {
            return;
        }
        match value.strip_prefix('#') {
            Some("") if to_container => {
                if let Some(item) = container
                    .current
                    .and_then(|i| container.contained.get_mut(i))
                {
                    item.refers_to_container = true;
                }
            }
            Some(target) if !target.is_empty() => container.targets.push(target),
            _ => {}
        }
    }

    /// ref-1 (the path is at `Reference.reference`, whose value is `text`, starting with
    /// `#`): a local reference names a contained resource of the resource (of the container,
    /// in a contained resource); `#` alone, a contained resource's reference to its
    /// container, only in a contained resource (the R5 form of the invariant; 4.0.1 refuses
    /// it although dom-3 allows it). Checked here, against the sorted ids of the contained
    /// resources, rather than in FHIRPath, where each reference would list them all again.
    fn local_reference_target(&mut self, text: &str) {
        let holds = match (self.containers.last(), &text[1..]) {
            (Some(container), "") => container.current.is_some(),
            (Some(container), target) => container.ids.binary_search(&target).is_ok(),
            (None, _) => true,
        };
        if !holds {
            if self.issues.len() >= MAX_ISSUES {
                self.omitted += 1;
                return;
            }
            let at = self.path.render_parent();
            let diagnostics = format!(
                "{at}: ref-1: SHALL have a contained resource if a local reference is provided"
            );
            self.issues
                .push(Issue::error(IssueCode::Invariant, diagnostics).at(at));
        }
    }

    /// The concrete resource type named by `resourceType`, or reports why there is none.
    fn resource_type(&mut self, map: &'a Map<String, Value>, root: bool) -> Option<TypeId> {
        let problem = match map.get("resourceType") {
            None => Some((IssueCode::Required, "resourceType is missing")),
            Some(Value::String(name)) => {
                let known = defs::type_by_name(name).filter(|&t| {
                    let d = defs::type_def(t);
                    d.kind == TypeKind::Resource && !d.is_abstract
                });
                match known {
                    Some(t) => return Some(t),
                    None => Some((
                        IssueCode::NotSupported,
                        "resourceType is not a resource type of FHIR R4",
                    )),
                }
            }
            Some(_) => Some((IssueCode::Structure, "resourceType must be a JSON string")),
        };
        if let Some((code, rule)) = problem {
            if root {
                self.path.push("Resource");
            }
            self.report_child(code, "resourceType", rule);
            if root {
                self.path.pop();
            }
        }
        None
    }

    /// Validates the properties of `map` against node `node_id`.
    fn object(&mut self, map: &'a Map<String, Value>, node_id: NodeId, is_resource: bool) {
        if map.is_empty() {
            self.report(
                IssueCode::Structure,
                "empty objects are not allowed in FHIR JSON",
            );
            return;
        }
        let node = defs::node(node_id);
        let mut present = Seen::default();
        let mut valued = Seen::default();
        for (key, value) in map {
            if is_resource && key == "resourceType" {
                continue;
            }
            if let Some(base) = key.strip_prefix('_') {
                match node.key(base) {
                    Some(k) if defs::type_def(k.ty).kind == TypeKind::Primitive => {
                        present.insert(usize::from(k.element));
                        let element = &node.elements[usize::from(k.element)];
                        self.path.push(base);
                        self.primitive_extension(map, base, element, k.ty, value);
                        self.path.pop();
                    }
                    _ => self.unknown(key, node),
                }
                continue;
            }
            let Some(k) = node.key(key) else {
                self.unknown(key, node);
                continue;
            };
            let index = usize::from(k.element);
            let element = &node.elements[index];
            self.path.push(key);
            if valued.contains(index) {
                // JSON keys are unique, so a second key for one element is another choice.
                self.report(
                    IssueCode::Invalid,
                    "only one type of a choice element may be given",
                );
            }
            valued.insert(index);
            present.insert(index);
            self.element(map, key, element, k, value);
            self.path.pop();
        }
        for &i in node.required {
            if !present.contains(usize::from(i)) {
                let name = node.elements[usize::from(i)].name;
                self.report_child(IssueCode::Required, name, "required element is missing");
            }
        }
        if node_id == defs::type_def(type_ids::Extension).node {
            self.extension_rule(map, node);
        }
    }

    fn unknown(&mut self, key: &'a str, node: &NodeDef) {
        let rule = if node.path.contains('.') {
            "unknown element (not defined for this backbone element)"
        } else {
            "unknown element (not defined for this type)"
        };
        self.report_child(IssueCode::Structure, key, rule);
    }

    /// ext-1: an extension has either a value or nested extensions, not both, not neither.
    fn extension_rule(&mut self, map: &Map<String, Value>, node: &NodeDef) {
        let has_value = map.keys().any(|k| {
            let k = k.strip_prefix('_').unwrap_or(k);
            k.starts_with("value")
                && node
                    .key(k)
                    .is_some_and(|d| node.elements[usize::from(d.element)].is_choice())
        });
        let has_extensions = map.contains_key("extension");
        if has_value == has_extensions {
            self.report(
                IssueCode::Invalid,
                "an extension must have either a value[x] or nested extensions, not both (ext-1)",
            );
        }
    }

    /// Validates the value of one property (the path already names it).
    fn element(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        element: &ElementDef,
        k: &KeyDef,
        value: &'a Value,
    ) {
        if element.is_array() {
            let Value::Array(items) = value else {
                self.report(
                    IssueCode::Structure,
                    "this element repeats and must be a JSON array",
                );
                return;
            };
            if items.is_empty() {
                self.report(
                    IssueCode::Structure,
                    "empty arrays are not allowed in FHIR JSON",
                );
                return;
            }
            for (i, item) in items.iter().enumerate() {
                self.path.set_index(Some(i));
                if item.is_null() {
                    self.null_item(map, key, k, i);
                } else {
                    self.typed(element, k.ty, item);
                }
            }
            self.path.set_index(None);
        } else if value.is_array() {
            self.report(
                IssueCode::Structure,
                "this element does not repeat and must not be a JSON array",
            );
        } else if value.is_null() {
            self.report(
                IssueCode::Structure,
                "null values are not allowed in FHIR JSON",
            );
        } else {
            self.typed(element, k.ty, value);
        }
    }

    /// A `null` in an array is only allowed for a primitive whose `_name` array holds the
    /// extensions of that item.
    fn null_item(&mut self, map: &Map<String, Value>, key: &str, k: &KeyDef, i: usize) {
        let extended = defs::type_def(k.ty).kind == TypeKind::Primitive
            && map
                .get(&format!("_{key}"))
                .and_then(Value::as_array)
                .and_then(|a| a.get(i))
                .is_some_and(|v| !v.is_null());
        if !extended {
            self.report(
                IssueCode::Structure,
                "null values are not allowed in FHIR JSON (except in a primitive array with extensions for that item)",
            );
        }
    }

    /// Validates a non-null value of type `ty`.
    fn typed(&mut self, element: &ElementDef, ty: TypeId, value: &'a Value) {
        let def = defs::type_def(ty);
        match def.kind {
            TypeKind::Primitive => {
                let before = self.found();
                self.primitive(element, ty, value);
                if !element.constraints.is_empty() && self.found() == before {
                    let focus = Node {
                        value: Some(value),
                        ext: None,
                        ty,
                        node: NONE,
                    };
                    self.invariants(element.constraints, focus);
                }
            }
            TypeKind::Resource => {
                let placement = if element.name == "contained" {
                    Placement::Contained
                } else {
                    Placement::Nested
                };
                self.resource(value, placement);
            }
            TypeKind::Complex => {
                let Value::Object(map) = value else {
                    self.report(
                        IssueCode::Structure,
                        "this element has a complex type and must be a JSON object",
                    );
                    return;
                };
                if element.name == "modifierExtension" {
                    self.report(
                        IssueCode::Extension,
                        "modifier extensions are not supported: this server knows no modifier extension, so it cannot safely process the resource",
                    );
                    return;
                }
                if map.len() == 1 && map.contains_key("id") {
                    self.report(
                        IssueCode::Invariant,
                        "ele-1: an element must have a value or children other than id",
                    );
                    return;
                }
                let node = if element.node != NONE {
                    element.node
                } else {
                    def.node
                };
                let before = self.found();
                self.object(map, node, false);
                if element.binding != NONE {
                    self.coded_binding(element, ty, map);
                }
                let own = defs::node(node).constraints;
                if (!own.is_empty() || !element.constraints.is_empty()) && self.found() == before {
                    let focus = Node {
                        value: Some(value),
                        ext: None,
                        ty,
                        node: element.node,
                    };
                    self.invariants(element.constraints, focus);
                    self.invariants(own, focus);
                }
            }
        }
    }

    fn primitive(&mut self, element: &ElementDef, ty: TypeId, value: &'a Value) {
        match primitives::check(ty, value) {
            Ok(()) => {}
            Err(problem) => {
                let code = match problem {
                    Problem::WrongJsonType(_) => IssueCode::Structure,
                    _ => IssueCode::Value,
                };
                let rule = format!("value {} ({})", problem.describe(), defs::type_def(ty).name);
                self.report(code, &rule);
                return;
            }
        }
        if let Value::String(text) = value {
            if text.starts_with('#') {
                let is_reference = ty == type_ids::string && element.name == "reference";
                if is_reference
                    && defs::element_def("Reference.reference")
                        .is_some_and(|r| std::ptr::eq(r, element))
                {
                    self.local_reference_target(text);
                }
                if is_reference || ty == type_ids::canonical {
                    self.local_reference(text, true);
                } else if ty == type_ids::uri || ty == type_ids::url {
                    self.local_reference(text, false);
                }
            } else if ty == type_ids::xhtml
                && let Err(problem) = narrative::check(text)
            {
                let code = if problem.is_structure() {
                    IssueCode::Value
                } else {
                    IssueCode::Invariant
                };
                self.report(code, &problem.to_string());
                return;
            }
        }
        if element.binding != NONE
            && let Value::String(code) = value
        {
            let value_set = defs::value_set(element.binding);
            if !value_set.contains(code) {
                let rule = format!("code is not in the required value set {}", value_set.url);
                self.report(IssueCode::CodeInvalid, &rule);
            }
        }
    }

    /// A required binding on a `Coding` or `CodeableConcept`: the coding (or one of the
    /// codings) must be from the value set.
    fn coded_binding(&mut self, element: &ElementDef, ty: TypeId, map: &Map<String, Value>) {
        let value_set = defs::value_set(element.binding);
        let in_set = |coding: &Map<String, Value>| {
            let system = coding.get("system").and_then(Value::as_str);
            let code = coding.get("code").and_then(Value::as_str);
            matches!((system, code), (Some(s), Some(c)) if value_set.contains_coding(s, c))
        };
        let found = if ty == type_ids::Coding {
            in_set(map)
        } else {
            map.get("coding")
                .and_then(Value::as_array)
                .is_some_and(|codings| codings.iter().filter_map(Value::as_object).any(in_set))
        };
        if !found {
            let rule = format!("no coding is from the required value set {}", value_set.url);
            self.report(IssueCode::CodeInvalid, &rule);
        }
    }

    /// Validates `_name`: the id and extensions of a primitive (an object, or for a repeating
    /// element an array of objects and nulls aligned with the values).
    fn primitive_extension(
        &mut self,
        map: &'a Map<String, Value>,
        base: &str,
        element: &ElementDef,
        ty: TypeId,
        value: &'a Value,
    ) {
        let node = defs::type_def(ty).node;
        let id_only = |obj: &Map<String, Value>| obj.len() == 1 && obj.contains_key("id");
        if !element.is_array() {
            match value {
                Value::Object(obj) if id_only(obj) && !map.contains_key(base) => self.report(
                    IssueCode::Invariant,
                    "ele-1: a primitive element must have a value or extensions",
                ),
                Value::Object(obj) => self.object(obj, node, false),
                Value::Array(_) => self.report(
                    IssueCode::Structure,
                    "this element does not repeat and its extensions must not be a JSON array",
                ),
                _ => self.report(
                    IssueCode::Structure,
                    "the extensions of a primitive must be a JSON object",
                ),
            }
            return;
        }
        let Value::Array(items) = value else {
            self.report(
                IssueCode::Structure,
                "this element repeats and its extensions must be a JSON array",
            );
            return;
        };
        let values = map.get(base).and_then(Value::as_array);
        if let Some(values) = values
            && values.len() != items.len()
        {
            self.report(
                IssueCode::Structure,
                "the values and their extensions must be arrays of the same length",
            );
        }
        for (i, item) in items.iter().enumerate() {
            self.path.set_index(Some(i));
            match item {
                Value::Object(obj)
                    if id_only(obj) && values.and_then(|v| v.get(i)).is_none_or(Value::is_null) =>
                {
                    self.report(
                        IssueCode::Invariant,
                        "ele-1: a primitive element must have a value or extensions",
                    )
                }
                Value::Object(obj) => self.object(obj, node, false),
                Value::Null => {
                    // A null value with a null here is reported once, on the value side.
                    let has_value = values.and_then(|v| v.get(i)).is_some();
                    if !has_value {
                        self.report(
                            IssueCode::Structure,
                            "an array item must have a value or extensions",
                        );
                    }
                }
                _ => self.report(
                    IssueCode::Structure,
                    "the extensions of a primitive must be a JSON object",
                ),
            }
        }
        self.path.set_index(None);
    }
}
