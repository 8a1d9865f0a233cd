//! Criteria: every kind of value, prefix, modifier, escape, chain and `_has`, as a table of
//! query string → the parsed criteria (one line each, rendered by `common::show`).

mod common;
use common::*;

/// `(types, query, expected criteria)`; dates render as `[start, end)` instants.
const CASES: &[(&str, &str, &[&str])] = &[
    // number: precision range is ± half a unit of the last digit written
    (
        "RiskAssessment",
        "probability=100",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Eq, text: \"100\", value: 100, low: 99.5, high: 100.5 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=100.00",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Eq, text: \"100.00\", value: 100.00, low: 99.995, high: 100.005 })",
        ],
    ),
    // 1e2 has one significant digit: [50, 150) (the R4 table says [95, 105), an erratum)
    (
        "RiskAssessment",
        "probability=1e2",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Eq, text: \"1e2\", value: 100, low: 50, high: 150 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=eq0.5",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Eq, text: \"0.5\", value: 0.5, low: 0.45, high: 0.55 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=ne-3",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Ne, text: \"-3\", value: -3, low: -3.5, high: -2.5 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=gt1.5E-2",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Gt, text: \"1.5E-2\", value: 0.015, low: 0.0145, high: 0.0155 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=lt40",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Lt, text: \"40\", value: 40, low: 39.5, high: 40.5 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=ge0",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Ge, text: \"0\", value: 0, low: -0.5, high: 0.5 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=le7.25",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Le, text: \"7.25\", value: 7.25, low: 7.245, high: 7.255 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=sa12",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Sa, text: \"12\", value: 12, low: 11.5, high: 12.5 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=eb12",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Eb, text: \"12\", value: 12, low: 11.5, high: 12.5 })",
        ],
    ),
    (
        "RiskAssessment",
        "probability=ap100",
        &[
            "probability(number@RiskAssessment) = Number(NumberValue { prefix: Ap, text: \"100\", value: 100, low: 99.5, high: 100.5 })",
        ],
    ),
    // date: every precision; a dateTime without zone is UTC
    (
        "Patient",
        "birthdate=2024",
        &[
            "birthdate(date@Patient) = Date(Eq \"2024\" Year [2024-01-01T00:00:00.000000Z, 2025-01-01T00:00:00.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=2024-02",
        &[
            "birthdate(date@Patient) = Date(Eq \"2024-02\" Month [2024-02-01T00:00:00.000000Z, 2024-03-01T00:00:00.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=2024-02-29",
        &[
            "birthdate(date@Patient) = Date(Eq \"2024-02-29\" Day [2024-02-29T00:00:00.000000Z, 2024-03-01T00:00:00.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=lt2024-02-03T04:05",
        &[
            "birthdate(date@Patient) = Date(Lt \"2024-02-03T04:05\" Minute [2024-02-03T04:05:00.000000Z, 2024-02-03T04:06:00.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=ge2024-02-03T04:05:06Z",
        &[
            "birthdate(date@Patient) = Date(Ge \"2024-02-03T04:05:06Z\" Second [2024-02-03T04:05:06.000000Z, 2024-02-03T04:05:07.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=sa2024-02-03T04:05:06.250%2B01:00",
        &[
            "birthdate(date@Patient) = Date(Sa \"2024-02-03T04:05:06.250+01:00\" Fraction [2024-02-03T03:05:06.250000Z, 2024-02-03T03:05:06.251000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=eb2024-02-03T04:05:06-05:00",
        &[
            "birthdate(date@Patient) = Date(Eb \"2024-02-03T04:05:06-05:00\" Second [2024-02-03T09:05:06.000000Z, 2024-02-03T09:05:07.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=ne2024-02-03T04:05:06",
        &[
            "birthdate(date@Patient) = Date(Ne \"2024-02-03T04:05:06\" Second [2024-02-03T04:05:06.000000Z, 2024-02-03T04:05:07.000000Z))",
        ],
    ),
    (
        "Patient",
        "birthdate=ap2024&birthdate=le2030",
        &[
            "birthdate(date@Patient) = Date(Ap \"2024\" Year [2024-01-01T00:00:00.000000Z, 2025-01-01T00:00:00.000000Z))",
            "birthdate(date@Patient) = Date(Le \"2030\" Year [2030-01-01T00:00:00.000000Z, 2031-01-01T00:00:00.000000Z))",
        ],
    ),
    (
        "Observation",
        "date=gt2020-01-01,lt2019-01-01",
        &[
            "date(date@Observation) = Date(Gt \"2020-01-01\" Day [2020-01-01T00:00:00.000000Z, 2020-01-02T00:00:00.000000Z)) OR Date(Lt \"2019-01-01\" Day [2019-01-01T00:00:00.000000Z, 2019-01-02T00:00:00.000000Z))",
        ],
    ),
    // string: prefixes are not interpreted, escapes are; an unknown escape keeps its backslash
    (
        "Patient",
        "name=Peter",
        &["name(string@Patient) = String(\"Peter\")"],
    ),
    (
        "Patient",
        "name:exact=Peter&family:contains=ete",
        &[
            "name(string@Patient) :exact = String(\"Peter\")",
            "family(string@Patient) :contains = String(\"ete\")",
        ],
    ),
    (
        "Patient",
        "name=gt2020",
        &["name(string@Patient) = String(\"gt2020\")"],
    ),
    (
        "Patient",
        "name=a\\,b,c",
        &["name(string@Patient) = String(\"a,b\") OR String(\"c\")"],
    ),
    (
        "Patient",
        "address=1\\|2\\$3\\\\4\\q",
        &["address(string@Patient) = String(\"1|2$3\\\\4\\\\q\")"],
    ),
    // token: code, system|code, |code, system|, modifiers
    (
        "Patient",
        "gender=male",
        &["gender(token@Patient) = Token(TokenValue { system: None, code: Some(\"male\") })"],
    ),
    (
        "Patient",
        "identifier=http://acme.org/mrn|123",
        &[
            "identifier(token@Patient) = Token(TokenValue { system: Some(\"http://acme.org/mrn\"), code: Some(\"123\") })",
        ],
    ),
    (
        "Patient",
        "identifier=|123",
        &[
            "identifier(token@Patient) = Token(TokenValue { system: Some(\"\"), code: Some(\"123\") })",
        ],
    ),
    (
        "Patient",
        "identifier=http://acme.org/mrn|",
        &[
            "identifier(token@Patient) = Token(TokenValue { system: Some(\"http://acme.org/mrn\"), code: None })",
        ],
    ),
    (
        "Patient",
        "identifier=a\\|b",
        &["identifier(token@Patient) = Token(TokenValue { system: None, code: Some(\"a|b\") })"],
    ),
    (
        "Observation",
        "code:text=blood pressure",
        &["code(token@Observation) :text = String(\"blood pressure\")"],
    ),
    (
        "Observation",
        "code:not=http://loinc.org|1234-5",
        &[
            "code(token@Observation) :not = Token(TokenValue { system: Some(\"http://loinc.org\"), code: Some(\"1234-5\") })",
        ],
    ),
    (
        "Observation",
        "code:above=http://snomed.info/sct|123&code:below=http://snomed.info/sct|456",
        &[
            "code(token@Observation) :above = Token(TokenValue { system: Some(\"http://snomed.info/sct\"), code: Some(\"123\") })",
            "code(token@Observation) :below = Token(TokenValue { system: Some(\"http://snomed.info/sct\"), code: Some(\"456\") })",
        ],
    ),
    (
        "Observation",
        "code:in=http://hl7.org/fhir/ValueSet/observation-codes",
        &["code(token@Observation) :in = Uri(\"http://hl7.org/fhir/ValueSet/observation-codes\")"],
    ),
    (
        "Observation",
        "code:not-in=http://hl7.org/fhir/ValueSet/observation-codes",
        &[
            "code(token@Observation) :not-in = Uri(\"http://hl7.org/fhir/ValueSet/observation-codes\")",
        ],
    ),
    (
        "Patient",
        "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
        &[
            "identifier(token@Patient) :of-type = OfType(OfTypeValue { system: \"http://terminology.hl7.org/CodeSystem/v2-0203\", code: \"MR\", value: \"446053\" })",
        ],
    ),
    (
        "Patient",
        "_id=abc,def",
        &[
            "_id(token@Patient) = Token(TokenValue { system: None, code: Some(\"abc\") }) OR Token(TokenValue { system: None, code: Some(\"def\") })",
        ],
    ),
    (
        "Patient",
        "_tag=http://example.org/tags|x&_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
        &[
            "_tag(token@Patient) = Token(TokenValue { system: Some(\"http://example.org/tags\"), code: Some(\"x\") })",
            "_security(token@Patient) = Token(TokenValue { system: Some(\"http://terminology.hl7.org/CodeSystem/v3-Confidentiality\"), code: Some(\"R\") })",
        ],
    ),
    // quantity
    (
        "Observation",
        "value-quantity=5.4",
        &[
            "value-quantity(quantity@Observation) = Quantity(QuantityValue { number: NumberValue { prefix: Eq, text: \"5.4\", value: 5.4, low: 5.35, high: 5.45 }, system: None, code: None })",
        ],
    ),
    (
        "Observation",
        "value-quantity=le5.4|http://unitsofmeasure.org|mg",
        &[
            "value-quantity(quantity@Observation) = Quantity(QuantityValue { number: NumberValue { prefix: Le, text: \"5.4\", value: 5.4, low: 5.35, high: 5.45 }, system: Some(\"http://unitsofmeasure.org\"), code: Some(\"mg\") })",
        ],
    ),
    (
        "Observation",
        "value-quantity=ap5.4||mg",
        &[
            "value-quantity(quantity@Observation) = Quantity(QuantityValue { number: NumberValue { prefix: Ap, text: \"5.4\", value: 5.4, low: 5.35, high: 5.45 }, system: None, code: Some(\"mg\") })",
        ],
    ),
    // reference: a bare id takes the single target type, or stays untyped (patient → Patient, Group)
    (
        "Observation",
        "subject=Patient/123",
        &[
            "subject(reference@Observation) = Reference(Local { resource_type: Some(\"Patient\"), id: \"123\", version: None })",
        ],
    ),
    (
        "Observation",
        "subject=123",
        &[
            "subject(reference@Observation) = Reference(Local { resource_type: None, id: \"123\", version: None })",
        ],
    ),
    (
        "Observation",
        "patient=123",
        &[
            "patient(reference@Observation) = Reference(Local { resource_type: None, id: \"123\", version: None })",
        ],
    ),
    (
        "Observation",
        "subject:Patient=123",
        &[
            "subject(reference@Observation) :Patient = Reference(Local { resource_type: Some(\"Patient\"), id: \"123\", version: None })",
        ],
    ),
    (
        "Observation",
        "subject=Patient/123/_history/2",
        &[
            "subject(reference@Observation) = Reference(Local { resource_type: Some(\"Patient\"), id: \"123\", version: Some(\"2\") })",
        ],
    ),
    (
        "Observation",
        "subject=http://other.org/fhir/Patient/123",
        &[
            "subject(reference@Observation) = Reference(Url { url: \"http://other.org/fhir/Patient/123\", version: None })",
        ],
    ),
    (
        "Observation",
        "subject=https://example.org/fhir/Patient/123",
        &[
            "subject(reference@Observation) = Reference(Url { url: \"https://example.org/fhir/Patient/123\", version: None })",
        ],
    ),
    (
        "Observation",
        "subject=urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
        &[
            "subject(reference@Observation) = Reference(Url { url: \"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0\", version: None })",
        ],
    ),
    (
        "Observation",
        "subject:identifier=http://acme.org/mrn|123",
        &[
            "subject(reference@Observation) :identifier = Token(TokenValue { system: Some(\"http://acme.org/mrn\"), code: Some(\"123\") })",
        ],
    ),
    (
        "Location",
        "partof:below=Location/1&partof:above=Location/2",
        &[
            "partof(reference@Location) :below = Reference(Local { resource_type: Some(\"Location\"), id: \"1\", version: None })",
            "partof(reference@Location) :above = Reference(Local { resource_type: Some(\"Location\"), id: \"2\", version: None })",
        ],
    ),
    (
        "QuestionnaireResponse",
        "questionnaire=http://example.org/Questionnaire/q|2.0",
        &[
            "questionnaire(reference@QuestionnaireResponse) = Reference(Url { url: \"http://example.org/Questionnaire/q\", version: Some(\"2.0\") })",
        ],
    ),
    // uri
    (
        "ValueSet",
        "url=http://hl7.org/fhir/ValueSet/x",
        &["url(uri@ValueSet) = Uri(\"http://hl7.org/fhir/ValueSet/x\")"],
    ),
    (
        "ValueSet",
        "url:below=http://hl7.org/fhir/&url:above=http://hl7.org/fhir/ValueSet/x/y",
        &[
            "url(uri@ValueSet) :below = Uri(\"http://hl7.org/fhir/\")",
            "url(uri@ValueSet) :above = Uri(\"http://hl7.org/fhir/ValueSet/x/y\")",
        ],
    ),
    (
        "Patient",
        "_profile=http://hl7.org/fhir/StructureDefinition/x&_source=http://example.org/source",
        &[
            "_profile(uri@Patient) = Uri(\"http://hl7.org/fhir/StructureDefinition/x\")",
            "_source(uri@Patient) = Uri(\"http://example.org/source\")",
        ],
    ),
    // composite: components typed by their SearchParameter
    (
        "Observation",
        "code-value-quantity=http://loinc.org|8480-6$lt60",
        &[
            "code-value-quantity(composite@Observation) = Composite(Token(TokenValue { system: Some(\"http://loinc.org\"), code: Some(\"8480-6\") }) $ Quantity(QuantityValue { number: NumberValue { prefix: Lt, text: \"60\", value: 60, low: 59.5, high: 60.5 }, system: None, code: None }))",
        ],
    ),
    (
        "Observation",
        "code-value-quantity=http://loinc.org|8480-6$gt5.4|http://unitsofmeasure.org|mmol/L",
        &[
            "code-value-quantity(composite@Observation) = Composite(Token(TokenValue { system: Some(\"http://loinc.org\"), code: Some(\"8480-6\") }) $ Quantity(QuantityValue { number: NumberValue { prefix: Gt, text: \"5.4\", value: 5.4, low: 5.35, high: 5.45 }, system: Some(\"http://unitsofmeasure.org\"), code: Some(\"mmol/L\") }))",
        ],
    ),
    (
        "Observation",
        "code-value-date=8480-6$ge2020-01",
        &[
            "code-value-date(composite@Observation) = Composite(Token(TokenValue { system: None, code: Some(\"8480-6\") }) $ Date(Ge \"2020-01\" Month [2020-01-01T00:00:00.000000Z, 2020-02-01T00:00:00.000000Z)))",
        ],
    ),
    (
        "Observation",
        "code-value-string=8480-6$high",
        &[
            "code-value-string(composite@Observation) = Composite(Token(TokenValue { system: None, code: Some(\"8480-6\") }) $ String(\"high\"))",
        ],
    ),
    (
        "Observation",
        "code-value-concept=8480-6$http://snomed.info/sct|123,8480-7$x",
        &[
            "code-value-concept(composite@Observation) = Composite(Token(TokenValue { system: None, code: Some(\"8480-6\") }) $ Token(TokenValue { system: Some(\"http://snomed.info/sct\"), code: Some(\"123\") })) OR Composite(Token(TokenValue { system: None, code: Some(\"8480-7\") }) $ Token(TokenValue { system: None, code: Some(\"x\") }))",
        ],
    ),
    (
        "Observation",
        "combo-code-value-quantity=8480-6$5",
        &[
            "combo-code-value-quantity(composite@Observation) = Composite(Token(TokenValue { system: None, code: Some(\"8480-6\") }) $ Quantity(QuantityValue { number: NumberValue { prefix: Eq, text: \"5\", value: 5, low: 4.5, high: 5.5 }, system: None, code: None }))",
        ],
    ),
    // R4 defect: this composite's component definitions are in the opposite order to their
    // expressions (relatesto=reference first, relation=token second); the table is followed.
    (
        "DocumentReference",
        "relationship=replaces$DocumentReference/1",
        &[
            "relationship(composite@DocumentReference) = Composite(Reference(Local { resource_type: Some(\"DocumentReference\"), id: \"replaces\", version: None }) $ Token(TokenValue { system: None, code: Some(\"DocumentReference/1\") }))",
        ],
    ),
    (
        "RiskAssessment",
        "_id:missing=false",
        &["_id(token@RiskAssessment) :missing = Boolean(false)"],
    ),
    (
        "MolecularSequence",
        "chromosome-variant-coordinate=1$gt10$lt20",
        &[
            "chromosome-variant-coordinate(composite@MolecularSequence) = Composite(Token(TokenValue { system: None, code: Some(\"1\") }) $ Number(NumberValue { prefix: Gt, text: \"10\", value: 10, low: 9.5, high: 10.5 }) $ Number(NumberValue { prefix: Lt, text: \"20\", value: 20, low: 19.5, high: 20.5 }))",
        ],
    ),
    (
        "Group",
        "characteristic-value=gender$male",
        &[
            "characteristic-value(composite@Group) = Composite(Token(TokenValue { system: None, code: Some(\"gender\") }) $ Token(TokenValue { system: None, code: Some(\"male\") }))",
        ],
    ),
    (
        "ValueSet",
        "context-type-quantity=focus$le5",
        &[
            "context-type-quantity(composite@ValueSet) = Composite(Token(TokenValue { system: None, code: Some(\"focus\") }) $ Quantity(QuantityValue { number: NumberValue { prefix: Le, text: \"5\", value: 5, low: 4.5, high: 5.5 }, system: None, code: None }))",
        ],
    ),
    // special, _list, :missing
    (
        "Location",
        "near=-83.694810|42.256500|11.20|km",
        &[
            "near(special@Location) = Near(NearValue { latitude: -83.694810, longitude: 42.256500, distance: Some(11.20), units: Some(\"km\") })",
        ],
    ),
    (
        "Location",
        "near=-83.694810|42.256500",
        &[
            "near(special@Location) = Near(NearValue { latitude: -83.694810, longitude: 42.256500, distance: None, units: None })",
        ],
    ),
    (
        "Patient",
        "_list=42",
        &["_list(special@) = Special(\"42\")"],
    ),
    (
        "Patient",
        "birthdate:missing=true&name:missing=false&general-practitioner:missing=true",
        &[
            "birthdate(date@Patient) :missing = Boolean(true)",
            "name(string@Patient) :missing = Boolean(false)",
            "general-practitioner(reference@Patient) :missing = Boolean(true)",
        ],
    ),
    // chains, depth 1 to 4; without a type only the targets having the next parameter stay
    (
        "Observation",
        "subject:Patient.name=peter",
        &[
            "subject(reference@Observation):Patient->[Patient] . name(string@Patient) = String(\"peter\")",
        ],
    ),
    (
        "Observation",
        "subject.name=peter",
        &[
            "subject(reference@Observation)->[Patient,Location] . name(string@Patient,Location) = String(\"peter\")",
        ],
    ),
    (
        "Observation",
        "subject.birthdate=ge2000",
        &[
            "subject(reference@Observation)->[Patient] . birthdate(date@Patient) = Date(Ge \"2000\" Year [2000-01-01T00:00:00.000000Z, 2001-01-01T00:00:00.000000Z))",
        ],
    ),
    (
        "Observation",
        "patient.general-practitioner:Practitioner.name=smith",
        &[
            "patient(reference@Observation)->[Patient] . general-practitioner(reference@Patient):Practitioner->[Practitioner] . name(string@Practitioner) = String(\"smith\")",
        ],
    ),
    (
        "Observation",
        "patient.organization.partof.name=acme",
        &[
            "patient(reference@Observation)->[Patient] . organization(reference@Patient)->[Organization] . partof(reference@Organization)->[Organization] . name(string@Organization) = String(\"acme\")",
        ],
    ),
    (
        "Observation",
        "subject:Patient.name:exact=Peter",
        &[
            "subject(reference@Observation):Patient->[Patient] . name(string@Patient) :exact = String(\"Peter\")",
        ],
    ),
    (
        "Observation",
        "subject.identifier=http://acme.org/mrn|123",
        &[
            "subject(reference@Observation)->[Group,Device,Patient,Location] . identifier(token@Group,Device,Patient,Location) = Token(TokenValue { system: Some(\"http://acme.org/mrn\"), code: Some(\"123\") })",
        ],
    ),
    (
        "Encounter",
        "subject:Patient._has:Observation:patient:code=1234",
        &[
            "subject(reference@Encounter):Patient->[Patient] . has Observation<-patient(reference@Observation) . code(token@Observation) = Token(TokenValue { system: None, code: Some(\"1234\") })",
        ],
    ),
    // _has, nested, with a modifier or a chain at the end
    (
        "Patient",
        "_has:Observation:patient:code=1234",
        &[
            "has Observation<-patient(reference@Observation) . code(token@Observation) = Token(TokenValue { system: None, code: Some(\"1234\") })",
        ],
    ),
    (
        "Patient",
        "_has:Observation:subject:code:text=sugar",
        &[
            "has Observation<-subject(reference@Observation) . code(token@Observation) :text = String(\"sugar\")",
        ],
    ),
    (
        "Patient",
        "_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1",
        &[
            "has Observation<-patient(reference@Observation) . has AuditEvent<-entity(reference@AuditEvent) . agent(reference@AuditEvent) = Reference(Local { resource_type: Some(\"Practitioner\"), id: \"1\", version: None })",
        ],
    ),
    (
        "Patient",
        "_has:Observation:patient:performer.name=smith",
        &[
            "has Observation<-patient(reference@Observation) . performer(reference@Observation)->[Practitioner,Organization,Patient,RelatedPerson] . name(string@Practitioner,Organization,Patient,RelatedPerson) = String(\"smith\")",
        ],
    ),
    // several types: the parameter must exist on each
    (
        "",
        "_type=Patient,Practitioner&name=smith",
        &["name(string@Patient,Practitioner) = String(\"smith\")"],
    ),
    (
        "",
        "_id=1&_lastUpdated=gt2020",
        &[
            "_id(token@146 types) = Token(TokenValue { system: None, code: Some(\"1\") })",
            "_lastUpdated(date@146 types) = Date(Gt \"2020\" Year [2020-01-01T00:00:00.000000Z, 2021-01-01T00:00:00.000000Z))",
        ],
    ),
    (
        "Patient,Practitioner",
        "family=smith",
        &["family(string@Patient,Practitioner) = String(\"smith\")"],
    ),
];

#[test]
fn criteria_parse_as_tabled() {
    let mut failures = Vec::new();
    for (types, query, expected) in CASES {
        let q = ok(types, query);
        assert!(
            q.ignored.is_empty(),
            "{types}?{query}: {}",
            show_issues(&q.ignored)
        );
        let got: Vec<String> = q.criteria.iter().map(show).collect();
        if got != *expected {
            failures.push(format!(
                "{types}?{query}\n  expected {expected:#?}\n  got {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn canonical_form_round_trips() {
    for (types, query, _) in CASES {
        assert_round_trip(types, &ok(types, query));
    }
}

#[test]
fn canonical_form_is_normalised() {
    let a = ok(
        "Observation",
        "subject=123&code=x&date=eq2020&_count=10&value-quantity=5.0||mg&_include:recurse=Observation:subject",
    );
    let b = ok(
        "Observation",
        "_include:iterate=Observation:subject&_count=10&value-quantity=5.0||mg&date=2020&code=x&subject=123&nope=1",
    );
    assert_eq!(a.to_query_string(), b.to_query_string());
    assert_eq!(
        a.to_query_string(),
        "code=x&date=2020&subject=123&value-quantity=5.0||mg\
         &_include:iterate=Observation:subject&_count=10"
    );
    // A single-target bare id gains its type; escapes stay minimal; odd bytes are encoded.
    let q = ok(
        "Patient",
        "general-practitioner:Practitioner=1&name=a%5C,b c%2B%26",
    );
    assert_eq!(
        q.to_query_string(),
        "general-practitioner:Practitioner=Practitioner/1&name=a%5C,b%20c%2B%26&_count=20"
    );
    let q = ok(
        "",
        "_type=Patient&_id=1&_sort=-_lastUpdated&_summary=count&_total=accurate&_elements=id&_contained=both&_containedType=contained",
    );
    assert_eq!(
        q.to_query_string(),
        "_type=Patient&_id=1&_sort=-_lastUpdated&_count=20&_summary=count&_elements=id\
         &_total=accurate&_contained=both&_containedType=contained"
    );
}
