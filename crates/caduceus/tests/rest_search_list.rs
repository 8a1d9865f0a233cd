//! `_list` over HTTP: the resources a stored List names, combined with other criteria,
//! across several lists (OR) and list changes; absent and functional lists.

mod common;
mod search_support;

use common::Server;
use search_support::*;
use serde_json::json;

fn setup(server: &Server) {
    for (id, family, gender) in [
        ("a", "Listova", "female"),
        ("b", "Listova", "male"),
        ("c", "Listova", "female"),
        ("d", "Other", "female"),
    ] {
        put(server, patient(id, family, "X", gender, None));
    }
    put(
        server,
        observation("o1", Some("Patient/a"), "8302-2", json!({})),
    );
    put(
        server,
        // mode "changes": only such a list may mark entries deleted (lst-2).
        json!({"resourceType": "List", "id": "ward", "status": "current", "mode": "changes",
        "entry": [
            {"item": {"reference": "Patient/a"}},
            {"item": {"reference": format!("{}/Patient/b", server.base)}},
            {"item": {"reference": "Patient/gone"}},
            {"item": {"reference": "Observation/o1"}},
            {"item": {"reference": "Patient/d"}, "deleted": true}
        ]}),
    );
    put(
        server,
        json!({"resourceType": "List", "id": "other", "status": "current", "mode": "working",
               "entry": [{"item": {"reference": "Patient/c/_history/1"}}]}),
    );
}

#[test]
fn list_finds_the_listed_resources_of_the_searched_type() {
    let server = Server::start();
    setup(&server);
    assert_eq!(ids(&server, "Patient?_list=ward"), vec!["a", "b"]);
    assert_eq!(ids(&server, "Observation?_list=ward"), vec!["o1"]);
    // AND with other criteria, OR across lists, AND across repeated _list.
    assert_eq!(ids(&server, "Patient?_list=ward&gender=female"), vec!["a"]);
    assert_eq!(
        ids(&server, "Patient?_list=ward,other"),
        vec!["a", "b", "c"]
    );
    assert_eq!(
        ids(&server, "Patient?_list=ward,other&_list=other"),
        vec!["c"]
    );
    // The self link keeps _list as written.
    let b = search(&server, "Patient?_list=ward");
    assert!(link(&b, "self").unwrap().contains("_list=ward"), "{b}");
    // Following the List as it changes.
    server
        .put(
            "List/ward",
            &json!({"resourceType": "List", "id": "ward", "status": "current", "mode": "working",
                    "entry": [{"item": {"reference": "Patient/d"}}]}),
        )
        .expect(200);
    assert_eq!(ids(&server, "Patient?_list=ward"), vec!["d"]);
    server.delete("List/ward").expect(200);
    assert!(ids(&server, "Patient?_list=ward").is_empty());
}

#[test]
fn absent_and_functional_lists() {
    let server = Server::start();
    setup(&server);
    let b = search(&server, "Patient?_list=nosuchlist");
    assert!(entries(&b, "match").is_empty(), "{b}");
    assert!(
        outcomes(&b)
            .iter()
            .any(|o| o.to_string().contains("no such List")),
        "{b}"
    );
    let outcome = server.get("Patient?_list=$current-problems");
    let oo = outcome.expect_error(400);
    assert!(oo.to_string().contains("functional lists"), "{oo}");
    server.get("Patient?_list=bad%20id").expect_error(400);
}
