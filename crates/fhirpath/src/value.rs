//! The items a collection holds: borrowed JSON nodes and computed System values.

use crate::datetime::{Date, DateTime, Time};
use crate::quantity::Quantity;
use crate::types;
use caduceus_model::defs::{NONE, NodeId, TypeId};
use rust_decimal::Decimal;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A node of the input resource, borrowed, with the FHIR type its element definition gives.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The JSON value (`None` for a primitive that has only an `_name` sibling, or for the
    /// type-only stub `resolve()` returns for an external reference).
    pub value: Option<&'a Value>,
    /// The `_name` sibling of a primitive (holding `id` and `extension`).
    pub ext: Option<&'a Value>,
    /// The FHIR type ([`NONE`] when the model does not say; the JSON shape decides then).
    pub ty: TypeId,
    /// The node of its children when it is a backbone element ([`NONE`]: those of `ty`).
    pub node: NodeId,
}

/// One item of a collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A node of the input (any FHIR type, primitive or complex).
    Node(Node<'a>),
    /// System.Boolean
    Boolean(bool),
    /// System.Integer
    Integer(i64),
    /// System.Decimal
    Decimal(Decimal),
    /// System.String
    String(Cow<'a, str>),
    /// System.Date
    Date(Date),
    /// System.DateTime
    DateTime(DateTime),
    /// System.Time
    Time(Time),
    /// System.Quantity
    Quantity(Quantity),
}

/// Parses a JSON number's text exactly.
pub(crate) fn decimal_of(n: &serde_json::Number) -> Option<Decimal> {
    let s = n.as_str();
    Decimal::from_str_exact(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

impl<'a> Node<'a> {
    /// A node of the given JSON value, typed by its `resourceType` when it is a resource
    /// (otherwise untyped: the JSON shape decides).
    pub fn root(value: &'a Value) -> Node<'a> {
        let ty = types::resource_type_of(value).unwrap_or(NONE);
        Node {
            value: Some(value),
            ext: None,
            ty,
            node: NONE,
        }
    }

    /// The System value of a primitive node (none for objects).
    pub fn primitive(&self) -> Option<Item<'a>> {
        let v = self.value?;
        let tname = types::type_name(self.ty);
        Some(match v {
            Value::Bool(b) => Item::Boolean(*b),
            Value::Number(n) => {
                let d = decimal_of(n)?;
                let is_int = match tname {
                    Some("decimal") => false,
                    Some(_) => true,
                    None => !n.as_str().contains(['.', 'e', 'E']),
                };
                if is_int {
                    i64::try_from(d.trunc().mantissa())
                        .ok()
                        .filter(|_| d.fract().is_zero())
                        .map_or(Item::Decimal(d), Item::Integer)
                } else {
                    Item::Decimal(d)
                }
            }
            Value::String(s) => match tname {
                Some("date") => Date::parse(s)
                    .map(Item::Date)
                    .or_else(|| DateTime::parse(s).map(Item::DateTime))?,
                Some("dateTime") | Some("instant") => match DateTime::parse(s) {
                    Some(d)
                        if !s.contains('T') && d.precision <= crate::datetime::Precision::Day =>
                    {
                        Item::DateTime(d)
                    }
                    Some(d) => Item::DateTime(d),
                    None => Item::String(Cow::Borrowed(s)),
                },
                Some("time") => Time::parse(s).map_or(Item::String(Cow::Borrowed(s)), Item::Time),
                _ => Item::String(Cow::Borrowed(s)),
            },
            _ => return None,
        })
    }

    /// The quantity a Quantity-shaped node (Quantity, Age, Duration, ...) holds.
    pub fn quantity(&self) -> Option<Quantity> {
        let obj = self.value?.as_object()?;
        let value = decimal_of(match obj.get("value")? {
            Value::Number(n) => n,
            _ => return None,
        })?;
        let unit = obj
            .get("code")
            .or_else(|| obj.get("unit"))
            .and_then(Value::as_str)
            .unwrap_or("1");
        let q = Quantity::new(value, unit);
        Some(match crate::quantity::calendar_unit(unit) {
            Some(c) if obj.get("code").is_none() => Quantity {
                unit: c.to_string(),
                calendar: true,
                ..q
            },
            _ => q,
        })
    }
}

impl<'a> Item<'a> {
    /// A string item.
    pub fn string(s: impl Into<Cow<'a, str>>) -> Item<'a> {
        Item::String(s.into())
    }

    /// The System value of this item: computed values as they are, primitive nodes
    /// converted, Quantity nodes as quantities; `None` for other complex nodes.
    pub fn to_system(&self) -> Option<Item<'a>> {
        match self {
            Item::Node(n) => {
                if types::is_quantity_type(n.ty) {
                    n.quantity().map(Item::Quantity)
                } else {
                    n.primitive()
                }
            }
            other => Some(other.clone()),
        }
    }

    /// The JSON node, when this item is one.
    pub fn node(&self) -> Option<&Node<'a>> {
        match self {
            Item::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The boolean value of a Boolean item (or boolean node).
    pub fn as_bool(&self) -> Option<bool> {
        match self.to_system()? {
            Item::Boolean(b) => Some(b),
            _ => None,
        }
    }

    /// The text of a string-like item, borrowed from the input when it came from there.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        match self {
            Item::String(s) => Some(s.clone()),
            Item::Node(Node {
                value: Some(Value::String(s)),
                ..
            }) => Some(Cow::Borrowed(s.as_str())),
            _ => None,
        }
    }

    /// The FHIRPath `toString()` form of a primitive item (`None` for complex nodes).
    pub fn to_text(&self) -> Option<String> {
        Some(match self.to_system()? {
            Item::Boolean(b) => b.to_string(),
            Item::Integer(i) => i.to_string(),
            Item::Decimal(d) => d.to_string(),
            Item::String(s) => s.into_owned(),
            Item::Date(d) => d.to_string(),
            Item::DateTime(d) => d.to_string(),
            Item::Time(t) => t.to_string(),
            Item::Quantity(q) => q.to_string(),
            Item::Node(_) => return None,
        })
    }

    /// The name of the item's type (`System.String`, `FHIR.HumanName`, ...).
    pub fn type_name(&self) -> (&'static str, &'static str) {
        match self {
            Item::Node(n) => ("FHIR", types::node_type_name(n)),
            Item::Boolean(_) => ("System", "Boolean"),
            Item::Integer(_) => ("System", "Integer"),
            Item::Decimal(_) => ("System", "Decimal"),
            Item::String(_) => ("System", "String"),
            Item::Date(_) => ("System", "Date"),
            Item::DateTime(_) => ("System", "DateTime"),
            Item::Time(_) => ("System", "Time"),
            Item::Quantity(_) => ("System", "Quantity"),
        }
    }

    /// Parses a decimal from text (helper for conversions).
    pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
        let t = s.trim();
        if t.is_empty()
            || t.starts_with('.')
            || t.ends_with('.')
            || !t
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
        {
            return None;
        }
        Decimal::from_str(t).ok()
    }
}

impl fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Some(t) => f.write_str(&t),
            None => match self {
                Item::Node(Node { value: Some(v), .. }) => write!(f, "{v}"),
                _ => f.write_str("{}"),
            },
        }
    }
}
