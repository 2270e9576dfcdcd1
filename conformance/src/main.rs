//! `conformance`: runs the suite against a registry and writes the reports.
//! Exit status 0 when every selected check passed, 1 when any failed, 2 on usage errors.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use quayside_conformance::cli::Args;
use quayside_conformance::report::{html, json, junit, terminal};
use quayside_conformance::{checks, runner};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<bool> {
    let config = args.config()?;
    let all = checks::all();
    let total = all.iter().filter(|c| config.selects(c)).count();
    let progress = terminal::Progress::new(total);
    let report = runner::run(config, all, |r, done, total| progress.done(r, done, total)).await?;
    progress.finish();
    print!("{}", terminal::summary(&report));
    let (junit_path, json_path, html_path) = args.report_paths();
    for (path, text) in [
        (junit_path, junit::render(&report)),
        (json_path, json::render(&report)),
        (html_path, html::render(&report)),
    ] {
        if let Some(path) = path {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(report.success())
}
