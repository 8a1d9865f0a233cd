//! Lookups over the generated definition tables. (Interface fixed; tables being generated.)

/// A search parameter of the core specification, as it applies to one resource type.
#[derive(Debug, Clone, Copy)]
pub struct SearchParamDef {
    /// The code used in URLs, e.g. `birthdate`.
    pub code: &'static str,
    /// `number`, `date`, `string`, `token`, `reference`, `composite`, `quantity`, `uri`, `special`.
    pub kind: &'static str,
    /// The canonical URL of the SearchParameter.
    pub url: &'static str,
    /// The FHIRPath expression, as published.
    pub expression: &'static str,
}

/// Every concrete (non-abstract) resource type, sorted.
pub fn resource_types() -> &'static [&'static str] {
    &["Patient"]
}

/// True when `name` is a concrete resource type.
pub fn is_resource_type(name: &str) -> bool {
    resource_types().binary_search(&name).is_ok()
}

/// The search parameters that apply to a resource type (its own and those of Resource and
/// DomainResource).
pub fn search_params(resource_type: &str) -> Vec<SearchParamDef> {
    let _ = resource_type;
    Vec::new()
}
