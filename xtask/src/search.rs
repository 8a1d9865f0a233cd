//! Search parameters and compartments.
//!
//! The parameters are those of `Bundle-searchParams.json`, the set the specification defines
//! (the loose `SearchParameter-*.json` files also hold examples such as a second `_id`, and
//! extension parameters without a base). Each SearchParameter is kept once (by URL); every concrete resource type gets the sorted
//! list of the codes that apply to it: its own parameters plus those of `Resource` and, for
//! domain resources, `DomainResource`. Compartment definitions become, per compartment and
//! resource type, the parameters that link a resource to the compartment.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::package::{Package, arr_of, str_of};
use crate::structures::{Kind, Structures};

/// One search parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub code: String,
    pub kind: String,
    pub url: String,
    pub expression: String,
    pub targets: Vec<String>,
    pub base: Vec<String>,
    /// For composite parameters: (definition URL, expression relative to the parameter's).
    pub components: Vec<(String, String)>,
}

/// All parameters (sorted by URL) and, per concrete resource type (sorted), the indexes of
/// its parameters (sorted by code).
#[derive(Debug)]
pub struct Search {
    pub params: Vec<Param>,
    pub by_type: Vec<(String, Vec<usize>)>,
    /// Codes dropped because another parameter of the same type has the same code.
    pub duplicates: Vec<String>,
}

pub fn build(pkg: &Package, structures: &Structures) -> Result<Search> {
    let mut by_url: BTreeMap<String, Param> = BTreeMap::new();
    let bundle = pkg
        .file("Bundle-searchParams.json")
        .context("the package has no Bundle-searchParams.json")?;
    for entry in arr_of(bundle, "entry") {
        let Some(sp) = entry.get("resource") else {
            continue;
        };
        let base: Vec<String> = arr_of(sp, "base")
            .iter()
            .filter_map(|b| b.as_str().map(str::to_owned))
            .collect();
        let url = str_of(sp, "url");
        // Defensive: a parameter without base or url could not be looked up.
        if base.is_empty() || url.is_empty() {
            continue;
        }
        by_url.entry(url.to_owned()).or_insert_with(|| Param {
            code: str_of(sp, "code").to_owned(),
            kind: str_of(sp, "type").to_owned(),
            url: url.to_owned(),
            expression: str_of(sp, "expression").to_owned(),
            targets: arr_of(sp, "target")
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            base,
            components: arr_of(sp, "component")
                .iter()
                .map(|c| {
                    (
                        str_of(c, "definition").to_owned(),
                        str_of(c, "expression").to_owned(),
                    )
                })
                .collect(),
        });
    }
    let params: Vec<Param> = by_url.into_values().collect();
    let mut by_type = Vec::new();
    let mut duplicates = Vec::new();
    for ty in &structures.types {
        if ty.kind != Kind::Resource || ty.is_abstract {
            continue;
        }
        let domain = structures.derives_from(&ty.name, "DomainResource");
        let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in params.iter().enumerate() {
            let applies = p
                .base
                .iter()
                .any(|b| b == &ty.name || b == "Resource" || (domain && b == "DomainResource"));
            if !applies {
                continue;
            }
            if codes.contains_key(p.code.as_str()) {
                duplicates.push(format!("{}.{}", ty.name, p.code));
            } else {
                codes.insert(&p.code, i);
            }
        }
        by_type.push((ty.name.clone(), codes.into_values().collect::<Vec<_>>()));
    }
    // Keep the per-type lists sorted by code.
    for (_, list) in &mut by_type {
        list.sort_by(|a, b| params[*a].code.cmp(&params[*b].code));
    }
    Ok(Search {
        params,
        by_type,
        duplicates,
    })
}

/// Compartment code → resource type → parameters, all sorted.
pub type Compartments = BTreeMap<String, BTreeMap<String, Vec<String>>>;

pub fn compartments(pkg: &Package) -> Result<Compartments> {
    let mut out = Compartments::new();
    for cd in pkg.with_prefix("CompartmentDefinition-") {
        let entry = out.entry(str_of(cd, "code").to_owned()).or_default();
        for r in arr_of(cd, "resource") {
            let params: Vec<String> = arr_of(r, "param")
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            if !params.is_empty() {
                entry.insert(str_of(r, "code").to_owned(), params);
            }
        }
    }
    Ok(out)
}
