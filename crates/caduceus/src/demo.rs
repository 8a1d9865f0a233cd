//! `caduceus demo-data`: puts realistic patients in the store so a newcomer has something to
//! look at. It loads the Synthea sample bundles when their folder exists (development
//! checkouts have `../shared/fhir/synthea`), and otherwise generates patients itself, so it
//! works on a fresh machine with nothing but the binary. Generation is deterministic (a fixed
//! seed), so demos and tests see the same data every time.

use std::path::{Path, PathBuf};

use caduceus_engine::Engine;
use serde_json::{Value, json};

use crate::cli::DemoArgs;
use crate::import::{collect_files, import_files};
use crate::store::open_engine;

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let engine = open_engine(&args.store, true).await?;
    crate::reindex::check_index(&engine).await?;
    load(&engine, &args.source, args.patients).await
}

/// Where the Synthea samples live in a development checkout.
pub fn default_source() -> PathBuf {
    PathBuf::from("../shared/fhir/synthea")
}

/// Loads `source` if it holds bundles, else generates `patients` patients.
pub async fn load(engine: &Engine, source: &Path, patients: usize) -> anyhow::Result<()> {
    let files = if source.is_dir() {
        collect_files(&[source.to_owned()])?
    } else {
        Vec::new()
    };
    if !files.is_empty() {
        tracing::info!(files = files.len(), "loading the Synthea sample bundles");
        let report = import_files(engine, &files, 500, true).await;
        report.print();
        anyhow::ensure!(
            report.failures.is_empty(),
            "{} demo entries failed",
            report.failures.len()
        );
        return Ok(());
    }
    tracing::info!(
        patients,
        "no Synthea samples found; generating demo patients"
    );
    let mut rng = Rng(0x5eed_cafe_f00d_u64);
    let mut total = 0;
    for n in 0..patients {
        let bundle = patient_bundle(n, &mut rng);
        let (_, responses) = engine
            .process_bundle_entries(bundle, "urn:caduceus:demo")
            .await
            .map_err(|e| anyhow::anyhow!("generated demo bundle refused: {e}"))?;
        total += responses.len();
    }
    println!("generated {patients} demo patients ({total} resources)");
    Ok(())
}

/// A small deterministic generator (xorshift64*): demo data needs variety, not secrecy.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// A decimal with one fractional digit in [lo, hi), as FHIR JSON text keeps it.
    fn decimal(&mut self, lo: u64, hi: u64) -> Value {
        let tenths = lo * 10 + self.below((hi - lo) * 10);
        let text = format!("{}.{}", tenths / 10, tenths % 10);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

const GIVEN_F: &[&str] = &[
    "Maria", "Sofia", "Amelia", "Noor", "Hannah", "Grace", "Ines", "Yara",
];
const GIVEN_M: &[&str] = &[
    "James", "Mateo", "Omar", "Lukas", "Daniel", "Kenji", "Samuel", "Arjun",
];
const FAMILY: &[&str] = &[
    "Garcia", "Nguyen", "Okafor", "Schmidt", "Rossi", "Kowalski", "Haddad", "Tanaka",
];
const CITIES: &[&str] = &[
    "Springfield",
    "Riverton",
    "Lakeside",
    "Fairview",
    "Greenville",
];

fn patient_bundle(n: usize, rng: &mut Rng) -> Value {
    let female = rng.below(2) == 0;
    let given = rng.pick(if female { GIVEN_F } else { GIVEN_M });
    let family = rng.pick(FAMILY);
    let year = 1940 + rng.below(70);
    let birth = format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
    let patient_url = format!("urn:uuid:00000000-0000-4000-8000-{:012}", n * 100);
    let mut entries = vec![entry(
        &patient_url,
        json!({
            "resourceType": "Patient",
            "identifier": [{
                "system": "urn:oid:2.16.840.1.113883.19.5",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "value": format!("MRN{:06}", 100_000 + n)
            }],
            "active": true,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": format!("555-{:04}", rng.below(10_000)), "use": "home"}],
            "gender": if female { "female" } else { "male" },
            "birthDate": birth,
            "address": [{"line": [format!("{} Main Street", 1 + rng.below(900))], "city": rng.pick(CITIES), "country": "US"}]
        }),
    )];
    let patient_ref = json!({ "reference": patient_url });
    for visit in 0..(2 + rng.below(3)) {
        let day = format!("2025-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
        let enc_url = format!(
            "urn:uuid:00000000-0000-4000-8000-{:012}",
            n * 100 + 1 + visit as usize * 10
        );
        entries.push(entry(
            &enc_url,
            json!({
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
                "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "Encounter for check up"}]}],
                "subject": patient_ref,
                "period": {"start": format!("{day}T09:00:00Z"), "end": format!("{day}T09:30:00Z")}
            }),
        ));
        let enc_ref = json!({ "reference": enc_url });
        let when = format!("{day}T09:10:00Z");
        entries.push(vital(
            &patient_ref,
            &enc_ref,
            &when,
            "8867-4",
            "Heart rate",
            json!(60 + rng.below(40)),
            "/min",
            "/min",
        ));
        entries.push(vital(
            &patient_ref,
            &enc_ref,
            &when,
            "29463-7",
            "Body weight",
            rng.decimal(50, 110),
            "kg",
            "kg",
        ));
        entries.push(vital(
            &patient_ref,
            &enc_ref,
            &when,
            "8310-5",
            "Body temperature",
            rng.decimal(36, 38),
            "Cel",
            "Cel",
        ));
        entries.push(entry_new(json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [vital_category()],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
            "subject": patient_ref,
            "encounter": enc_ref,
            "effectiveDateTime": when,
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
                 "valueQuantity": {"value": 100 + rng.below(50), "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
                 "valueQuantity": {"value": 60 + rng.below(30), "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
            ]
        })));
    }
    if rng.below(2) == 0 {
        entries.push(entry_new(json!({
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensive disorder"}]},
            "subject": patient_ref,
            "onsetDateTime": format!("{}-03-01", 2000 + rng.below(20))
        })));
        entries.push(entry_new(json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}]},
            "subject": patient_ref,
            "authoredOn": "2025-01-15",
            "dosageInstruction": [{"text": "one tablet daily"}]
        })));
    }
    entries.push(entry_new(json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140", "display": "Influenza, seasonal, injectable, preservative free"}]},
        "patient": patient_ref,
        "occurrenceDateTime": "2025-10-01T10:00:00Z",
        "primarySource": true
    })));
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}

fn vital_category() -> Value {
    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]})
}

#[allow(clippy::too_many_arguments)]
fn vital(
    patient: &Value,
    encounter: &Value,
    when: &str,
    loinc: &str,
    display: &str,
    value: Value,
    unit: &str,
    ucum: &str,
) -> Value {
    entry_new(json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [vital_category()],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}]},
        "subject": patient,
        "encounter": encounter,
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum}
    }))
}

fn entry(full_url: &str, resource: Value) -> Value {
    let rt = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    json!({ "fullUrl": full_url, "resource": resource, "request": { "method": "POST", "url": rt } })
}

fn entry_new(resource: Value) -> Value {
    let rt = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    json!({ "resource": resource, "request": { "method": "POST", "url": rt } })
}
