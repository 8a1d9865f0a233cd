//! A piece of SQL with its bound values, in placeholder order. Fragments are concatenated
//! in text order, so values never appear in SQL text: every value is a `?` placeholder.

use rusqlite::types::Value;

/// SQL text with `?` placeholders and the values they bind, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Frag {
    pub sql: String,
    pub args: Vec<Value>,
}

impl Frag {
    pub fn new() -> Frag {
        Frag::default()
    }

    /// Appends SQL text (never a value).
    pub fn push(&mut self, sql: &str) -> &mut Frag {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Frag {
        self.sql.push('?');
        self.args.push(value.into());
        self
    }

    /// Appends a placeholder bound to the text `value`.
    pub fn text(&mut self, value: &str) -> &mut Frag {
        self.bind(Value::Text(value.to_owned()))
    }

    /// Appends `(?, ?, ...)` bound to `values`.
    pub fn bind_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Frag {
        self.sql.push('(');
        for (k, v) in values.into_iter().enumerate() {
            if k > 0 {
                self.sql.push_str(", ");
            }
            self.bind(v);
        }
        self.sql.push(')');
        self
    }

    /// Appends another fragment.
    pub fn append(&mut self, other: Frag) -> &mut Frag {
        self.sql.push_str(&other.sql);
        self.args.extend(other.args);
        self
    }
}
