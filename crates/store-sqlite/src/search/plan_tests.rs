//! Query-plan checks for searches: each common criterion must reach its index table
//! through the lookup index and `resources` through its primary key, never by scanning the
//! searched type. A change here is a performance regression.

use caduceus_search::{ParseOptions, parse};
use rusqlite::Connection;

use crate::schema;
use caduceus_store_sql::Frag;

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory database");
    schema::configure_reader(&conn).expect("configure");
    schema::migrate(&mut conn).expect("migrate");
    conn
}

/// The plan of the page query of `Patient?params` (or another type).
fn plan(conn: &Connection, ty: &str, params: &[(&str, &str)]) -> String {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = parse(&[ty], &params, &ParseOptions::default()).expect("valid search");
    let f = caduceus_store_sql::build_filter(0, &q, 0).expect("supported");
    let sql = format!(
        "EXPLAIN QUERY PLAN SELECT v.body FROM resources r JOIN versions v ON v.seq = r.seq \
         WHERE {} ORDER BY r.type, r.id LIMIT 21",
        f.sql
    );
    let mut stmt = conn.prepare(&sql).expect("prepare");
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(f.args.into_iter().map(crate::search::to_sqlite)),
            |r| r.get::<_, String>(3),
        )
        .expect("explain");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
}

/// The plan of a search over several types (system search with `_type`).
fn plan_many(conn: &Connection, params: &[(&str, &str)]) -> String {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = parse(&[], &params, &ParseOptions::default()).expect("valid search");
    let f = caduceus_store_sql::build_filter(0, &q, 0).expect("supported");
    let mut sql = Frag::new();
    sql.push("SELECT v.body FROM resources r JOIN versions v ON v.seq = r.seq WHERE ")
        .append(f)
        .push(" ORDER BY r.type, r.id LIMIT 21");
    explain(conn, &sql)
}

/// Resources are found by primary key, never scanned.
fn assert_seeks_resources(plan: &str) {
    assert!(!plan.contains("SCAN r"), "scans the searched type:\n{plan}");
    assert!(!plan.contains("SCAN x"), "scans an index table:\n{plan}");
    assert!(!plan.contains("SCAN c"), "scans references:\n{plan}");
}

#[test]
fn token_code_lookup() {
    let conn = db();
    let p = plan(&conn, "Observation", &[("code", "http://loinc.org|8302-2")]);
    assert_seeks_resources(&p);
    assert!(
        p.contains("idx_token_lookup (tenant=? AND type=? AND param=? AND code=? AND system=?)"),
        "{p}"
    );
}

#[test]
fn string_prefix() {
    let conn = db();
    let p = plan(&conn, "Patient", &[("name", "smi")]);
    assert_seeks_resources(&p);
    assert!(
        p.contains(
            "idx_string_lookup (tenant=? AND type=? AND param=? AND normalized>? AND normalized<?)"
        ),
        "{p}"
    );
}

#[test]
fn date_range() {
    let conn = db();
    let p = plan(&conn, "Patient", &[("birthdate", "1980")]);
    assert_seeks_resources(&p);
    assert!(
        p.contains(
            "idx_date_lookup (tenant=? AND type=? AND param=? AND start_us>? AND start_us<?)"
        ),
        "{p}"
    );
}

#[test]
fn reference_by_target() {
    let conn = db();
    let p = plan(&conn, "Observation", &[("subject", "Patient/123")]);
    assert_seeks_resources(&p);
    // Either reference index answers this from the index alone, seeking all of type,
    // parameter and target (migration 6 made both covering).
    assert!(
        p.contains("idx_reference_lookup (tenant=? AND type=? AND param=? AND target_id=? AND target_type=?)")
            || p.contains("COVERING INDEX idx_reference_target (tenant=? AND target_type=? AND target_id=? AND param=? AND type=?)"),
        "{p}"
    );
}

#[test]
fn chain_seeks_references_by_target() {
    let conn = db();
    let p = plan(&conn, "Observation", &[("subject:Patient.name", "smi")]);
    assert_seeks_resources(&p);
    assert!(p.contains("idx_string_lookup"), "{p}");
    // Each matching target's id is sought in the reference index (either one), so the cost
    // follows the number of targets found, not the number of references.
    let refs = p
        .lines()
        .find(|l| l.starts_with("SEARCH c "))
        .unwrap_or_default();
    assert!(
        refs.contains("target_id=?") && refs.contains("target_type=?"),
        "{p}"
    );
}

#[test]
fn reverse_chain() {
    let conn = db();
    let p = plan(
        &conn,
        "Patient",
        &[("_has:Observation:subject:code", "8302-2")],
    );
    assert_seeks_resources(&p);
    assert!(p.contains("idx_token_lookup"), "{p}");
}

#[test]
fn id_and_several_criteria() {
    let conn = db();
    let p = plan(
        &conn,
        "Patient",
        &[("_id", "a,b"), ("gender", "male"), ("name", "x")],
    );
    assert_seeks_resources(&p);
}

/// The `EXPLAIN QUERY PLAN` details of any SQL.
fn explain(conn: &Connection, f: &Frag) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", f.sql))
        .expect("prepare");
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(f.args.iter().cloned().map(crate::search::to_sqlite)),
            |r| r.get::<_, String>(3),
        )
        .expect("explain");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
}

#[test]
fn sort_values_seek_each_resources_own_rows() {
    let conn = db();
    let params = vec![("_sort".to_owned(), "-date".to_owned())];
    let q = parse(&["Observation"], &params, &ParseOptions::default()).expect("valid");
    let mut f = Frag::new();
    f.push("SELECT ")
        .append(
            caduceus_store_sql::sort_value_expr(&q.sort[0])
                .expect("sortable")
                .0,
        )
        .push(" FROM resources r WHERE r.tenant = 0 AND r.type = 'Observation'");
    let p = explain(&conn, &f);
    assert!(
        p.contains("idx_date_resource (tenant=? AND type=? AND id=?)"),
        "{p}"
    );
}

#[test]
fn several_types_are_driven_by_the_index_rows() {
    let conn = db();
    let p = plan_many(&conn, &[("_type", "Patient,Practitioner"), ("name", "smi")]);
    assert_seeks_resources(&p);
    assert!(p.contains("idx_string_lookup"), "{p}");
    let p = plan_many(&conn, &[("_id", "a")]);
    assert!(!p.contains("CORRELATED"), "{p}");
}

#[test]
fn composite_seeks_its_first_component() {
    let conn = db();
    let p = plan(
        &conn,
        "Observation",
        &[("code-value-quantity", "http://loinc.org|8867-4$gt80")],
    );
    assert_seeks_resources(&p);
    assert!(
        p.contains(
            "idx_composite_lookup (tenant=? AND type=? AND param=? AND code_1=? AND system_1=?)"
        ),
        "{p}"
    );
    // A code without a system still seeks the code.
    let p = plan(
        &conn,
        "Observation",
        &[(
            "component-code-value-quantity",
            "8480-6$lt130|http://unitsofmeasure.org|mm[Hg]",
        )],
    );
    assert_seeks_resources(&p);
    assert!(
        p.contains("idx_composite_lookup (tenant=? AND type=? AND param=? AND code_1=?)"),
        "{p}"
    );
}

#[test]
fn of_type_seeks_the_type_code_and_value() {
    let conn = db();
    let p = plan(
        &conn,
        "Patient",
        &[(
            "identifier:of-type",
            "http://terminology.hl7.org/CodeSystem/v2-0203|MR|A1",
        )],
    );
    assert_seeks_resources(&p);
    assert!(
        p.contains(
            "idx_composite_lookup (tenant=? AND type=? AND param=? AND code_1=? AND system_1=? AND code_2=?)"
        ),
        "{p}"
    );
}

#[test]
fn reference_identifier_seeks_token_rows() {
    let conn = db();
    let p = plan(
        &conn,
        "Observation",
        &[("subject:identifier", "urn:mrn|A1")],
    );
    assert_seeks_resources(&p);
    assert!(
        p.contains("idx_token_lookup (tenant=? AND type=? AND param=? AND code=? AND system=?)"),
        "{p}"
    );
}

/// The plan of a planned search, with set sizes given by `sizes` (by index table).
fn planned(conn: &Connection, ty: &str, params: &[(&str, &str)], sizes: &[(&str, u64)]) -> String {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = parse(&[ty], &params, &ParseOptions::default()).expect("valid search");
    let estimate = |set: &Frag, cap: u64| {
        let n = sizes
            .iter()
            .find(|(table, _)| set.sql.contains(table))
            .map_or(cap, |(_, n)| *n);
        Ok(n.min(cap))
    };
    let f = caduceus_store_sql::build_planned_filter(0, &q, 0, &estimate).expect("supported");
    let mut sql = Frag::new();
    sql.push("SELECT v.body FROM resources r JOIN versions v ON v.seq = r.seq WHERE ")
        .append(f)
        .push(" ORDER BY r.type, r.id LIMIT 21");
    explain(conn, &sql)
}

#[test]
fn the_smallest_criterion_drives_and_the_others_probe_the_candidates() {
    let conn = db();
    let params = [
        ("patient", "Patient/123"),
        ("code", "http://loinc.org|29463-7"),
    ];
    // Few Observations of the patient, many with the code: the patient's set drives.
    let p = planned(
        &conn,
        "Observation",
        &params,
        &[("idx_reference", 300), ("idx_token", 3000)],
    );
    assert_seeks_resources(&p);
    assert!(p.contains("LIST SUBQUERY"), "{p}");
    assert!(
        p.contains("EXISTS USING COVERING INDEX idx_token_lookup (tenant=? AND type=? AND param=? AND code=? AND system=? AND id=?)"),
        "{p}"
    );
    // The other way round: a rare code drives, the patient is probed.
    let p = planned(
        &conn,
        "Observation",
        &params,
        &[("idx_reference", 3000), ("idx_token", 3)],
    );
    assert_seeks_resources(&p);
    assert!(p.contains("SEARCH x EXISTS USING"), "{p}");
    assert!(p.contains("idx_reference"), "{p}");
    assert!(!p.contains("EXISTS USING COVERING INDEX idx_token"), "{p}");
}
