//! A cache of parsed expressions keyed by their text.

use crate::{Expression, ParseError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Parsed expressions keyed by text, shared across threads. Parse errors are cached too,
/// so a bad expression is reported without being re-parsed each time.
#[derive(Debug, Default)]
pub struct Cache {
    map: RwLock<HashMap<String, Result<Arc<Expression>, ParseError>>>,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The parsed expression for `text`, parsing it on first use.
    pub fn get(&self, text: &str) -> Result<Arc<Expression>, ParseError> {
        if let Ok(map) = self.map.read()
            && let Some(r) = map.get(text)
        {
            return r.clone();
        }
        let parsed = Expression::parse(text).map(Arc::new);
        if let Ok(mut map) = self.map.write() {
            map.insert(text.to_string(), parsed.clone());
        }
        parsed
    }

    /// How many texts are cached.
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
