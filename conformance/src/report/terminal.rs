//! Terminal output: a progress bar on a TTY (plain lines otherwise), failure details, and
//! the per-workflow summary table.

use std::fmt::Write as _;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::check::Outcome;
use crate::runner::{CheckReport, RunReport};

/// Live progress: a bar when stderr is a terminal, else one line per finished check.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress for `total` checks, drawn on stderr.
    pub fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {wide_msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar }
    }

    /// Reports one finished check.
    pub fn done(&self, report: &CheckReport, finished: usize, total: usize) {
        let line = format!(
            "[{finished:>3}/{total}] {:<11} {} {}",
            report.outcome.label(),
            report.id,
            if report.outcome == Outcome::Pass {
                ""
            } else {
                report.outcome.reason()
            }
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(finished as u64);
                bar.set_message(report.id);
                if report.outcome.is_fail() {
                    bar.println(line);
                }
            }
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The summary: each failure with its rule and last exchange, then the table.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    for r in report.results.iter().filter(|r| r.outcome.is_fail()) {
        let _ = writeln!(out, "FAIL {} [{}] {}", r.id, r.level, r.outcome.reason());
        let _ = writeln!(out, "     rule: {}", r.rule);
        if let Some(last) = r.transcript.last() {
            for line in last.render().lines().take(30) {
                let _ = writeln!(out, "     {line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:>7} {:>12} {:>14} {:>12} {:>8}",
        "workflow", "passed", "failed MUST", "failed SHOULD", "unsupported", "skipped"
    );
    let mut rows = report.tally_by_workflow();
    rows.push((crate::check::Workflow::Auth, report.tally()));
    let last = rows.len() - 1;
    for (i, (wf, t)) in rows.into_iter().enumerate() {
        let name = if i == last { "total" } else { wf.as_str() };
        let _ = writeln!(
            out,
            "{name:<12} {:>7} {:>12} {:>14} {:>12} {:>8}",
            t.passed, t.failed_must, t.failed_should, t.unsupported, t.skipped
        );
    }
    let _ = writeln!(
        out,
        "{} checks in {:.1} s against {}",
        report.results.len(),
        report.duration_ms as f64 / 1000.0,
        report.registry
    );
    out
}
