//! Parsing request bodies so that every number keeps the exact spelling the client wrote.
//!
//! serde_json with `arbitrary_precision` keeps a number's digits (`200.00` stays `200.00`)
//! but rewrites exponents: `1.50e3` becomes `1.50e+3` and `1E5` becomes `1e+5`. FHIR asks
//! that a decimal be returned as it was sent, so after parsing, the few numbers written with
//! an exponent get their original text back. The common case (no exponent anywhere) costs
//! one scan of the bytes and no allocation.

use serde_json::{Number, Value};

/// Parses JSON, keeping the exact text of every number.
pub(crate) fn parse(body: &[u8]) -> serde_json::Result<Value> {
    let mut value: Value = serde_json::from_slice(body)?;
    let spellings = number_tokens(body);
    if spellings.iter().any(|t| t.contains(['e', 'E'])) {
        let mut numbers = Vec::with_capacity(spellings.len());
        collect_numbers(&mut value, &mut numbers);
        // Duplicate object keys make the parsed tree hold fewer numbers than the text; then
        // positions cannot be matched and serde_json's spelling stays.
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

/// Every number literal of a (valid) JSON text, in document order.
fn number_tokens(body: &[u8]) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
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
    tokens
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
    fn duplicate_keys_fall_back_to_serde_spelling() {
        let v = parse(br#"{"a":1e3,"a":2e3,"b":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":2e+3,"b":3}"#);
    }

    #[test]
    fn escaped_quotes_in_strings_do_not_confuse_the_scan() {
        let text = r#"{"s":"a \"1e5\" b","n":5e1}"#;
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }
}
