//! Search over every Synthea bundle in `../shared/fhir/synthea` (skipped, with a message,
//! when absent): the resources are imported with their index rows (`urn:uuid` references
//! resolved to `Type/id` first, as a transaction would), and a handful of searches are
//! checked against counts computed directly from the JSON.

mod search_support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use caduceus_model::ids::parse_date_range;
use search_support::TestStore;
use serde_json::Value;

fn synthea_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir/synthea");
    dir.is_dir().then_some(dir)
}

/// Every resource of every bundle, with `urn:uuid` references rewritten to `Type/id`. A
/// resource repeated in several bundles (Synthea's shared Organizations and Practitioners,
/// conditional creates) is kept once, as its first occurrence.
fn load(dir: &PathBuf) -> Vec<Value> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("bundle JSON");
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        let mut urls: HashMap<String, String> = HashMap::new();
        for e in &entries {
            let r = &e["resource"];
            if let (Some(url), Some(t), Some(id)) = (
                e["fullUrl"].as_str(),
                r["resourceType"].as_str(),
                r["id"].as_str(),
            ) {
                urls.insert(url.to_owned(), format!("{t}/{id}"));
            }
        }
        for e in entries {
            let mut r = e["resource"].clone();
            resolve(&mut r, &urls);
            let key = (
                r["resourceType"].as_str().unwrap_or_default().to_owned(),
                r["id"].as_str().unwrap_or_default().to_owned(),
            );
            if seen.insert(key) {
                out.push(r);
            }
        }
    }
    out
}

fn resolve(v: &mut Value, urls: &HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference"
                    && let Value::String(s) = child
                    && let Some(local) = urls.get(s.as_str())
                {
                    *s = local.clone();
                } else {
                    resolve(child, urls);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| resolve(i, urls)),
        _ => {}
    }
}

fn of_type<'a>(all: &'a [Value], t: &str) -> impl Iterator<Item = &'a Value> {
    let t = t.to_owned();
    all.iter().filter(move |r| r["resourceType"] == t.as_str())
}

fn has_coding(r: &Value, system: &str, code: &str) -> bool {
    r["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == system && c["code"] == code)
}

/// A searched type, its parameters, and the expected number of matches.
type Check = (&'static str, Vec<(&'static str, String)>, usize);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_counts_match_the_json() {
    let Some(dir) = synthea_dir() else {
        println!("skipped: no Synthea bundles under ../shared/fhir/synthea");
        return;
    };
    let all = load(&dir);
    let s = TestStore::new("synthea");
    let started = Instant::now();
    for chunk in all.chunks(500) {
        s.create_all(chunk.to_vec()).await;
    }
    println!(
        "imported {} resources in {:?}",
        all.len(),
        started.elapsed()
    );

    let height: Vec<&Value> = of_type(&all, "Observation")
        .filter(|r| has_coding(r, "http://loinc.org", "8302-2"))
        .collect();
    let tall = height
        .iter()
        .filter(|r| {
            r["valueQuantity"]["value"]
                .as_f64()
                .is_some_and(|v| v > 170.0)
        })
        .count();
    let patients: Vec<&Value> = of_type(&all, "Patient").collect();
    let by_gender = |g: &str| patients.iter().filter(|p| p["gender"] == g).count();
    let female: HashSet<String> = patients
        .iter()
        .filter(|p| p["gender"] == "female")
        .filter_map(|p| p["id"].as_str().map(|id| format!("Patient/{id}")))
        .collect();
    let first = patients[0]["id"].as_str().expect("id").to_owned();
    let subject_is =
        |r: &Value, p: &str| r["subject"]["reference"] == format!("Patient/{p}").as_str();
    let of_first = of_type(&all, "Observation")
        .filter(|r| subject_is(r, &first))
        .count();
    let obs_of_female = of_type(&all, "Observation")
        .filter(|r| {
            r["subject"]["reference"]
                .as_str()
                .is_some_and(|s| female.contains(s))
        })
        .count();
    let measured: HashSet<&str> = height
        .iter()
        .filter_map(|r| r["subject"]["reference"].as_str())
        .collect();
    let (y0, y1) = parse_date_range("2015").expect("year");
    let in_2015 = of_type(&all, "Encounter")
        .filter(|e| {
            let start = e["period"]["start"].as_str().and_then(parse_date_range);
            let end = e["period"]["end"].as_str().and_then(parse_date_range);
            matches!((start, end), (Some((s, _)), Some((_, e))) if s >= y0 && e <= y1)
        })
        .count();

    let checks: Vec<Check> = vec![
        (
            "Observation",
            vec![("code", "http://loinc.org|8302-2".into())],
            height.len(),
        ),
        (
            "Observation",
            vec![
                ("code", "http://loinc.org|8302-2".into()),
                (
                    "value-quantity",
                    "gt170|http://unitsofmeasure.org|cm".into(),
                ),
            ],
            tall,
        ),
        (
            "Patient",
            vec![("gender", "female".into())],
            by_gender("female"),
        ),
        (
            "Patient",
            vec![("gender", "male".into())],
            by_gender("male"),
        ),
        (
            "Observation",
            vec![("subject", format!("Patient/{first}"))],
            of_first,
        ),
        (
            "Observation",
            vec![("subject:Patient.gender", "female".into())],
            obs_of_female,
        ),
        (
            "Patient",
            vec![(
                "_has:Observation:subject:code",
                "http://loinc.org|8302-2".into(),
            )],
            measured.len(),
        ),
        ("Encounter", vec![("date", "2015".into())], in_2015),
    ];
    for (ty, params, want) in checks {
        let mut p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.push(("_summary", "count"));
        let q = search_support::query(&[ty], &p);
        let t = Instant::now();
        let total = s.page(&q, None).await.expect("count").total;
        let count_time = t.elapsed();
        p.pop();
        p.push(("_count", "20"));
        let q = search_support::query(&[ty], &p);
        let t = Instant::now();
        let page = s.page(&q, None).await.expect("page");
        let page_time = t.elapsed();
        println!(
            "{ty}?{params:?}: {want} expected, total {total:?} in {count_time:?}, first page in {page_time:?}"
        );
        assert_eq!(total, Some(want as u64), "{ty} {params:?}");
        assert_eq!(page.matches.len(), want.min(20));
    }
    // Paging through every Observation of one patient, sorted by date, gives each once.
    let q = search_support::query(
        &["Observation"],
        &[
            ("subject", &format!("Patient/{first}")),
            ("_sort", "-date"),
            ("_count", "50"),
        ],
    );
    let mut seen = HashSet::new();
    let mut cursor = None;
    loop {
        let page = s.page(&q, cursor.as_deref()).await.expect("page");
        for m in &page.matches {
            assert!(seen.insert(m.id.clone()), "repeated");
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), of_first);
}
