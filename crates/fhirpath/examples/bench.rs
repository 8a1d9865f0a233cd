//! Evaluations per second of typical search-parameter expressions.
//!
//! `cargo run --release -p caduceus-fhirpath --example bench`

use caduceus_fhirpath::{Cache, Context};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let patient = json!({
        "resourceType": "Patient", "id": "example", "active": true,
        "identifier": [{"use": "usual", "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
        "gender": "male", "birthDate": "1974-12-25", "deceasedBoolean": false,
        "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
        "generalPractitioner": [{"reference": "Practitioner/123"}],
        "managingOrganization": {"reference": "Organization/1"}
    });
    let observation = json!({
        "resourceType": "Observation", "id": "example", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2016-03-28",
        "valueQuantity": {"value": 67.2, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    });
    let cases: [(&serde_json::Value, &str); 10] = [
        (&patient, "Patient.name"),
        (&patient, "Patient.name.family | Patient.name.given"),
        (&patient, "Patient.identifier"),
        (&patient, "Patient.birthDate"),
        (&patient, "Patient.telecom.where(system='phone')"),
        (
            &patient,
            "Patient.generalPractitioner.where(resolve() is Practitioner)",
        ),
        (
            &observation,
            "Observation.subject.where(resolve() is Patient)",
        ),
        (
            &observation,
            "(Observation.value as Quantity) | (Observation.value as SampledData)",
        ),
        (
            &observation,
            "Observation.effective.as(dateTime) | Observation.effective.as(Period)",
        ),
        (
            &observation,
            "Observation.code | Observation.component.code",
        ),
    ];
    let cache = Cache::new();
    let ctx = Context::new();
    let mut total_evals = 0u64;
    let mut total_time = Duration::ZERO;
    println!("{:<72} {:>14}", "expression", "evals/s");
    for (resource, text) in cases {
        let expr = cache.get(text).expect("benchmark expressions parse");
        // warm up, then run for ~200 ms
        for _ in 0..1000 {
            black_box(expr.evaluate(resource, &ctx).expect("evaluates"));
        }
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..1000 {
                black_box(expr.evaluate(black_box(resource), &ctx).expect("evaluates"));
            }
            n += 1000;
        }
        let t = start.elapsed();
        total_evals += n;
        total_time += t;
        println!("{:<72} {:>14.0}", text, n as f64 / t.as_secs_f64());
    }
    println!(
        "{:<72} {:>14.0}  (mean {:.2} µs per evaluation)",
        "all",
        total_evals as f64 / total_time.as_secs_f64(),
        total_time.as_secs_f64() * 1e6 / total_evals as f64
    );
}
