//! Every official example resource of the R4 package must validate, except the few listed in
//! [`EXPECTED_FAILURES`], each with the reason. The test also fails when a listed example
//! starts passing, so the list stays exact.

mod common;

use caduceus_validate::validate_resource;

/// An official example that is not valid R4 and must be rejected.
struct Expected {
    file: &'static str,
    /// Every error of the example must contain this text (its location and rule), so a listed
    /// example cannot hide a new, different failure.
    error: &'static str,
    reason: &'static str,
}

const fn expected(file: &'static str, error: &'static str, reason: &'static str) -> Expected {
    Expected {
        file,
        error,
        reason,
    }
}

/// Declared by extension definitions as search parameters, but published without the
/// mandatory `base` (1..*).
const NO_BASE: &str = "extension search parameter published without its mandatory base (1..*)";

/// txt-2 ("The narrative SHALL have some non-whitespace content"): these divs hold only
/// whitespace (an empty `<div>`, or an empty `<pre>` in one), no text and no image.
const EMPTY_NARRATIVE: &str = "narrative div holds only whitespace, which txt-2 forbids";

/// sdf-4 ("If the structure is not abstract, then there SHALL be a baseDefinition"): the
/// logical models of the workflow patterns are not abstract and have no baseDefinition.
const LOGICAL_WITHOUT_BASE: &str =
    "sdf-4: a logical model that is not abstract and has no baseDefinition";

/// The official examples that are invalid and rejected, each with the reason.
const EXPECTED_FAILURES: &[Expected] = &[
    expected(
        "Bundle-dataelements.json",
        "Bundle: bdl-7:",
        "bdl-7: a collection Bundle whose entries repeat fullUrls without versionIds",
    ),
    expected(
        "StructureDefinition-Definition.json",
        "StructureDefinition: sdf-4:",
        LOGICAL_WITHOUT_BASE,
    ),
    expected(
        "StructureDefinition-Event.json",
        "StructureDefinition: sdf-4:",
        LOGICAL_WITHOUT_BASE,
    ),
    expected(
        "StructureDefinition-FiveWs.json",
        "StructureDefinition: sdf-4:",
        LOGICAL_WITHOUT_BASE,
    ),
    expected(
        "StructureDefinition-Request.json",
        "StructureDefinition: sdf-4:",
        LOGICAL_WITHOUT_BASE,
    ),
    expected(
        "ActivityDefinition-blood-tubes-supply.json",
        "ActivityDefinition.text.div: txt-2:",
        EMPTY_NARRATIVE,
    ),
    expected(
        "ActivityDefinition-heart-valve-replacement.json",
        "ActivityDefinition.text.div: txt-2:",
        EMPTY_NARRATIVE,
    ),
    expected(
        "EventDefinition-example.json",
        "EventDefinition.text.div: txt-2:",
        EMPTY_NARRATIVE,
    ),
    expected(
        "Questionnaire-zika-virus-exposure-assessment.json",
        "Questionnaire.text.div: txt-2:",
        EMPTY_NARRATIVE,
    ),
    expected(
        "Basic-referral.json",
        "Basic.modifierExtension[",
        "uses modifierExtension; Caduceus knows no modifier extension and must refuse them",
    ),
    expected(
        "ImplementationGuide-fhir.json",
        "required element is missing",
        "the package's ImplementationGuide stub lacks name and status (both 1..1)",
    ),
    expected(
        "ig-r4.json",
        "required element is missing",
        "the same ImplementationGuide stub: lacks name and status (both 1..1)",
    ),
    expected(
        "Questionnaire-qs1.json",
        ".linkId: required element is missing",
        "nested items (Questionnaire.item.item, a content reference) have no linkId (1..1)",
    ),
    expected(
        "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json",
        "SearchParameter.id: value does not match the format of its type (id)",
        "its id is 67 characters; an id is at most 64",
    ),
    expected(
        "SearchParameter-codesystem-extensions-CodeSystem-author.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-codesystem-extensions-CodeSystem-effective.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-codesystem-extensions-CodeSystem-end.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-codesystem-extensions-CodeSystem-keyword.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-codesystem-extensions-CodeSystem-workflow.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-valueset-extensions-ValueSet-author.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-valueset-extensions-ValueSet-effective.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-valueset-extensions-ValueSet-end.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-valueset-extensions-ValueSet-keyword.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
    expected(
        "SearchParameter-valueset-extensions-ValueSet-workflow.json",
        "SearchParameter.base: required",
        NO_BASE,
    ),
];

#[test]
fn official_examples_validate() {
    let Some(fhir) = common::shared_fhir() else {
        println!("skipped: ../shared not present");
        return;
    };
    let examples = common::package_examples(&fhir);
    assert!(
        examples.len() > 5000,
        "only {} examples found",
        examples.len()
    );
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    for (name, resource) in &examples {
        let errors = common::errors(&validate_resource(resource));
        let expected = EXPECTED_FAILURES.iter().find(|e| e.file == name);
        match expected {
            None if !errors.is_empty() => {
                unexpected.push(format!("{name}:\n    {}", errors.join("\n    ")));
            }
            Some(e) if errors.is_empty() => now_passing.push(format!("{name} ({})", e.reason)),
            Some(e) => {
                let other: Vec<&String> = errors.iter().filter(|x| !x.contains(e.error)).collect();
                if !other.is_empty() {
                    unexpected.push(format!("{name} (listed for: {}):\n    {other:?}", e.reason));
                }
            }
            None => {}
        }
    }
    assert!(
        unexpected.is_empty() && now_passing.is_empty(),
        "{} examples failed unexpectedly:\n{}\n\nlisted as failing but now valid: {now_passing:?}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
