//! Math functions.

use super::{Func, single};
use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::value::Item;
use rust_decimal::MathematicalOps;
use rust_decimal::prelude::*;

/// Runs a transcendental function in binary floating point (exact decimals have no use
/// for `ln(2)`), returning the result as a decimal with at most 15 significant digits.
fn via_f64(x: Decimal, f: impl Fn(f64) -> f64) -> Option<Decimal> {
    let r = f(x.to_f64()?);
    if !r.is_finite() {
        return None;
    }
    let d = Decimal::from_f64(r)?;
    let digits = d.abs().trunc().to_string().trim_start_matches('0').len();
    let dp = u32::try_from(15usize.saturating_sub(digits)).unwrap_or(0);
    Some(d.round_dp(dp).normalize())
}

fn int_of(d: Decimal) -> Option<i64> {
    d.trunc().to_i64()
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    let name = func.name();
    let Some(item) = single(name, &input)? else {
        return Ok(Vec::new());
    };
    let arg = match args.first() {
        Some(a) => {
            let v = ev.eval(a, scope)?;
            match single(name, &v)?.and_then(Item::to_system) {
                None => return Ok(Vec::new()),
                Some(Item::Integer(i)) => Some(Item::Integer(i)),
                Some(Item::Decimal(d)) => Some(Item::Decimal(d)),
                Some(_) => {
                    return Err(EvalError::Type(format!(
                        "{name}(): argument must be a number"
                    )));
                }
            }
        }
        None => None,
    };
    let value = item.to_system();
    if let (Func::Abs, Some(Item::Quantity(mut q))) = (func, value.clone()) {
        q.value = q.value.abs();
        return Ok(vec![Item::Quantity(q)]);
    }
    let (is_int, x) = match value {
        Some(Item::Integer(i)) => (true, Decimal::from(i)),
        Some(Item::Decimal(d)) => (false, d),
        _ => return Err(EvalError::Type(format!("{name}() needs a number"))),
    };
    let arg_dec = match &arg {
        Some(Item::Integer(i)) => Some(Decimal::from(*i)),
        Some(Item::Decimal(d)) => Some(*d),
        _ => None,
    };
    let dec = |d: Option<Decimal>| d.map(Item::Decimal).into_iter().collect::<Vec<_>>();
    let int = |d: Option<Decimal>| {
        d.and_then(int_of)
            .map(Item::Integer)
            .into_iter()
            .collect::<Vec<_>>()
    };
    Ok(match func {
        Func::Abs => {
            if is_int {
                int(Some(x.abs()))
            } else {
                dec(Some(x.abs()))
            }
        }
        Func::Ceiling => int(Some(x.ceil())),
        Func::Floor => int(Some(x.floor())),
        Func::Truncate => int(Some(x.trunc())),
        Func::Exp => dec(via_f64(x, f64::exp)),
        Func::Ln => {
            if x <= Decimal::ZERO {
                Vec::new()
            } else {
                dec(via_f64(x, f64::ln))
            }
        }
        Func::Log => {
            let Some(base) = arg_dec else {
                return Ok(Vec::new());
            };
            if x <= Decimal::ZERO || base <= Decimal::ZERO || base == Decimal::ONE {
                return Ok(Vec::new());
            }
            let b = base.to_f64().unwrap_or(f64::NAN);
            dec(via_f64(x, |v| v.log(b)))
        }
        Func::Power => {
            let Some(p) = arg_dec else {
                return Ok(Vec::new());
            };
            if is_int && matches!(arg, Some(Item::Integer(_))) {
                match (int_of(x), int_of(p)) {
                    (Some(b), Some(e)) if e >= 0 => u32::try_from(e)
                        .ok()
                        .and_then(|e| b.checked_pow(e))
                        .map(Item::Integer)
                        .into_iter()
                        .collect(),
                    _ => dec(via_f64(x, |v| v.powf(p.to_f64().unwrap_or(f64::NAN)))),
                }
            } else if x < Decimal::ZERO && !p.fract().is_zero() {
                Vec::new()
            } else {
                dec(via_f64(x, |v| v.powf(p.to_f64().unwrap_or(f64::NAN))))
            }
        }
        Func::Round => {
            let dp = match arg {
                Some(Item::Integer(n)) if n >= 0 => u32::try_from(n).unwrap_or(0),
                None => 0,
                _ => {
                    return Err(EvalError::Type(
                        "round(): precision must be a non-negative integer".into(),
                    ));
                }
            };
            dec(Some(x.round_dp_with_strategy(
                dp,
                RoundingStrategy::MidpointAwayFromZero,
            )))
        }
        Func::Sqrt => {
            if x < Decimal::ZERO {
                Vec::new()
            } else {
                dec(x.sqrt().map(|d| d.normalize()))
            }
        }
        _ => Vec::new(),
    })
}
