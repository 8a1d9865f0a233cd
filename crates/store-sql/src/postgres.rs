//! PostgreSQL's spelling of the search SQL. The builders write SQLite's dialect, kept to
//! what both accept; [`render`] rewrites the rest, once per statement:
//! - `?` placeholders become `$1`, `$2`, ... (outside quoted literals);
//! - `instr(a, b)` becomes `strpos(a, b)` (same result: 1-based position, 0 when absent);
//! - SQLite's `+alias.column` (a unary plus that keeps its planner off an index) loses the
//!   `+`, which PostgreSQL does not define for text and whose planner needs no such hint;
//! - the JSON array of a token set (`values::TOKEN_SET_PAIRS`) is read with `jsonb`.
//!
//! Values never appear in SQL text, so these rewrites only ever see text the builders
//! wrote; the tests below pin each one.

use crate::values::{TOKEN_SET_PAIRS, TOKEN_SET_PAIRS_POSTGRES};

/// `sql` (SQLite dialect, `?` placeholders) in PostgreSQL's dialect.
pub fn render(sql: &str) -> String {
    let sqlite_pairs = format!("{TOKEN_SET_PAIRS}?)");
    let sql = sql
        .replace(&sqlite_pairs, TOKEN_SET_PAIRS_POSTGRES)
        .replace("instr(", "strpos(");
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut in_quote = false;
    let mut prev = ' ';
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quote {
            out.push(c);
            if c == '\'' {
                in_quote = false;
            }
        } else if c == '\'' {
            in_quote = true;
            out.push(c);
        } else if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else if c == '+'
            && (prev == ' ' || prev == '(' || prev == ',')
            && chars.peek().is_some_and(char::is_ascii_lowercase)
        {
            // `+k.column`: drop the hint (an arithmetic `+` is always followed by a space).
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_outside_literals() {
        assert_eq!(
            render("a = ? AND b = '?' AND c IN (?, ?)"),
            "a = $1 AND b = '?' AND c IN ($2, $3)"
        );
    }

    #[test]
    fn rewrites_functions_and_hints() {
        assert_eq!(
            render("substr(n.id, instr(n.id, '#') + 1) AND +x.param = ?"),
            "substr(n.id, strpos(n.id, '#') + 1) AND x.param = $1"
        );
        assert_eq!(
            render("SELECT DISTINCT +k.container_type, (+k.a, +k.b) > (?, ?)"),
            "SELECT DISTINCT k.container_type, (k.a, k.b) > ($1, $2)"
        );
    }

    #[test]
    fn reads_token_sets_with_jsonb() {
        let sql = format!("(x.code, x.system) IN ({TOKEN_SET_PAIRS}?))");
        assert_eq!(
            render(&sql),
            "(x.code, x.system) IN (SELECT e ->> 1, e ->> 0 FROM jsonb_array_elements(CAST($1 AS jsonb)) AS e)"
        );
    }
}
