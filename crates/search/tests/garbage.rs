//! No input panics: random and garbled parameter names and values, built from fragments of
//! real syntax so they reach deep into the parser. Whatever parses must also round-trip.

mod common;
use caduceus_search::parse;
use common::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const NAME_PARTS: &[&str] = &[
    "_has:",
    "Observation",
    "Patient",
    "Encounter",
    "Group",
    ":",
    ":",
    ".",
    ".",
    "subject",
    "patient",
    "name",
    "code",
    "date",
    "value-quantity",
    "code-value-quantity",
    "identifier",
    "general-practitioner",
    "organization",
    "partof",
    "near",
    "_id",
    "_lastUpdated",
    "_list",
    "_include",
    "_revinclude",
    "iterate",
    "recurse",
    "_sort",
    "_count",
    "_summary",
    "_elements",
    "_type",
    "_total",
    "_contained",
    "_containedType",
    "missing",
    "exact",
    "contains",
    "text",
    "not",
    "above",
    "below",
    "in",
    "not-in",
    "of-type",
    "Practitioner",
    "*",
    "",
    "é",
    "\u{0}",
    "%",
    "\u{1F600}",
    "x",
    "birthdate",
    "probability",
    "url",
    "has-member",
    "_filter",
    "_query",
    "performer",
];

const VALUE_PARTS: &[&str] = &[
    "gt",
    "lt",
    "ge",
    "le",
    "eq",
    "ne",
    "sa",
    "eb",
    "ap",
    "xx",
    "2020",
    "-01",
    "-02-29",
    "T10",
    ":00",
    ":30",
    ".123",
    "Z",
    "+01:00",
    "-05:00",
    "5",
    "5.",
    ".5",
    "1e2",
    "e",
    "E-3",
    "-",
    "+",
    "|",
    "|",
    "$",
    "$",
    ",",
    ",",
    "\\",
    "\\,",
    "\\|",
    "\\$",
    "\\\\",
    "http://loinc.org",
    "Patient/",
    "Observation/",
    "123",
    "/_history/",
    "2",
    "urn:uuid:",
    "abc",
    " ",
    "é",
    "\u{1F600}",
    "\u{0}",
    "true",
    "false",
    "count",
    "Patient:",
    "general-practitioner",
    "*",
    "mg",
    "km",
    "1.5",
    "Qz7",
    "Qz7",
    "Observation:subject",
    "Organization",
    "9999999999999999999999999999999999999",
];

fn garble(rng: &mut Rng, parts: &[&str], max: usize) -> String {
    let n = rng.below(max + 1);
    (0..n).map(|_| rng.pick(parts)).collect()
}

#[test]
fn garbled_names_and_values_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let scopes: &[&[&str]] = &[&["Patient"], &["Observation"], &[], &["Patient", "Group"]];
    let mut parsed = 0;
    for _ in 0..20_000 {
        let n = 1 + rng.below(3);
        let params: Vec<(String, String)> = (0..n)
            .map(|_| {
                (
                    garble(&mut rng, NAME_PARTS, 6),
                    garble(&mut rng, VALUE_PARTS, 6),
                )
            })
            .collect();
        let types = scopes[rng.below(scopes.len())];
        for options in [lenient(), strict()] {
            match parse(types, &params, &options) {
                Ok(q) => {
                    parsed += 1;
                    assert_round_trip(&types.join(","), &q);
                }
                Err(issues) => assert!(!issues.is_empty()),
            }
        }
    }
    assert!(parsed > 1000, "{parsed}");
}

#[test]
fn valid_names_with_garbled_values_never_panic() {
    let mut rng = Rng(42);
    let names: &[(&str, &str)] = &[
        ("Patient", "birthdate"),
        ("Patient", "name"),
        ("Patient", "identifier"),
        ("Patient", "identifier:of-type"),
        ("Patient", "general-practitioner"),
        ("Patient", "_lastUpdated"),
        ("RiskAssessment", "probability"),
        ("Observation", "value-quantity"),
        ("Observation", "code-value-quantity"),
        ("Observation", "code-value-date"),
        ("Observation", "subject"),
        ("Observation", "subject:Patient"),
        ("Observation", "subject:identifier"),
        ("Observation", "code:in"),
        ("Observation", "code:text"),
        ("Location", "near"),
        ("ValueSet", "url:below"),
        ("Patient", "_include"),
        ("Patient", "_revinclude:iterate"),
        ("Patient", "_sort"),
        ("Patient", "_count"),
        ("Patient", "_elements"),
        ("Patient", "name:missing"),
    ];
    for _ in 0..20_000 {
        let (ty, name) = names[rng.below(names.len())];
        let value = garble(&mut rng, VALUE_PARTS, 8);
        let params = vec![(name.to_owned(), value.clone())];
        match parse(&[ty], &params, &lenient()) {
            Ok(q) => assert_round_trip(ty, &q),
            Err(issues) => {
                for i in issues {
                    // "Qz7" is a marker value part: it must never reach a diagnostic.
                    assert!(
                        !i.diagnostics.contains("Qz7"),
                        "{ty}?{name}={value}: {}",
                        i.diagnostics
                    );
                }
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xFF) as u8).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let split = rng.below(text.len() + 1);
        let (name, value) = match (text.get(..split), text.get(split..)) {
            (Some(n), Some(v)) => (n.to_owned(), v.to_owned()),
            _ => (text.clone(), text.clone()),
        };
        let _ = parse(&["Patient"], &[(name.clone(), value.clone())], &strict());
        let _ = parse(
            &["Observation"],
            &[("date".into(), value.clone())],
            &strict(),
        );
        let _ = parse(
            &["Observation"],
            &[("value-quantity".into(), value.clone())],
            &strict(),
        );
        let _ = parse(&["Observation"], &[("subject".into(), value)], &strict());
    }
}
