//! Filtering and projection (`where`, `select`, `repeat`, `aggregate`), subsetting
//! (`first`, `skip`, `intersect`, ...), combining (`union`, `combine`), tree navigation
//! (`children`, `descendants`) and `trace`.

use super::existence::criteria;
use super::{Func, single};
use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::ops::{contains, push_distinct};
use crate::types;
use crate::value::Item;

/// Most items `repeat`/`descendants` may produce (guards against runaway expansion).
const MAX_ITEMS: usize = 1_000_000;

fn int_arg<'a>(
    ev: &mut Evaluator<'a, '_>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
    what: &'static str,
) -> Result<Option<i64>, EvalError> {
    let a = args.first().ok_or_else(|| EvalError::Arity(what.into()))?;
    let v = ev.eval(a, scope)?;
    match single(what, &v)?.and_then(Item::to_system) {
        None => Ok(None),
        Some(Item::Integer(i)) => Ok(Some(i)),
        Some(_) => Err(EvalError::Type(format!("{what}() needs an integer"))),
    }
}

fn children_of<'a>(input: &[Item<'a>], out: &mut Vec<Item<'a>>) {
    for i in input {
        if let Item::Node(n) = i {
            types::all_children(n, out);
        }
    }
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    let arg0 = || {
        args.first()
            .ok_or_else(|| EvalError::Arity(func.name().into()))
    };
    Ok(match func {
        Func::Where => {
            let c = arg0()?;
            let mut out = Vec::new();
            for (i, item) in input.iter().enumerate() {
                let r = ev.eval_on(c, item, i, None)?;
                if criteria(&r, "where")? == Some(true) {
                    out.push(item.clone());
                }
            }
            out
        }
        Func::Select => {
            let c = arg0()?;
            let mut out = Vec::new();
            for (i, item) in input.iter().enumerate() {
                out.extend(ev.eval_on(c, item, i, None)?);
            }
            out
        }
        Func::Repeat => {
            let c = arg0()?;
            let mut out: Vec<Item<'a>> = Vec::new();
            let mut frontier = input;
            while !frontier.is_empty() {
                let mut next = Vec::new();
                for (i, item) in frontier.iter().enumerate() {
                    for r in ev.eval_on(c, item, i, None)? {
                        if !contains(&out, &r) {
                            out.push(r.clone());
                            next.push(r);
                        }
                    }
                }
                if out.len() > MAX_ITEMS {
                    return Err(EvalError::TooDeep);
                }
                frontier = next;
            }
            out
        }
        Func::Aggregate => {
            let c = arg0()?;
            let mut total = match args.get(1) {
                Some(init) => ev.eval(init, scope)?,
                None => Vec::new(),
            };
            for (i, item) in input.iter().enumerate() {
                total = ev.eval_on(c, item, i, Some(&total))?;
            }
            total
        }
        Func::Single => match input.len() {
            0 | 1 => input,
            n => return Err(EvalError::NotSingleton("single", n)),
        },
        Func::First => input.into_iter().take(1).collect(),
        Func::Last => input.into_iter().last().into_iter().collect(),
        Func::Tail => input.into_iter().skip(1).collect(),
        Func::Skip => {
            let n = int_arg(ev, args, scope, "skip")?.unwrap_or(0);
            input
                .into_iter()
                .skip(usize::try_from(n).unwrap_or(0))
                .collect()
        }
        Func::Take => {
            let n = int_arg(ev, args, scope, "take")?.unwrap_or(0);
            input
                .into_iter()
                .take(usize::try_from(n).unwrap_or(0))
                .collect()
        }
        Func::Intersect => {
            let other = ev.eval(arg0()?, scope)?;
            let mut out = Vec::new();
            push_distinct(&mut out, input.into_iter().filter(|i| contains(&other, i)));
            out
        }
        Func::Exclude => {
            let other = ev.eval(arg0()?, scope)?;
            input.into_iter().filter(|i| !contains(&other, i)).collect()
        }
        Func::Union => {
            let other = ev.eval(arg0()?, scope)?;
            let mut out = Vec::new();
            push_distinct(&mut out, input);
            push_distinct(&mut out, other);
            out
        }
        Func::Combine => {
            let other = ev.eval(arg0()?, scope)?;
            let mut out = input;
            out.extend(other);
            out
        }
        Func::Children => {
            let mut out = Vec::new();
            children_of(&input, &mut out);
            out
        }
        Func::Descendants => {
            let mut out = Vec::new();
            let mut frontier = input;
            while !frontier.is_empty() {
                let mut next = Vec::new();
                children_of(&frontier, &mut next);
                if out.len() + next.len() > MAX_ITEMS {
                    return Err(EvalError::TooDeep);
                }
                out.extend(next.iter().cloned());
                frontier = next;
            }
            out
        }
        Func::Trace => {
            // Evaluated for its side effect in other engines; here it returns its input
            // unchanged (no logging: the input may hold patient data).
            if let Some(p) = args.get(1) {
                for (i, item) in input.iter().enumerate() {
                    ev.eval_on(p, item, i, None)?;
                }
            }
            input
        }
        _ => Vec::new(),
    })
}
