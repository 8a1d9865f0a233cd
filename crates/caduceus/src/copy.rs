//! `caduceus copy --from <store> --to <store>`: moves a whole store, every version of every
//! resource (deletions included), into an empty one — SQLite to PostgreSQL, back, or
//! between two of a kind.
//!
//! 1. The target must hold no version: a copy never merges into data (an interrupted copy
//!    is started again on a fresh target).
//! 2. Versions are read in write order (`Store::scan_versions`, keyset over `seq`) and
//!    written with `Store::copy_in`, one target transaction per batch; the next batch is
//!    read while the previous one is written. Version ids, `lastUpdated`, methods and bodies
//!    are kept; the target assigns its own `seq` in the same order, so history reads the
//!    same on both.
//! 3. The target's search index is rebuilt by the reindex code (`Engine::reindex`), which
//!    records this binary's index fingerprint: index rows are never copied, they are
//!    derived, and the target may be another engine.
//! 4. Verification: the number of versions and of live resources must match on both
//!    sides; both are printed, and a difference is a failure (non-zero exit).
//!
//! The copy reads the source as it goes; stop writes to the source for the duration (the
//! verification would report a source that moved).

use std::time::Instant;

use anyhow::Context;
use caduceus_engine::{Engine, EngineConfig};
use caduceus_store::{Store, StoredVersion};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::CopyArgs;
use crate::store::{Location, OpenOptions, open_store};

pub async fn run(args: CopyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.from != args.to, "--from and --to name the same store");
    // Opening an embedded store creates it: a mistyped source folder would be an empty
    // store, "copied" without complaint.
    if let Location::Folder(dir) = &args.from {
        anyhow::ensure!(
            dir.join(caduceus_store_sqlite::DB_FILE).is_file(),
            "the source {} holds no store ({} not found)",
            args.from,
            caduceus_store_sqlite::DB_FILE
        );
    }
    let batch = args.batch_size.max(1);
    // The source is only read: never migrated by a copy.
    let source = open_store(
        &args.from,
        OpenOptions {
            pool_size: args.db_pool_size,
            migrate: false,
            ca_file: args.database_ca_file.clone(),
        },
    )
    .await
    .context("cannot open the source")?;
    let target = open_store(
        &args.to,
        OpenOptions {
            pool_size: args.db_pool_size,
            migrate: true,
            ca_file: args.database_ca_file.clone(),
        },
    )
    .await
    .context("cannot open the target")?;

    let existing = target.count_versions().await?;
    anyhow::ensure!(
        existing == 0,
        "the target ({}) is not empty: it holds {existing} versions; copy into an empty store",
        args.to
    );

    let started = Instant::now();
    let total = source.count_versions().await?;
    println!("copying {total} versions from {} to {}", args.from, args.to);
    let bar = progress_bar(args.quiet, total, "versions");
    let copied = copy_versions(source.as_ref(), target.as_ref(), batch, |n| {
        bar.set_position(n)
    })
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "copied {copied} versions in {secs:.2} s ({:.0} versions/s)",
        copied as f64 / secs.max(1e-9)
    );

    let reindex_started = Instant::now();
    let live = target.count_live(None).await?;
    let bar = progress_bar(args.quiet, live, "resources indexed");
    let engine = Engine::new(target.clone(), EngineConfig::default());
    let summary = engine
        .reindex(batch, |done| bar.set_position(done))
        .await
        .context("rebuilding the target's search index failed")?;
    bar.finish_and_clear();
    println!(
        "indexed {} resources in {:.2} s: {} index rows",
        summary.reindexed,
        reindex_started.elapsed().as_secs_f64(),
        summary.rows
    );

    let report = verify(source.as_ref(), target.as_ref()).await?;
    println!(
        "verification: versions {} (source) / {} (target); live resources {} (source) / {} (target)",
        report.source_versions, report.target_versions, report.source_live, report.target_live
    );
    anyhow::ensure!(
        report.matches(),
        "the copy does not match its source (was the source written to during the copy?)"
    );
    anyhow::ensure!(
        summary.unreadable == 0,
        "{} copied resources could not be read as JSON and were not indexed",
        summary.unreadable
    );
    println!("the copy matches its source");
    Ok(())
}

/// Copies every version of `source` into `target`, in write order, `batch` at a time;
/// calls `progress` with the number copied so far. Returns that number.
pub async fn copy_versions(
    source: &dyn Store,
    target: &dyn Store,
    batch: usize,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let mut copied = 0u64;
    let mut page: Vec<StoredVersion> = source.scan_versions(None, batch).await?;
    while let Some(last_seq) = page.last().map(|v| v.seq) {
        let n = page.len() as u64;
        // Reading the next batch overlaps writing this one.
        let (written, next) = tokio::join!(
            target.copy_in(page),
            source.scan_versions(Some(last_seq), batch)
        );
        written.with_context(|| format!("writing versions after {copied} to the target failed"))?;
        page = next?;
        copied += n;
        progress(copied);
    }
    Ok(copied)
}

/// Both stores' counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub source_versions: u64,
    pub target_versions: u64,
    pub source_live: u64,
    pub target_live: u64,
}

impl Verification {
    pub fn matches(&self) -> bool {
        self.source_versions == self.target_versions && self.source_live == self.target_live
    }
}

async fn verify(source: &dyn Store, target: &dyn Store) -> anyhow::Result<Verification> {
    Ok(Verification {
        source_versions: source.count_versions().await?,
        target_versions: target.count_versions().await?,
        source_live: source.count_live(None).await?,
        target_live: target.count_live(None).await?,
    })
}

fn progress_bar(quiet: bool, total: u64, unit: &str) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}
