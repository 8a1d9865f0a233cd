//! Parsing request bodies so that every number keeps the exact spelling the client wrote.
//!
//! serde_json with `arbitrary_precision` keeps a number's digits (`200.00` stays `200.00`)
//! but rewrites exponents: `1.50e3` becomes `1.50e+3` and `1E5` becomes `1e+5`. FHIR asks
//! that a decimal be returned as it was sent, so after parsing, the few numbers written with
//! an exponent get their original text back. The common case (no exponent anywhere) costs
//! one scan of the bytes and no allocation.

use serde_json::{Number, Value};

/// Why a body is not acceptable JSON.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParseError {
    /// Not JSON at all.
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
    /// An object repeats a property name.
    #[error("an object repeats a property name")]
    DuplicateKey,
}

/// Parses JSON, keeping the exact text of every number and refusing repeated keys.
pub(crate) fn parse(body: &[u8]) -> Result<Value, ParseError> {
    let mut value: Value = serde_json::from_slice(body)?;
    let scan = scan(body);
    if scan.keys != count_keys(&value) {
        return Err(ParseError::DuplicateKey);
    }
    let spellings = scan.numbers;
    if spellings.iter().any(|t| t.contains(['e', 'E'])) {
        let mut numbers = Vec::with_capacity(spellings.len());
        collect_numbers(&mut value, &mut numbers);
        if numbers.len() == spellings.len() {
            for (number, text) in numbers.into_iter().zip(spellings) {
                if text.contains(['e', 'E']) {
                    // Only serde_json's own spelling of the same value can be replaced: the
                    // text came from the tokenizer that serde_json just accepted.
                    *number = Number::from_string_unchecked(text.to_owned());
                }
            }
        }
    }
    Ok(value)
}

/// What one pass over a (valid) JSON text finds.
struct Scan<'a> {
    /// Every number literal, in document order.
    numbers: Vec<&'a str>,
    /// How many object keys the text has.
    keys: usize,
}

fn scan(body: &[u8]) -> Scan<'_> {
    let mut tokens = Vec::new();
    let mut keys = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                // A string followed by a colon is a key.
                let mut j = i;
                while j < body.len() && body[j].is_ascii_whitespace() {
                    j += 1;
                }
                if body.get(j) == Some(&b':') {
                    keys += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < body.len()
                    && matches!(body[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                if let Ok(t) = std::str::from_utf8(&body[start..i]) {
                    tokens.push(t);
                }
            }
            _ => i += 1,
        }
    }
    Scan {
        numbers: tokens,
        keys,
    }
}

fn count_keys(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.iter().map(count_keys).sum(),
        Value::Object(map) => map.len() + map.values().map(count_keys).sum::<usize>(),
        _ => 0,
    }
}

fn collect_numbers<'a>(value: &'a mut Value, out: &mut Vec<&'a mut Number>) {
    match value {
        Value::Number(n) => out.push(n),
        Value::Array(items) => items.iter_mut().for_each(|v| collect_numbers(v, out)),
        Value::Object(map) => map.values_mut().for_each(|v| collect_numbers(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_keep_their_spelling() {
        let text = r#"{"a":1.50e3,"b":[200.00,-2E-5,"1e9 in a string"],"c":{"d":7,"e":1e+2}}"#;
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(matches!(
            parse(br#"{"a":1,"a":2}"#),
            Err(ParseError::DuplicateKey)
        ));
        assert!(matches!(
            parse(br#"{"x":[{"b":1, "c":{"d":1,"d" :2}}]}"#),
            Err(ParseError::DuplicateKey)
        ));
        assert!(parse(br#"{"a":{"a":{"a":"a:"}},"b":["a","a"]}"#).is_ok());
    }

    #[test]
    fn escaped_quotes_in_strings_do_not_confuse_the_scan() {
        let text = r#"{"s":"a \"1e5\" b","n":5e1}"#;
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }
}
