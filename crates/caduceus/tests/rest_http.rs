//! HTTP-level behaviour: content negotiation (`_format`, `Accept`, `Content-Type`),
//! `_pretty`, the CapabilityStatement (every interaction it claims is exercised here),
//! health probes, and graceful shutdown with a request in flight.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Server;
use serde_json::{Value, json};

/// The concrete resource types of FHIR R4 (4.0.1), from http://hl7.org/fhir/R4/resourcelist.html
/// (146, counting Bundle, Binary and Parameters).
const R4_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

fn patient() -> Value {
    json!({"resourceType": "Patient", "gender": "female", "name": [{"family": "Doe"}]})
}

#[test]
fn pretty_output_is_indented_and_equal_in_content() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let plain = server.get(&format!("Patient/{id}"));
    let pretty = server.get(&format!("Patient/{id}?_pretty=true"));
    pretty.expect(200);
    assert!(
        pretty.text().contains("\n  \""),
        "_pretty=true must indent: {}",
        pretty.text()
    );
    assert!(!plain.text().contains('\n'), "compact without _pretty");
    assert_eq!(pretty.json(), plain.json(), "same content");
    // Errors and bundles are pretty too.
    let history = server.get(&format!("Patient/{id}/_history?_pretty=true"));
    history.expect(200);
    assert!(history.text().contains("\n  \""), "{}", history.text());
    let pretty_false = server.get(&format!("Patient/{id}?_pretty=false"));
    assert_eq!(pretty_false.body, plain.body);
}

#[test]
fn format_and_accept_negotiate_json_only() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    for format in ["json", "application/fhir+json", "application/json"] {
        let reply = server.get(&format!("{path}?_format={}", format.replace('+', "%2B")));
        reply.expect(200);
        assert_eq!(reply.json()["id"], id.as_str(), "_format={format}");
    }
    for format in ["xml", "application/fhir+xml", "text/xml", "ttl", "html"] {
        server
            .get(&format!("{path}?_format={}", format.replace('+', "%2B")))
            .expect_error(406);
    }
    server.get("metadata?_format=xml").expect_error(406);
    for accept in [
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/fhir+xml, application/fhir+json;q=0.8",
        "application/fhir+json; fhirVersion=4.0",
    ] {
        let reply = server.request("GET", &path, &[("accept", accept)], None);
        reply.expect(200);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/fhir+json")),
            "Accept {accept}: content type {:?}",
            reply.header("content-type")
        );
    }
    for accept in ["application/fhir+xml", "application/xml", "text/turtle"] {
        server
            .request("GET", &path, &[("accept", accept)], None)
            .expect_error(406);
    }
    // _format wins over Accept (http.html#mime-type).
    server
        .request(
            "GET",
            &format!("{path}?_format=json"),
            &[("accept", "application/fhir+xml")],
            None,
        )
        .expect(200);
}

#[test]
fn a_write_that_cannot_be_answered_in_an_acceptable_format_writes_nothing() {
    let server = Server::start();
    let body = serde_json::to_vec(&patient()).expect("json");
    server
        .request(
            "POST",
            "Patient",
            &[
                ("content-type", "application/fhir+json"),
                ("accept", "application/fhir+xml"),
            ],
            Some(&body),
        )
        .expect_error(406);
    server
        .request(
            "POST",
            "Patient?_format=xml",
            &[("content-type", "application/fhir+json")],
            Some(&body),
        )
        .expect_error(406);
    let (history, _) = server.history_all("_history");
    assert!(history.is_empty(), "nothing stored: {history:?}");
}

#[test]
fn request_content_type_must_be_fhir_json() {
    let server = Server::start();
    let body = serde_json::to_vec(&patient()).expect("json");
    for content_type in ["application/xml", "application/fhir+xml", "text/plain"] {
        server
            .send_raw("POST", "Patient", content_type, &body)
            .expect_error(415);
        let mut with_id = patient();
        with_id["id"] = json!("p1");
        let put = serde_json::to_vec(&with_id).expect("json");
        server
            .send_raw("PUT", "Patient/p1", content_type, &put)
            .expect_error(415);
        server
            .send_raw("POST", "", content_type, b"{}")
            .expect_error(415);
    }
    let (history, _) = server.history_all("_history");
    assert!(history.is_empty(), "nothing stored: {history:?}");
    for content_type in [
        "application/fhir+json",
        "application/fhir+json; charset=utf-8",
        "application/json",
        "application/json+fhir",
    ] {
        server
            .send_raw("POST", "Patient", content_type, &body)
            .expect(201);
    }
}

#[test]
fn health_probes_answer() {
    let server = Server::start();
    for probe in ["health/live", "health/ready"] {
        let reply = server.request("GET", &server.root_url(probe), &[], None);
        reply.expect(200);
        assert_eq!(reply.json()["status"], "pass", "{probe}: {}", reply.text());
    }
}

#[test]
fn capability_statement_lists_every_r4_resource_type() {
    let server = Server::start();
    let reply = server.get("metadata");
    reply.expect(200);
    let cs = reply.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    assert!(
        cs["format"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f == "json" || f == "application/fhir+json")),
        "format lists JSON: {}",
        cs["format"]
    );
    assert!(
        !cs["format"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f.as_str().is_some_and(|f| f.contains("xml"))),
        "XML is not served, so it must not be claimed: {}",
        cs["format"]
    );
    let listed: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .expect("rest[0].resource")
        .iter()
        .map(|r| r["type"].as_str().unwrap_or(""))
        .collect();
    let listed_set: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(listed_set.len(), listed.len(), "no type twice");
    let expected: BTreeSet<&str> = R4_RESOURCE_TYPES.iter().copied().collect();
    assert_eq!(expected.len(), 146, "the R4 list itself");
    assert_eq!(listed_set, expected, "the CapabilityStatement's types");
    // /metadata at the server root answers too.
    server
        .request("GET", &server.root_url("metadata"), &[], None)
        .expect(200);
}

/// A minimal valid resource of a type used to exercise interactions.
fn sample(resource_type: &str) -> Value {
    match resource_type {
        "Patient" => patient(),
        "Observation" => {
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
        }
        "Basic" => json!({"resourceType": "Basic", "code": {"text": "x"}}),
        other => panic!("no sample for {other}"),
    }
}

/// Exercises one instance/type interaction against a fresh resource; returns the status.
fn exercise(server: &Server, resource_type: &str, code: &str) -> u16 {
    let id = server.create_id(&sample(resource_type));
    let path = format!("{resource_type}/{id}");
    let mut body = sample(resource_type);
    body["id"] = json!(id);
    let reply = match code {
        "read" => server.get(&path),
        "vread" => server.get(&format!("{path}/_history/1")),
        "update" => server.put(&path, &body),
        "patch" => server.patch(
            &path,
            &json!([{"op": "add", "path": "/meta/tag", "value": [{"code": "t"}]}]),
            &[],
        ),
        "delete" => server.delete(&path),
        "history-instance" => server.get(&format!("{path}/_history")),
        "history-type" => server.get(&format!("{resource_type}/_history")),
        "create" => server.post(resource_type, &sample(resource_type)),
        "search-type" => server.get(resource_type),
        other => panic!(
            "the CapabilityStatement claims {other} for {resource_type}; this test does not \
             know how to exercise it yet — add it here so the claim is checked"
        ),
    };
    assert!(
        reply.status < 300,
        "{code} on {resource_type}: claimed but answered {} {}",
        reply.status,
        reply.text()
    );
    reply.status
}

#[test]
fn every_claimed_interaction_is_answered() {
    let server = Server::start();
    let cs = server.get("metadata").json();
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    let resources = rest["resource"].as_array().expect("resources");
    for resource_type in ["Patient", "Observation", "Basic"] {
        let entry = resources
            .iter()
            .find(|r| r["type"] == resource_type)
            .unwrap_or_else(|| panic!("{resource_type} is not listed"));
        let codes: Vec<&str> = entry["interaction"]
            .as_array()
            .expect("interaction")
            .iter()
            .filter_map(|i| i["code"].as_str())
            .collect();
        for needed in ["read", "create", "update", "delete"] {
            assert!(codes.contains(&needed), "{resource_type} lacks {needed}");
        }
        for code in &codes {
            exercise(&server, resource_type, code);
        }
        for op in entry["operation"].as_array().into_iter().flatten() {
            let name = op["name"].as_str().expect("operation name");
            let reply = if name == "everything" {
                // An instance-level operation: run it on a stored resource.
                let id = server.create_id(&sample(resource_type));
                server.get(&format!("{resource_type}/{id}/$everything"))
            } else {
                server.post(&format!("{resource_type}/${name}"), &sample(resource_type))
            };
            assert_eq!(
                reply.status,
                200,
                "operation {name} on {resource_type}: {}",
                reply.text()
            );
        }
        if entry["updateCreate"] == true {
            let mut body = sample(resource_type);
            body["id"] = json!("created-by-put");
            server
                .put(&format!("{resource_type}/created-by-put"), &body)
                .expect(201);
        }
    }
    let system: Vec<&str> = rest["interaction"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["code"].as_str())
        .collect();
    for code in system {
        let reply = match code {
            "transaction" | "batch" => server.post(
                "",
                &json!({
                    "resourceType": "Bundle",
                    "type": code,
                    "entry": [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}]
                }),
            ),
            "history-system" => server.get("_history"),
            "search-system" => server.get("?_id=x"),
            other => panic!("the CapabilityStatement claims {other}; exercise it here"),
        };
        assert_eq!(reply.status, 200, "{code}: {}", reply.text());
    }
}

/// A transaction big enough to still be running when SIGTERM arrives.
fn big_transaction(entries: usize) -> Value {
    let entry: Vec<Value> = (0..entries)
        .map(|n| {
            json!({
                "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{n:012}"),
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "http://example.org/shutdown", "value": format!("s{n}")}],
                    "name": [{"family": "Shutdown", "given": ["Test", "Person"]}],
                    "gender": "other",
                    "birthDate": "1990-01-01"
                },
                "request": {"method": "POST", "url": "Patient"}
            })
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entry})
}

/// Posts `body` to `url` on its own connection; returns status and body text.
fn post_in_background(
    url: String,
    body: Vec<u8>,
) -> std::thread::JoinHandle<Result<(u16, String), String>> {
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        let response = agent
            .post(&url)
            .header("content-type", "application/fhir+json")
            .send(&body[..])
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, text))
    })
}

/// Position of the first log line matching `pred`.
fn log_position(logs: &[String], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    logs.iter().position(|l| {
        serde_json::from_str::<Value>(l)
            .map(|v| pred(&v))
            .unwrap_or(false)
    })
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    // If the transaction happens to finish before the signal lands, try again with a
    // bigger one: the test is about a request that is in flight when SIGTERM arrives.
    let mut entries = 6000;
    for _attempt in 0..4 {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let server = Server::start_in_with(&data, &["--log-level", "debug"], &[]);
        let body = serde_json::to_vec(&big_transaction(entries)).expect("json");
        let in_flight = post_in_background(server.base.clone(), body);
        // Wait until the server has the request (the store writes only after the whole
        // body is read and validated), then signal.
        std::thread::sleep(Duration::from_millis(300));
        let (exit, logs) = server.terminate_with_logs();
        let (status, text) = in_flight
            .join()
            .expect("request thread")
            .unwrap_or_else(|e| panic!("the in-flight request was cut off: {e}"));
        assert_eq!(
            status,
            200,
            "in-flight transaction: {}",
            &text[..text.len().min(500)]
        );
        let response: Value = serde_json::from_str(&text).expect("response bundle");
        assert_eq!(response["type"], "transaction-response");
        assert_eq!(
            response["entry"].as_array().map(Vec::len),
            Some(entries),
            "one response entry per request entry"
        );
        assert!(exit.success(), "exit status after SIGTERM: {exit:?}");
        let shutdown = log_position(&logs, |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        })
        .unwrap_or_else(|| panic!("no shutdown line in the log:\n{}", logs.join("\n")));
        let done = log_position(&logs, |v| v["message"] == "request" && v["status"] == 200)
            .unwrap_or_else(|| panic!("the request was not logged:\n{}", logs.join("\n")));
        if done < shutdown {
            eprintln!("the transaction of {entries} entries finished before SIGTERM; retrying");
            entries *= 2;
            continue;
        }
        // Everything the transaction reported is durable.
        let again = Server::start_in(&data, &[]);
        let (history, _) = again.history_all("Patient/_history?_count=1000");
        assert_eq!(history.len(), entries, "stored after restart");
        return;
    }
    panic!("could not get SIGTERM to land while a transaction was in flight");
}
