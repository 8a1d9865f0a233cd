//! `caduceus reindex`: rebuild the search index of every live resource, with a progress bar,
//! after the search parameters (or the indexer) changed; and the start-up check that says
//! when that is needed.

use std::time::Instant;

use caduceus_engine::{Engine, IndexState};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ReindexArgs;
use crate::store::open_engine;

pub async fn run(args: ReindexArgs) -> anyhow::Result<()> {
    let engine = open_engine(&args.store, true).await?;
    let state = engine.index_state().await?;
    if state == IndexState::Current && !args.force {
        println!("the search index is current; nothing to do (use --force to rebuild anyway)");
        return Ok(());
    }
    let total = engine.store().count_live(None).await?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} resources ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let summary = engine
        .reindex(args.batch_size, |done| bar.set_position(done))
        .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reindexed {} of {} resources in {secs:.2} s ({:.0} resources/s): {} index rows; \
         {} superseded by newer writes; {} unreadable",
        summary.reindexed,
        summary.resources,
        summary.resources as f64 / secs.max(1e-9),
        summary.rows,
        summary.superseded,
        summary.unreadable,
    );
    if summary.unreadable > 0 {
        anyhow::bail!(
            "{} stored resources could not be read; their index rows were left as they were",
            summary.unreadable
        );
    }
    Ok(())
}

/// Logs whether the store's search index was built with this binary's search parameters.
/// A stale index is served (reads, writes and history are unaffected), but searches can
/// miss resources until `caduceus reindex` has run, so it is a warning at every start.
pub async fn check_index(engine: &Engine) -> anyhow::Result<()> {
    match engine.index_state().await? {
        IndexState::Current | IndexState::Initialised => {}
        IndexState::Stale { found, expected } => tracing::warn!(
            found = found.as_deref().unwrap_or("none"),
            %expected,
            "the search index was built with other search parameters: searches may miss \
             resources until `caduceus reindex` has run"
        ),
    }
    Ok(())
}
