//! Lookups over the FHIR R4 definitions compiled into static tables.
//!
//! The tables live in `src/generated/` and are written by `cargo xtask codegen` from the
//! official definitions package; this module defines the small structs they are made of and
//! the lookups everyone else uses. Every table is sorted where it is searched, so each lookup
//! is a binary search over static data: no allocation, no initialisation at start-up.
//!
//! The element model: each type (and each backbone element with children of its own, such as
//! `Patient.contact`) is a [`NodeDef`]: its [`ElementDef`]s in definition order, plus the JSON
//! property names they can appear under ([`KeyDef`], sorted; a choice element `value[x]` has one
//! key per allowed type: `valueString`, `valueQuantity`, ...).

#[path = "generated/mod.rs"]
#[rustfmt::skip]
mod generated;

pub use generated::types::{MAX_NODE_ELEMENTS, ids as type_ids};

/// Index into the type table ([`type_def`]).
pub type TypeId = u16;
/// Index into the node table ([`node`]).
pub type NodeId = u16;
/// Index into the value-set table ([`value_set`]).
pub type ValueSetId = u16;
/// Index into the invariant table ([`constraint`]).
pub type ConstraintId = u16;
/// The "no such entry" value of [`TypeId`], [`NodeId`] and [`ValueSetId`] fields.
pub const NONE: u16 = u16::MAX;
/// The [`ElementDef::max`] of an element with cardinality `*`.
pub const UNBOUNDED: u32 = u32::MAX;
/// [`ElementDef::flags`] bit: the element is marked `isSummary` (kept by `_summary=true`).
pub const SUMMARY: u8 = 1;

/// What a type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    /// A primitive (`string`, `date`, ...): a JSON value plus an optional `_name` sibling.
    Primitive,
    /// A complex datatype (`HumanName`, `Extension`, ...): a JSON object.
    Complex,
    /// A resource type (`Patient`; the abstract `Resource` and `DomainResource` included).
    Resource,
}

/// How a value of a type is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// A JSON string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A JSON number (`integer`, `decimal`, `positiveInt`, `unsignedInt`).
    Number,
    /// A JSON object.
    Object,
}

/// One base type of the specification.
#[derive(Debug)]
pub struct TypeDef {
    /// The type name, e.g. `HumanName`, `dateTime`, `Patient`.
    pub name: &'static str,
    /// Primitive, complex or resource.
    pub kind: TypeKind,
    /// True for `Resource`, `DomainResource`, `Element`, `BackboneElement`.
    pub is_abstract: bool,
    /// The type it specialises ([`NONE`] for `Resource` and `Element`).
    pub base: TypeId,
    /// The JSON representation of a value.
    pub json: JsonKind,
    /// The node of its elements (for a primitive: `id` and `extension`, what `_name` may hold).
    pub node: NodeId,
    /// For a primitive, the regular expression its value must match in full ("" when none).
    pub regex: &'static str,
}

/// The elements of a type or of a backbone element.
#[derive(Debug)]
pub struct NodeDef {
    /// The element path, e.g. `Patient` or `Patient.contact`.
    pub path: &'static str,
    /// The elements, in definition order.
    pub elements: &'static [ElementDef],
    /// The JSON property names of the elements, sorted by `key`.
    pub keys: &'static [KeyDef],
    /// Indexes (into `elements`) of the elements with a minimum cardinality of 1 or more.
    pub required: &'static [u16],
    /// The invariants every instance of the node must satisfy (those of the type, or of the
    /// backbone element), as indexes into [`constraints`].
    pub constraints: &'static [ConstraintId],
}

impl NodeDef {
    /// The element a JSON property name (without a leading `_`) stands for.
    pub fn key(&self, name: &str) -> Option<&'static KeyDef> {
        self.keys
            .binary_search_by(|k| k.key.cmp(name))
            .ok()
            .map(|i| &self.keys[i])
    }

    /// The element called `name` (as defined: `value[x]` for a choice).
    pub fn element(&self, name: &str) -> Option<&'static ElementDef> {
        self.elements.iter().find(|e| e.name == name)
    }
}

/// One element of a node.
#[derive(Debug)]
pub struct ElementDef {
    /// The name as defined, `[x]` included for a choice (`value[x]`).
    pub name: &'static str,
    /// Minimum cardinality.
    pub min: u32,
    /// Maximum cardinality ([`UNBOUNDED`] for `*`).
    pub max: u32,
    /// The allowed types (one, except for choices).
    pub types: &'static [TypeId],
    /// The node of its children, for backbone elements and content references; [`NONE`] when
    /// the children are those of its type.
    pub node: NodeId,
    /// The value set of a required binding (on a `code`, `Coding` or `CodeableConcept`) whose
    /// codes are known ([`NONE`] otherwise).
    pub binding: ValueSetId,
    /// Flag bits: [`SUMMARY`].
    pub flags: u8,
    /// The invariants of the element itself (not those of its type or backbone node), as
    /// indexes into [`constraints`].
    pub constraints: &'static [ConstraintId],
}

impl ElementDef {
    /// True for a choice element (`value[x]`).
    pub fn is_choice(&self) -> bool {
        self.name.ends_with("[x]")
    }

    /// True when the element repeats (is written as a JSON array).
    pub fn is_array(&self) -> bool {
        self.max > 1
    }

    /// True when the definition marks the element `isSummary`.
    pub fn is_summary(&self) -> bool {
        self.flags & SUMMARY != 0
    }
}

/// An invariant of the specification (`ElementDefinition.constraint` of severity `error`)
/// that validation evaluates with FHIRPath; the context is each instance of the element.
#[derive(Debug)]
pub struct ConstraintDef {
    /// The key, e.g. `pat-1`.
    pub key: &'static str,
    /// The FHIRPath expression, as published.
    pub expression: &'static str,
    /// The description, shortened.
    pub human: &'static str,
}

/// A JSON property name of an element, with the type it implies.
#[derive(Debug)]
pub struct KeyDef {
    /// The property name, e.g. `gender` or `valueQuantity`.
    pub key: &'static str,
    /// Index of the element in [`NodeDef::elements`].
    pub element: u16,
    /// The type of the value under this name.
    pub ty: TypeId,
}

/// A value set of a required binding, with all its codes.
#[derive(Debug)]
pub struct ValueSetDef {
    /// The canonical URL.
    pub url: &'static str,
    /// The code systems the codes come from, sorted.
    pub systems: &'static [&'static str],
    /// Every code, sorted.
    pub codes: &'static [&'static str],
}

impl ValueSetDef {
    /// True when `code` is in the value set.
    pub fn contains(&self, code: &str) -> bool {
        self.codes.binary_search(&code).is_ok()
    }

    /// True when a coding of `system` and `code` is in the value set.
    pub fn contains_coding(&self, system: &str, code: &str) -> bool {
        self.systems.binary_search(&system).is_ok() && self.contains(code)
    }
}

/// A search parameter of the core specification, as it applies to one resource type.
#[derive(Debug, Clone, Copy)]
pub struct SearchParamDef {
    /// The code used in URLs, e.g. `birthdate`.
    pub code: &'static str,
    /// `number`, `date`, `string`, `token`, `reference`, `composite`, `quantity`, `uri`, `special`.
    pub kind: &'static str,
    /// The canonical URL of the SearchParameter.
    pub url: &'static str,
    /// The FHIRPath expression, as published ("" for the few parameters without one).
    pub expression: &'static str,
    /// For reference parameters, the resource types they may point to.
    pub targets: &'static [&'static str],
    /// For composite parameters, the components in order: the canonical URL of the
    /// component's SearchParameter (see [`search_param_by_url`]) and its FHIRPath expression,
    /// relative to each node the composite's own expression selects. Empty otherwise.
    pub components: &'static [(&'static str, &'static str)],
}

/// Every concrete (non-abstract) resource type, sorted.
pub fn resource_types() -> &'static [&'static str] {
    &generated::types::RESOURCE_TYPES
}

/// True when `name` is a concrete resource type.
pub fn is_resource_type(name: &str) -> bool {
    resource_types().binary_search(&name).is_ok()
}

/// Every base type, sorted by name (a [`TypeId`] indexes it).
pub fn types() -> &'static [TypeDef] {
    &generated::types::TYPES
}

/// The type with this id. Panics on an id not taken from the tables.
pub fn type_def(id: TypeId) -> &'static TypeDef {
    &generated::types::TYPES[usize::from(id)]
}

/// The id of the type called `name` (resource, complex or primitive).
pub fn type_by_name(name: &str) -> Option<TypeId> {
    let types = &generated::types::TYPES;
    types
        .binary_search_by(|t| t.name.cmp(name))
        .ok()
        .and_then(|i| TypeId::try_from(i).ok())
}

/// The node with this id. Panics on an id not taken from the tables.
pub fn node(id: NodeId) -> &'static NodeDef {
    &generated::nodes::NODES[usize::from(id)]
}

/// Every node (a [`NodeId`] indexes it).
pub fn nodes() -> &'static [NodeDef] {
    &generated::nodes::NODES
}

/// The value set with this id. Panics on an id not taken from the tables.
pub fn value_set(id: ValueSetId) -> &'static ValueSetDef {
    &generated::value_sets::VALUE_SETS[usize::from(id)]
}

/// Every invariant carried by the tables (a [`ConstraintId`] indexes it), sorted by key.
pub fn constraints() -> &'static [ConstraintDef] {
    &generated::constraints::CONSTRAINTS
}

/// The invariant with this id. Panics on an id not taken from the tables.
pub fn constraint(id: ConstraintId) -> &'static ConstraintDef {
    &generated::constraints::CONSTRAINTS[usize::from(id)]
}

/// The enumerable value set with this canonical URL (without version).
pub fn value_set_by_url(url: &str) -> Option<&'static ValueSetDef> {
    let all = &generated::value_sets::VALUE_SETS;
    all.binary_search_by(|v| v.url.cmp(url))
        .ok()
        .map(|i| &all[i])
}

/// The definition of the element at a dotted path such as `Patient.gender` or
/// `Patient.contact.name` (choices as defined: `Observation.value[x]`).
pub fn element_def(path: &str) -> Option<&'static ElementDef> {
    let mut parts = path.split('.');
    let root = type_def(type_by_name(parts.next()?)?);
    let mut current = node(root.node);
    let mut found = None;
    for part in parts {
        let e = current.element(part)?;
        found = Some(e);
        current = if e.node != NONE {
            node(e.node)
        } else {
            node(type_def(*e.types.first()?).node)
        };
    }
    found
}

fn search_list(resource_type: &str) -> &'static [u16] {
    let by_type = &generated::search::BY_TYPE;
    by_type
        .binary_search_by(|(t, _)| t.cmp(&resource_type))
        .map(|i| by_type[i].1)
        .unwrap_or(&[])
}

/// The search parameters that apply to a resource type (its own and those of Resource and
/// DomainResource), sorted by code.
pub fn search_params(resource_type: &str) -> Vec<SearchParamDef> {
    let all = &generated::search::SEARCH_PARAMS;
    search_list(resource_type)
        .iter()
        .map(|&i| all[usize::from(i)])
        .collect()
}

/// The search parameter `code` of a resource type, if there is one.
pub fn search_param(resource_type: &str, code: &str) -> Option<SearchParamDef> {
    let all = &generated::search::SEARCH_PARAMS;
    let list = search_list(resource_type);
    list.binary_search_by(|&i| all[usize::from(i)].code.cmp(code))
        .ok()
        .map(|j| all[usize::from(list[j])])
}

/// The search parameter with this canonical URL (e.g. a composite's component), if the
/// specification defines it.
pub fn search_param_by_url(url: &str) -> Option<SearchParamDef> {
    let all = &generated::search::SEARCH_PARAMS;
    all.binary_search_by(|p| p.url.cmp(url))
        .ok()
        .map(|i| all[i])
}

/// The compartments defined by the specification (`Device`, `Encounter`, `Patient`,
/// `Practitioner`, `RelatedPerson`).
pub fn compartments() -> impl Iterator<Item = &'static str> {
    generated::compartments::COMPARTMENTS
        .iter()
        .map(|(c, _)| *c)
}

fn compartment(compartment: &str) -> &'static [(&'static str, &'static [&'static str])] {
    let all = &generated::compartments::COMPARTMENTS;
    all.binary_search_by(|(c, _)| c.cmp(&compartment))
        .map(|i| all[i].1)
        .unwrap_or(&[])
}

/// The search parameters that put a resource of `resource_type` in `compartment` (e.g.
/// Patient compartment, Observation → `["subject", "performer"]`); empty when resources of
/// that type are never in the compartment.
pub fn compartment_params(compartment_type: &str, resource_type: &str) -> &'static [&'static str] {
    let entries = compartment(compartment_type);
    entries
        .binary_search_by(|(t, _)| t.cmp(&resource_type))
        .map(|i| entries[i].1)
        .unwrap_or(&[])
}

/// The resource types that can be in `compartment`, sorted.
pub fn compartment_resource_types(compartment_type: &str) -> impl Iterator<Item = &'static str> {
    compartment(compartment_type).iter().map(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_are_the_concrete_ones() {
        let types = resource_types();
        assert!(types.windows(2).all(|w| w[0] < w[1]));
        assert!(is_resource_type("Patient"));
        assert!(is_resource_type("Observation"));
        assert!(!is_resource_type("Resource"));
        assert!(!is_resource_type("DomainResource"));
        assert!(!is_resource_type("HumanName"));
        assert_eq!(types.len(), 146);
    }

    #[test]
    fn elements_are_described() {
        let gender = element_def("Patient.gender").expect("Patient.gender");
        assert_eq!((gender.min, gender.max), (0, 1));
        assert_eq!(type_def(gender.types[0]).name, "code");
        let vs = value_set(gender.binding);
        assert!(vs.contains("female") && !vs.contains("f"));
        let name = element_def("Patient.contact.name").expect("Patient.contact.name");
        assert_eq!(type_def(name.types[0]).name, "HumanName");
        let status = element_def("Observation.status").expect("Observation.status");
        assert_eq!(status.min, 1);
        let observation = node(type_def(type_ids::Observation).node);
        let required: Vec<&str> = observation
            .required
            .iter()
            .map(|&i| observation.elements[usize::from(i)].name)
            .collect();
        assert_eq!(required, ["status", "code"]);
        let value = element_def("Observation.value[x]").expect("Observation.value[x]");
        assert!(value.is_choice() && value.types.len() == 11);
        // Content references reuse the referenced structure.
        let item = element_def("Questionnaire.item.item").expect("Questionnaire.item.item");
        assert_eq!(node(item.node).path, "Questionnaire.item");
        let patient = node(type_def(type_ids::Patient).node);
        let k = patient.key("deceasedBoolean").expect("choice key");
        assert_eq!(patient.elements[usize::from(k.element)].name, "deceased[x]");
        assert_eq!(type_def(k.ty).name, "boolean");
        assert!(MAX_NODE_ELEMENTS >= patient.elements.len());
    }

    #[test]
    fn summary_flags_and_invariants_are_carried() {
        let summary = |path: &str| element_def(path).is_some_and(ElementDef::is_summary);
        assert!(summary("Patient.name") && summary("Patient.gender"));
        assert!(!summary("Patient.photo") && !summary("Patient.contact"));
        assert!(!summary("Observation.referenceRange") && summary("Observation.value[x]"));
        assert!(summary("HumanName.family") && summary("Period.start"));
        let keys = |ids: &[ConstraintId]| -> Vec<&str> {
            ids.iter().map(|&i| constraint(i).key).collect()
        };
        let contact = element_def("Patient.contact").expect("Patient.contact");
        assert_eq!(keys(node(contact.node).constraints), ["pat-1"]);
        assert!(contact.constraints.is_empty(), "on the backbone node");
        assert_eq!(
            keys(node(type_def(type_ids::Period).node).constraints),
            ["per-1"]
        );
        let telecom = element_def("Organization.telecom").expect("Organization.telecom");
        assert_eq!(keys(telecom.constraints), ["org-3"]);
        assert!(constraints().windows(2).all(|w| w[0].key <= w[1].key));
        assert!(constraints().iter().all(|c| !c.expression.is_empty()));
    }

    #[test]
    fn primitive_types_carry_their_regex() {
        let date = type_def(type_ids::date);
        assert_eq!(date.kind, TypeKind::Primitive);
        assert!(date.regex.starts_with("([0-9]"));
        assert_eq!(type_def(type_ids::integer).json, JsonKind::Number);
        assert_eq!(type_def(type_ids::boolean).json, JsonKind::Boolean);
        assert_eq!(type_def(type_ids::xhtml).regex, "");
    }

    #[test]
    fn search_parameters_apply_by_type() {
        let params = search_params("Patient");
        assert!(params.windows(2).all(|w| w[0].code < w[1].code));
        for code in [
            "_id",
            "_lastUpdated",
            "_text",
            "birthdate",
            "name",
            "identifier",
        ] {
            assert!(params.iter().any(|p| p.code == code), "{code}");
        }
        let subject = search_param("Observation", "subject").expect("Observation subject");
        assert_eq!(subject.kind, "reference");
        assert!(subject.targets.contains(&"Patient"));
        assert!(
            search_param("Bundle", "_text").is_none(),
            "Bundle is not a DomainResource"
        );
        assert!(search_param("Bundle", "_id").is_some());
        assert!(search_params("NoSuchType").is_empty());
        let cv = search_param("Observation", "code-value-quantity").expect("composite");
        assert_eq!(cv.components.len(), 2);
        let kinds: Vec<&str> = cv
            .components
            .iter()
            .map(|(url, _)| search_param_by_url(url).expect("component").kind)
            .collect();
        assert_eq!(kinds, ["token", "quantity"]);
        assert!(subject.components.is_empty());
    }

    #[test]
    fn compartments_list_linking_parameters() {
        assert_eq!(
            compartment_params("Patient", "Observation"),
            &["subject", "performer"]
        );
        assert!(compartment_params("Patient", "CodeSystem").is_empty());
        assert!(compartments().any(|c| c == "Encounter"));
        assert!(compartment_resource_types("Patient").any(|t| t == "Condition"));
    }
}
