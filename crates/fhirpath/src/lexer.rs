//! Turns expression text into tokens.

use crate::error::ParseError;

/// One token, with the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub offset: usize,
}

/// The kinds of token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword; `quoted` when written between backticks.
    Ident { name: String, quoted: bool },
    /// A string literal, escapes resolved.
    Str(String),
    /// A number literal, as written.
    Number(String),
    /// `@...` date or dateTime literal text (without the `@`).
    DateTime(String),
    /// `@T...` time literal text (without the `@T`).
    Time(String),
    /// `$this`, `$index`, `$total`
    Var(String),
    /// `%name`, `%'name'`, `%`name``
    Env(String),
    /// Punctuation and symbolic operators.
    Sym(&'static str),
    /// End of input.
    Eof,
}

const SYMBOLS: [&str; 22] = [
    "!=", "!~", "<=", ">=", ".", "[", "]", "(", ")", "{", "}", ",", "+", "-", "*", "/", "&", "|",
    "=", "~", "<", ">",
];

/// Splits `src` into tokens (the last is always [`Tok::Eof`]).
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            let start = i;
            i += 2;
            loop {
                if i + 1 >= bytes.len() {
                    return Err(ParseError::new(start, "unterminated comment"));
                }
                if bytes[i] == b'*' && bytes[i + 1] == b'/' {
                    i += 2;
                    break;
                }
                i += 1;
            }
            continue;
        }
        let start = i;
        let kind = if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Tok::Ident {
                name: src[start..i].to_string(),
                quoted: false,
            }
        } else if c == b'`' {
            let (s, end) = quoted(src, i, b'`')?;
            i = end;
            Tok::Ident {
                name: s,
                quoted: true,
            }
        } else if c == b'\'' {
            let (s, end) = quoted(src, i, b'\'')?;
            i = end;
            Tok::Str(s)
        } else if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Tok::Number(src[start..i].to_string())
        } else if c == b'@' {
            i += 1;
            if bytes.get(i) == Some(&b'T') {
                i += 1;
                let s = i;
                i = scan_time(bytes, i);
                if s == i {
                    return Err(ParseError::new(start, "empty time literal"));
                }
                Tok::Time(src[s..i].to_string())
            } else {
                let s = i;
                i = scan_date(bytes, i);
                if s == i {
                    return Err(ParseError::new(start, "empty date literal"));
                }
                if bytes.get(i) == Some(&b'T') {
                    i += 1;
                    i = scan_time(bytes, i);
                    i = scan_tz(bytes, i);
                }
                Tok::DateTime(src[s..i].to_string())
            }
        } else if c == b'$' {
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Tok::Var(src[start + 1..i].to_string())
        } else if c == b'%' {
            i += 1;
            match bytes.get(i) {
                Some(b'`') => {
                    let (s, end) = quoted(src, i, b'`')?;
                    i = end;
                    Tok::Env(s)
                }
                Some(b'\'') => {
                    let (s, end) = quoted(src, i, b'\'')?;
                    i = end;
                    Tok::Env(s)
                }
                _ => {
                    let s = i;
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric()
                            || bytes[i] == b'_'
                            || bytes[i] == b'-')
                    {
                        i += 1;
                    }
                    if s == i {
                        return Err(ParseError::new(start, "empty environment variable name"));
                    }
                    Tok::Env(src[s..i].to_string())
                }
            }
        } else if let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            i += sym.len();
            Tok::Sym(sym)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(ParseError::new(i, format!("unexpected character {ch:?}")));
        };
        out.push(Token {
            kind,
            offset: start,
        });
    }
    out.push(Token {
        kind: Tok::Eof,
        offset: src.len(),
    });
    Ok(out)
}

/// `YYYY[-MM[-DD]]`, digits counted as the grammar's DATEFORMAT has them (so a `-` after a
/// full date is an operator).
fn scan_date(bytes: &[u8], i: usize) -> usize {
    let digits = |from: usize, n: usize| {
        bytes.len() >= from + n && bytes[from..from + n].iter().all(u8::is_ascii_digit)
    };
    if !digits(i, 4) {
        return i;
    }
    let mut end = i + 4;
    for _ in 0..2 {
        if bytes.get(end) == Some(&b'-') && digits(end + 1, 2) {
            end += 3;
        } else {
            break;
        }
    }
    end
}

fn scan_time(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b':') {
        i += 1;
    }
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

fn scan_tz(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(b'Z') => i + 1,
        Some(b'+') | Some(b'-') => {
            let t = &bytes[i + 1..];
            if t.len() >= 5
                && t[0].is_ascii_digit()
                && t[1].is_ascii_digit()
                && t[2] == b':'
                && t[3].is_ascii_digit()
                && t[4].is_ascii_digit()
            {
                i + 6
            } else {
                i
            }
        }
        _ => i,
    }
}

/// Reads a quoted string or identifier starting at `start` (the opening quote), resolving
/// escapes. Returns the text and the offset after the closing quote.
fn quoted(src: &str, start: usize, quote: u8) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((k, ch)) = chars.next() {
        let at = start + 1 + k;
        if ch as u32 == u32::from(quote) {
            return Ok((out, at + 1));
        }
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            break;
        };
        match e {
            '\'' | '"' | '`' | '\\' | '/' => out.push(e),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'f' => out.push('\u{c}'),
            'u' => {
                let mut code = 0u32;
                for _ in 0..4 {
                    let d = chars
                        .next()
                        .and_then(|(_, h)| h.to_digit(16))
                        .ok_or_else(|| ParseError::new(at, "bad \\u escape"))?;
                    code = code * 16 + d;
                }
                out.push(
                    char::from_u32(code).ok_or_else(|| ParseError::new(at, "bad \\u escape"))?,
                );
            }
            other => return Err(ParseError::new(at, format!("unknown escape \\{other}"))),
        }
    }
    Err(ParseError::new(
        start,
        "unterminated string or quoted identifier",
    ))
}
