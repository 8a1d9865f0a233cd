//! Every Synthea patient bundle in `../shared/fhir/synthea` commits as one transaction
//! (200, every entry 201), its `urn:uuid` references come back rewritten to the ids the
//! server assigned, and the store then holds exactly one resource per entry.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Server;
use serde_json::Value;

const THREADS: usize = 4;

/// What one committed bundle left in the store.
struct Committed {
    file: String,
    entries: usize,
    /// fullUrl (`urn:uuid:...`) → `Type/server-id`, from each entry's `response.location`.
    ids: HashMap<String, String>,
    /// `Type/server-id` of every Observation, with the fullUrls its subject and encounter
    /// named in the bundle.
    observations: Vec<(String, String, Option<String>)>,
}

/// `Patient/abc/_history/1` (possibly absolute) → `Patient/abc`.
fn type_and_id(location: &str) -> Option<String> {
    let parts: Vec<&str> = location.split('/').collect();
    let at = parts.iter().rposition(|p| *p == "_history")?;
    (at >= 2).then(|| format!("{}/{}", parts[at - 2], parts[at - 1]))
}

fn commit(server: &Server, path: &PathBuf) -> Result<Committed, String> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(bundle["type"], "transaction", "{file} is not a transaction");
    let entries = bundle["entry"].as_array().expect("entries");
    let reply = server.post("", &bundle);
    if reply.status != 200 {
        return Err(format!(
            "{file}: answered {}: {}",
            reply.status,
            reply.text()
        ));
    }
    let response = reply.json();
    if response["type"] != "transaction-response" {
        return Err(format!(
            "{file}: the answer is a {} Bundle",
            response["type"]
        ));
    }
    let answers = response["entry"].as_array().cloned().unwrap_or_default();
    if answers.len() != entries.len() {
        return Err(format!(
            "{file}: {} entries sent, {} answered",
            entries.len(),
            answers.len()
        ));
    }
    let mut ids = HashMap::new();
    let mut observations = Vec::new();
    for (i, (sent, answer)) in entries.iter().zip(&answers).enumerate() {
        let status = answer["response"]["status"].as_str().unwrap_or("");
        if !status.starts_with("201") {
            return Err(format!("{file}: entry {i} answered {status:?}: {answer}"));
        }
        let resource_type = sent["resource"]["resourceType"].as_str().unwrap();
        let location = answer["response"]["location"].as_str().unwrap_or("");
        let Some(stored) = type_and_id(location) else {
            return Err(format!(
                "{file}: entry {i} has no usable location: {location:?}"
            ));
        };
        if !stored.starts_with(&format!("{resource_type}/")) {
            return Err(format!(
                "{file}: entry {i} is a {resource_type} but its location is {location}"
            ));
        }
        let full_url = sent["fullUrl"].as_str().unwrap().to_owned();
        if resource_type == "Observation" {
            let r = &sent["resource"];
            observations.push((
                stored.clone(),
                r["subject"]["reference"].as_str().unwrap().to_owned(),
                r["encounter"]["reference"].as_str().map(str::to_owned),
            ));
        }
        ids.insert(full_url, stored);
    }
    Ok(Committed {
        file,
        entries: entries.len(),
        ids,
        observations,
    })
}

/// Checks that every stored Observation names its patient (and encounter) by server id.
fn check_observations(server: &Server, c: &Committed) -> Vec<String> {
    let mut problems = Vec::new();
    for (stored, subject, encounter) in &c.observations {
        let reply = server.get(stored);
        if reply.status != 200 {
            problems.push(format!(
                "{}: GET {stored} answered {}",
                c.file, reply.status
            ));
            continue;
        }
        let obs = reply.json();
        let want_subject = &c.ids[subject];
        assert!(want_subject.starts_with("Patient/"), "{want_subject}");
        if obs["subject"]["reference"] != want_subject.as_str() {
            problems.push(format!(
                "{}: {stored}.subject is {}, expected {want_subject}",
                c.file, obs["subject"]["reference"]
            ));
        }
        if let Some(enc) = encounter {
            let want = &c.ids[enc];
            if obs["encounter"]["reference"] != want.as_str() {
                problems.push(format!(
                    "{}: {stored}.encounter is {}, expected {want}",
                    c.file, obs["encounter"]["reference"]
                ));
            }
        }
    }
    problems
}

/// Every resource in the store, by type, from the system history (all versions are 1 here,
/// so each history entry is one resource; the test checks that too).
fn stored_resources(server: &Server) -> BTreeMap<String, usize> {
    let mut by_type = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut url = format!("{}/_history?_count=1000", server.base);
    loop {
        let page = server.get(&url);
        page.expect(200);
        let page = page.json();
        for e in page["entry"].as_array().into_iter().flatten() {
            let t = e["resource"]["resourceType"].as_str().unwrap().to_owned();
            let id = e["resource"]["id"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(format!("{t}/{id}")),
                "{t}/{id} appears twice in the system history"
            );
            *by_type.entry(t).or_insert(0) += 1;
        }
        let next = page["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str());
        match next {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    by_type
}

#[test]
fn every_synthea_bundle_commits_as_a_transaction() {
    let Some(shared) = common::shared_or_skip("every_synthea_bundle_commits_as_a_transaction")
    else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("fhir/synthea"))
        .expect("fhir/synthea")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 60, "only {} Synthea bundles", files.len());

    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let b: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        for e in b["entry"].as_array().unwrap() {
            let t = e["resource"]["resourceType"].as_str().unwrap().to_owned();
            *expected.entry(t).or_insert(0) += 1;
        }
    }

    let server = Server::start();
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::<String>::new());
    let committed = Mutex::new(Vec::<Committed>::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    match commit(&server, path) {
                        Ok(c) => {
                            let p = check_observations(&server, &c);
                            problems.lock().unwrap().extend(p);
                            committed.lock().unwrap().push(c);
                        }
                        Err(p) => problems.lock().unwrap().push(p),
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );

    let committed = committed.into_inner().unwrap();
    assert_eq!(committed.len(), files.len());
    let entries: usize = committed.iter().map(|c| c.entries).sum();
    let observations: usize = committed.iter().map(|c| c.observations.len()).sum();
    assert!(
        observations > 1000,
        "only {observations} Observations checked"
    );
    let stored = stored_resources(&server);
    assert_eq!(
        stored.values().sum::<usize>(),
        entries,
        "resources stored vs entries sent"
    );
    assert_eq!(stored, expected, "resources stored by type");
}
