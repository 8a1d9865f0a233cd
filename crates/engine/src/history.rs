//! History at instance, type and system level, with `_since`, `_at`, `_count` and keyset
//! paging (`_cursor`), newest first.
//!
//! Pages are cut by the store's `seq`, not by offset: a page's `next` link names the last
//! `seq` it showed, so versions written while a client pages never shift or repeat entries.

use caduceus_access::Interaction;
use caduceus_model::ids::{format_instant, parse_date_range};
use caduceus_store::{HistoryQuery, HistoryScope, Method};
use serde_json::json;

use crate::bundle_writer::{BundleWriter, Entry};
use crate::interactions::{check_id, check_type};
use crate::{Engine, FhirError};

/// The history parameters as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct HistoryParams {
    /// `_since`: an instant.
    pub since: Option<String>,
    /// `_at`: a date, dateTime or instant.
    pub at: Option<String>,
    /// `_count`: page size.
    pub count: Option<String>,
    /// `_cursor`: where the previous page stopped (from a `next` link).
    pub cursor: Option<String>,
}

impl Engine {
    /// A history Bundle. `base` is the server base URL; `scope` whose history.
    pub async fn history(
        &self,
        scope: HistoryScope,
        params: &HistoryParams,
        base: &str,
    ) -> Result<Vec<u8>, FhirError> {
        let path = match &scope {
            HistoryScope::System => "_history".to_owned(),
            HistoryScope::Type(t) => {
                check_type(t)?;
                self.allow(t, Interaction::Search)?;
                format!("{t}/_history")
            }
            HistoryScope::Instance(t, id) => {
                check_type(t)?;
                check_id(id)?;
                if !self.access.is_unrestricted() {
                    // 404 unless the resource is visible now.
                    self.read(t, id).await?;
                }
                format!("{t}/{id}/_history")
            }
        };
        let since = params
            .since
            .as_deref()
            .map(|s| {
                parse_date_range(s)
                    .map(|r| r.0)
                    .ok_or_else(|| bad_param("_since", "an instant"))
            })
            .transpose()?;
        let at = params
            .at
            .as_deref()
            .map(|s| {
                parse_date_range(s).ok_or_else(|| bad_param("_at", "a date, dateTime or instant"))
            })
            .transpose()?;
        let limit = match params.count.as_deref() {
            None => self.config.default_page_size,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| bad_param("_count", "a non-negative integer"))?
                .min(self.config.max_page_size),
        };
        let before_seq = params
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| bad_param("_cursor", "a cursor from a next link"))
            })
            .transpose()?;
        let query = HistoryQuery {
            scope,
            since,
            at,
            before_seq,
            limit: limit + 1,
        };
        let mut versions = self.store.history(&query).await?;
        let has_more = versions.len() > limit;
        versions.truncate(limit);
        // The cursor is the last seq read, visible or not, so paging goes on past pages
        // that the caller's access emptied.
        let last_seq = versions.last().map(|v| v.seq);
        let versions = self.keep_visible(versions).await?;

        let mut common = vec![format!("_count={limit}")];
        if let Some(s) = &params.since {
            common.push(format!("_since={}", encode(s)));
        }
        if let Some(a) = &params.at {
            common.push(format!("_at={}", encode(a)));
        }
        let mut self_query = common.clone();
        if let Some(c) = &params.cursor {
            self_query.push(format!("_cursor={}", encode(c)));
        }
        let mut links = vec![("self", format!("{base}/{path}?{}", self_query.join("&")))];
        if has_more && let Some(last) = last_seq {
            let mut next = common;
            next.push(format!("_cursor={last}"));
            links.push(("next", format!("{base}/{path}?{}", next.join("&"))));
        }
        let mut writer = BundleWriter::new("history", None, &links);
        for v in &versions {
            let full_url = format!("{base}/{}/{}", v.resource_type, v.id);
            let request_url = match v.method {
                Method::Create => v.resource_type.clone(),
                _ => format!("{}/{}", v.resource_type, v.id),
            };
            let status = match v.method {
                Method::Create => "201 Created",
                Method::Delete => "204 No Content",
                _ if v.version == 1 => "201 Created",
                _ => "200 OK",
            };
            writer.entry(Entry {
                full_url: Some(&full_url),
                resource: v.body.as_deref(),
                request: Some((v.method.http_verb(), &request_url)),
                response: Some(json!({
                        "status": status,
                        "etag": format!("W/\"{}\"", v.version),
                    "lastModified": format_instant(v.last_updated),
                })),
                ..Entry::default()
            });
        }
        Ok(writer.finish())
    }
}

fn bad_param(name: &str, expected: &str) -> FhirError {
    FhirError::bad_request(format!("the parameter {name} must be {expected}")).within(name)
}

/// Percent-encodes a query value (only what can appear in dates and cursors needs it).
fn encode(s: &str) -> String {
    s.replace('%', "%25")
        .replace('+', "%2B")
        .replace('&', "%26")
        .replace(' ', "%20")
}
