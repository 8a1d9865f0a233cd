//! Writes Bundle JSON as text around stored resource bytes.
//!
//! Why not build a `serde_json::Value`: a history page or transaction response holds up to
//! thousands of stored resources; parsing each one only to serialise it again would cost
//! more than the rest of the request and could change how a decimal is written. The stored
//! bytes are already canonical JSON, so they are spliced in as they are.

use serde_json::Value;

/// Builds one Bundle. Call [`BundleWriter::entry`] per entry, then [`BundleWriter::finish`].
pub struct BundleWriter {
    buf: Vec<u8>,
    entries: usize,
}

/// One `Bundle.entry`.
#[derive(Default)]
pub struct Entry<'a> {
    /// `fullUrl`.
    pub full_url: Option<&'a str>,
    /// `resource`: canonical JSON bytes of a resource.
    pub resource: Option<&'a [u8]>,
    /// `search.mode`: `match`, `include` or `outcome` (searchset bundles).
    pub search: Option<&'a str>,
    /// `request`: method and url (history bundles).
    pub request: Option<(&'a str, &'a str)>,
    /// `response`: an object with status, location, etag, lastModified, outcome.
    pub response: Option<Value>,
}

impl BundleWriter {
    /// Starts a Bundle of `bundle_type` with optional `total` and `link`s (relation, url).
    pub fn new(bundle_type: &str, total: Option<u64>, links: &[(&str, String)]) -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(br#"{"resourceType":"Bundle","type":"#);
        push_json_string(&mut buf, bundle_type);
        if let Some(total) = total {
            buf.extend_from_slice(br#","total":"#);
            buf.extend_from_slice(total.to_string().as_bytes());
        }
        if !links.is_empty() {
            buf.extend_from_slice(br#","link":["#);
            for (i, (relation, url)) in links.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(br#"{"relation":"#);
                push_json_string(&mut buf, relation);
                buf.extend_from_slice(br#","url":"#);
                push_json_string(&mut buf, url);
                buf.push(b'}');
            }
            buf.push(b']');
        }
        BundleWriter { buf, entries: 0 }
    }

    /// Appends one entry.
    pub fn entry(&mut self, entry: Entry<'_>) {
        self.buf.extend_from_slice(if self.entries == 0 {
            br#","entry":["#
        } else {
            b","
        });
        self.entries += 1;
        self.buf.push(b'{');
        let mut first = true;
        let mut key = |buf: &mut Vec<u8>, name: &str| {
            if !first {
                buf.push(b',');
            }
            first = false;
            push_json_string(buf, name);
            buf.push(b':');
        };
        if let Some(url) = entry.full_url {
            key(&mut self.buf, "fullUrl");
            push_json_string(&mut self.buf, url);
        }
        if let Some(resource) = entry.resource {
            key(&mut self.buf, "resource");
            self.buf.extend_from_slice(resource);
        }
        if let Some(mode) = entry.search {
            key(&mut self.buf, "search");
            self.buf.extend_from_slice(br#"{"mode":"#);
            push_json_string(&mut self.buf, mode);
            self.buf.push(b'}');
        }
        if let Some((method, url)) = entry.request {
            key(&mut self.buf, "request");
            self.buf.extend_from_slice(br#"{"method":"#);
            push_json_string(&mut self.buf, method);
            self.buf.extend_from_slice(br#","url":"#);
            push_json_string(&mut self.buf, url);
            self.buf.push(b'}');
        }
        if let Some(response) = entry.response {
            key(&mut self.buf, "response");
            push_json_value(&mut self.buf, &response);
        }
        self.buf.push(b'}');
    }

    /// The finished Bundle.
    pub fn finish(mut self) -> Vec<u8> {
        if self.entries > 0 {
            self.buf.push(b']');
        }
        self.buf.push(b'}');
        self.buf
    }
}

fn push_json_string(buf: &mut Vec<u8>, s: &str) {
    push_json_value(buf, &Value::String(s.to_owned()));
}

fn push_json_value(buf: &mut Vec<u8>, v: &Value) {
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json_around_raw_bytes() {
        let mut w = BundleWriter::new(
            "history",
            Some(2),
            &[("self", "http://x/fhir/_history".into())],
        );
        w.entry(Entry {
            full_url: Some("http://x/fhir/Patient/a"),
            resource: Some(br#"{"resourceType":"Patient","id":"a","x":1.50}"#),
            request: Some(("PUT", "Patient/a")),
            response: Some(serde_json::json!({"status": "200 OK"})),
            search: Some("match"),
        });
        w.entry(Entry {
            request: Some(("DELETE", "Patient/b")),
            ..Entry::default()
        });
        let out = String::from_utf8(w.finish()).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["entry"].as_array().unwrap().len(), 2);
        assert!(out.contains(r#""x":1.50"#));
        assert_eq!(v["entry"][0]["search"]["mode"], "match");
        assert_eq!(v["link"][0]["relation"], "self");
    }

    #[test]
    fn empty_bundle_has_no_entry_array() {
        let v: Value =
            serde_json::from_slice(&BundleWriter::new("searchset", Some(0), &[]).finish()).unwrap();
        assert!(v.get("entry").is_none());
        assert_eq!(v["total"], 0);
    }
}
