//! Result parameters: what to return rather than what to match (`_include`, `_revinclude`,
//! `_sort`, `_count`, `_summary`, `_elements`, `_total`, `_contained`, `_containedType`) and
//! the system-level `_type`.

use caduceus_model::defs;

use crate::ast::{Contained, ContainedType, Include, ParamKind, SortKey, Summary, Total};
use crate::chain::{Need, describe, resolve_param};
use crate::error::ErrorKind;
use crate::values::static_type;

/// The result parameters this module handles (with their modifiers), and those ignored
/// here because the HTTP layer handles them.
pub fn is_result_param(name: &str) -> bool {
    matches!(
        name,
        "_include"
            | "_include:iterate"
            | "_include:recurse"
            | "_revinclude"
            | "_revinclude:iterate"
            | "_revinclude:recurse"
            | "_sort"
            | "_count"
            | "_summary"
            | "_elements"
            | "_total"
            | "_contained"
            | "_containedType"
            | "_type"
            | "_format"
            | "_pretty"
    )
}

/// One comma-separated item of `_include` / `_revinclude`: `*`, `Type:*`, `Type:param`,
/// `Type:param:Target`.
///
/// Without `:iterate`, an `_include` must start from a searched type and a `_revinclude`
/// must be able to point at one.
pub fn include(
    types: &[&'static str],
    item: &str,
    iterate: bool,
    reverse: bool,
) -> Result<Include, ErrorKind> {
    const SHAPE: &str = "expected [type]:[parameter], [type]:[parameter]:[target type] or *";
    if item == "*" {
        return Ok(Include {
            source_type: None,
            param: None,
            target_type: None,
            iterate,
        });
    }
    let parts: Vec<&str> = item.split(':').collect();
    let (source, code, target) = match parts.as_slice() {
        [s, c] => (*s, *c, None),
        [s, c, t] => (*s, *c, Some(*t)),
        _ => return Err(ErrorKind::InvalidValue(SHAPE)),
    };
    let source_type =
        static_type(source).ok_or(ErrorKind::InvalidValue("names an unknown resource type"))?;
    let target_type = match target {
        Some(t) => {
            Some(static_type(t).ok_or(ErrorKind::InvalidValue("names an unknown target type"))?)
        }
        None => None,
    };
    if !reverse && !iterate && !types.contains(&source_type) {
        return Err(ErrorKind::InvalidValue(
            "the source type is not a type searched (use _include:iterate)",
        ));
    }
    if code == "*" {
        return Ok(Include {
            source_type: Some(source_type),
            param: None,
            target_type,
            iterate,
        });
    }
    let param = resolve_param(&[source_type], code, Need::Any).map_err(|e| match e {
        ErrorKind::Unknown(on) => ErrorKind::UnknownTarget(on),
        other => other,
    })?;
    if param.kind != ParamKind::Reference {
        return Err(ErrorKind::InvalidValue(
            "names a parameter that is not a reference",
        ));
    }
    let targets = param.targets();
    if let Some(t) = target_type
        && !targets.is_empty()
        && !targets.contains(&t)
    {
        return Err(ErrorKind::InvalidValue(
            "the target type is not a target of the parameter",
        ));
    }
    if reverse && !iterate && !targets.is_empty() && !types.iter().any(|t| targets.contains(t)) {
        return Err(ErrorKind::InvalidValue(
            "the parameter cannot refer to a type searched (use _revinclude:iterate)",
        ));
    }
    Ok(Include {
        source_type: Some(source_type),
        param: Some(param),
        target_type,
        iterate,
    })
}

/// One comma-separated item of `_sort`: `[-]param`, defined on every searched type.
pub fn sort_key(types: &[&'static str], item: &str) -> Result<SortKey, ErrorKind> {
    let (descending, code) = match item.strip_prefix('-') {
        Some(c) => (true, c),
        None => (false, item),
    };
    if code.is_empty() {
        return Err(ErrorKind::InvalidValue(
            "expected a comma list of [-]parameter",
        ));
    }
    let param = resolve_param(types, code, Need::All).map_err(|e| match e {
        ErrorKind::Unknown(on) => ErrorKind::UnknownTarget(on),
        other => other,
    })?;
    if matches!(param.kind, ParamKind::Composite | ParamKind::Special) {
        return Err(ErrorKind::Unsupported(
            " (sorting on a composite or special parameter)",
        ));
    }
    Ok(SortKey { param, descending })
}

/// `_count`: a non-negative integer, capped at `max` (the flag says it was capped).
pub fn count(value: &str, max: u32) -> Result<(u32, bool), ErrorKind> {
    const BAD: ErrorKind = ErrorKind::InvalidValue("expected a non-negative integer");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    let digits = value.trim_start_matches('0');
    let n: u64 = if digits.is_empty() {
        0
    } else if digits.len() > 12 {
        u64::MAX
    } else {
        digits.parse().map_err(|_| BAD)?
    };
    if n > u64::from(max) {
        Ok((max, true))
    } else {
        Ok((u32::try_from(n).unwrap_or(max), false))
    }
}

/// `_summary`.
pub fn summary(value: &str) -> Result<Summary, ErrorKind> {
    Ok(match value {
        "true" => Summary::True,
        "text" => Summary::Text,
        "data" => Summary::Data,
        "count" => Summary::Count,
        "false" => Summary::False,
        _ => {
            return Err(ErrorKind::InvalidValue(
                "expected true, text, data, count or false",
            ));
        }
    })
}

/// `_total`.
pub fn total(value: &str) -> Result<Total, ErrorKind> {
    Ok(match value {
        "none" => Total::None,
        "estimate" => Total::Estimate,
        "accurate" => Total::Accurate,
        _ => {
            return Err(ErrorKind::InvalidValue(
                "expected none, estimate or accurate",
            ));
        }
    })
}

/// `_contained`.
pub fn contained(value: &str) -> Result<Contained, ErrorKind> {
    Ok(match value {
        "true" => Contained::True,
        "false" => Contained::False,
        "both" => Contained::Both,
        _ => return Err(ErrorKind::InvalidValue("expected true, false or both")),
    })
}

/// `_containedType`.
pub fn contained_type(value: &str) -> Result<ContainedType, ErrorKind> {
    Ok(match value {
        "container" => ContainedType::Container,
        "contained" => ContainedType::Contained,
        _ => return Err(ErrorKind::InvalidValue("expected container or contained")),
    })
}

/// `_type`: a comma list of resource types.
pub fn type_list(value: &str) -> Result<Vec<&'static str>, ErrorKind> {
    let mut out: Vec<&'static str> = Vec::new();
    for item in value.split(',').filter(|i| !i.is_empty()) {
        let t =
            static_type(item).ok_or(ErrorKind::InvalidValue("names an unknown resource type"))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(ErrorKind::Empty);
    }
    Ok(out)
}

/// One item of `_elements`: `name` or `Type.name`, an element of (one of) the searched
/// types.
pub fn element(types: &[&'static str], item: &str) -> Result<String, ErrorKind> {
    let (ty, name) = match item.split_once('.') {
        Some((t, n)) => (Some(t), n),
        None => (None, item),
    };
    let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(ErrorKind::InvalidValue(
            "expected a comma list of element names, optionally [type].[name]",
        ));
    }
    let candidates: Vec<&'static str> = match ty {
        Some(t) => {
            let t = static_type(t)
                .filter(|t| types.contains(t))
                .ok_or(ErrorKind::InvalidValue("names a type that is not searched"))?;
            vec![t]
        }
        None => types.to_vec(),
    };
    let known = candidates.iter().any(|t| {
        defs::type_by_name(t).is_some_and(|id| {
            let node = defs::node(defs::type_def(id).node);
            node.element(name).is_some() || node.element(&format!("{name}[x]")).is_some()
        })
    });
    if !known {
        return Err(ErrorKind::UnknownTarget(format!(
            "element of {}",
            describe(&candidates)
        )));
    }
    Ok(item.to_owned())
}
