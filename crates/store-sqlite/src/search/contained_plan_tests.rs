//! Query-plan checks for `_contained` searches: the criteria reach the index tables through
//! their lookup indexes, contained resources are sought by their key in `contained`, and
//! containers and versions by primary key; nothing scans a table.

use caduceus_search::{ParseOptions, parse};
use rusqlite::Connection;

use crate::schema;
use caduceus_store_sql::Frag;
use caduceus_store_sql::{Scope, build_scoped_filter as build_scoped};

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory database");
    schema::configure_reader(&conn).expect("configure");
    schema::migrate(&mut conn).expect("migrate");
    conn
}

fn filter(ty: &str, params: &[(&str, &str)]) -> Frag {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = parse(&[ty], &params, &ParseOptions::default()).expect("valid search");
    build_scoped(0, &q, 0, Scope::Contained).expect("supported")
}

fn explain(conn: &Connection, f: &Frag) -> String {
    let sql = format!("EXPLAIN QUERY PLAN {}", f.sql);
    let mut stmt = conn.prepare(&sql).expect("prepare");
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(f.args.iter().cloned().map(crate::search::to_sqlite)),
            |r| r.get::<_, String>(3),
        )
        .expect("explain");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
}

fn assert_no_scan(plan: &str) {
    for line in plan.lines() {
        assert!(
            !line.trim_start().starts_with("SCAN ") || line.contains("SCAN m"),
            "scans a table:\n{plan}"
        );
    }
}

#[test]
fn contained_resources_are_found_through_the_lookup_index() {
    let conn = db();
    let f = filter("Medication", &[("code", "http://snomed.info/sct|123")]);
    let sql = caduceus_store_sql::page_contained_sql(f, None, 20).expect("sql");
    let p = explain(&conn, &sql);
    assert_no_scan(&p);
    assert!(
        p.contains("idx_token_lookup (tenant=? AND type=? AND param=? AND code=? AND system=?)"),
        "{p}"
    );
    assert!(
        p.contains("SEARCH k USING PRIMARY KEY (tenant=? AND type=? AND id=?)"),
        "{p}"
    );
    assert!(
        p.contains("SEARCH o USING PRIMARY KEY (tenant=? AND type=? AND id=?)"),
        "{p}"
    );
}

#[test]
fn containers_are_found_through_their_contained_matches() {
    let conn = db();
    let f = filter("Medication", &[("code", "http://snomed.info/sct|123")]);
    let sql = caduceus_store_sql::page_containers_sql(0, f, None, 20).expect("sql");
    let p = explain(&conn, &sql);
    assert_no_scan(&p);
    assert!(p.contains("idx_token_lookup"), "{p}");
    assert!(
        p.contains("SEARCH k USING PRIMARY KEY (tenant=? AND type=? AND id=?)"),
        "{p}"
    );
    assert!(
        p.contains("SEARCH r USING PRIMARY KEY (tenant=? AND type=? AND id=?)"),
        "{p}"
    );
}

#[test]
fn a_chain_into_contained_targets_still_seeks_references_by_target() {
    let conn = db();
    let params = vec![("subject:Patient.name".to_owned(), "taylor".to_owned())];
    let q = parse(&["Observation"], &params, &ParseOptions::default()).expect("valid");
    let mut f = Frag::new();
    f.push("SELECT v.body FROM resources r JOIN versions v ON v.seq = r.seq WHERE ")
        .append(caduceus_store_sql::build_filter(0, &q, 0).expect("supported"))
        .push(" ORDER BY r.type, r.id LIMIT 21");
    let p = explain(&conn, &f);
    assert_no_scan(&p);
    assert!(p.contains("idx_string_lookup"), "{p}");
}
