//! The evaluator: walks the syntax tree over collections of [`Item`]s.

use crate::ast::{BinOp, Expr, Literal, TypeFn, TypeSpec};
use crate::error::EvalError;
use crate::functions::{self, Func, single};
use crate::ops;
use crate::types::{self, Defined, ResolvedType};
use crate::value::{Item, Node};
use caduceus_model::defs::{self, TypeKind};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Deepest recursion of evaluation (nested expressions, `repeat`, `descendants`).
const MAX_DEPTH: usize = crate::parser::MAX_DEPTH + 50;

/// What an evaluation may consult besides the resource: environment variables, the
/// strictness of element checks, and a fixed clock.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    vars: HashMap<String, Vec<Item<'a>>>,
    strict: bool,
    now: Option<crate::datetime::DateTime>,
}

impl<'a> Context<'a> {
    /// A context with no extra variables, lenient navigation and the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `%name` to a collection.
    pub fn with_var(mut self, name: impl Into<String>, value: Vec<Item<'a>>) -> Self {
        self.vars.insert(name.into(), value);
        self
    }

    /// Strict mode: navigating to an element the model does not define (`name.given1`,
    /// `Observation.valueQuantity`), or starting a path with another resource type than the
    /// context's, is an error instead of an empty result. Off by default: search parameter
    /// expressions such as `Account.subject | Patient.link` rely on the lenient form.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Fixes what `now()`, `today()` and `timeOfDay()` return (for reproducible tests).
    pub fn with_now(mut self, now: crate::datetime::DateTime) -> Self {
        self.now = Some(now);
        self
    }

    pub(crate) fn now(&self) -> crate::datetime::DateTime {
        self.now.unwrap_or_else(crate::datetime::now)
    }
}

/// The variables of the current focus: `$this`, `$index`, `$total`.
pub(crate) struct Scope<'s, 'a> {
    pub this: &'s [Item<'a>],
    pub index: Option<usize>,
    pub total: Option<&'s [Item<'a>]>,
}

/// One evaluation in progress.
pub(crate) struct Evaluator<'a, 'c> {
    pub resource: Option<Item<'a>>,
    /// `%context` when it is not the resource (see `Expression::evaluate_on`).
    pub context: Option<Vec<Item<'a>>>,
    pub ctx: &'c Context<'a>,
    depth: usize,
}

impl<'a, 'c> Evaluator<'a, 'c> {
    pub(crate) fn new(resource: &'a Value, ctx: &'c Context<'a>) -> Self {
        let resource = (!resource.is_null()).then(|| Item::Node(Node::root(resource)));
        Evaluator {
            resource,
            context: None,
            ctx,
            depth: 0,
        }
    }

    pub(crate) fn strict(&self) -> bool {
        self.ctx.strict
    }

    /// Evaluates `e` with `$this` = `scope.this`.
    pub(crate) fn eval(
        &mut self,
        e: &Expr,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(EvalError::TooDeep);
        }
        let r = self.eval_inner(e, scope);
        self.depth -= 1;
        r
    }

    /// Evaluates `e` once per item with `$this`/`$index` set (the lambda form of `where` etc.).
    pub(crate) fn eval_on(
        &mut self,
        e: &Expr,
        item: &Item<'a>,
        index: usize,
        total: Option<&[Item<'a>]>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let this = std::slice::from_ref(item);
        let scope = Scope {
            this,
            index: Some(index),
            total,
        };
        self.eval(e, &scope)
    }

    // Each arm of any size lives in its own function: in unoptimised builds a frame holds
    // every arm's locals, and the recursion goes through this function once per level.
    fn eval_inner(&mut self, e: &Expr, scope: &Scope<'_, 'a>) -> Result<Vec<Item<'a>>, EvalError> {
        match e {
            Expr::Literal(l) => Ok(literal(l).into_iter().collect()),
            Expr::Ident(name) => {
                let mut out = Vec::new();
                for item in scope.this {
                    self.root_ident(item, name, &mut out)?;
                }
                Ok(out)
            }
            Expr::Member(target, name) => self.member(target, name, scope),
            Expr::Index(target, idx) => self.index(target, idx, scope),
            Expr::Call(target, func, args) => self.call(target.as_deref(), *func, args, scope),
            Expr::This => Ok(scope.this.to_vec()),
            Expr::IndexVar => Ok(scope
                .index
                .and_then(|i| i64::try_from(i).ok())
                .map(Item::Integer)
                .into_iter()
                .collect()),
            Expr::Total => Ok(scope.total.map(<[Item<'a>]>::to_vec).unwrap_or_default()),
            Expr::Env(name) => self.env(name),
            Expr::Neg(inner) => self.neg(inner, scope),
            Expr::Binary(op, l, r) => self.binary(*op, l, r, scope),
            Expr::Is(inner, spec) => self.is(inner, spec, scope),
            Expr::As(inner, spec) => self.cast(inner, spec, scope),
            Expr::OfType(target, spec, tf) => self.of_type(target.as_deref(), spec, *tf, scope),
        }
    }

    #[inline(never)]
    fn member(
        &mut self,
        target: &Expr,
        name: &str,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        if self.strict() {
            check_cast_member(target, name)?;
        }
        let input = self.eval(target, scope)?;
        let mut out = Vec::new();
        let (mut yes, mut no) = (false, false);
        for item in &input {
            if let Item::Node(n) = item {
                match types::children(n, name, self.strict(), &mut out)? {
                    Defined::Yes | Defined::Unknown => yes = true,
                    Defined::No => no = true,
                }
            }
        }
        if self.strict() && no && !yes {
            return Err(EvalError::Semantic(format!(
                "'{name}' is not an element of the input's type"
            )));
        }
        Ok(out)
    }

    #[inline(never)]
    fn index(
        &mut self,
        target: &Expr,
        idx: &Expr,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let input = self.eval(target, scope)?;
        let idx = self.eval(idx, scope)?;
        match single("indexer", &idx)?.and_then(|i| i.to_system()) {
            Some(Item::Integer(i)) => Ok(usize::try_from(i)
                .ok()
                .and_then(|i| input.into_iter().nth(i))
                .into_iter()
                .collect()),
            None => Ok(Vec::new()),
            Some(_) => Err(EvalError::Type("indexer must be an integer".into())),
        }
    }

    #[inline(never)]
    fn call(
        &mut self,
        target: Option<&Expr>,
        func: Func,
        args: &[Expr],
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        if self.strict() {
            check_ordered(target, func)?;
        }
        let input = match target {
            Some(t) => self.eval(t, scope)?,
            None => scope.this.to_vec(),
        };
        functions::call(self, func, input, args, scope)
    }

    #[inline(never)]
    fn neg(&mut self, inner: &Expr, scope: &Scope<'_, 'a>) -> Result<Vec<Item<'a>>, EvalError> {
        let v = self.eval(inner, scope)?;
        Ok(match single("unary -", &v)?.and_then(|i| i.to_system()) {
            None => Vec::new(),
            Some(Item::Integer(i)) => i.checked_neg().map(Item::Integer).into_iter().collect(),
            Some(Item::Decimal(d)) => vec![Item::Decimal(if d.is_zero() { d } else { -d })],
            Some(Item::Quantity(mut q)) => {
                q.value = -q.value;
                vec![Item::Quantity(q)]
            }
            Some(_) => return Err(EvalError::Type("unary minus needs a number".into())),
        })
    }

    #[inline(never)]
    fn is(
        &mut self,
        inner: &Expr,
        spec: &TypeSpec,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let v = self.eval(inner, scope)?;
        Ok(match single("is", &v)? {
            None => Vec::new(),
            Some(item) => vec![Item::Boolean(types::is_type(
                item,
                types::resolve_type(spec),
            ))],
        })
    }

    #[inline(never)]
    fn cast(
        &mut self,
        inner: &Expr,
        spec: &TypeSpec,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let v = self.eval(inner, scope)?;
        let ty = resolve(spec)?;
        if self.strict() && v.len() > 1 {
            return Err(EvalError::NotSingleton("as", v.len()));
        }
        Ok(v.into_iter()
            .filter(|i| types::is_cast_type(i, ty))
            .collect())
    }

    #[inline(never)]
    fn of_type(
        &mut self,
        target: Option<&Expr>,
        spec: &TypeSpec,
        tf: TypeFn,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let input = match target {
            Some(t) => self.eval(t, scope)?,
            None => scope.this.to_vec(),
        };
        let ty = resolve(spec)?;
        Ok(match tf {
            TypeFn::OfType | TypeFn::As => {
                if tf == TypeFn::As && self.strict() && input.len() > 1 {
                    return Err(EvalError::NotSingleton("as", input.len()));
                }
                input
                    .into_iter()
                    .filter(|i| types::is_cast_type(i, ty))
                    .collect()
            }
            TypeFn::Is => match single("is", &input)? {
                None => Vec::new(),
                Some(item) => vec![Item::Boolean(types::is_type(item, ty))],
            },
        })
    }

    /// An identifier at the start of a path: the context resource when it names its type,
    /// otherwise a child element.
    fn root_ident(
        &mut self,
        item: &Item<'a>,
        name: &str,
        out: &mut Vec<Item<'a>>,
    ) -> Result<(), EvalError> {
        let Item::Node(n) = item else { return Ok(()) };
        if name.starts_with(|c: char| c.is_ascii_uppercase())
            && let Some(t) = defs::type_by_name(name)
        {
            let td = defs::type_def(t);
            if td.kind == TypeKind::Resource
                || types::type_name(n.ty).is_some_and(|own| own == name)
            {
                if types::is_type(item, ResolvedType::Fhir(t)) {
                    out.push(item.clone());
                } else if self.strict() {
                    return Err(EvalError::Semantic(format!(
                        "the context is {}, not {name}",
                        types::node_type_name(n)
                    )));
                }
                return Ok(());
            }
        }
        if types::children(n, name, self.strict(), out)? == Defined::No && self.strict() {
            return Err(EvalError::Semantic(format!(
                "'{name}' is not an element of {}",
                types::node_type_name(n)
            )));
        }
        Ok(())
    }

    fn env(&self, name: &str) -> Result<Vec<Item<'a>>, EvalError> {
        if let Some(v) = self.ctx.vars.get(name) {
            return Ok(v.clone());
        }
        let s = |t: &'static str| Ok(vec![Item::String(Cow::Borrowed(t))]);
        match name {
            "context" if self.context.is_some() => Ok(self.context.clone().unwrap_or_default()),
            "resource" | "context" | "rootResource" => {
                Ok(self.resource.clone().into_iter().collect())
            }
            "ucum" => s("http://unitsofmeasure.org"),
            "sct" => s("http://snomed.info/sct"),
            "loinc" => s("http://loinc.org"),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    return Ok(vec![Item::String(Cow::Owned(format!(
                        "http://hl7.org/fhir/ValueSet/{vs}"
                    )))]);
                }
                if let Some(ext) = name.strip_prefix("ext-") {
                    return Ok(vec![Item::String(Cow::Owned(format!(
                        "http://hl7.org/fhir/StructureDefinition/{ext}"
                    )))]);
                }
                Err(EvalError::UndefinedVariable(name.to_string()))
            }
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        l: &Expr,
        r: &Expr,
        scope: &Scope<'_, 'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let left = self.eval(l, scope)?;
        // short-circuit the boolean operators where the left side decides
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies => {
                let a = ops::to_bool3(&left, op)?;
                match (op, a) {
                    (BinOp::And, Some(false)) => return Ok(vec![Item::Boolean(false)]),
                    (BinOp::Or, Some(true)) => return Ok(vec![Item::Boolean(true)]),
                    (BinOp::Implies, Some(false)) => return Ok(vec![Item::Boolean(true)]),
                    _ => {}
                }
                let right = self.eval(r, scope)?;
                let b = ops::to_bool3(&right, op)?;
                return Ok(ops::logic(op, a, b)
                    .map(Item::Boolean)
                    .into_iter()
                    .collect());
            }
            _ => {}
        }
        let right = self.eval(r, scope)?;
        ops::binary(op, left, right)
    }
}

/// Strict mode: a member of a cast (`(Observation.value as Period).unit`) must be an element
/// of the type cast to, whether or not the cast finds anything.
fn check_cast_member(target: &Expr, name: &str) -> Result<(), EvalError> {
    let spec = match target {
        Expr::As(_, spec) => spec,
        Expr::OfType(_, spec, TypeFn::As | TypeFn::OfType) => spec,
        _ => return Ok(()),
    };
    if let ResolvedType::Fhir(t) = types::resolve_type(spec)
        && types::defines(t, name) == Defined::No
    {
        return Err(EvalError::Semantic(format!(
            "'{name}' is not an element of {}",
            spec.name
        )));
    }
    Ok(())
}

/// Strict mode: functions that depend on order may not follow `children()`/`descendants()`,
/// whose order is not defined.
fn check_ordered(target: Option<&Expr>, func: Func) -> Result<(), EvalError> {
    let ordered = matches!(
        func,
        Func::First | Func::Last | Func::Tail | Func::Skip | Func::Take
    );
    if ordered && let Some(Expr::Call(_, Func::Children | Func::Descendants, _)) = target {
        return Err(EvalError::Semantic(format!(
            "{}() depends on order, and the order of children()/descendants() is not defined",
            func.name()
        )));
    }
    Ok(())
}

/// Resolves a type specifier; an unknown type name is an error.
fn resolve(spec: &crate::ast::TypeSpec) -> Result<ResolvedType, EvalError> {
    match types::resolve_type(spec) {
        ResolvedType::Unknown if spec.namespace.as_deref() != Some("System") => {
            Err(EvalError::Semantic(format!("unknown type {}", spec.name)))
        }
        t => Ok(t),
    }
}

/// The value of a literal.
pub(crate) fn literal(l: &Literal) -> Option<Item<'static>> {
    Some(match l {
        Literal::Empty => return None,
        Literal::Boolean(b) => Item::Boolean(*b),
        Literal::String(s) => Item::String(Cow::Owned(s.clone())),
        Literal::Integer(i) => Item::Integer(*i),
        Literal::Decimal(d) => Item::Decimal(*d),
        Literal::Date(d) => Item::Date(*d),
        Literal::DateTime(d) => Item::DateTime(*d),
        Literal::Time(t) => Item::Time(*t),
        Literal::Quantity(q) => Item::Quantity(q.clone()),
    })
}
