//! Conditional interactions over HTTP (FHIR R4 http.html#ccreate, #cond-update, #3.1.0.7.1
//! conditional delete, and conditional references in transactions): create with
//! `If-None-Exist`, update and delete by search, and their forms inside batch and
//! transaction Bundles, including GET search entries.

mod common;

use common::Server;
use serde_json::{Value, json};

const SYS: &str = "http://example.org/mrn";

fn patient(value: &str, family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": SYS, "value": value}],
        "name": [{"family": family}],
    })
}

fn with_id(mut resource: Value, id: &str) -> Value {
    resource["id"] = json!(id);
    resource
}

/// The query `identifier=SYS|value`, URL-encoded for a request path.
fn by_identifier(value: &str) -> String {
    format!(
        "identifier={}%7C{value}",
        SYS.replace(':', "%3A").replace('/', "%2F")
    )
}

/// The ids of the current Patients with `family`, sorted.
#[track_caller]
fn patients(server: &Server, family: &str) -> Vec<String> {
    let reply = server.get(&format!("Patient?family:exact={family}&_count=100"));
    reply.expect(200);
    let mut ids: Vec<String> = reply.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Total number of resource versions on the server (every write adds one).
#[track_caller]
fn versions(server: &Server) -> usize {
    server.history_all("_history").0.len()
}

#[track_caller]
fn status(entry: &Value) -> u16 {
    entry["response"]["status"]
        .as_str()
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no response.status in {entry}"))
}

/// `Type/id` from a response location `Type/id/_history/n`.
#[track_caller]
fn type_and_id(entry: &Value) -> String {
    let location = entry["response"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("no response.location in {entry}"));
    let parts: Vec<&str> = location.split('/').collect();
    let n = parts.len();
    assert!(n >= 4 && parts[n - 2] == "_history", "{location}");
    format!("{}/{}", parts[n - 4], parts[n - 3])
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

// ---------------------------------------------------------------------------------------
// If-None-Exist

#[test]
fn if_none_exist_creates_returns_the_match_or_refuses() {
    let server = Server::start();
    let cond = by_identifier("100");
    let header = [("if-none-exist", cond.as_str())];

    // No match: created.
    let first = server.send_json_with("POST", "Patient", &header, &patient("100", "Cond"));
    first.expect(201);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    assert!(first.header("location").is_some());

    // One match: 200 with the existing resource; nothing written.
    let before = versions(&server);
    let again = server.send_json_with("POST", "Patient", &header, &patient("100", "Other"));
    again.expect(200);
    let body = again.json();
    assert_eq!(body["id"], json!(id));
    assert_eq!(
        body["name"][0]["family"], "Cond",
        "the existing resource, not the body"
    );
    assert_eq!(body["meta"]["versionId"], "1");
    assert_eq!(
        versions(&server),
        before,
        "a matched conditional create writes nothing"
    );
    assert_eq!(patients(&server, "Other"), Vec::<String>::new());

    // Two matches: 412, nothing written.
    server.create_id(&patient("100", "Twin"));
    let before = versions(&server);
    server
        .send_json_with("POST", "Patient", &header, &patient("100", "Third"))
        .expect_error(412);
    assert_eq!(versions(&server), before);

    // Any search will do.
    let by_family = [("if-none-exist", "family=Cond")];
    server
        .send_json_with("POST", "Patient", &by_family, &patient("999", "Cond"))
        .expect(200);
    // A malformed condition is a 400, and an unknown parameter in it is refused rather
    // than silently widening the match to everything.
    server
        .send_json_with(
            "POST",
            "Patient",
            &[("if-none-exist", "birthdate=notadate")],
            &patient("1", "X"),
        )
        .expect_error(400);
    server
        .send_json_with(
            "POST",
            "Patient",
            &[("if-none-exist", "nonsense=1")],
            &patient("1", "X"),
        )
        .expect_error(400);
    assert_eq!(patients(&server, "X"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// Conditional update

#[test]
fn conditional_update_creates_updates_or_refuses() {
    let server = Server::start();

    // No match, no id in the body: created with a server id.
    let q = format!("Patient?{}", by_identifier("1"));
    let r = server.put(&q, &patient("1", "Fresh"));
    r.expect(201);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["meta"]["versionId"], "1");

    // No match, an id in the body: created at that id.
    let q2 = format!("Patient?{}", by_identifier("2"));
    let r = server.put(&q2, &with_id(patient("2", "Named"), "chosen-id"));
    r.expect(201);
    assert_eq!(r.json()["id"], "chosen-id");
    server.get("Patient/chosen-id").expect(200);

    // One match: that resource is updated (version 2).
    let r = server.put(&q, &patient("1", "Updated"));
    r.expect(200);
    let body = r.json();
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["meta"]["versionId"], "2");
    let read = server.get(&format!("Patient/{id}")).json();
    assert_eq!(read["name"][0]["family"], "Updated");
    assert_eq!(read["meta"]["versionId"], "2");
    // The body may carry the match's own id.
    let r = server.put(&q, &with_id(patient("1", "Again"), &id));
    r.expect(200);
    assert_eq!(r.json()["meta"]["versionId"], "3");

    // One match but the body names another id: 400, nothing changed.
    server
        .put(&q, &with_id(patient("1", "Wrong"), "someone-else"))
        .expect_error(400);
    assert_eq!(
        server.get(&format!("Patient/{id}")).json()["meta"]["versionId"],
        "3"
    );
    server.get("Patient/someone-else").expect_error(404);

    // Two matches: 412, nothing changed.
    server.create_id(&patient("1", "Twin"));
    let before = versions(&server);
    server.put(&q, &patient("1", "Clash")).expect_error(412);
    assert_eq!(versions(&server), before);
    assert_eq!(patients(&server, "Clash"), Vec::<String>::new());
}

#[test]
fn conditional_delete_deletes_every_match_or_nothing() {
    let server = Server::start();
    let one = server.create_id(&patient("d1", "Del"));
    let twin_a = server.create_id(&patient("d2", "Del"));
    let twin_b = server.create_id(&patient("d2", "Del"));
    let keep = server.create_id(&patient("d3", "Del"));

    // One match.
    let r = server.delete(&format!("Patient?{}", by_identifier("d1")));
    assert!(
        r.status == 200 || r.status == 204,
        "conditional delete: {} {}",
        r.status,
        r.text()
    );
    server.get(&format!("Patient/{one}")).expect_error(410);

    // Several matches: all of them.
    let r = server.delete(&format!("Patient?{}", by_identifier("d2")));
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    server.get(&format!("Patient/{twin_a}")).expect_error(410);
    server.get(&format!("Patient/{twin_b}")).expect_error(410);
    assert_eq!(patients(&server, "Del"), vec![keep.clone()]);

    // No match: success, nothing deleted.
    let before = versions(&server);
    let r = server.delete(&format!("Patient?{}", by_identifier("nobody")));
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    assert_eq!(versions(&server), before);
    server.get(&format!("Patient/{keep}")).expect(200);

    // Prefer: return=minimal asks for no body.
    let r = server.request(
        "DELETE",
        &format!("Patient?{}", by_identifier("d3")),
        &[("prefer", "return=minimal")],
        None,
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    server.get(&format!("Patient/{keep}")).expect_error(410);
}

#[test]
fn put_and_delete_on_a_type_without_a_search_are_405() {
    let server = Server::start();
    let id = server.create_id(&patient("1", "Keep"));
    let r = server.put("Patient", &patient("1", "Nope"));
    r.expect_error(405);
    assert!(r.header("allow").is_some(), "a 405 names what is allowed");
    server.delete("Patient").expect_error(405);
    // `_format` alone is not a search.
    server.delete("Patient?_format=json").expect_error(405);
    server.get(&format!("Patient/{id}")).expect(200);
    // Unknown types are 404 even in conditional form.
    server
        .delete(&format!("NotAType?{}", by_identifier("1")))
        .expect_error(404);
}

// ---------------------------------------------------------------------------------------
// In Bundles

#[test]
fn transaction_if_none_exist_resolves_full_urls_to_the_existing_resource() {
    let server = Server::start();
    let existing = server.create_id(&patient("tx1", "Existing"));
    let p_url = "urn:uuid:0c3c1a4e-5b7e-4f3e-9a53-2f0d0d1b6a01";
    let new_url = "urn:uuid:0c3c1a4e-5b7e-4f3e-9a53-2f0d0d1b6a02";
    let tx = bundle(
        "transaction",
        vec![
            json!({"fullUrl": p_url, "resource": patient("tx1", "Ignored"),
                   "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYS}|tx1")}}),
            json!({"fullUrl": new_url, "resource": patient("tx2", "New"),
                   "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYS}|tx2")}}),
            json!({"resource": {"resourceType": "Observation", "status": "final",
                                "code": {"text": "x"},
                                "subject": {"reference": p_url},
                                "performer": [{"reference": new_url}]},
                   "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let r = server.post("", &tx);
    r.expect(200);
    let b = r.json();
    assert_eq!(b["type"], "transaction-response");
    let e = b["entry"].as_array().unwrap();
    assert_eq!(status(&e[0]), 200, "the existing match: {}", e[0]);
    assert_eq!(type_and_id(&e[0]), format!("Patient/{existing}"));
    assert_eq!(status(&e[1]), 201);
    let created = type_and_id(&e[1]);
    assert_eq!(status(&e[2]), 201);
    let obs = server.get(&type_and_id(&e[2])).json();
    assert_eq!(
        obs["subject"]["reference"],
        json!(format!("Patient/{existing}"))
    );
    assert_eq!(obs["performer"][0]["reference"], json!(created));
    // The existing patient was not touched.
    let p = server.get(&format!("Patient/{existing}")).json();
    assert_eq!(p["meta"]["versionId"], "1");
    assert_eq!(p["name"][0]["family"], "Existing");
    assert_eq!(patients(&server, "Ignored"), Vec::<String>::new());

    // ifNoneExist matching two resources fails the whole transaction.
    server.create_id(&patient("tx1", "Twin"));
    let before = versions(&server);
    let tx = bundle(
        "transaction",
        vec![
            json!({"resource": patient("tx3", "Side"), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": patient("tx1", "Dup"),
                   "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYS}|tx1")}}),
        ],
    );
    server.post("", &tx).expect_error(412);
    assert_eq!(
        versions(&server),
        before,
        "a failed transaction writes nothing"
    );
}

#[test]
fn transaction_conditional_put_and_delete_entries() {
    let server = Server::start();
    let existing = server.create_id(&patient("u1", "Before"));
    let doomed = server.create_id(&patient("gone", "Doomed"));
    let tx = bundle(
        "transaction",
        vec![
            json!({"resource": patient("u1", "After"),
                   "request": {"method": "PUT", "url": format!("Patient?identifier={SYS}|u1")}}),
            json!({"resource": patient("u2", "Created"),
                   "request": {"method": "PUT", "url": format!("Patient?identifier={SYS}|u2")}}),
            json!({"request": {"method": "DELETE", "url": format!("Patient?identifier={SYS}|gone")}}),
        ],
    );
    let r = server.post("", &tx);
    r.expect(200);
    let e = r.json()["entry"].as_array().unwrap().clone();
    assert_eq!(status(&e[0]), 200, "{}", e[0]);
    assert_eq!(type_and_id(&e[0]), format!("Patient/{existing}"));
    assert_eq!(status(&e[1]), 201, "{}", e[1]);
    assert!(status(&e[2]) == 200 || status(&e[2]) == 204, "{}", e[2]);
    let p = server.get(&format!("Patient/{existing}")).json();
    assert_eq!(p["meta"]["versionId"], "2");
    assert_eq!(p["name"][0]["family"], "After");
    assert_eq!(patients(&server, "Created").len(), 1);
    server.get(&format!("Patient/{doomed}")).expect_error(410);

    // A conditional PUT entry matching two resources fails the transaction.
    server.create_id(&patient("u1", "Twin"));
    let before = versions(&server);
    let tx = bundle(
        "transaction",
        vec![
            json!({"resource": patient("u9", "Side"), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": patient("u1", "Clash"),
                   "request": {"method": "PUT", "url": format!("Patient?identifier={SYS}|u1")}}),
        ],
    );
    server.post("", &tx).expect_error(412);
    assert_eq!(versions(&server), before);
}

#[test]
fn transaction_conditional_references_are_rewritten_or_fail_the_transaction() {
    let server = Server::start();
    let target = server.create_id(&patient("ref1", "Target"));
    let tx = bundle(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Observation", "status": "final",
                                  "code": {"text": "x"},
                                  "subject": {"reference": format!("Patient?identifier={SYS}|ref1")}},
                     "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let r = server.post("", &tx);
    r.expect(200);
    let e = &r.json()["entry"][0];
    assert_eq!(status(e), 201);
    let obs = server.get(&type_and_id(e)).json();
    assert_eq!(
        obs["subject"]["reference"],
        json!(format!("Patient/{target}"))
    );
    // And searchable by the resolved reference.
    let found = server
        .get(&format!("Observation?subject=Patient/{target}"))
        .json();
    assert_eq!(found["entry"].as_array().map(Vec::len), Some(1));

    // A conditional reference matching nothing: 412, nothing written.
    let before = versions(&server);
    let tx = bundle(
        "transaction",
        vec![
            json!({"resource": patient("side", "Side"), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Observation", "status": "final",
                                "code": {"text": "x"},
                                "subject": {"reference": format!("Patient?identifier={SYS}|nobody")}},
                   "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    server.post("", &tx).expect_error(412);
    assert_eq!(versions(&server), before);
    assert_eq!(patients(&server, "Side"), Vec::<String>::new());

    // Matching several: 412 too.
    server.create_id(&patient("ref1", "Twin"));
    let tx = bundle(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Observation", "status": "final",
                                  "code": {"text": "x"},
                                  "subject": {"reference": format!("Patient?identifier={SYS}|ref1")}},
                     "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    server.post("", &tx).expect_error(412);
}

#[test]
fn batch_get_search_entries_answer_with_a_searchset() {
    let server = Server::start();
    let a = server.create_id(&patient("s1", "Searched"));
    let b = server.create_id(&patient("s2", "Searched"));
    server.create_id(&patient("s3", "Elsewhere"));
    let batch = bundle(
        "batch",
        vec![
            json!({"request": {"method": "GET", "url": "Patient?family=searched&_total=accurate"}}),
            json!({"request": {"method": "GET", "url": format!("Patient/{a}")}}),
            json!({"request": {"method": "GET", "url": "Patient?birthdate=notadate"}}),
        ],
    );
    let r = server.post("", &batch);
    r.expect(200);
    let v = r.json();
    assert_eq!(v["type"], "batch-response");
    let e = v["entry"].as_array().unwrap();
    assert_eq!(status(&e[0]), 200);
    let set = &e[0]["resource"];
    assert_eq!(set["resourceType"], "Bundle");
    assert_eq!(set["type"], "searchset");
    assert_eq!(set["total"], 2);
    let mut ids: Vec<&str> = set["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["search"]["mode"] == "match")
        .map(|x| x["resource"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(status(&e[1]), 200);
    assert_eq!(e[1]["resource"]["id"], json!(a));
    // A bad search fails only its own entry in a batch.
    assert_eq!(status(&e[2]), 400, "{}", e[2]);

    // In a transaction the search runs too (after the writes).
    let tx = bundle(
        "transaction",
        vec![
            json!({"request": {"method": "GET", "url": "Patient?family=searched"}}),
            json!({"resource": patient("s4", "Searched"), "request": {"method": "POST", "url": "Patient"}}),
        ],
    );
    let r = server.post("", &tx);
    r.expect(200);
    let e = &r.json()["entry"][0];
    assert_eq!(status(e), 200);
    assert_eq!(e["resource"]["type"], "searchset");
    let n = e["resource"]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["search"]["mode"] == "match")
        .count();
    assert_eq!(n, 3, "GET entries see the transaction's writes: {e}");
}

#[test]
fn conditional_delete_of_too_many_matches_is_412_and_deletes_nothing() {
    let server = Server::start();
    // The server deletes up to 100 matches at once (type_level::MAX_CONDITIONAL_DELETES);
    // beyond that, http.html#cdelete lets it refuse with 412.
    let entries: Vec<Value> = (0..101)
        .map(|_| json!({"resource": patient("many", "Many"), "request": {"method": "POST", "url": "Patient"}}))
        .collect();
    server.post("", &bundle("transaction", entries)).expect(200);
    assert_eq!(
        patients(&server, "Many").len(),
        100,
        "_count=100 caps this listing"
    );
    let before = versions(&server);
    server
        .delete(&format!("Patient?{}", by_identifier("many")))
        .expect_error(412);
    assert_eq!(versions(&server), before);
    let reply = server.get("Patient?family:exact=Many&_summary=count");
    assert_eq!(reply.json()["total"], 101);
}

#[test]
fn if_none_exist_honours_the_return_preference() {
    let server = Server::start();
    let id = server.create_id(&patient("pref", "Pref"));
    let cond = by_identifier("pref");
    let r = server.send_json_with(
        "POST",
        "Patient",
        &[
            ("if-none-exist", cond.as_str()),
            ("prefer", "return=minimal"),
        ],
        &patient("pref", "Pref"),
    );
    r.expect(200);
    assert!(r.body.is_empty(), "return=minimal: {}", r.text());
    let location = r.header("location").unwrap_or_default();
    assert!(
        location.contains(&format!("Patient/{id}/_history/1")),
        "the Location of the existing version: {location}"
    );
}
