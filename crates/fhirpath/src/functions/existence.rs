//! Existence functions (`empty`, `exists`, `all`, `count`, `distinct`, ...), plus `not` and `iif`.

use super::{Func, single};
use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::ops::{contains, push_distinct};
use crate::value::Item;

fn one(b: bool) -> Vec<Item<'static>> {
    vec![Item::Boolean(b)]
}

/// The boolean of a criteria result (empty → `None`; one non-boolean item → error).
pub(crate) fn criteria(v: &[Item<'_>], what: &'static str) -> Result<Option<bool>, EvalError> {
    match single(what, v)? {
        None => Ok(None),
        Some(i) => match i.as_bool() {
            Some(b) => Ok(Some(b)),
            None => Err(EvalError::Type(format!("{what}: criteria must be boolean"))),
        },
    }
}

fn bools(input: &[Item<'_>], what: &'static str) -> Result<Vec<bool>, EvalError> {
    input
        .iter()
        .map(|i| {
            i.as_bool()
                .ok_or_else(|| EvalError::Type(format!("{what}() needs booleans")))
        })
        .collect()
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    Ok(match func {
        Func::Empty => one(input.is_empty()),
        Func::Exists => match args.first() {
            None => one(!input.is_empty()),
            Some(c) => {
                for (i, item) in input.iter().enumerate() {
                    let r = ev.eval_on(c, item, i, None)?;
                    if criteria(&r, "exists")? == Some(true) {
                        return Ok(one(true));
                    }
                }
                one(false)
            }
        },
        Func::All => {
            let c = args.first().ok_or_else(|| EvalError::Arity("all".into()))?;
            for (i, item) in input.iter().enumerate() {
                let r = ev.eval_on(c, item, i, None)?;
                if criteria(&r, "all")? != Some(true) {
                    return Ok(one(false));
                }
            }
            one(true)
        }
        Func::AllTrue => one(bools(&input, "allTrue")?.iter().all(|b| *b)),
        Func::AnyTrue => one(bools(&input, "anyTrue")?.iter().any(|b| *b)),
        Func::AllFalse => one(bools(&input, "allFalse")?.iter().all(|b| !*b)),
        Func::AnyFalse => one(bools(&input, "anyFalse")?.iter().any(|b| !*b)),
        Func::SubsetOf | Func::SupersetOf => {
            let a = args
                .first()
                .ok_or_else(|| EvalError::Arity("subsetOf".into()))?;
            let other = ev.eval(a, scope)?;
            let (small, big) = if func == Func::SubsetOf {
                (&input, &other)
            } else {
                (&other, &input)
            };
            one(small.iter().all(|i| contains(big, i)))
        }
        Func::Count => vec![Item::Integer(
            i64::try_from(input.len()).unwrap_or(i64::MAX),
        )],
        Func::Distinct => {
            let mut out = Vec::with_capacity(input.len());
            push_distinct(&mut out, input);
            out
        }
        Func::IsDistinct => {
            let n = input.len();
            let mut out = Vec::with_capacity(n);
            push_distinct(&mut out, input);
            one(out.len() == n)
        }
        Func::Not => match single("not", &input)? {
            None => Vec::new(),
            Some(i) => one(!i.as_bool().unwrap_or(true)),
        },
        Func::Iif => {
            if input.len() > 1 {
                return Err(EvalError::NotSingleton("iif", input.len()));
            }
            let (Some(c), Some(t)) = (args.first(), args.get(1)) else {
                return Err(EvalError::Arity("iif".into()));
            };
            let inner = Scope {
                this: &input,
                index: scope.index,
                total: scope.total,
            };
            let cond = ev.eval(c, &inner)?;
            let cond = match single("iif", &cond)? {
                None => None,
                Some(i) => match i.as_bool() {
                    Some(b) => Some(b),
                    None => return Err(EvalError::Type("iif: criterion must be boolean".into())),
                },
            };
            if cond == Some(true) {
                ev.eval(t, &inner)?
            } else if let Some(f) = args.get(2) {
                ev.eval(f, &inner)?
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    })
}
