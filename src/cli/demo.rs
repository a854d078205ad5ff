//! `meterd demo`: the newcomer's first run.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::Env;
use super::output::flag_text;
use crate::billing::{self, AckOutcome, DEFAULT_CLIENT};
use crate::ingest::AcceptReport;
use crate::ingest::files;
use crate::model::{ReadStatus, Service};
use crate::store::{RedbStore, Store};
use crate::{demo, review};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo store and files in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

pub fn run(env: &Env, args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let tmp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("meterd-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let store_path = dir.join("store").join(crate::store::STORE_FILE);
    if store_path.exists() {
        anyhow::bail!("{} already holds a demo store; pick an empty directory", dir.display());
    }
    let store = RedbStore::open_dir(&dir.join("store"))?;
    let (meters_file, reads_file) = demo::write_files(&dir)?;

    say!(env, "meterd demo: a small town in a fresh store at {}", store.path().display());
    let meters = files::parse_meters_csv(&meters_file)?;
    files::store_meters(&store, &meters)?;
    let routes: std::collections::BTreeSet<&str> = meters.iter().map(|m| m.route.as_str()).collect();
    let count = |s: Service| meters.iter().filter(|m| m.service == s).count();
    say!(env, 
        "  meters   {} on {} routes ({} water, {} gas, {} electric)",
        meters.len(),
        routes.len(),
        count(Service::Water),
        count(Service::Gas),
        count(Service::Electric)
    );

    let mut commits = 0;
    let report = files::import_reads_file(&store, &env.config.vee, &reads_file, 1_000, &mut |_: &AcceptReport| commits += 1)?;
    say!(env, 
        "  reads    {} imported from {} ({} months, {} durable commits)",
        report.imported,
        reads_file.display(),
        demo::MONTHS,
        commits
    );
    say!(env, "  VEE      {} validated, {} held for review", report.validated, report.flagged);
    let rules: Vec<String> = report.by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
    say!(env, "           flags: {}", rules.join(", "));

    let again = files::import_reads_file(&store, &env.config.vee, &reads_file, 1_000, &mut |_| {})?;
    say!(env, 
        "  again    re-importing the same file: {} imported, {} duplicates skipped",
        again.imported, again.duplicates_skipped
    );

    let queue = review::queue(&store)?;
    say!(env, "  review   {} reads wait for a clerk, for example:", queue.len());
    let mut shown = std::collections::BTreeSet::new();
    for r in &queue {
        if let Some(f) = r.flags.iter().find(|f| shown.insert(f.rule)) {
            say!(env, "           {} {} value {}: {}", r.read.meter_id, r.read.read_at, r.read.value, flag_text(f));
        }
    }

    let now = jiff::Timestamp::now();
    match billing::next_batch(&store, DEFAULT_CLIENT, usize::MAX, now)? {
        Some(b) => {
            let id = b.batch.id;
            let again = billing::next_batch(&store, DEFAULT_CLIENT, usize::MAX, now)?.map(|b| b.batch.id);
            let acked = billing::ack_batch(&store, id, now)?;
            let n = if let AckOutcome::Acked { reads } = acked { reads } else { 0 };
            say!(env, 
                "  billing  batch {id}: {} validated reads (asked twice: same batch {}); acked, {n} reads exported",
                b.reads.len(),
                again.map(|a| a.to_string()).unwrap_or_default()
            );
        }
        None => say!(env, "  billing  nothing to bill"),
    }
    let txn = store.begin_read()?;
    let exported = txn.reads_with_status(ReadStatus::Exported, usize::MAX)?.len();
    let flagged = txn.reads_with_status(ReadStatus::Flagged, usize::MAX)?.len();
    say!(env, "  store    {} reads: {exported} exported, {flagged} held for review", txn.count_reads()?);
    say!(env, "done in {:.1} s", started.elapsed().as_secs_f64());
    if args.keep.is_some() {
        say!(env, "kept in {}; try `meterd --data-dir {} review list`", dir.display(), dir.join("store").display());
    }
    Ok(())
}
