//! The function library: names and arities (checked at parse time), and the
//! implementations, grouped by the specification's sections.

mod conversion;
mod existence;
mod extra;
mod fhir;
mod math;
mod strings;
mod subsetting;

use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::value::Item;

macro_rules! funcs {
    ($($variant:ident = $name:literal, $min:literal ..= $max:literal;)*) => {
        /// A function of the library, resolved at parse time.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Func { $($variant,)* }

        impl Func {
            /// The function called `name` with `n` arguments, or why there is none.
            pub(crate) fn lookup(name: &str, n: usize) -> Result<Func, String> {
                match name {
                    $($name => if ($min..=$max).contains(&n) {
                        Ok(Func::$variant)
                    } else {
                        Err(format!("{}() takes {} to {} arguments, got {}", $name, $min, $max, n))
                    },)*
                    _ => Err(format!("unknown function {name}()")),
                }
            }

            /// The function's name as written.
            pub fn name(self) -> &'static str {
                match self { $(Func::$variant => $name,)* }
            }
        }
    };
}

funcs! {
    Empty = "empty", 0..=0;
    Exists = "exists", 0..=1;
    All = "all", 1..=1;
    AllTrue = "allTrue", 0..=0;
    AnyTrue = "anyTrue", 0..=0;
    AllFalse = "allFalse", 0..=0;
    AnyFalse = "anyFalse", 0..=0;
    SubsetOf = "subsetOf", 1..=1;
    SupersetOf = "supersetOf", 1..=1;
    Count = "count", 0..=0;
    Distinct = "distinct", 0..=0;
    IsDistinct = "isDistinct", 0..=0;
    Where = "where", 1..=1;
    Select = "select", 1..=1;
    Repeat = "repeat", 1..=1;
    Aggregate = "aggregate", 1..=2;
    Single = "single", 0..=0;
    First = "first", 0..=0;
    Last = "last", 0..=0;
    Tail = "tail", 0..=0;
    Skip = "skip", 1..=1;
    Take = "take", 1..=1;
    Intersect = "intersect", 1..=1;
    Exclude = "exclude", 1..=1;
    Union = "union", 1..=1;
    Combine = "combine", 1..=1;
    Iif = "iif", 2..=3;
    Not = "not", 0..=0;
    ToBoolean = "toBoolean", 0..=0;
    ConvertsToBoolean = "convertsToBoolean", 0..=0;
    ToInteger = "toInteger", 0..=0;
    ConvertsToInteger = "convertsToInteger", 0..=0;
    ToDecimal = "toDecimal", 0..=0;
    ConvertsToDecimal = "convertsToDecimal", 0..=0;
    ToDate = "toDate", 0..=0;
    ConvertsToDate = "convertsToDate", 0..=0;
    ToDateTime = "toDateTime", 0..=0;
    ConvertsToDateTime = "convertsToDateTime", 0..=0;
    ToTime = "toTime", 0..=0;
    ConvertsToTime = "convertsToTime", 0..=0;
    ToQuantity = "toQuantity", 0..=1;
    ConvertsToQuantity = "convertsToQuantity", 0..=1;
    ToString = "toString", 0..=0;
    ConvertsToString = "convertsToString", 0..=0;
    IndexOf = "indexOf", 1..=1;
    Substring = "substring", 1..=2;
    StartsWith = "startsWith", 1..=1;
    EndsWith = "endsWith", 1..=1;
    Contains = "contains", 1..=1;
    Upper = "upper", 0..=0;
    Lower = "lower", 0..=0;
    Replace = "replace", 2..=2;
    Matches = "matches", 1..=1;
    ReplaceMatches = "replaceMatches", 2..=2;
    Length = "length", 0..=0;
    ToChars = "toChars", 0..=0;
    Trim = "trim", 0..=0;
    Split = "split", 1..=1;
    Join = "join", 0..=1;
    Abs = "abs", 0..=0;
    Ceiling = "ceiling", 0..=0;
    Exp = "exp", 0..=0;
    Floor = "floor", 0..=0;
    Ln = "ln", 0..=0;
    Log = "log", 1..=1;
    Power = "power", 1..=1;
    Round = "round", 0..=1;
    Sqrt = "sqrt", 0..=0;
    Truncate = "truncate", 0..=0;
    Children = "children", 0..=0;
    Descendants = "descendants", 0..=0;
    Trace = "trace", 1..=2;
    Now = "now", 0..=0;
    Today = "today", 0..=0;
    TimeOfDay = "timeOfDay", 0..=0;
    Extension = "extension", 1..=1;
    HasValue = "hasValue", 0..=0;
    GetValue = "getValue", 0..=0;
    Resolve = "resolve", 0..=0;
    MemberOf = "memberOf", 1..=1;
    ConformsTo = "conformsTo", 1..=1;
    HtmlChecks = "htmlChecks", 0..=0;
    ElementDefinition = "elementDefinition", 0..=0;
    Slice = "slice", 2..=2;
    CheckModifiers = "checkModifiers", 1..=1;
    MatchesFull = "matchesFull", 1..=1;
    Sort = "sort", 0..=16;
    Type = "type", 0..=0;
    LowBoundary = "lowBoundary", 0..=1;
    HighBoundary = "highBoundary", 0..=1;
    Precision = "precision", 0..=0;
    Comparable = "comparable", 1..=1;
    Encode = "encode", 1..=1;
    Decode = "decode", 1..=1;
    Escape = "escape", 1..=1;
    Unescape = "unescape", 1..=1;
}

/// Calls `func` on `input`, with `args` unevaluated (some take expressions evaluated per item).
pub(crate) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    use Func::*;
    match func {
        Empty | Exists | All | AllTrue | AnyTrue | AllFalse | AnyFalse | SubsetOf | SupersetOf
        | Count | Distinct | IsDistinct | Not | Iif => {
            existence::call(ev, func, input, args, scope)
        }
        Where | Select | Repeat | Aggregate | Single | First | Last | Tail | Skip | Take
        | Intersect | Exclude | Union | Combine | Children | Descendants | Trace => {
            subsetting::call(ev, func, input, args, scope)
        }
        ToBoolean | ConvertsToBoolean | ToInteger | ConvertsToInteger | ToDecimal
        | ConvertsToDecimal | ToDate | ConvertsToDate | ToDateTime | ConvertsToDateTime
        | ToTime | ConvertsToTime | ToQuantity | ConvertsToQuantity | ToString
        | ConvertsToString | Now | Today | TimeOfDay => {
            conversion::call(ev, func, input, args, scope)
        }
        IndexOf | Substring | StartsWith | EndsWith | Contains | Upper | Lower | Replace
        | Matches | MatchesFull | ReplaceMatches | Length | ToChars | Trim | Split | Join => {
            strings::call(ev, func, input, args, scope)
        }
        Abs | Ceiling | Exp | Floor | Ln | Log | Power | Round | Sqrt | Truncate => {
            math::call(ev, func, input, args, scope)
        }
        Extension | HasValue | GetValue | Resolve | MemberOf | ConformsTo | HtmlChecks
        | ElementDefinition | Slice | CheckModifiers => fhir::call(ev, func, input, args, scope),
        Sort | Type | LowBoundary | HighBoundary | Precision | Comparable | Encode | Decode
        | Escape | Unescape => extra::call(ev, func, input, args, scope),
    }
}

/// The single item of `input` (empty → `None`; more than one → error).
pub(crate) fn single<'x, 'a>(
    what: &'static str,
    input: &'x [Item<'a>],
) -> Result<Option<&'x Item<'a>>, EvalError> {
    match input {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(EvalError::NotSingleton(what, many.len())),
    }
}
