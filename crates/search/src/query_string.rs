//! The canonical form of a parsed search, for `self` links and cache keys.
//!
//! Criteria are rendered from the AST (not copied from the request), so spelling differences
//! disappear: the default `eq` prefix is dropped, a bare id of a single-target reference
//! becomes `Type/id`, `:recurse` becomes `:iterate`, escapes are minimal, ignored parameters
//! are gone and `_count` is always present. Criteria and includes are sorted (their order has
//! no meaning); `_sort` keeps its order. Parsing the result gives the same query again.

use std::fmt::Write;

use crate::ast::{
    Contained, ContainedType, Criterion, Include, Link, Prefix, ReferenceValue, SearchQuery,
    SearchValue, Summary, Total,
};
use crate::values::escape;

impl Criterion {
    /// This criterion as one decoded search parameter (name with chain and modifier, and
    /// its values), as `parse` takes it.
    pub fn to_param(&self) -> (String, String) {
        criterion(self)
    }
}

impl SearchQuery {
    /// The canonical parameters, decoded (names and values as `parse` takes them).
    pub fn to_params(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(types) = &self.type_filter {
            out.push(("_type".to_owned(), types.join(",")));
        }
        let mut criteria: Vec<(String, String)> = self.criteria.iter().map(criterion).collect();
        criteria.sort();
        out.extend(criteria);
        for (name, list) in [
            ("_include", &self.includes),
            ("_revinclude", &self.revincludes),
        ] {
            let mut items: Vec<(String, String)> = list
                .iter()
                .map(|i| {
                    let n = if i.iterate {
                        format!("{name}:iterate")
                    } else {
                        name.to_owned()
                    };
                    (n, include(i))
                })
                .collect();
            items.sort();
            out.extend(items);
        }
        if !self.sort.is_empty() {
            let keys: Vec<String> = self
                .sort
                .iter()
                .map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.param.code))
                .collect();
            out.push(("_sort".to_owned(), keys.join(",")));
        }
        out.push(("_count".to_owned(), self.count.to_string()));
        if let Some(s) = self.summary {
            let v = match s {
                Summary::True => "true",
                Summary::Text => "text",
                Summary::Data => "data",
                Summary::Count => "count",
                Summary::False => "false",
            };
            out.push(("_summary".to_owned(), v.to_owned()));
        }
        if !self.elements.is_empty() {
            out.push(("_elements".to_owned(), self.elements.join(",")));
        }
        if let Some(t) = self.total {
            let v = match t {
                Total::None => "none",
                Total::Estimate => "estimate",
                Total::Accurate => "accurate",
            };
            out.push(("_total".to_owned(), v.to_owned()));
        }
        if let Some(c) = self.contained {
            let v = match c {
                Contained::True => "true",
                Contained::False => "false",
                Contained::Both => "both",
            };
            out.push(("_contained".to_owned(), v.to_owned()));
        }
        if let Some(c) = self.contained_type {
            let v = match c {
                ContainedType::Container => "container",
                ContainedType::Contained => "contained",
            };
            out.push(("_containedType".to_owned(), v.to_owned()));
        }
        out
    }

    /// The canonical query string (percent-encoded, without the leading `?`).
    pub fn to_query_string(&self) -> String {
        let mut s = String::new();
        for (i, (name, value)) in self.to_params().iter().enumerate() {
            if i > 0 {
                s.push('&');
            }
            percent_encode(&mut s, name);
            s.push('=');
            percent_encode(&mut s, value);
        }
        s
    }
}

/// `name[:modifier]` with its chain, and the OR list of values.
fn criterion(c: &Criterion) -> (String, String) {
    let mut name = String::new();
    for link in &c.path {
        match link {
            Link::Chain {
                param,
                explicit_type,
                ..
            } => {
                name.push_str(param.code);
                if let Some(t) = explicit_type {
                    name.push(':');
                    name.push_str(t);
                }
                name.push('.');
            }
            Link::Has { source_type, param } => {
                let _ = write!(name, "_has:{source_type}:{}:", param.code);
            }
        }
    }
    name.push_str(c.param.code);
    if let Some(m) = c.modifier {
        name.push(':');
        name.push_str(m.code());
    }
    let values: Vec<String> = c.values.iter().map(value).collect();
    (name, values.join(","))
}

fn prefix(p: Prefix) -> &'static str {
    if p == Prefix::Eq { "" } else { p.code() }
}

/// One value, escaped so that splitting on `,` `$` `|` and unescaping gives it back.
fn value(v: &SearchValue) -> String {
    match v {
        SearchValue::Boolean(b) => b.to_string(),
        SearchValue::Number(n) => format!("{}{}", prefix(n.prefix), escape(&n.text)),
        SearchValue::Date(d) => format!("{}{}", prefix(d.prefix), escape(&d.text)),
        SearchValue::String(s) | SearchValue::Uri(s) | SearchValue::Special(s) => escape(s),
        SearchValue::TokenSet(set) => value(&set.written),
        SearchValue::Token(t) => match &t.system {
            None => escape(t.code.as_deref().unwrap_or("")),
            Some(system) => format!(
                "{}|{}",
                escape(system),
                escape(t.code.as_deref().unwrap_or(""))
            ),
        },
        SearchValue::OfType(o) => format!(
            "{}|{}|{}",
            escape(&o.system),
            escape(&o.code),
            escape(&o.value)
        ),
        SearchValue::Quantity(q) => {
            let mut s = format!("{}{}", prefix(q.number.prefix), escape(&q.number.text));
            if q.system.is_some() || q.code.is_some() {
                let _ = write!(
                    s,
                    "|{}|{}",
                    escape(q.system.as_deref().unwrap_or("")),
                    escape(q.code.as_deref().unwrap_or(""))
                );
            }
            s
        }
        SearchValue::Reference(r) => match r {
            ReferenceValue::Local {
                resource_type,
                id,
                version,
            } => {
                let mut s = String::new();
                if let Some(t) = resource_type {
                    s.push_str(t);
                    s.push('/');
                }
                s.push_str(id);
                if let Some(v) = version {
                    let _ = write!(s, "/_history/{v}");
                }
                s
            }
            // The whole reference is unescaped before `|version` is split off, so `|` must
            // stay literal here.
            ReferenceValue::Url { url, version } => {
                let mut s = escape_but_pipe(url);
                if let Some(v) = version {
                    s.push('|');
                    s.push_str(&escape_but_pipe(v));
                }
                s
            }
        },
        SearchValue::Composite(parts) => {
            let parts: Vec<String> = parts.iter().map(value).collect();
            parts.join("$")
        }
        SearchValue::Near(n) => {
            let mut s = format!("{}|{}", n.latitude, n.longitude);
            if n.distance.is_some() || n.units.is_some() {
                s.push('|');
                if let Some(d) = n.distance {
                    let _ = write!(s, "{d}");
                }
            }
            if let Some(u) = &n.units {
                s.push('|');
                s.push_str(&escape(u));
            }
            s
        }
    }
}

fn escape_but_pipe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn include(i: &Include) -> String {
    let Some(source) = i.source_type else {
        return "*".to_owned();
    };
    let mut s = format!("{source}:");
    match &i.param {
        Some(p) => s.push_str(p.code),
        None => s.push('*'),
    }
    if let Some(t) = i.target_type {
        s.push(':');
        s.push_str(t);
    }
    s
}

/// Percent-encodes everything but unreserved characters and the punctuation FHIR query
/// syntax uses (`: / | $ , * @ !`).
fn percent_encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'|' | b'$' | b',' | b'*' | b'@' | b'!'
            )
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}
