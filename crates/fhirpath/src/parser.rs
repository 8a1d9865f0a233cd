//! A precedence-climbing parser for the FHIRPath grammar.
//!
//! Precedence, loosest first: `implies`; `or` `xor`; `and`; `in` `contains`; `=` `~` `!=`
//! `!~`; `<` `>` `<=` `>=`; `|`; `is` `as`; `+` `-` `&`; `*` `/` `div` `mod`; unary `+` `-`;
//! then `.` and `[]`.

use crate::ast::{BinOp, Expr, Literal, TypeFn, TypeSpec};
use crate::datetime::{Date, DateTime, Time};
use crate::error::ParseError;
use crate::functions::Func;
use crate::lexer::{Tok, Token, tokenize};
use crate::quantity::{Quantity, calendar_unit};
use rust_decimal::Decimal;

/// Deepest syntax tree the parser builds (guards the stack against hostile input: evaluating,
/// cloning and dropping a tree recurse once per level). Every level counts: nesting, each
/// operator of a chain `a | b | c`, each step of a path `a.b.c`.
pub(crate) const MAX_DEPTH: usize = 300;

/// Parses a whole expression.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let e = p.expr(0)?;
    match &p.peek().kind {
        Tok::Eof => Ok(e),
        other => Err(ParseError::new(
            p.peek().offset,
            format!("unexpected {other:?}"),
        )),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// The binary operator a token stands for, with its precedence level (higher binds tighter).
fn binop(tok: &Tok) -> Option<(BinOp, u8)> {
    Some(match tok {
        Tok::Ident {
            name,
            quoted: false,
        } => match name.as_str() {
            "implies" => (BinOp::Implies, 1),
            "or" => (BinOp::Or, 2),
            "xor" => (BinOp::Xor, 2),
            "and" => (BinOp::And, 3),
            "in" => (BinOp::In, 4),
            "contains" => (BinOp::Contains, 4),
            "div" => (BinOp::IntDiv, 10),
            "mod" => (BinOp::Mod, 10),
            _ => return None,
        },
        Tok::Sym(s) => match *s {
            "=" => (BinOp::Eq, 5),
            "~" => (BinOp::Equiv, 5),
            "!=" => (BinOp::Ne, 5),
            "!~" => (BinOp::NotEquiv, 5),
            "<" => (BinOp::Lt, 6),
            ">" => (BinOp::Gt, 6),
            "<=" => (BinOp::Le, 6),
            ">=" => (BinOp::Ge, 6),
            "|" => (BinOp::Union, 7),
            "+" => (BinOp::Add, 9),
            "-" => (BinOp::Sub, 9),
            "&" => (BinOp::Concat, 9),
            "*" => (BinOp::Mul, 10),
            "/" => (BinOp::Div, 10),
            _ => return None,
        },
        _ => return None,
    })
}

const TYPE_OP_LEVEL: u8 = 8;

impl Parser {
    fn peek(&self) -> &Token {
        // the token list always ends with Eof, and `pos` never passes it
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::new(self.peek().offset, msg))
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(&self.peek().kind, Tok::Sym(x) if *x == s)
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), ParseError> {
        if self.is_sym(s) {
            self.next();
            Ok(())
        } else {
            self.err(format!("expected '{s}'"))
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
        // a nested expression costs the parser three frames (expr, unary, term): count two
        self.depth += 2;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        let mut lhs = self.unary()?;
        let mut chain = 0;
        loop {
            let tok = &self.peek().kind;
            if let Tok::Ident {
                name,
                quoted: false,
            } = tok
                && (name == "is" || name == "as")
                && TYPE_OP_LEVEL >= min
            {
                let is = name == "is";
                self.next();
                let spec = self.type_spec()?;
                lhs = if is {
                    Expr::Is(Box::new(lhs), spec)
                } else {
                    Expr::As(Box::new(lhs), spec)
                };
                self.deeper(&mut chain)?;
                continue;
            }
            let Some((op, level)) = binop(tok) else { break };
            if level < min {
                break;
            }
            self.next();
            let rhs = self.expr(level + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
            self.deeper(&mut chain)?;
        }
        self.depth -= 2 + chain;
        Ok(lhs)
    }

    /// One more level of a left-deep chain (`a | b | c`, `a.b.c`).
    fn deeper(&mut self, chain: &mut usize) -> Result<(), ParseError> {
        *chain += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        Ok(())
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let first = match self.next().kind {
            Tok::Ident { name, .. } => name,
            _ => return self.err("expected a type name"),
        };
        if self.is_sym(".")
            && let Some(Token {
                kind: Tok::Ident { name, .. },
                ..
            }) = self.tokens.get(self.pos + 1).cloned()
        {
            self.next();
            self.next();
            return Ok(TypeSpec {
                namespace: Some(first),
                name,
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name: first,
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_sym("-") || self.is_sym("+") {
            let neg = self.is_sym("-");
            self.next();
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return self.err("expression nested too deeply");
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(if neg {
                match inner {
                    Expr::Literal(Literal::Integer(i)) => Expr::Literal(Literal::Integer(-i)),
                    Expr::Literal(Literal::Decimal(d)) => Expr::Literal(Literal::Decimal(-d)),
                    Expr::Literal(Literal::Quantity(mut q)) => {
                        q.value = -q.value;
                        Expr::Literal(Literal::Quantity(q))
                    }
                    other => Expr::Neg(Box::new(other)),
                }
            } else {
                inner
            });
        }
        let mut e = self.term()?;
        let mut chain = 0;
        loop {
            if chain > 0 || self.is_sym(".") || self.is_sym("[") {
                self.deeper(&mut chain)?;
            }
            if self.is_sym(".") {
                self.next();
                let tok = self.next();
                let name = match tok.kind {
                    Tok::Ident { name, .. } => name,
                    _ => return Err(ParseError::new(tok.offset, "expected a name after '.'")),
                };
                if self.is_sym("(") {
                    e = self.call(Some(Box::new(e)), &name, tok.offset)?;
                } else {
                    e = Expr::Member(Box::new(e), name);
                }
            } else if self.is_sym("[") {
                self.next();
                let idx = self.expr(0)?;
                self.expect_sym("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                break;
            }
        }
        self.depth -= chain;
        Ok(e)
    }

    fn call(
        &mut self,
        target: Option<Box<Expr>>,
        name: &str,
        at: usize,
    ) -> Result<Expr, ParseError> {
        self.expect_sym("(")?;
        let type_fn = match name {
            "ofType" => Some(TypeFn::OfType),
            "is" => Some(TypeFn::Is),
            "as" => Some(TypeFn::As),
            _ => None,
        };
        if let Some(tf) = type_fn {
            let spec = self.type_spec()?;
            self.expect_sym(")")?;
            return Ok(Expr::OfType(target, spec, tf));
        }
        let mut args = Vec::new();
        if !self.is_sym(")") {
            loop {
                args.push(self.expr(0)?);
                if self.is_sym(",") {
                    self.next();
                } else {
                    break;
                }
            }
        }
        self.expect_sym(")")?;
        let func = Func::lookup(name, args.len()).map_err(|m| ParseError::new(at, m))?;
        Ok(Expr::Call(target, func, args))
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let tok = self.next();
        let at = tok.offset;
        Ok(match tok.kind {
            Tok::Number(text) => {
                let lit = if text.contains('.') {
                    Literal::Decimal(
                        text.parse::<Decimal>()
                            .map_err(|e| ParseError::new(at, format!("bad number: {e}")))?,
                    )
                } else {
                    match text.parse::<i64>() {
                        Ok(i) => Literal::Integer(i),
                        Err(_) => return Err(ParseError::new(at, "integer out of range")),
                    }
                };
                self.maybe_quantity(lit, at)?
            }
            Tok::Str(s) => Expr::Literal(Literal::String(s)),
            Tok::DateTime(s) => {
                if s.contains('T') {
                    Expr::Literal(Literal::DateTime(
                        DateTime::parse(&s)
                            .ok_or_else(|| ParseError::new(at, "bad dateTime literal"))?,
                    ))
                } else {
                    Expr::Literal(Literal::Date(
                        Date::parse(&s).ok_or_else(|| ParseError::new(at, "bad date literal"))?,
                    ))
                }
            }
            Tok::Time(s) => Expr::Literal(Literal::Time(
                Time::parse(&s).ok_or_else(|| ParseError::new(at, "bad time literal"))?,
            )),
            Tok::Var(v) => match v.as_str() {
                "this" => Expr::This,
                "index" => Expr::IndexVar,
                "total" => Expr::Total,
                _ => return Err(ParseError::new(at, format!("unknown variable ${v}"))),
            },
            Tok::Env(name) => Expr::Env(name),
            Tok::Sym("(") => {
                let e = self.expr(0)?;
                self.expect_sym(")")?;
                e
            }
            Tok::Sym("{") => {
                self.expect_sym("}")?;
                Expr::Literal(Literal::Empty)
            }
            Tok::Ident { name, quoted } => {
                if !quoted && (name == "true" || name == "false") {
                    Expr::Literal(Literal::Boolean(name == "true"))
                } else if self.is_sym("(") && !quoted {
                    self.call(None, &name, at)?
                } else {
                    Expr::Ident(name)
                }
            }
            other => return Err(ParseError::new(at, format!("unexpected {other:?}"))),
        })
    }

    fn maybe_quantity(&mut self, lit: Literal, at: usize) -> Result<Expr, ParseError> {
        let value = match &lit {
            Literal::Integer(i) => Decimal::from(*i),
            Literal::Decimal(d) => *d,
            _ => return Ok(Expr::Literal(lit)),
        };
        match &self.peek().kind {
            Tok::Str(unit) => {
                let q = Quantity::new(value, unit.clone());
                self.next();
                Ok(Expr::Literal(Literal::Quantity(q)))
            }
            Tok::Ident {
                name,
                quoted: false,
            } => match calendar_unit(name) {
                Some(unit) => {
                    self.next();
                    Ok(Expr::Literal(Literal::Quantity(Quantity {
                        value,
                        unit: unit.to_string(),
                        calendar: true,
                    })))
                }
                None => Ok(Expr::Literal(lit)),
            },
            _ => {
                let _ = at;
                Ok(Expr::Literal(lit))
            }
        }
    }
}
