//! Query-plan regression tests: the hot queries must seek an index, never scan or sort
//! more than the instance's own rows. A plan change here is a performance regression.

use caduceus_store::{HistoryQuery, HistoryScope};
use rusqlite::Connection;

use crate::{history, schema};

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory database");
    schema::configure_reader(&conn).expect("configure");
    schema::migrate(&mut conn).expect("migrate");
    conn
}

/// The `detail` column of `EXPLAIN QUERY PLAN`, one line per step.
fn plan(conn: &Connection, sql: &str, n_params: usize) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("prepare");
    let params: Vec<rusqlite::types::Value> = (0..n_params)
        .map(|_| rusqlite::types::Value::Integer(1))
        .collect();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .expect("explain");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
}

fn assert_no_scan(plan: &str) {
    assert!(!plan.contains("SCAN"), "unexpected scan:\n{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "unexpected sort:\n{plan}");
}

#[test]
fn point_reads_seek() {
    let conn = db();
    let read = plan(
        &conn,
        concat!(
            "SELECT ",
            crate::rows::version_columns!(),
            " FROM resources r JOIN versions v ON v.seq = r.seq \
             WHERE r.tenant = ?1 AND r.type = ?2 AND r.id = ?3"
        ),
        3,
    );
    assert_no_scan(&read);
    assert!(read.contains("INTEGER PRIMARY KEY"), "{read}");
    let vread = plan(
        &conn,
        "SELECT v.body FROM versions v \
         WHERE v.tenant = ?1 AND v.type = ?2 AND v.id = ?3 AND v.version = ?4",
        4,
    );
    assert_no_scan(&vread);
    let count = plan(
        &conn,
        "SELECT count(*) FROM resources WHERE tenant = ?1 AND type = ?2 AND deleted = 0",
        2,
    );
    assert!(count.contains("COVERING INDEX resources_live"), "{count}");
}

#[test]
fn history_pages_seek_and_need_no_sort() {
    let conn = db();
    let scopes = [
        HistoryScope::System,
        HistoryScope::Type("Patient".into()),
        HistoryScope::Instance("Patient".into(), "a".into()),
    ];
    for scope in scopes {
        for (since, before, at) in [
            (None, None, None),
            (Some(5), Some(10), None),
            (None, Some(10), Some((3, 9))),
        ] {
            let q = HistoryQuery {
                scope: scope.clone(),
                since,
                at,
                before_seq: before,
                limit: 10,
            };
            let (sql, args) = history::build(0, &q, since, at.map(|(_, e)| e));
            let p = plan(&conn, &sql, args.len());
            assert!(!p.contains("TEMP B-TREE"), "{scope:?}: {p}");
            if !matches!(scope, HistoryScope::System) {
                assert!(!p.contains("SCAN"), "{scope:?}: {p}");
            }
            if let HistoryScope::Instance(..) = scope {
                assert!(p.contains("sqlite_autoindex_versions_1"), "{p}");
            }
            if at.is_some() {
                // The next-version probe is a seek on the unique index.
                assert!(p.contains("SEARCH n USING"), "{p}");
            }
        }
    }
    // The newest last_updated and the seq-bound search are single seeks.
    for sql in [
        "SELECT last_updated FROM versions ORDER BY seq DESC LIMIT 1",
        "SELECT min(seq) FROM versions",
        "SELECT last_updated FROM versions WHERE seq >= ?1 ORDER BY seq LIMIT 1",
    ] {
        let p = plan(&conn, sql, sql.matches('?').count());
        assert!(!p.contains("TEMP B-TREE"), "{sql}: {p}");
    }
}
