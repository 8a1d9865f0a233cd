//! Every official search parameter of every resource type is reachable: a search on it
//! parses (with a value of its kind, with `:missing`, and, for references, as the start of
//! a chain), and its canonical form round-trips.

mod common;
use caduceus_model::defs::{self, SearchParamDef};
use common::*;

/// A valid value for a parameter of this kind.
fn sample(def: &SearchParamDef) -> String {
    match def.kind {
        "number" => "ge5".into(),
        "date" => "lt2020-01-02".into(),
        "string" => "abc".into(),
        "token" => "http://example.org|x".into(),
        "reference" => match def.targets.first() {
            Some(t) => format!("{t}/1"),
            None => "1".into(),
        },
        "uri" => "http://example.org/x".into(),
        "quantity" => "5.4|http://unitsofmeasure.org|mg".into(),
        "special" => "1.5|2.5|10|km".into(),
        "composite" => def
            .components
            .iter()
            .map(|(url, _)| {
                let c = defs::search_param_by_url(url).expect("component is defined");
                assert_ne!(c.kind, "composite", "{}", def.url);
                sample(&c)
            })
            .collect::<Vec<_>>()
            .join("$"),
        other => panic!("unknown kind {other} of {}", def.url),
    }
}

#[test]
fn every_parameter_of_every_type_parses() {
    let mut count = 0;
    for &ty in defs::resource_types() {
        let params = defs::search_params(ty);
        assert!(!params.is_empty(), "{ty} has no parameters");
        for def in params {
            let query: Vec<(String, String)> = vec![(def.code.to_owned(), sample(&def))];
            let q = caduceus_search::parse(&[ty], &query, &strict());
            let q = match (def.code, q) {
                ("_query", Err(_)) => continue, // named queries are not supported
                (_, Ok(q)) => q,
                (_, Err(e)) => panic!("{ty}?{query:?}: {}", show_issues(&e)),
            };
            assert_eq!(q.criteria.len(), 1);
            assert_eq!(q.criteria[0].param.defs[0].1.url, def.url);
            assert_round_trip(ty, &q);
            let missing = vec![(format!("{}:missing", def.code), "true".to_owned())];
            caduceus_search::parse(&[ty], &missing, &strict())
                .unwrap_or_else(|e| panic!("{ty} {}:missing: {}", def.code, show_issues(&e)));
            if def.kind == "reference" && !def.targets.is_empty() {
                let chain = vec![(format!("{}.{}", def.code, "_id"), "1".to_owned())];
                let q = caduceus_search::parse(&[ty], &chain, &strict())
                    .unwrap_or_else(|e| panic!("{ty} {}._id: {}", def.code, show_issues(&e)));
                assert_round_trip(ty, &q);
            }
            count += 1;
        }
    }
    assert!(count > 2500, "{count}");
}

#[test]
fn every_reference_parameter_can_be_included_and_revincluded() {
    for &ty in defs::resource_types() {
        for def in defs::search_params(ty) {
            if def.kind != "reference" {
                continue;
            }
            let include = format!("_include={ty}:{}", def.code);
            let q = run(ty, &include, &strict())
                .unwrap_or_else(|e| panic!("{include}: {}", show_issues(&e)));
            assert_round_trip(ty, &q);
            if let Some(target) = def.targets.first() {
                let rev = format!("_revinclude={ty}:{}", def.code);
                let q = run(target, &rev, &strict())
                    .unwrap_or_else(|e| panic!("{target}?{rev}: {}", show_issues(&e)));
                assert_round_trip(target, &q);
            }
        }
    }
}

#[test]
fn every_parameter_can_sort_except_composites() {
    for &ty in ["Patient", "Observation", "Encounter", "MedicationRequest"].iter() {
        for def in defs::search_params(ty) {
            let q = run(ty, &format!("_sort=-{}", def.code), &strict());
            match def.kind {
                _ if def.code == "_query" => assert!(q.is_err()),
                "composite" | "special" => assert!(q.is_err(), "{ty} {}", def.code),
                _ => assert_eq!(q.map(|q| q.sort.len()).ok(), Some(1), "{ty} {}", def.code),
            }
        }
    }
}

#[test]
fn every_identifier_parameter_takes_of_type() {
    let mut count = 0;
    for &ty in defs::resource_types() {
        if defs::search_param(ty, "identifier").is_some() {
            let q = run(
                ty,
                "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|1",
                &strict(),
            );
            assert!(
                q.is_ok(),
                "{ty}: {}",
                q.err().map(|e| show_issues(&e)).unwrap_or_default()
            );
            count += 1;
        }
    }
    assert!(count > 100, "{count}");
}
