//! Parameter names: plain (`name`), with a modifier (`name:exact`), chained
//! (`subject:Patient.name`, `subject.organization.name`) and reverse-chained
//! (`_has:Observation:patient:code`), resolved step by step against the definitions.
//!
//! A chain step without a type modifier keeps the target types of the reference parameter
//! that have the next step's parameter (so `subject.name` on Observation follows `subject`
//! to Patient, Practitioner, ... but not to Device, which has no `name`). A step's parameter
//! must exist on at least one of the step's types; at the top level of a multi-type search it
//! must exist on all of them.

use crate::ast::{Link, Modifier, ParamKind, ParamRef};
use crate::error::ErrorKind;
use crate::modifiers;
use crate::values::static_type;
use caduceus_model::defs;

/// Most chain and `_has` steps one parameter may take.
pub const MAX_DEPTH: usize = 5;

/// How many of the types a parameter must be defined on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Every type (the top level of a multi-type search).
    All,
    /// At least one (a chain step: the types it is not defined on drop out).
    Any,
}

/// A resolved parameter name.
#[derive(Debug)]
pub struct Resolved {
    /// Chain steps.
    pub path: Vec<Link>,
    /// The final parameter.
    pub param: ParamRef,
    /// Its modifier.
    pub modifier: Option<Modifier>,
}

/// Resolves a parameter name (without value) on `types`.
pub fn resolve_name(types: &[&'static str], name: &str, need: Need) -> Result<Resolved, ErrorKind> {
    resolve(types, name, need, 0)
}

fn resolve(
    types: &[&'static str],
    name: &str,
    need: Need,
    depth: usize,
) -> Result<Resolved, ErrorKind> {
    if let Some(rest) = name.strip_prefix("_has:") {
        if depth >= MAX_DEPTH {
            return Err(ErrorKind::TooDeep(MAX_DEPTH));
        }
        return reverse_chain(types, rest, depth);
    }
    let (head, rest) = match name.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (name, None),
    };
    let (code, modifier_text) = match head.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (head, None),
    };
    let param = resolve_step(types, code, need, depth)?;
    let Some(rest) = rest else {
        let modifier = match modifier_text {
            Some(m) => {
                let m = modifiers::parse(m)?;
                modifiers::check(m, &param)?;
                Some(m)
            }
            None => None,
        };
        return Ok(Resolved {
            path: Vec::new(),
            param,
            modifier,
        });
    };
    // A chain.
    if depth >= MAX_DEPTH {
        return Err(ErrorKind::TooDeep(MAX_DEPTH));
    }
    if param.kind != ParamKind::Reference {
        return Err(ErrorKind::Chain(format!(
            "only reference parameters can be chained, and '{}' is a {} parameter",
            param.code,
            param.kind.code()
        )));
    }
    let all_targets = param.targets();
    let explicit_type = match modifier_text {
        None => None,
        Some(m) => match modifiers::parse(m)? {
            Modifier::Type(t) => {
                if !all_targets.is_empty() && !all_targets.contains(&t) {
                    return Err(ErrorKind::Chain(format!(
                        "'{t}' is not a target type of '{}'",
                        param.code
                    )));
                }
                Some(t)
            }
            _ => {
                return Err(ErrorKind::Chain(
                    "only a resource type modifier can precede a chain".to_owned(),
                ));
            }
        },
    };
    let candidates = match explicit_type {
        Some(t) => vec![t],
        None if all_targets.is_empty() => {
            return Err(ErrorKind::Chain(format!(
                "'{}' does not say what it refers to; name the type (':[type].')",
                param.code
            )));
        }
        None => all_targets,
    };
    let inner = resolve(&candidates, rest, Need::Any, depth + 1)?;
    let targets: Vec<&'static str> = match inner.path.first() {
        None => inner.param.types().collect(),
        Some(Link::Chain { param, .. }) => param.types().collect(),
        Some(Link::Has { param, .. }) => {
            let back = param.targets();
            candidates
                .iter()
                .copied()
                .filter(|t| back.is_empty() || back.contains(t))
                .collect()
        }
    };
    let mut path = vec![Link::Chain {
        param,
        explicit_type,
        targets,
    }];
    path.extend(inner.path);
    Ok(Resolved {
        path,
        param: inner.param,
        modifier: inner.modifier,
    })
}

/// `[type]:[reference parameter]:[rest]` after `_has:`.
fn reverse_chain(types: &[&'static str], rest: &str, depth: usize) -> Result<Resolved, ErrorKind> {
    let mut parts = rest.splitn(3, ':');
    let (Some(ty), Some(code), Some(inner)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ErrorKind::Chain(
            "_has takes the form _has:[type]:[reference parameter]:[parameter]".to_owned(),
        ));
    };
    let source_type = static_type(ty)
        .ok_or_else(|| ErrorKind::Chain("_has names an unknown resource type".to_owned()))?;
    let param = resolve_param(&[source_type], code, Need::Any).map_err(|e| match e {
        ErrorKind::Unknown(_) => ErrorKind::Chain(format!(
            "_has: '{code}' is not a search parameter of {source_type}"
        )),
        other => other,
    })?;
    if param.kind != ParamKind::Reference {
        return Err(ErrorKind::Chain(format!(
            "_has: '{code}' of {source_type} is not a reference parameter"
        )));
    }
    let back = param.targets();
    if !back.is_empty() && !types.iter().any(|t| back.contains(t)) {
        return Err(ErrorKind::Chain(format!(
            "_has: '{code}' of {source_type} does not refer to {}",
            describe(types)
        )));
    }
    let inner = resolve(&[source_type], inner, Need::Any, depth + 1)?;
    let mut path = vec![Link::Has { source_type, param }];
    path.extend(inner.path);
    Ok(Resolved {
        path,
        param: inner.param,
        modifier: inner.modifier,
    })
}

/// One step's parameter; below the top level an unknown code is a malformed chain, not an
/// unknown parameter.
fn resolve_step(
    types: &[&'static str],
    code: &str,
    need: Need,
    depth: usize,
) -> Result<ParamRef, ErrorKind> {
    resolve_param(types, code, need).map_err(|e| match e {
        ErrorKind::Unknown(on) if depth > 0 => ErrorKind::Chain(format!(
            "'{code}' is not a search parameter of any target type ({on})"
        )),
        other => other,
    })
}

/// The parameter `code` on `types`.
pub fn resolve_param(
    types: &[&'static str],
    code: &str,
    need: Need,
) -> Result<ParamRef, ErrorKind> {
    match code {
        "_list" => {
            return Ok(ParamRef {
                code: "_list",
                kind: ParamKind::Special,
                defs: Vec::new(),
            });
        }
        "_query" => return Err(ErrorKind::Unsupported(" (named queries)")),
        "_filter" => return Err(ErrorKind::Unsupported(" (_filter)")),
        _ => {}
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for &t in types {
        match defs::search_param(t, code) {
            Some(d) => found.push((t, d)),
            None => missing.push(t),
        }
    }
    let Some(&(_, first)) = found.first() else {
        return Err(ErrorKind::Unknown(describe(types)));
    };
    if need == Need::All && !missing.is_empty() {
        return Err(ErrorKind::Unknown(describe(&missing)));
    }
    let kind = ParamKind::from_code(first.kind);
    if found
        .iter()
        .any(|(_, d)| ParamKind::from_code(d.kind) != kind)
    {
        return Err(ErrorKind::KindsDiffer);
    }
    Ok(ParamRef {
        code: first.code,
        kind,
        defs: found,
    })
}

/// `Patient`, `Patient, Group`, or `146 resource types`.
pub fn describe(types: &[&str]) -> String {
    match types.len() {
        0 => "no resource type".to_owned(),
        1..=4 => types.join(", "),
        n => format!("{n} resource types"),
    }
}
