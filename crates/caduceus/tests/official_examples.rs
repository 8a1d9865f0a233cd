//! Every official FHIR R4 (4.0.1) example resource round-trips through the server: PUT at
//! its own id, then GET returns the same content, apart from the `meta.versionId` and
//! `meta.lastUpdated` the server owns. Decimals must come back exactly as written (numbers
//! are compared by their text).
//!
//! The few examples that the server must refuse are listed in `EXCEPTIONS`, each with the
//! status it must answer and why. The test fails on any unexpected failure and on any
//! listed exception that starts passing (so the list never goes stale).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Server;
use serde_json::Value;

/// Examples the server must refuse: (file in the package, status it must answer, text its
/// OperationOutcome must contain, why).
const EXCEPTIONS: &[(&str, u16, &str, &str)] = &[
    (
        "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json",
        400,
        "not a valid FHIR id",
        "its id has 67 characters; FHIR ids are at most 64, so PUT at that id is a bad request",
    ),
    (
        "Basic-referral.json",
        422,
        "Basic.modifierExtension[0]",
        "valid R4, but it carries modifierExtensions; the validator refuses every modifier \
         extension it does not know (crates/validate/src/walker.rs), as the spec allows",
    ),
    (
        "ImplementationGuide-fhir.json",
        422,
        "ImplementationGuide.status",
        "invalid R4: ImplementationGuide.name and .status are required (1..1) and missing",
    ),
    (
        "ig-r4.json",
        422,
        "ImplementationGuide.name",
        "invalid R4: the same ImplementationGuide/fhir, without the required name and status",
    ),
    (
        "Questionnaire-qs1.json",
        422,
        "Questionnaire.item[0].item[0].linkId",
        "invalid R4: nested Questionnaire.item entries have no linkId, which is required (1..1)",
    ),
    (
        "Bundle-dataelements.json",
        422,
        "Bundle: bdl-7",
        "invalid R4: bdl-7, a collection Bundle whose entries repeat fullUrls without versionIds",
    ),
    (
        "StructureDefinition-Definition.json",
        422,
        "StructureDefinition: sdf-4",
        SDF_4,
    ),
    (
        "StructureDefinition-Event.json",
        422,
        "StructureDefinition: sdf-4",
        SDF_4,
    ),
    (
        "StructureDefinition-FiveWs.json",
        422,
        "StructureDefinition: sdf-4",
        SDF_4,
    ),
    (
        "StructureDefinition-Request.json",
        422,
        "StructureDefinition: sdf-4",
        SDF_4,
    ),
    (
        "ActivityDefinition-blood-tubes-supply.json",
        422,
        "ActivityDefinition.text.div: txt-2",
        TXT_2,
    ),
    (
        "ActivityDefinition-heart-valve-replacement.json",
        422,
        "ActivityDefinition.text.div: txt-2",
        TXT_2,
    ),
    (
        "EventDefinition-example.json",
        422,
        "EventDefinition.text.div: txt-2",
        TXT_2,
    ),
    (
        "Questionnaire-zika-virus-exposure-assessment.json",
        422,
        "Questionnaire.text.div: txt-2",
        TXT_2,
    ),
];

/// Why the logical models of the workflow patterns are refused.
const SDF_4: &str = "invalid R4: sdf-4, a logical model (of the workflow patterns) that is \
                     not abstract and has no baseDefinition";

/// Why the examples whose narrative is only whitespace are refused.
const TXT_2: &str = "invalid R4: the narrative div holds only whitespace, and txt-2 says the \
                     narrative SHALL have some non-whitespace content";

/// The ten SearchParameters for CodeSystem and ValueSet extensions have no `base`, which is
/// required (1..*): invalid R4, so the server must answer 422.
const MISSING_BASE: &[&str] = &[
    "codesystem-extensions-CodeSystem-author",
    "codesystem-extensions-CodeSystem-effective",
    "codesystem-extensions-CodeSystem-end",
    "codesystem-extensions-CodeSystem-keyword",
    "codesystem-extensions-CodeSystem-workflow",
    "valueset-extensions-ValueSet-author",
    "valueset-extensions-ValueSet-effective",
    "valueset-extensions-ValueSet-end",
    "valueset-extensions-ValueSet-keyword",
    "valueset-extensions-ValueSet-workflow",
];

/// Requests in flight at once: enough to keep both the server and the client busy.
const THREADS: usize = 8;

struct Example {
    file: String,
    resource_type: String,
    id: String,
    body: Value,
}

/// Every resource in `package/*.json` of the examples package, except the package's own
/// `package.json` and `.index.json`.
fn load_examples(tgz: &std::path::Path) -> Vec<Example> {
    let file = std::fs::File::open(tgz).unwrap_or_else(|e| panic!("{}: {e}", tgz.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut examples = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("entry path").into_owned();
        let Some(name) = path
            .strip_prefix("package")
            .ok()
            .filter(|rest| rest.components().count() == 1)
            .and_then(|rest| rest.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        if !name.ends_with(".json") || name == "package.json" || name == ".index.json" {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read entry");
        let body: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let (Some(resource_type), Some(id)) = (body["resourceType"].as_str(), body["id"].as_str())
        else {
            panic!("{name} is not a resource with an id");
        };
        examples.push(Example {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            file: name,
            body,
        });
    }
    examples.sort_by(|a, b| a.file.cmp(&b.file));
    examples
}

/// The resource without the two elements the server owns; `meta` goes when nothing else is
/// in it.
fn without_server_meta(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        let empty = match obj.get_mut("meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.remove("versionId");
                meta.remove("lastUpdated");
                meta.is_empty()
            }
            None => false,
        };
        if empty {
            obj.remove("meta");
        }
    }
    v
}

/// The first difference between two JSON values, as a path and both sides; numbers are equal
/// only when their text is (`1.0` is not `1.00`), object member order does not matter.
fn first_difference(path: &str, want: &Value, got: &Value) -> Option<String> {
    let differ = || Some(format!("{path}: sent {want}, got {got}"));
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => (a.to_string() != b.to_string()).then(differ)?,
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    None => return Some(format!("{path}.{k}: sent {va}, missing in the read")),
                    Some(vb) => {
                        if let Some(d) = first_difference(&format!("{path}.{k}"), va, vb) {
                            return Some(d);
                        }
                    }
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| format!("{path}.{k}: not sent, read back as {}", b[k]))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{path}: sent {} items, got {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y))
        }
        _ => (want != got).then(differ)?,
    }
}

/// PUTs one example and reads it back; `Err` says what went wrong.
fn round_trip(server: &Server, ex: &Example) -> Result<(), (u16, String)> {
    let url = format!("{}/{}", ex.resource_type, ex.id);
    let put = server.put(&url, &ex.body);
    if put.status != 200 && put.status != 201 {
        return Err((put.status, format!("PUT {url}: {}", put.text())));
    }
    let get = server.get(&url);
    if get.status != 200 {
        return Err((get.status, format!("GET {url}: {}", get.text())));
    }
    let stored: Value = serde_json::from_slice(&get.body)
        .map_err(|e| (get.status, format!("GET {url}: body is not JSON: {e}")))?;
    for element in ["versionId", "lastUpdated"] {
        if !stored["meta"][element].is_string() {
            return Err((200, format!("GET {url}: no meta.{element}")));
        }
    }
    let want = without_server_meta(ex.body.clone());
    let got = without_server_meta(stored);
    match first_difference(&ex.resource_type, &want, &got) {
        None => Ok(()),
        Some(d) => Err((200, format!("GET {url} differs: {d}"))),
    }
}

#[test]
fn every_official_example_round_trips() {
    let Some(shared) = common::shared_or_skip("every_official_example_round_trips") else {
        return;
    };
    // Numbers are compared by their text: that needs serde_json's arbitrary_precision.
    let probe: Value = serde_json::from_str("[1.50, 100.0, -0.000]").unwrap();
    assert_eq!(
        probe.to_string(),
        "[1.50,100.0,-0.000]",
        "serde_json lost the spelling of numbers: arbitrary_precision is off"
    );
    let examples = load_examples(&shared.join("fhir/hl7.fhir.r4.examples-4.0.1.tgz"));
    assert!(
        examples.len() > 5000,
        "only {} examples found in the package",
        examples.len()
    );
    let missing_base: Vec<String> = MISSING_BASE
        .iter()
        .map(|id| format!("SearchParameter-{id}.json"))
        .collect();
    let exceptions: BTreeMap<&str, (u16, &str, &str)> = EXCEPTIONS
        .iter()
        .map(|(file, status, mention, why)| (*file, (*status, *mention, *why)))
        .chain(missing_base.iter().map(|file| {
            (
                file.as_str(),
                (
                    422,
                    "SearchParameter.base",
                    "invalid R4: SearchParameter.base (1..*) is missing",
                ),
            )
        }))
        .collect();
    for file in exceptions.keys() {
        assert!(
            examples.iter().any(|e| e.file == *file),
            "the exception {file} is not in the package"
        );
    }

    let server = Server::start();
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::<String>::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(ex) = examples.get(i) else { break };
                    let result = round_trip(&server, ex);
                    let problem = match (exceptions.get(ex.file.as_str()), result) {
                        (None, Ok(())) => None,
                        (None, Err((_, what))) => Some(format!("{}: {what}", ex.file)),
                        (Some((status, _, why)), Ok(())) => Some(format!(
                            "{}: listed as an exception ({status}: {why}) but now round-trips; \
                             take it off the list",
                            ex.file
                        )),
                        (Some((status, mention, _)), Err((got, what)))
                            if got == *status && what.contains(mention) =>
                        {
                            None
                        }
                        (Some((status, mention, why)), Err((got, what))) => Some(format!(
                            "{}: listed as an exception that must answer {status} naming \
                             {mention} ({why}), but answered {got}: {what}",
                            ex.file
                        )),
                    };
                    if let Some(p) = problem {
                        problems.lock().unwrap().push(p);
                    }
                }
            });
        }
    });

    let mut problems = problems.into_inner().unwrap();
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} of {} official examples did not behave as expected:\n{}",
        problems.len(),
        examples.len(),
        problems.join("\n")
    );
}
