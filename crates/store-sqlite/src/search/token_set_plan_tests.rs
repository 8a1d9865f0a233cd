//! Query plan of a resolved terminology criterion (`TokenSet`): the codes of the bound JSON
//! array seek the token lookup index, and `resources` is sought by primary key.

use caduceus_search::{ParseOptions, SearchValue, TokenSet, parse};
use rusqlite::Connection;

use crate::schema;

#[test]
fn token_set_seeks_the_lookup_index_by_code() {
    let mut conn = Connection::open_in_memory().expect("in-memory database");
    schema::configure_reader(&conn).expect("configure");
    schema::migrate(&mut conn).expect("migrate");
    let params = vec![("code:in".to_owned(), "http://vs".to_owned())];
    let mut q = parse(&["Observation"], &params, &ParseOptions::default()).expect("valid");
    q.criteria[0].values[0] = SearchValue::TokenSet(TokenSet {
        written: Box::new(SearchValue::Uri("http://vs".to_owned())),
        codes: vec![("http://s".to_owned(), "a".to_owned())],
    });
    let f = caduceus_store_sql::build_filter(0, &q, 0).expect("supported");
    let sql = format!(
        "EXPLAIN QUERY PLAN SELECT v.body FROM resources r JOIN versions v ON v.seq = r.seq \
         WHERE {} ORDER BY r.type, r.id LIMIT 21",
        f.sql
    );
    let mut stmt = conn.prepare(&sql).expect("prepare");
    let plan: Vec<String> = stmt
        .query_map(
            rusqlite::params_from_iter(f.args.into_iter().map(crate::search::to_sqlite)),
            |r| r.get::<_, String>(3),
        )
        .expect("explain")
        .map(|r| r.expect("row"))
        .collect();
    let plan = plan.join("\n");
    assert!(!plan.contains("SCAN r"), "{plan}");
    assert!(!plan.contains("SCAN x"), "{plan}");
    assert!(
        plan.contains("idx_token_lookup (tenant=? AND type=? AND param=? AND code=?"),
        "{plan}"
    );
}
