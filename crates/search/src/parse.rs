//! The request as a whole: scope (types, `_type`, compartment), each parameter in order, and
//! the lenient/strict decision for what is unknown.

use caduceus_model::defs;
use caduceus_model::ids::is_valid_id;
use caduceus_model::{Issue, IssueCode};

use crate::ast::{
    CompartmentFilter, Criterion, Modifier, ParamKind, ParamRef, SearchQuery, SearchValue,
};
use crate::chain::{Need, resolve_name};
use crate::error::{ErrorKind, ParamError};
use crate::values::{self, split_unescaped, static_type, unescape};
use crate::{Handling, ParseOptions, results};

/// The compartment of a compartment search.
pub struct CompartmentScope<'a> {
    /// `Patient` in `/Patient/123/Observation`.
    pub compartment_type: &'a str,
    /// `123`.
    pub id: &'a str,
}

/// Parses a search over `types` (empty: system level), optionally inside a compartment.
pub fn parse_search(
    types: &[&str],
    compartment: Option<CompartmentScope<'_>>,
    params: &[(String, String)],
    options: &ParseOptions,
) -> Result<SearchQuery, Vec<Issue>> {
    let mut p = Parser {
        options,
        errors: Vec::new(),
        ignored: Vec::new(),
    };
    let mut query = SearchQuery {
        types: Vec::new(),
        type_filter: None,
        compartment: None,
        criteria: Vec::new(),
        includes: Vec::new(),
        revincludes: Vec::new(),
        sort: Vec::new(),
        count: options.default_count.min(options.max_count),
        summary: None,
        elements: Vec::new(),
        total: None,
        contained: None,
        contained_type: None,
        ignored: Vec::new(),
    };

    // Scope first: every parameter is resolved against the searched types.
    for t in types {
        match static_type(t) {
            Some(t) if query.types.contains(&t) => {}
            Some(t) => query.types.push(t),
            None => p.errors.push(Issue::error(
                IssueCode::NotSupported,
                "The request names an unknown resource type",
            )),
        }
    }
    let type_values: Vec<&str> = params
        .iter()
        .filter(|(n, _)| n == "_type")
        .map(|(_, v)| v.as_str())
        .collect();
    if types.is_empty() {
        if let Some(v) = type_values.first() {
            if type_values.len() > 1 {
                p.fail(ParamError::new("_type", ErrorKind::Repeated));
            }
            match results::type_list(v) {
                Ok(list) => {
                    query.types = list.clone();
                    query.type_filter = Some(list);
                }
                Err(e) => p.fail(ParamError::new("_type", e)),
            }
        }
    } else if !type_values.is_empty() {
        p.fail(ParamError::new(
            "_type",
            ErrorKind::Unsupported(" on a type-level search"),
        ));
    }
    if let Some(c) = compartment {
        query.compartment = p.compartment(&c, &mut query.types);
    }
    if query.types.is_empty() && types.is_empty() && query.type_filter.is_none() {
        query.types = defs::resource_types().to_vec();
    }
    if !p.errors.is_empty() {
        return Err(p.errors);
    }

    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in params {
        let name = name.as_str();
        if results::is_result_param(name) {
            if matches!(name, "_format" | "_pretty" | "_type") {
                continue;
            }
            let repeatable = name.starts_with("_include") || name.starts_with("_revinclude");
            if !repeatable && seen.contains(&name) {
                p.fail(ParamError::new(name, ErrorKind::Repeated));
                continue;
            }
            seen.push(name);
            p.result_param(&mut query, name, value);
        } else {
            match p.criterion(&query.types, name, value) {
                Ok(c) => query.criteria.push(c),
                Err(e) => p.fail(e),
            }
        }
    }
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    query.ignored = p.ignored;
    Ok(query)
}

struct Parser<'o> {
    options: &'o ParseOptions,
    errors: Vec<Issue>,
    ignored: Vec<Issue>,
}

impl Parser<'_> {
    /// Records a problem: an error, or (lenient, ignorable) a warning.
    fn fail(&mut self, e: ParamError) {
        if e.is_ignorable() && self.options.handling == Handling::Lenient {
            self.ignored.push(e.to_warning());
        } else {
            self.errors.push(e.to_error());
        }
    }

    fn compartment(
        &mut self,
        c: &CompartmentScope<'_>,
        types: &mut Vec<&'static str>,
    ) -> Option<CompartmentFilter> {
        let Some(ct) = defs::compartments().find(|k| *k == c.compartment_type) else {
            self.errors.push(Issue::error(
                IssueCode::NotSupported,
                "The request names a resource type that is not a compartment",
            ));
            return None;
        };
        if !is_valid_id(c.id) {
            self.errors.push(Issue::error(
                IssueCode::Invalid,
                "The compartment id is not a valid FHIR id",
            ));
            return None;
        }
        if types.is_empty() {
            *types = defs::compartment_resource_types(ct)
                .filter_map(static_type)
                .collect();
        }
        let mut links = Vec::new();
        for &t in types.iter() {
            let params = defs::compartment_params(ct, t);
            if params.is_empty() {
                self.errors.push(Issue::error(
                    IssueCode::Invalid,
                    format!("Resources of type {t} are never in the {ct} compartment"),
                ));
            }
            links.push((t, params));
        }
        Some(CompartmentFilter {
            compartment_type: ct,
            id: c.id.to_owned(),
            links,
        })
    }

    fn criterion(
        &self,
        types: &[&'static str],
        name: &str,
        value: &str,
    ) -> Result<Criterion, ParamError> {
        let need = if types.len() > 1 {
            Need::All
        } else {
            Need::Any
        };
        let err = |kind| ParamError::new(name, kind);
        if name.is_empty() {
            return Err(err(ErrorKind::Unknown(crate::chain::describe(types))));
        }
        let resolved = resolve_name(types, name, need).map_err(err)?;
        let values = self
            .values(&resolved.param, resolved.modifier, value)
            .map_err(err)?;
        Ok(Criterion {
            path: resolved.path,
            param: resolved.param,
            modifier: resolved.modifier,
            values,
        })
    }

    /// The OR list of values of a criterion.
    fn values(
        &self,
        param: &ParamRef,
        modifier: Option<Modifier>,
        value: &str,
    ) -> Result<Vec<SearchValue>, ErrorKind> {
        if modifier == Some(Modifier::Missing) {
            return match value {
                "true" => Ok(vec![SearchValue::Boolean(true)]),
                "false" => Ok(vec![SearchValue::Boolean(false)]),
                _ => Err(ErrorKind::InvalidValue(":missing takes true or false")),
            };
        }
        let mut out = Vec::new();
        for item in split_unescaped(value, ',') {
            if item.is_empty() {
                continue;
            }
            out.push(self.value(param, modifier, item)?);
        }
        if out.is_empty() {
            return Err(ErrorKind::Empty);
        }
        Ok(out)
    }

    /// One value, typed by the parameter's kind and the modifier.
    fn value(
        &self,
        param: &ParamRef,
        modifier: Option<Modifier>,
        item: &str,
    ) -> Result<SearchValue, ErrorKind> {
        use Modifier as M;
        let invalid = ErrorKind::InvalidValue;
        Ok(match (param.kind, modifier) {
            (ParamKind::Number, _) => SearchValue::Number(values::number(item).map_err(invalid)?),
            (ParamKind::Date, _) => SearchValue::Date(values::date(item).map_err(invalid)?),
            (ParamKind::Quantity, _) => {
                SearchValue::Quantity(values::quantity(item).map_err(invalid)?)
            }
            (ParamKind::String, _) | (ParamKind::Token, Some(M::Text)) => {
                SearchValue::String(unescape(item))
            }
            (ParamKind::Token, Some(M::In | M::NotIn)) => SearchValue::Uri(unescape(item)),
            (ParamKind::Token, Some(M::OfType)) => {
                SearchValue::OfType(values::of_type(item).map_err(invalid)?)
            }
            (ParamKind::Token, _) | (ParamKind::Reference, Some(M::Identifier)) => {
                SearchValue::Token(values::token(item).map_err(invalid)?)
            }
            (ParamKind::Reference, m) => {
                let only = match m {
                    Some(M::Type(t)) => Some(t),
                    _ => None,
                };
                SearchValue::Reference(
                    values::reference(
                        item,
                        only,
                        &param.targets(),
                        self.options.base_url.as_deref(),
                    )
                    .map_err(invalid)?,
                )
            }
            (ParamKind::Uri, _) => {
                let uri = unescape(item);
                if uri.chars().any(char::is_whitespace) {
                    return Err(invalid("a URI cannot contain spaces"));
                }
                SearchValue::Uri(uri)
            }
            (ParamKind::Composite, _) => self.composite(param, item)?,
            (ParamKind::Special, _) if param.code == "near" => {
                SearchValue::Near(values::near(item).map_err(invalid)?)
            }
            (ParamKind::Special, _) => SearchValue::Special(unescape(item)),
        })
    }

    /// `a$b`: one value per component, each typed by its component's kind.
    fn composite(&self, param: &ParamRef, item: &str) -> Result<SearchValue, ErrorKind> {
        let Some(&(owner, composite)) = param.defs.first() else {
            return Err(ErrorKind::Unsupported(" (a composite without definition)"));
        };
        // Components are typed from the first type's definition: the official composites
        // shared between types (context-type-value, ...) have components of the same kinds.
        let components = composite.components;
        let parts = split_unescaped(item, '$');
        if parts.len() != components.len() {
            return Err(ErrorKind::InvalidValue(
                "expected one value per component of the composite, separated by $",
            ));
        }
        let mut out = Vec::with_capacity(parts.len());
        for (part, (url, _)) in parts.iter().zip(components) {
            let value = match defs::search_param_by_url(url) {
                Some(def) => {
                    let component = ParamRef {
                        code: def.code,
                        kind: ParamKind::from_code(def.kind),
                        defs: vec![(owner, def)],
                    };
                    if component.kind == ParamKind::Composite {
                        return Err(ErrorKind::Unsupported(" (nested composite)"));
                    }
                    self.value(&component, None, part)?
                }
                None => SearchValue::Special(unescape(part)),
            };
            out.push(value);
        }
        Ok(SearchValue::Composite(out))
    }

    fn result_param(&mut self, query: &mut SearchQuery, name: &str, value: &str) {
        let err = |kind| ParamError::new(name, kind);
        if value.is_empty() {
            self.fail(err(ErrorKind::Empty));
            return;
        }
        let types = query.types.clone();
        let outcome: Result<(), ParamError> = (|| {
            match name {
                "_count" => {
                    let (n, capped) = results::count(value, self.options.max_count).map_err(err)?;
                    if capped {
                        self.ignored.push(
                            Issue::warning(
                                IssueCode::TooCostly,
                                format!(
                                    "Search parameter '_count': above the maximum page size; \
                                     {n} used"
                                ),
                            )
                            .at("_count"),
                        );
                    }
                    query.count = n;
                }
                "_summary" => query.summary = Some(results::summary(value).map_err(err)?),
                "_total" => query.total = Some(results::total(value).map_err(err)?),
                "_contained" => query.contained = Some(results::contained(value).map_err(err)?),
                "_containedType" => {
                    query.contained_type = Some(results::contained_type(value).map_err(err)?)
                }
                "_sort" => {
                    for item in value.split(',') {
                        match results::sort_key(&types, item) {
                            Ok(k) => query.sort.push(k),
                            Err(e) => self.fail(err(e)),
                        }
                    }
                }
                "_elements" => {
                    for item in value.split(',').filter(|i| !i.is_empty()) {
                        match results::element(&types, item) {
                            Ok(e) => query.elements.push(e),
                            Err(e) => self.fail(err(e)),
                        }
                    }
                }
                _ => {
                    let reverse = name.starts_with("_revinclude");
                    let iterate = name.contains(':');
                    for item in value.split(',').filter(|i| !i.is_empty()) {
                        match results::include(&types, item, iterate, reverse) {
                            Ok(i) if reverse => query.revincludes.push(i),
                            Ok(i) => query.includes.push(i),
                            Err(e) => self.fail(err(e)),
                        }
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            self.fail(e);
        }
    }
}
