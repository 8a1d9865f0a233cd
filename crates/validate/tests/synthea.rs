//! Every Synthea bundle (US Core flavoured: profiles and extensions we do not know) must
//! validate without errors: unknown extensions are accepted when well-formed.

mod common;

use caduceus_validate::validate_resource;

#[test]
fn synthea_bundles_validate() {
    let Some(fhir) = common::shared_fhir() else {
        println!("skipped: ../shared not present");
        return;
    };
    let bundles = common::synthea_bundles(&fhir);
    assert!(!bundles.is_empty(), "no Synthea bundles found");
    let mut failures = Vec::new();
    for (name, bundle) in &bundles {
        let errors = common::errors(&validate_resource(bundle));
        if !errors.is_empty() {
            let shown: Vec<&String> = errors.iter().take(20).collect();
            failures.push(format!("{name} ({} errors):\n    {shown:?}", errors.len()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
