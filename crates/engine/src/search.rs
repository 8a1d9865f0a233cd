//! The search interaction: type-level, system-level and compartment searches. The request is
//! parsed and checked by `caduceus-search`, executed by the store one keyset page at a time,
//! and answered as a `searchset` Bundle assembled around the stored bytes.
//!
//! Links: `self` is the canonical form of the query (so equal searches have equal links)
//! plus the page's cursor; `next` carries the store's cursor for the following page in our
//! own `_cursor` parameter. `_summary` and `_elements` are applied to each entry (the only
//! case where stored resources are re-parsed on a read path); reads apply them the same way
//! ([`Engine::subset`]), `_summary=true` by the definitions' `isSummary` flags ([`summary`]).
//! `_contained=true|both` pages may hold contained resources themselves
//! (`_containedType=contained`): their `fullUrl` is the container's with the local id as
//! fragment.

mod summary;

use caduceus_model::OperationOutcome;
use caduceus_model::outcome::{Issue, IssueCode};
use caduceus_search::{Handling, ParseOptions, SearchQuery, Summary};
use caduceus_store::StoredVersion;
use serde_json::{Value, json};

use crate::bundle_writer::{BundleWriter, Entry};
use crate::interactions::{check_id, check_type};
use crate::{Engine, FhirError};

/// The paging parameter of our `next` links.
pub const CURSOR_PARAM: &str = "_cursor";

/// What a client searched for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The resource types (one for `GET /Patient`, none for a system search).
    pub types: Vec<String>,
    /// A compartment (`GET /Patient/123/Observation`): type and id.
    pub compartment: Option<(String, String)>,
    /// The decoded query (and form) parameters, in order.
    pub params: Vec<(String, String)>,
    /// `Prefer: handling=strict`: unknown parameters are errors, not warnings.
    pub strict: bool,
}

impl Engine {
    /// Parses a search without running it (conditional interactions use this too).
    pub fn parse_search(
        &self,
        request: &SearchRequest,
        base: &str,
    ) -> Result<SearchQuery, FhirError> {
        for t in &request.types {
            check_type(t)?;
        }
        let types: Vec<&str> = request.types.iter().map(String::as_str).collect();
        let params: Vec<(String, String)> = request
            .params
            .iter()
            .filter(|(k, _)| k != CURSOR_PARAM)
            .cloned()
            .collect();
        let options = ParseOptions {
            handling: if request.strict {
                Handling::Strict
            } else {
                Handling::Lenient
            },
            default_count: self.config.default_page_size as u32,
            max_count: self.config.max_page_size as u32,
            base_url: Some(base.to_owned()),
        };
        let parsed = match &request.compartment {
            Some((ctype, id)) => {
                check_type(ctype)?;
                check_id(id)?;
                caduceus_search::parse_in_compartment(ctype, id, &types, &params, &options)
            }
            None => caduceus_search::parse(&types, &params, &options),
        };
        parsed.map_err(|issues| FhirError {
            status: 400,
            outcome: OperationOutcome::from(issues),
        })
    }

    /// Runs a search and answers with a `searchset` Bundle.
    pub async fn search(&self, request: &SearchRequest, base: &str) -> Result<Vec<u8>, FhirError> {
        let query = self.parse_search(request, base)?;
        // Links echo the search as the client wrote it (a `_list` stays `_list`), before
        // the engine resolves lists and value sets for the store, and before the caller's
        // access conditions are added.
        let canonical = query.to_query_string();
        let cursor = request
            .params
            .iter()
            .rev()
            .find(|(k, _)| k == CURSOR_PARAM)
            .map(|(_, v)| v.as_str());
        let restricted = !self.access.is_unrestricted();
        let (query, exact) = if restricted {
            match self.restrict_search(request, base).await? {
                Some(r) => (Some(self.parse_search(&r.request, base)?), r.exact),
                None => (None, true),
            }
        } else {
            (Some(query), true)
        };
        let (query, mut page) = match query {
            Some(q) => {
                let q = self.resolve_terminology(q, base).await?;
                let q = self.resolve_lists(q, base).await?;
                let page = self.store.search(&q, cursor).await?;
                (Some(q), page)
            }
            // The caller's access leaves nothing this search could match.
            None => (
                None,
                caduceus_store::search::SearchPage {
                    matches: Vec::new(),
                    included: Vec::new(),
                    included_truncated: false,
                    next_cursor: None,
                    total: Some(0),
                },
            ),
        };
        if restricted {
            let before = page.matches.len();
            page.matches = if exact {
                self.keep_labelled(page.matches)
            } else {
                self.keep_visible(page.matches).await?
            };
            page.included = self.keep_visible(page.included).await?;
            if !exact || page.matches.len() != before {
                page.total = None;
            }
        }
        let query = match query {
            Some(q) => q,
            None => self.parse_search(request, base)?,
        };

        let path = search_path(request);
        let link = |cursor: Option<&str>| {
            let mut url = format!("{base}/{path}");
            let mut query_string = canonical.clone();
            if let Some(c) = cursor {
                if !query_string.is_empty() {
                    query_string.push('&');
                }
                query_string.push_str(&format!("{CURSOR_PARAM}={c}"));
            }
            if !query_string.is_empty() {
                url.push('?');
                url.push_str(&query_string);
            }
            url
        };
        let mut links = vec![("self", link(cursor))];
        if let Some(next) = &page.next_cursor {
            links.push(("next", link(Some(next))));
        }
        let mut writer = BundleWriter::new("searchset", page.total, &links);
        if query.summary != Some(Summary::Count) {
            for (versions, mode) in [(&page.matches, "match"), (&page.included, "include")] {
                for v in versions {
                    let body = shape(v, &query);
                    let full_url = full_url(base, v);
                    writer.entry(Entry {
                        full_url: Some(&full_url),
                        resource: body.as_deref(),
                        search: Some(mode),
                        ..Entry::default()
                    });
                }
            }
        }
        let mut notes = query.ignored.clone();
        if page.included_truncated {
            notes.push(Issue::warning(
                IssueCode::TooCostly,
                "Included resources were capped for this page (at most 1000, and at most 8 \
                 :iterate rounds): some _include/_revinclude targets are not in this Bundle",
            ));
        }
        if !notes.is_empty() {
            let outcome =
                serde_json::to_vec(&OperationOutcome::from(notes).to_json()).unwrap_or_default();
            writer.entry(Entry {
                resource: Some(&outcome),
                search: Some("outcome"),
                ..Entry::default()
            });
        }
        Ok(writer.finish())
    }
}

/// An entry's `fullUrl`. A contained resource returned as itself (`_containedType=contained`)
/// has no URL of its own: search.html gives it its container's URL with the local id as the
/// fragment, `[base]/MedicationRequest/23#m1`, which is how the store keys it.
fn full_url(base: &str, v: &StoredVersion) -> String {
    if v.id.contains('#') {
        format!("{base}/{}", v.id)
    } else {
        format!("{base}/{}/{}", v.resource_type, v.id)
    }
}

/// The URL path of a search, relative to the base.
fn search_path(request: &SearchRequest) -> String {
    match (&request.compartment, request.types.as_slice()) {
        (Some((ctype, id)), [t]) => format!("{ctype}/{id}/{t}"),
        (Some((ctype, id)), _) => format!("{ctype}/{id}/*"),
        (None, [t]) => t.clone(),
        (None, _) => String::new(),
    }
}

/// The bytes of an entry: stored bytes as they are, unless `_summary` or `_elements` ask
/// for less.
fn shape(v: &StoredVersion, query: &SearchQuery) -> Option<Vec<u8>> {
    let body = v.body.as_deref()?;
    Some(subset_body(
        body,
        &v.resource_type,
        query.summary,
        &query.elements,
    ))
}

/// `body` reduced as `_summary` and `_elements` ask (unchanged when they ask for all).
fn subset_body(
    body: &[u8],
    resource_type: &str,
    summary: Option<Summary>,
    elements: &[String],
) -> Vec<u8> {
    let summary = summary.filter(|s| !matches!(s, Summary::False | Summary::Count));
    if summary.is_none() && elements.is_empty() {
        return body.to_vec();
    }
    let Ok(Value::Object(mut resource)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let keep_always = ["resourceType", "id", "meta"];
    match summary {
        Some(Summary::True) => summary::summarize_resource(&mut resource),
        Some(Summary::Data) => {
            resource.remove("text");
        }
        Some(Summary::Text) => {
            resource.retain(|k, _| keep_always.contains(&k.as_str()) || k == "text")
        }
        _ => {}
    }
    if !elements.is_empty() {
        let wanted: Vec<&str> = elements
            .iter()
            .map(|e| {
                e.rsplit_once('.').map_or(
                    e.as_str(),
                    |(t, name)| if t == resource_type { name } else { e },
                )
            })
            .collect();
        resource.retain(|k, _| keep_always.contains(&k.as_str()) || wanted.contains(&k.as_str()));
    }
    // The specification asks that a subsetted resource say so.
    if let Some(Value::Object(meta)) = resource.get_mut("meta") {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Value::Array(tags) = tags {
            tags.push(json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}));
        }
    }
    serde_json::to_vec(&Value::Object(resource)).unwrap_or_else(|_| body.to_vec())
}

impl Engine {
    /// A read's body reduced as its `_summary` (`true`, `text`, `data`, `false`) and
    /// `_elements` parameters ask, the way search entries are; `None` when they ask for the
    /// whole resource (the stored bytes go out untouched). Other parameters are ignored.
    pub fn subset(
        &self,
        version: &StoredVersion,
        params: &[(String, String)],
    ) -> Result<Option<Vec<u8>>, FhirError> {
        let last = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
        let summary = match last("_summary").map(String::as_str) {
            None | Some("false") => None,
            Some("true") => Some(Summary::True),
            Some("text") => Some(Summary::Text),
            Some("data") => Some(Summary::Data),
            Some(_) => {
                return Err(FhirError::bad_request(
                    "_summary on a read must be true, text, data or false",
                )
                .within("_summary"));
            }
        };
        let elements: Vec<String> = last("_elements")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let Some(body) = version.body.as_deref() else {
            return Ok(None);
        };
        if summary.is_none() && elements.is_empty() {
            return Ok(None);
        }
        Ok(Some(subset_body(
            body,
            &version.resource_type,
            summary,
            &elements,
        )))
    }
}

impl Engine {
    /// `Patient/[id]/$everything`: the patient and every resource in its compartment (from
    /// the official CompartmentDefinition), with `_since`, `_type` and `_count`, paged like a
    /// search. The first page starts with the patient itself.
    pub async fn everything(
        &self,
        patient_id: &str,
        params: &[(String, String)],
        base: &str,
    ) -> Result<Vec<u8>, FhirError> {
        let patient = self.read("Patient", patient_id).await?;
        let mut types: Vec<String> = Vec::new();
        let mut search_params = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "_type" => types.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                ),
                "_since" => search_params.push(("_lastUpdated".to_owned(), format!("ge{v}"))),
                "_count" | CURSOR_PARAM => search_params.push((k.clone(), v.clone())),
                _ => {}
            }
        }
        let in_compartment: Vec<&str> =
            caduceus_model::defs::compartment_resource_types("Patient").collect();
        if types.is_empty() {
            // A restricted caller gets the types it may search; the rest are left out, as
            // `_type` would leave them.
            types = in_compartment
                .iter()
                .filter(|t| **t != "Patient")
                .filter(|t| self.allow(t, caduceus_access::Interaction::Search).is_ok())
                .map(|t| (*t).to_owned())
                .collect();
        } else if let Some(t) = types
            .iter()
            .find(|t| self.allow(t, caduceus_access::Interaction::Search).is_err())
        {
            self.allow(t, caduceus_access::Interaction::Search)?;
        } else if let Some(t) = types.iter().find(|t| !in_compartment.contains(&t.as_str())) {
            return Err(
                FhirError::bad_request(format!("{t} is not in the Patient compartment"))
                    .within("_type"),
            );
        }
        let request = SearchRequest {
            types,
            compartment: Some(("Patient".to_owned(), patient_id.to_owned())),
            params: search_params,
            strict: true,
        };
        let query = self.parse_search(&request, base)?;
        let cursor = request
            .params
            .iter()
            .find(|(k, _)| k == CURSOR_PARAM)
            .map(|(_, v)| v.as_str());
        let mut page = self.store.search(&query, cursor).await?;
        if !self.access.is_unrestricted() {
            page.matches = self.keep_visible(page.matches).await?;
            page.included = self.keep_visible(page.included).await?;
            page.total = None;
        }
        let own = format!("{base}/Patient/{patient_id}/$everything");
        let kept: Vec<&(String, String)> =
            params.iter().filter(|(k, _)| k != CURSOR_PARAM).collect();
        let with_cursor = |c: Option<&str>| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &kept {
                q.append_pair(k, v);
            }
            if let Some(c) = c {
                q.append_pair(CURSOR_PARAM, c);
            }
            let q = q.finish();
            if q.is_empty() {
                own.clone()
            } else {
                format!("{own}?{q}")
            }
        };
        let mut links = vec![("self", with_cursor(cursor))];
        if let Some(next) = &page.next_cursor {
            links.push(("next", with_cursor(Some(next))));
        }
        let mut writer = BundleWriter::new("searchset", page.total, &links);
        if cursor.is_none() {
            writer.entry(Entry {
                full_url: Some(&format!("{base}/Patient/{patient_id}")),
                resource: patient.body.as_deref(),
                search: Some("match"),
                ..Entry::default()
            });
        }
        for v in page.matches.iter().chain(&page.included) {
            let full_url = format!("{base}/{}/{}", v.resource_type, v.id);
            writer.entry(Entry {
                full_url: Some(&full_url),
                resource: v.body.as_deref(),
                search: Some("match"),
                ..Entry::default()
            });
        }
        Ok(writer.finish())
    }
}
