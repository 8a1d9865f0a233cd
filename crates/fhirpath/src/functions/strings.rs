//! String functions.

use super::{Func, single};
use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::value::Item;
use regex::Regex;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Compiles a regular expression, reusing compiled ones (a bounded per-thread cache).
fn regex(pattern: &str) -> Result<Regex, EvalError> {
    REGEX_CACHE.with(|c| {
        if let Some(r) = c.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = regex::RegexBuilder::new(pattern)
            .dot_matches_new_line(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| EvalError::Regex(e.to_string()))?;
        let mut c = c.borrow_mut();
        if c.len() >= 256 {
            c.clear();
        }
        c.insert(pattern.to_string(), r.clone());
        Ok(r)
    })
}

fn str_arg<'a>(
    ev: &mut Evaluator<'a, '_>,
    args: &[Expr],
    i: usize,
    scope: &Scope<'_, 'a>,
    what: &'static str,
) -> Result<Option<Cow<'a, str>>, EvalError> {
    let a = args.get(i).ok_or_else(|| EvalError::Arity(what.into()))?;
    let v = ev.eval(a, scope)?;
    match single(what, &v)? {
        None => Ok(None),
        Some(item) => match item.as_str() {
            Some(s) => Ok(Some(s)),
            None => Err(EvalError::Type(format!(
                "{what}(): argument must be a string"
            ))),
        },
    }
}

fn int_arg<'a>(
    ev: &mut Evaluator<'a, '_>,
    args: &[Expr],
    i: usize,
    scope: &Scope<'_, 'a>,
    what: &'static str,
) -> Result<Option<i64>, EvalError> {
    let Some(a) = args.get(i) else {
        return Ok(None);
    };
    let v = ev.eval(a, scope)?;
    match single(what, &v)?.and_then(Item::to_system) {
        None => Ok(None),
        Some(Item::Integer(n)) => Ok(Some(n)),
        Some(_) => Err(EvalError::Type(format!(
            "{what}(): argument must be an integer"
        ))),
    }
}

fn b(v: bool) -> Vec<Item<'static>> {
    vec![Item::Boolean(v)]
}

fn s<'a>(v: impl Into<Cow<'a, str>>) -> Vec<Item<'a>> {
    vec![Item::String(v.into())]
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    let name = func.name();
    if func == Func::Join {
        let sep = match args.first() {
            Some(_) => str_arg(ev, args, 0, scope, name)?.unwrap_or_default(),
            None => Cow::Borrowed(""),
        };
        let parts: Vec<Cow<'a, str>> = input.iter().filter_map(Item::as_str).collect();
        return Ok(s(parts.join(&sep)));
    }
    let Some(item) = single(name, &input)? else {
        return Ok(Vec::new());
    };
    let Some(text) = item.as_str() else {
        return Err(EvalError::Type(format!(
            "{name}() needs a string, not {}",
            item.type_name().1
        )));
    };
    let empty = Ok(Vec::new());
    Ok(match func {
        Func::IndexOf => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(sub) => {
                let i = text.find(sub.as_ref()).map_or(-1, |byte| {
                    i64::try_from(text[..byte].chars().count()).unwrap_or(-1)
                });
                vec![Item::Integer(i)]
            }
        },
        Func::Substring => {
            let Some(start) = int_arg(ev, args, 0, scope, name)? else {
                return empty;
            };
            let len = int_arg(ev, args, 1, scope, name)?;
            let count = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
            if start < 0 || start >= count {
                return empty;
            }
            if args.len() > 1 && len.is_none() {
                return empty;
            }
            let take = len.map_or(usize::MAX, |l| usize::try_from(l.max(0)).unwrap_or(0));
            let start = usize::try_from(start).unwrap_or(0);
            s(text.chars().skip(start).take(take).collect::<String>())
        }
        Func::StartsWith => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(p) => b(text.starts_with(p.as_ref())),
        },
        Func::EndsWith => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(p) => b(text.ends_with(p.as_ref())),
        },
        Func::Contains => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(p) => b(text.contains(p.as_ref())),
        },
        Func::Upper => s(text.to_uppercase()),
        Func::Lower => s(text.to_lowercase()),
        Func::Replace => {
            let (Some(pat), Some(rep)) = (
                str_arg(ev, args, 0, scope, name)?,
                str_arg(ev, args, 1, scope, name)?,
            ) else {
                return empty;
            };
            s(text.replace(pat.as_ref(), &rep))
        }
        Func::Matches => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(p) => b(regex(&p)?.is_match(&text)),
        },
        Func::MatchesFull => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(p) => b(regex(&format!("^(?:{p})$"))?.is_match(&text)),
        },
        Func::ReplaceMatches => {
            let (Some(pat), Some(rep)) = (
                str_arg(ev, args, 0, scope, name)?,
                str_arg(ev, args, 1, scope, name)?,
            ) else {
                return empty;
            };
            if pat.is_empty() {
                return Ok(vec![Item::String(text)]);
            }
            s(regex(&pat)?.replace_all(&text, rep.as_ref()).into_owned())
        }
        Func::Length => vec![Item::Integer(
            i64::try_from(text.chars().count()).unwrap_or(i64::MAX),
        )],
        Func::ToChars => text
            .chars()
            .map(|c| Item::String(Cow::Owned(c.to_string())))
            .collect(),
        Func::Trim => s(text.trim().to_string()),
        Func::Split => match str_arg(ev, args, 0, scope, name)? {
            None => return empty,
            Some(sep) => text
                .split(sep.as_ref())
                .map(|p| Item::String(Cow::Owned(p.to_string())))
                .collect(),
        },
        _ => Vec::new(),
    })
}
