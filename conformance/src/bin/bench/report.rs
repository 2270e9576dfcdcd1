//! Results as a table for people and JSON for scripts (field names are the JSON contract
//! that `conformance/scripts/bench-compare` reads).

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Outcome;
use crate::units::{format_size, median, mib_per_s};

/// Bytes moved in a time: in-process hashing, one loopback stream.
#[derive(Serialize)]
pub struct Throughput {
    pub bytes: u64,
    pub seconds: f64,
    pub mib_per_s: f64,
}

#[derive(Serialize)]
pub struct Report {
    pub url: String,
    pub repository: String,
    pub concurrency: usize,
    pub blobs: Vec<BlobResult>,
    pub requests: Vec<LoadResult>,
}

/// One transfer scenario at one blob size.
#[derive(Serialize)]
pub struct BlobResult {
    pub scenario: String,
    pub size: u64,
    pub chunk: Option<u64>,
    /// Seconds of each successful transfer.
    pub runs: Vec<f64>,
    pub errors: u64,
    /// Throughput of the median run; None when every run failed.
    pub median_mib_per_s: Option<f64>,
}

impl BlobResult {
    pub fn new(
        scenario: &str,
        size: u64,
        chunk: Option<u64>,
        runs: Vec<f64>,
        errors: u64,
    ) -> BlobResult {
        let median_mib_per_s = median(&runs).map(|seconds| mib_per_s(size, seconds));
        BlobResult {
            scenario: scenario.to_string(),
            size,
            chunk,
            runs,
            errors,
            median_mib_per_s,
        }
    }
}

/// One request-rate scenario.
#[derive(Serialize)]
pub struct LoadResult {
    pub scenario: String,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LoadResult {
    pub fn new(scenario: &str, concurrency: usize, outcome: &Outcome) -> LoadResult {
        let ms = |q: f64| outcome.latency.value_at_quantile(q) as f64 / 1000.0;
        LoadResult {
            scenario: scenario.to_string(),
            concurrency,
            requests: outcome.completed,
            errors: outcome.errors,
            seconds: outcome.seconds,
            requests_per_s: if outcome.seconds > 0.0 {
                outcome.completed as f64 / outcome.seconds
            } else {
                0.0
            },
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: outcome.latency.max() as f64 / 1000.0,
        }
    }
}

impl Report {
    pub fn new(url: String, repository: String, concurrency: usize) -> Report {
        Report {
            url,
            repository,
            concurrency,
            blobs: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// Whether any transfer or request failed: the numbers then do not measure the workload.
    pub fn failed(&self) -> bool {
        self.blobs.iter().any(|b| b.errors > 0) || self.requests.iter().any(|r| r.errors > 0)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "registry {} (repository {})",
            self.url, self.repository
        );
        if !self.blobs.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<16} {:>8} {:>8} {:>5} {:>6} {:>12}",
                "transfer", "size", "chunk", "runs", "errors", "median MiB/s"
            );
            for b in &self.blobs {
                let _ = writeln!(
                    out,
                    "{:<16} {:>8} {:>8} {:>5} {:>6} {:>12}",
                    b.scenario,
                    format_size(b.size),
                    b.chunk.map(format_size).unwrap_or_else(|| "-".into()),
                    b.runs.len(),
                    b.errors,
                    b.median_mib_per_s
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or_else(|| "failed".into()),
                );
            }
        }
        if !self.requests.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<14} {:>5} {:>9} {:>6} {:>10} {:>8} {:>8} {:>8} {:>8}",
                "requests",
                "conns",
                "count",
                "errors",
                "req/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms"
            );
            for r in &self.requests {
                let _ = writeln!(
                    out,
                    "{:<14} {:>5} {:>9} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                    r.scenario,
                    r.concurrency,
                    r.requests,
                    r.errors,
                    r.requests_per_s,
                    r.p50_ms,
                    r.p90_ms,
                    r.p99_ms,
                    r.max_ms
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_result_reports_median_throughput() {
        let result = BlobResult::new("pull", 64 << 20, None, vec![2.0, 0.5, 1.0], 0);
        assert_eq!(result.median_mib_per_s, Some(64.0));
        let failed = BlobResult::new("pull", 64 << 20, None, Vec::new(), 3);
        assert_eq!(failed.median_mib_per_s, None);
    }

    #[test]
    fn any_error_marks_the_report_failed_and_shows_in_the_table() {
        let mut report = Report::new("http://x".into(), "r".into(), 1);
        report.blobs.push(BlobResult::new(
            "push-chunked",
            1 << 20,
            Some(1 << 19),
            vec![0.1],
            0,
        ));
        assert!(!report.failed());
        report
            .blobs
            .push(BlobResult::new("pull", 1 << 20, None, Vec::new(), 2));
        assert!(report.failed());
        let table = report.table();
        assert!(table.contains("push-chunked"), "{table}");
        assert!(table.contains("512KiB"), "{table}");
        assert!(table.contains("failed"), "{table}");
    }
}
