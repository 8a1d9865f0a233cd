//! Authorization through the real HTTP API, with real tokens: every role against read,
//! search, create, update and delete on Patient, Observation, Appointment and AuditEvent;
//! then leak checks (labels, departments, patient context, scope restrictions) through
//! reads, `_include`, `_revinclude`, chains, `_has`, history, `$everything` and bundles.

mod access;
mod common;

use access::{bearer, claims, secure_server};
use common::{Reply, Server};
use serde_json::{Value, json};

const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const DEPT: &str = "http://caduceus.health/fhir/CodeSystem/department";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

fn call(server: &Server, auth: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
    let mut headers = vec![("authorization", auth)];
    if bytes.is_some() {
        headers.push(("content-type", "application/fhir+json"));
    }
    server.request(method, path, &headers, bytes.as_deref())
}

/// An administrator cleared for everything (labels need clearance to write, too).
fn admin() -> String {
    let mut c = claims("system/*.cruds", &["admin"]);
    c["clearance"] = json!("V");
    c["departments"] = json!(["*"]);
    bearer(&c)
}

fn put(server: &Server, auth: &str, resource: Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().expect("type"),
        resource["id"].as_str().expect("id")
    );
    let reply = call(server, auth, "PUT", &path, Some(&resource));
    assert!(
        reply.status == 200 || reply.status == 201,
        "seeding {path}: {} {}",
        reply.status,
        reply.text()
    );
}

fn labels(codes: &[(&str, &str)]) -> Value {
    json!({"security": codes.iter().map(|(s, c)| json!({"system": s, "code": c})).collect::<Vec<_>>()})
}

fn observation(id: &str, patient: &str, code: &str, category: &str, meta: Option<Value>) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")}
    });
    if let Some(m) = meta {
        o["meta"] = m;
    }
    o
}

/// Patients a (normal), b (normal), c (restricted, family "Hidden"); observations of a
/// (laboratory; vital signs; one labelled R; one of the oncology department), of b, and
/// of c (normal); an appointment of a; an AuditEvent posted by an audit source.
fn seed(server: &Server) {
    let admin = admin();
    put(
        server,
        &admin,
        json!({"resourceType": "Patient", "id": "pa", "name": [{"family": "Alpha"}]}),
    );
    put(
        server,
        &admin,
        json!({"resourceType": "Patient", "id": "pb", "name": [{"family": "Beta"}]}),
    );
    put(
        server,
        &admin,
        json!({"resourceType": "Patient", "id": "pc", "name": [{"family": "Hidden"}],
        "meta": labels(&[(CONF, "R")])}),
    );
    put(
        server,
        &admin,
        observation("oa-lab", "pa", "1-1", "laboratory", None),
    );
    put(
        server,
        &admin,
        observation("oa-vital", "pa", "2-2", "vital-signs", None),
    );
    put(
        server,
        &admin,
        observation(
            "oa-secret",
            "pa",
            "3-3",
            "laboratory",
            Some(labels(&[(CONF, "R")])),
        ),
    );
    put(
        server,
        &admin,
        observation(
            "oa-onc",
            "pa",
            "4-4",
            "laboratory",
            Some(labels(&[(DEPT, "oncology")])),
        ),
    );
    put(
        server,
        &admin,
        observation("ob-lab", "pb", "1-1", "laboratory", None),
    );
    put(
        server,
        &admin,
        observation("oc-lab", "pc", "5-5", "laboratory", None),
    );
    put(
        server,
        &admin,
        json!({"resourceType": "Appointment", "id": "ap-a", "status": "booked",
        "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:30:00Z",
        "participant": [{"actor": {"reference": "Patient/pa"}, "status": "accepted"}]}),
    );
    let source = bearer(&claims("system/AuditEvent.c", &["audit-source"]));
    let reply = call(server, &source, "POST", "AuditEvent", Some(&audit_event()));
    assert_eq!(reply.status, 201, "{}", reply.text());
}

fn audit_event() -> Value {
    json!({"resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"requestor": true, "who": {"display": "test"}}],
        "source": {"observer": {"display": "test"}}})
}

fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut ids: Vec<String> = reply.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] != "OperationOutcome")
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or(""),
                e["resource"]["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    ids.sort();
    ids
}

fn sample(resource_type: &str, id: &str) -> Value {
    match resource_type {
        "Patient" => json!({"resourceType": "Patient", "id": id, "active": true}),
        "Observation" => observation(id, "pa", "9-9", "laboratory", None),
        "Appointment" => json!({"resourceType": "Appointment", "id": id, "status": "proposed",
            "participant": [{"actor": {"reference": "Patient/pa"}, "status": "needs-action"}]}),
        _ => {
            let mut a = audit_event();
            a["id"] = json!(id);
            a
        }
    }
}

#[test]
fn every_role_against_every_interaction() {
    let server = secure_server();
    seed(&server);
    let admin = admin();
    // The visible instance of each type (for read and update), from the seed.
    let audit_id = {
        let auditor = bearer(&claims("user/AuditEvent.rs", &["auditor"]));
        let found = ids(&call(&server, &auditor, "GET", "AuditEvent", None));
        found[0].trim_start_matches("AuditEvent/").to_owned()
    };
    let instance = |t: &str| match t {
        "Patient" => "pa".to_owned(),
        "Observation" => "oa-lab".to_owned(),
        "Appointment" => "ap-a".to_owned(),
        _ => audit_id.clone(),
    };
    // Expected letters per role and type (the built-in policy); AuditEvent updates and
    // deletes are refused for everyone (405), whatever the role.
    let expected: &[(&str, [&str; 4])] = &[
        ("admin", ["cruds", "cruds", "cruds", ""]),
        ("clinician", ["cruds", "cruds", "cruds", ""]),
        ("nurse", ["crus", "crus", "crus", ""]),
        ("scheduler", ["rs", "", "cruds", ""]),
        ("billing", ["rs", "", "", ""]),
        ("auditor", ["", "", "", "rs"]),
        ("patient", ["rs", "rs", "rs", ""]),
    ];
    let types = ["Patient", "Observation", "Appointment", "AuditEvent"];
    let mut failures = Vec::new();
    for (role, letters) in expected {
        let mut c = if *role == "patient" {
            claims("patient/*.cruds", &[role])
        } else {
            claims("user/*.cruds", &[role])
        };
        if *role == "patient" {
            c["patient"] = json!("pa");
        }
        let auth = bearer(&c);
        for (t, allowed) in types.iter().zip(letters) {
            let may = |l: char| allowed.contains(l);
            let id = instance(t);
            let mut check =
                |what: &str, reply: Reply, ok: &[u16], refused: &[u16], allowed: bool| {
                    let good = if allowed { ok } else { refused };
                    if !good.contains(&reply.status) {
                        failures.push(format!(
                            "{role} {what} {t}: got {}, expected one of {good:?}",
                            reply.status
                        ));
                    }
                };
            check(
                "read",
                call(&server, &auth, "GET", &format!("{t}/{id}"), None),
                &[200],
                &[403],
                may('r'),
            );
            check(
                "search",
                call(&server, &auth, "GET", &format!("{t}?_count=5"), None),
                &[200],
                &[403],
                may('s'),
            );
            let new_id = format!("new-{role}-{}", t.to_lowercase());
            let created = call(&server, &auth, "POST", t, Some(&sample(t, &new_id)));
            check("create", created, &[201], &[403], may('c'));
            // Update and delete act on a throwaway made by the admin (or the audit source).
            let victim = format!("v-{role}-{}", t.to_lowercase());
            let maker = if *t == "AuditEvent" {
                bearer(&claims("system/AuditEvent.c", &["audit-source"]))
            } else {
                admin.clone()
            };
            let made = if *t == "AuditEvent" {
                let r = call(&server, &maker, "POST", t, Some(&sample(t, &victim)));
                r.json()["id"].as_str().unwrap_or_default().to_owned()
            } else {
                put(&server, &maker, sample(t, &victim));
                victim.clone()
            };
            let mut body = sample(t, &made);
            if *t == "Patient" {
                body = json!({"resourceType": "Patient", "id": if *role == "patient" { "pa".to_owned() } else { made.clone() }, "active": false});
            }
            let target = body["id"].as_str().unwrap_or_default().to_owned();
            let refused_update: &[u16] = if *t == "AuditEvent" { &[405] } else { &[403] };
            check(
                "update",
                call(&server, &auth, "PUT", &format!("{t}/{target}"), Some(&body)),
                &[200],
                refused_update,
                may('u'),
            );
            check(
                "delete",
                call(&server, &auth, "DELETE", &format!("{t}/{made}"), None),
                &[200, 204],
                refused_update,
                may('d'),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_token_or_no_issuer_match_is_401_and_metadata_stays_public() {
    let server = secure_server();
    let reply = server.request("GET", "Patient", &[], None);
    assert_eq!(reply.status, 401);
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    let reply = server.request(
        "POST",
        "",
        &[("content-type", "application/fhir+json")],
        Some(br#"{"resourceType":"Bundle","type":"batch","entry":[]}"#),
    );
    assert_eq!(reply.status, 401, "bundles need a token too");
    server.get("metadata").expect(200);
}

#[test]
fn labels_and_departments_hide_resources_everywhere() {
    let server = secure_server();
    seed(&server);
    let mut c = claims("user/*.cruds", &["clinician"]);
    c["departments"] = json!(["cardiology"]);
    let doc = bearer(&c);
    let get = |path: &str| call(&server, &doc, "GET", path, None);

    // Reads: hidden reads exactly like absent.
    assert_eq!(get("Observation/oa-secret").status, 404);
    assert_eq!(get("Observation/oa-onc").status, 404);
    assert_eq!(get("Patient/pc").status, 404);
    assert_eq!(get("Observation/oa-secret/_history/1").status, 404);
    assert_eq!(get("Observation/oa-lab").status, 200);

    // Search and totals.
    let reply = get("Observation?patient=pa&_total=accurate");
    assert_eq!(ids(&reply), ["Observation/oa-lab", "Observation/oa-vital"]);
    assert_eq!(reply.json()["total"], 2);
    // Chains and _has cannot reach through a hidden resource.
    assert!(ids(&get("Observation?subject:Patient.family=Hidden")).is_empty());
    assert!(ids(&get("Patient?_has:Observation:patient:code=3-3")).is_empty());
    assert_eq!(
        ids(&get("Patient?_has:Observation:patient:code=1-1")),
        ["Patient/pa", "Patient/pb"]
    );
    assert_eq!(
        ids(&get("Observation?subject:Patient.family=Alpha")),
        ["Observation/oa-lab", "Observation/oa-vital"]
    );
    // _include and _revinclude.
    let inc = ids(&get("Observation?code=5-5&_include=Observation:subject"));
    assert_eq!(
        inc,
        ["Observation/oc-lab"],
        "the restricted patient is not included"
    );
    let rev = ids(&get("Patient?_id=pa&_revinclude=Observation:subject"));
    assert_eq!(
        rev,
        ["Observation/oa-lab", "Observation/oa-vital", "Patient/pa"]
    );
    // History.
    assert_eq!(get("Observation/oa-secret/_history").status, 404);
    let history = get("Observation/_history?_count=100").text();
    assert!(
        !history.contains("oa-secret") && !history.contains("oa-onc"),
        "type history leaks"
    );
    let history = get("_history?_count=100").text();
    assert!(
        !history.contains("oa-secret") && !history.contains("\"pc\""),
        "system history leaks"
    );
    // $everything.
    let everything = ids(&get("Patient/pa/$everything"));
    assert!(everything.contains(&"Observation/oa-lab".to_owned()));
    assert!(
        !everything
            .iter()
            .any(|i| i.contains("secret") || i.contains("onc")),
        "{everything:?}"
    );

    // Bundles: reads inside a batch, and a transaction writing above the caller's clearance.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/oa-secret"}},
        {"request": {"method": "GET", "url": "Observation?_id=oa-secret,oa-lab"}}]});
    let reply = call(&server, &doc, "POST", "", Some(&batch));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert!(
        body["entry"][0]["response"]["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("404")
    );
    assert!(
        !reply.text().contains("3-3"),
        "the hidden observation leaked through a batch"
    );
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Observation/tx-ok"},
         "resource": observation("tx-ok", "pa", "6-6", "laboratory", None)},
        {"request": {"method": "PUT", "url": "Observation/tx-secret"},
         "resource": observation("tx-secret", "pa", "6-6", "laboratory", Some(labels(&[(CONF, "V")])))}]});
    let reply = call(&server, &doc, "POST", "", Some(&tx));
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(
        call(&server, &admin(), "GET", "Observation/tx-ok", None).status,
        404,
        "all or nothing"
    );

    // Updating or deleting a hidden resource fails as if it were absent.
    assert_eq!(
        call(&server, &doc, "DELETE", "Observation/oa-secret", None).status,
        404
    );

    // Cleared for R and in oncology: all of it is visible.
    let mut c = claims("user/*.cruds", &["clinician"]);
    c["clearance"] = json!("R");
    c["departments"] = json!(["oncology"]);
    let senior = bearer(&c);
    let reply = call(&server, &senior, "GET", "Observation?patient=pa", None);
    assert_eq!(ids(&reply).len(), 4);
}

#[test]
fn patient_context_reaches_only_that_patient() {
    let server = secure_server();
    seed(&server);
    let mut c = claims("patient/*.rs", &["patient"]);
    c["patient"] = json!("pa");
    let me = bearer(&c);
    let get = |path: &str| call(&server, &me, "GET", path, None);
    assert_eq!(get("Patient/pa").status, 200);
    assert_eq!(get("Patient/pb").status, 404);
    assert_eq!(get("Observation/ob-lab").status, 404);
    assert_eq!(ids(&get("Patient")), ["Patient/pa"]);
    let mine = ids(&get("Observation"));
    assert_eq!(mine, ["Observation/oa-lab", "Observation/oa-vital"]);
    assert!(ids(&get("Observation?subject=Patient/pb")).is_empty());
    assert!(ids(&get("Observation?subject:Patient.family=Beta")).is_empty());
    assert_eq!(ids(&get("Appointment")), ["Appointment/ap-a"]);
    assert_eq!(get("Patient/pb/$everything").status, 404);
    assert!(ids(&get("Patient/pb/Observation")).is_empty());
    let rev = ids(&get("Observation?code=1-1&_include=Observation:subject"));
    assert_eq!(rev, ["Observation/oa-lab", "Patient/pa"]);
    // Without a patient in context, patient scopes reach nothing.
    let bare = bearer(&claims("patient/*.rs", &["patient"]));
    assert_eq!(call(&server, &bare, "GET", "Observation", None).status, 403);
}

#[test]
fn scope_restrictions_narrow_reads_searches_and_writes() {
    let server = secure_server();
    seed(&server);
    let scope = format!("user/Observation.crs?category={CATEGORY}|laboratory");
    let lab = bearer(&claims(&scope, &["clinician"]));
    let get = |path: &str| call(&server, &lab, "GET", path, None);
    assert_eq!(get("Observation/oa-lab").status, 200);
    assert_eq!(get("Observation/oa-vital").status, 404);
    assert_eq!(ids(&get("Observation?patient=pa")), ["Observation/oa-lab"]);
    let vital = observation("new-vital", "pa", "2-2", "vital-signs", None);
    assert_eq!(
        call(&server, &lab, "POST", "Observation", Some(&vital)).status,
        403
    );
    let new_lab = observation("new-lab", "pa", "1-1", "laboratory", None);
    assert_eq!(
        call(&server, &lab, "POST", "Observation", Some(&new_lab)).status,
        201
    );
    assert_eq!(get("Patient/pa").status, 403, "no scope for Patient");
}

#[test]
fn break_glass_lifts_labels_for_a_while_and_is_audited() {
    let server = access::secure_server_with(&["--break-glass-seconds", "3"]);
    seed(&server);
    let mut c = claims("user/*.cruds", &["clinician"]);
    c["sub"] = json!("dr-on-call");
    c["departments"] = json!(["cardiology"]);
    let doc = bearer(&c);
    assert_eq!(
        call(&server, &doc, "GET", "Observation/oa-secret", None).status,
        404
    );

    let reason = "unconscious patient in the emergency room";
    let declare = json!({"resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": reason}]});
    let billing = bearer(&claims("user/*.cruds", &["billing"]));
    assert_eq!(
        call(&server, &billing, "POST", "$break-glass", Some(&declare)).status,
        403
    );
    let no_reason = json!({"resourceType": "Parameters", "parameter": []});
    assert_eq!(
        call(&server, &doc, "POST", "$break-glass", Some(&no_reason)).status,
        400
    );

    let reply = call(&server, &doc, "POST", "$break-glass", Some(&declare));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        call(&server, &doc, "GET", "Observation/oa-secret", None).status,
        200
    );
    assert_eq!(
        ids(&call(&server, &doc, "GET", "Observation?patient=pa", None)).len(),
        4
    );
    // Roles and scopes still hold.
    assert_eq!(call(&server, &doc, "GET", "AuditEvent", None).status, 403);

    // The auditor finds the record; the log says who, never why.
    let auditor = bearer(&claims("user/AuditEvent.rs", &["auditor"]));
    let found = call(&server, &auditor, "GET", "AuditEvent?subtype=BTG", None);
    assert_eq!(ids(&found).len(), 1, "{}", found.text());
    let event = &found.json()["entry"][0]["resource"];
    assert_eq!(event["purposeOfEvent"][0]["text"], reason);
    assert_eq!(
        event["agent"][0]["who"]["identifier"]["value"],
        "dr-on-call"
    );
    let logs = server.logs_when(|l| l.iter().any(|l| l.contains("break-glass access granted")));
    assert!(
        logs.iter()
            .any(|l| l.contains("break-glass access granted") && l.contains("WARN"))
    );
    assert!(
        !logs.iter().any(|l| l.contains("unconscious")),
        "the reason reached the log"
    );

    // Time-limited.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(
        call(&server, &doc, "GET", "Observation/oa-secret", None).status,
        404
    );
}

#[test]
fn audit_sources_may_put_new_audit_events_but_nobody_changes_one() {
    let server = secure_server();
    let source = bearer(&claims("system/AuditEvent.cu", &["audit-source"]));
    let mut event = audit_event();
    event["id"] = json!("atna-1");
    let first = call(&server, &source, "PUT", "AuditEvent/atna-1", Some(&event));
    assert_eq!(first.status, 201, "{}", first.text());
    let again = call(&server, &source, "PUT", "AuditEvent/atna-1", Some(&event));
    assert_eq!(again.status, 405, "{}", again.text());
    let admin = admin();
    assert_eq!(
        call(&server, &admin, "DELETE", "AuditEvent/atna-1", None).status,
        405
    );
    let patch = server.request(
        "PATCH",
        "AuditEvent/atna-1",
        &[
            ("authorization", &admin),
            ("content-type", "application/json-patch+json"),
        ],
        Some(br#"[{"op":"replace","path":"/outcome","value":"4"}]"#),
    );
    assert!(
        patch.status == 403 || patch.status == 405,
        "{}",
        patch.text()
    );
}
