//! A piece of SQL with its bound values, in placeholder order. Fragments are concatenated
//! in text order, so values never appear in SQL text: every value is a `?` placeholder
//! (a store that numbers its placeholders renumbers them once, see `postgres`).

/// A bound value, in the few types the search SQL binds and the keyset cursors carry.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// A 64-bit integer (ids of tenants, µs, limits).
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> SqlValue {
        SqlValue::Int(v)
    }
}

impl From<f64> for SqlValue {
    fn from(v: f64) -> SqlValue {
        SqlValue::Real(v)
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> SqlValue {
        SqlValue::Text(v)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> SqlValue {
        SqlValue::Text(v.to_owned())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> SqlValue {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// SQL text with `?` placeholders and the values they bind, in order.
#[derive(Debug, Default, Clone)]
pub struct Frag {
    /// The SQL text.
    pub sql: String,
    /// The bound values, one per `?`, in text order.
    pub args: Vec<SqlValue>,
}

impl Frag {
    /// An empty fragment.
    pub fn new() -> Frag {
        Frag::default()
    }

    /// Appends SQL text (never a value).
    pub fn push(&mut self, sql: &str) -> &mut Frag {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<SqlValue>) -> &mut Frag {
        self.sql.push('?');
        self.args.push(value.into());
        self
    }

    /// Appends a placeholder bound to the text `value`.
    pub fn text(&mut self, value: &str) -> &mut Frag {
        self.bind(SqlValue::Text(value.to_owned()))
    }

    /// Appends `(?, ?, ...)` bound to `values`.
    pub fn bind_list<V: Into<SqlValue>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Frag {
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
