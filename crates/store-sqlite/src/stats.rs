//! Query planner statistics (`sqlite_stat1`), kept fresh as the data grows.
//!
//! Search SQL nests sets (chains, `_has`, several criteria). Without statistics SQLite
//! guesses every index equally selective and can pick a plan that walks every reference of
//! a type instead of seeking the few rows that matched (measured at 100,000 resources:
//! `Encounter?_has:Observation:encounter:code=...` took 280 ms without statistics and under
//! 1 ms with them). `PRAGMA optimize` re-analyses only the tables whose size changed a lot
//! since their last analysis (about 10x), with a bounded analysis limit, so calling it
//! often is cheap: a no-op most of the time, about 0.15 s when it does analyse at 100,000
//! resources.
//!
//! It runs at open and, on the writer thread, whenever [`REFRESH_EVERY_OPS`] operations
//! have been written since the last run and no write is waiting.

use rusqlite::Connection;

/// Writes between two checks of whether the statistics are stale.
pub(crate) const REFRESH_EVERY_OPS: usize = 5_000;

/// `PRAGMA optimize` flags: 0x02 analyse tables that may benefit, 0x10 with a temporary
/// analysis limit (bounded time on any size), 0x10000 check every table, not only those
/// this connection's statements used (the writer never runs the search queries).
const OPTIMIZE: &str = "PRAGMA optimize = 0x10012";

/// Refreshes stale planner statistics. Failure only costs plan quality, so it is logged,
/// never returned.
pub(crate) fn refresh(conn: &Connection) {
    let started = std::time::Instant::now();
    match conn.execute_batch(OPTIMIZE) {
        Ok(()) => tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "refreshed query planner statistics"
        ),
        Err(e) => tracing::warn!(error = %e, "could not refresh query planner statistics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After enough rows, `refresh` writes statistics for the index tables: the planner
    /// then knows that a resource's own rows are few and a parameter's rows are many.
    #[test]
    fn refresh_analyses_grown_tables() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::schema::migrate(&mut conn).expect("migrate");
        let tx = conn.transaction().expect("tx");
        for i in 0..2_000 {
            tx.execute(
                "INSERT INTO idx_reference (tenant, type, id, param, target_type, target_id) \
                 VALUES (0, 'Observation', ?1, 'subject', 'Patient', ?2)",
                rusqlite::params![format!("o{i}"), format!("p{}", i % 20)],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
        refresh(&conn);
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'idx_reference'",
                [],
                |r| r.get(0),
            )
            .expect("stat1 exists after refresh");
        assert!(rows > 0, "no statistics for idx_reference");
    }

    /// With statistics, `_has` is driven from the few source resources that matched (their
    /// own reference rows), not by walking every reference of the parameter.
    #[test]
    fn has_is_driven_by_the_matching_sources_once_analysed() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::schema::migrate(&mut conn).expect("migrate");
        let tx = conn.transaction().expect("tx");
        for i in 0..3_000 {
            let id = format!("o{i}");
            tx.execute(
                "INSERT INTO idx_reference (tenant, type, id, param, target_type, target_id) \
                 VALUES (0, 'Observation', ?1, 'encounter', 'Encounter', ?2)",
                rusqlite::params![id, format!("e{}", i / 3)],
            )
            .expect("insert reference");
            tx.execute(
                "INSERT INTO idx_token (tenant, type, id, param, system, code) \
                 VALUES (0, 'Observation', ?1, 'code', 'http://loinc.org', ?2)",
                rusqlite::params![id, format!("c{}", i % 300)],
            )
            .expect("insert token");
        }
        tx.commit().expect("commit");
        refresh(&conn);
        let q = caduceus_search::parse(
            &["Encounter"],
            &[(
                "_has:Observation:encounter:code".to_owned(),
                "http://loinc.org|c7".to_owned(),
            )],
            &caduceus_search::ParseOptions::default(),
        )
        .expect("valid search");
        let f = crate::search::filter_for_tests(0, &q);
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT r.id FROM resources r WHERE {} ORDER BY r.type, r.id \
             LIMIT 21",
            f.sql
        );
        let mut stmt = conn.prepare(&sql).expect("prepare");
        let plan: Vec<String> = stmt
            .query_map(
                rusqlite::params_from_iter(f.args.into_iter().map(crate::search::to_sqlite)),
                |r| r.get(3),
            )
            .expect("explain")
            .map(|r| r.expect("row"))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH h USING COVERING INDEX idx_reference_resource"),
            "{plan}"
        );
    }
}
