//! The commands that look after a store: migrate, replay (and verify), export and import.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use belfry::app::open_db;
use belfry::config::Settings;
use belfry::projections::replay::{self, Progress};
use belfry::projections::{self, Projection};
use indicatif::{ProgressBar, ProgressStyle};

pub async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let db = open_db(settings).await?;
    let problems = projections::ensure(&db).await?;
    println!("event log migrated: {}", settings.database_label());
    for p in &problems {
        println!("needs `belfry replay`: {p}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(settings: &Settings, output: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let db = open_db(settings).await?;
    let count = match output {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("Failed to create {}", path.display()))?;
            belfry::transfer::export(&db, &mut std::io::BufWriter::new(file)).await?
        }
        None => belfry::transfer::export(&db, &mut std::io::stdout().lock()).await?,
    };
    eprintln!("exported {count} events");
    Ok(ExitCode::SUCCESS)
}

pub async fn import(settings: &Settings, input: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let db = open_db(settings).await?;
    let mut bar = ReplayBar::default();
    let count = match input {
        Some(path) => {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("Failed to open {}", path.display()))?;
            belfry::transfer::import(&db, BufReader::new(file), |p| bar.show(p)).await?
        }
        None => belfry::transfer::import(&db, std::io::stdin().lock(), |p| bar.show(p)).await?,
    };
    bar.clear();
    println!(
        "imported {count} events into {} and rebuilt every projection",
        settings.database_label()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn replay(
    settings: &Settings,
    names: Vec<String>,
    verify: bool,
) -> anyhow::Result<ExitCode> {
    let selected: Vec<Projection> = if names.is_empty() {
        Projection::ALL.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                Projection::parse(n).with_context(|| {
                    let known: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
                    format!("unknown projection {n:?}; known: {}", known.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let db = open_db(settings).await?;
    let names: Vec<&str> = selected.iter().map(|p| p.name()).collect();
    let mut bar = ReplayBar::default();
    let report = if verify {
        replay::verify(&db, &selected, |p| bar.show(p)).await?
    } else {
        replay::rebuild(&db, &selected, |p| bar.show(p)).await?
    };
    bar.clear();
    let verb = if verify { "verified" } else { "rebuilt" };
    println!(
        "{verb} {} from {} events in {:.2} s ({:.0} events/s)",
        names.join(", "),
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second()
    );
    if !verify {
        return Ok(ExitCode::SUCCESS);
    }
    if report.differences.is_empty() {
        println!("no differences: the live read model equals a rebuild from the log");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} rows differ:", report.differences.len());
    for d in &report.differences {
        println!(
            "  {} {} (only in {})",
            d.projection.name(),
            d.key,
            d.only_in
        );
    }
    Ok(ExitCode::from(1))
}

/// The progress bar of a replay (`belfry replay`, and the rebuild after `belfry import`),
/// drawn from the replay's [`Progress`] reports on stderr, and not at all when stderr is not
/// a terminal.
#[derive(Default)]
struct ReplayBar(Option<ProgressBar>);

impl ReplayBar {
    fn show(&mut self, progress: Progress) {
        match &self.0 {
            Some(bar) => bar.set_position(progress.events),
            // The first report: the build starts, from 0, towards the head it began at.
            None => self.0 = Some(replay_bar(progress.head)),
        }
    }

    /// Clears the bar once the replay is done. A replay that fails leaves it standing above
    /// the error instead.
    fn clear(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

fn replay_bar(head: u64) -> ProgressBar {
    let bar = ProgressBar::new(head);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replaying [{bar:40}] {pos}/{len} events  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
