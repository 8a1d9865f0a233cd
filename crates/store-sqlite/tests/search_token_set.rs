//! Token sets: the codes of a resolved `:in`, `:not-in`, `:above` or `:below` (the engine
//! resolves terminology; the store only matches `(system, code)` pairs), of any size, at
//! the end of chains and `_has`, and the canonical query string that binds cursors.

mod search_support;

use caduceus_search::{SearchQuery, SearchValue, TokenSet};
use caduceus_store::Store;
use search_support::{TestStore, query};
use serde_json::json;

const SYS: &str = "http://example.org/cs";

/// A search whose terminology values are replaced by `codes`.
fn with_codes(types: &[&str], params: &[(&str, &str)], codes: &[(&str, &str)]) -> SearchQuery {
    let mut q = query(types, params);
    for c in &mut q.criteria {
        for v in &mut c.values {
            if matches!(v, SearchValue::Uri(_) | SearchValue::Token(_))
                && matches!(
                    c.modifier,
                    Some(
                        caduceus_search::Modifier::In
                            | caduceus_search::Modifier::NotIn
                            | caduceus_search::Modifier::Below
                            | caduceus_search::Modifier::Above
                    )
                )
            {
                let written = std::mem::replace(v, SearchValue::Boolean(false));
                *v = SearchValue::TokenSet(TokenSet {
                    written: Box::new(written),
                    codes: codes
                        .iter()
                        .map(|(s, c)| ((*s).to_owned(), (*c).to_owned()))
                        .collect(),
                });
            }
        }
    }
    q
}

async fn ids(s: &TestStore, q: &SearchQuery) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s.store.search(q, cursor.as_deref()).await.expect("search");
        out.extend(page.matches.iter().map(|m| m.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    out
}

async fn fixture() -> TestStore {
    let s = TestStore::new("token-set");
    let obs = |id: &str, codings: serde_json::Value, encounter: Option<&str>| {
        let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                           "code": {"coding": codings}});
        if let Some(e) = encounter {
            o["encounter"] = json!({"reference": format!("Encounter/{e}")});
        }
        o
    };
    s.create_all(vec![
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}),
        json!({"resourceType": "Encounter", "id": "e2", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}),
        obs("a", json!([{"system": SYS, "code": "a"}]), Some("e1")),
        obs("b", json!([{"system": SYS, "code": "b"}, {"system": "http://other", "code": "z"}]), Some("e2")),
        obs("c", json!([{"system": "http://other", "code": "a"}]), None),
        obs("d", json!([{"code": "a"}]), None),
        json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p"},
               "code": {"coding": [{"system": SYS, "code": "a"}]}}),
        json!({"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p"}}),
    ])
    .await;
    s
}

#[tokio::test]
async fn sets_match_system_and_code_pairs() {
    let s = fixture().await;
    let q = with_codes(
        &["Observation"],
        &[("code:in", "http://vs")],
        &[(SYS, "a"), (SYS, "b")],
    );
    assert_eq!(ids(&s, &q).await, ["a", "b"]);
    // The system matters: `a` under another system, or without one, is another code.
    let q = with_codes(
        &["Observation"],
        &[("code:in", "http://vs")],
        &[("http://other", "a")],
    );
    assert_eq!(ids(&s, &q).await, ["c"]);
    let q = with_codes(
        &["Observation"],
        &[("code:below", &format!("{SYS}|a"))],
        &[(SYS, "a")],
    );
    assert_eq!(ids(&s, &q).await, ["a"]);
    let q = with_codes(
        &["Observation"],
        &[("code:above", &format!("{SYS}|b"))],
        &[(SYS, "b")],
    );
    assert_eq!(ids(&s, &q).await, ["b"]);
    // OR of two sets.
    let q = with_codes(
        &["Observation"],
        &[("code:in", "http://vs1,http://vs2")],
        &[(SYS, "b")],
    );
    assert_eq!(ids(&s, &q).await, ["b"]);
}

#[tokio::test]
async fn not_in_keeps_resources_without_the_element_and_empty_sets_work() {
    let s = fixture().await;
    let q = with_codes(
        &["Observation"],
        &[("code:not-in", "http://vs")],
        &[(SYS, "a")],
    );
    assert_eq!(ids(&s, &q).await, ["b", "c", "d"]);
    let q = with_codes(
        &["Condition"],
        &[("code:not-in", "http://vs")],
        &[(SYS, "a")],
    );
    assert_eq!(ids(&s, &q).await, ["c2"]);
    let q = with_codes(&["Observation"], &[("code:in", "http://vs")], &[]);
    assert!(ids(&s, &q).await.is_empty());
    let q = with_codes(&["Condition"], &[("code:not-in", "http://vs")], &[]);
    assert_eq!(ids(&s, &q).await, ["c1", "c2"]);
}

#[tokio::test]
async fn sets_work_at_the_end_of_chains_and_has() {
    let s = fixture().await;
    let q = with_codes(
        &["Encounter"],
        &[("_has:Observation:encounter:code:in", "http://vs")],
        &[(SYS, "b")],
    );
    assert_eq!(ids(&s, &q).await, ["e2"]);
    let q = with_codes(
        &["Encounter"],
        &[("_has:Observation:encounter:code:not-in", "http://vs")],
        &[(SYS, "b")],
    );
    assert_eq!(ids(&s, &q).await, ["e1"]);
}

#[tokio::test]
async fn large_sets_are_one_value() {
    let s = fixture().await;
    let mut codes: Vec<(String, String)> = (0..20_000)
        .map(|k| (SYS.to_owned(), format!("x{k}")))
        .collect();
    codes.push((SYS.to_owned(), "b".to_owned()));
    let borrowed: Vec<(&str, &str)> = codes
        .iter()
        .map(|(s, c)| (s.as_str(), c.as_str()))
        .collect();
    let q = with_codes(&["Observation"], &[("code:in", "http://vs")], &borrowed);
    assert_eq!(ids(&s, &q).await, ["b"]);
}

#[tokio::test]
async fn the_query_string_shows_the_value_as_written_and_cursors_page_through() {
    let s = fixture().await;
    let q = with_codes(
        &["Observation"],
        &[("code:in", "http://vs|1"), ("_count", "1")],
        &[(SYS, "a"), (SYS, "b")],
    );
    // The canonical form is that of the value as written, not of its codes.
    assert_eq!(
        q.to_query_string(),
        query(
            &["Observation"],
            &[("code:in", "http://vs|1"), ("_count", "1")]
        )
        .to_query_string()
    );
    let first = s.store.search(&q, None).await.expect("first page");
    assert_eq!(first.matches.len(), 1);
    let cursor = first.next_cursor.expect("a second page");
    let second = s
        .store
        .search(&q, Some(&cursor))
        .await
        .expect("second page");
    assert_eq!(second.matches.len(), 1);
    assert_ne!(first.matches[0].id, second.matches[0].id);
}
