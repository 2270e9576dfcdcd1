//! CI smoke test of `conformance/scripts/bench-compare`: the whole comparison (our
//! registry and Debian's `docker-registry` started fresh, the same workload against both,
//! the summary table) at toy sizes, so the script keeps working. It checks that every row
//! is there with a figure on both sides, never what the figures are.
//!
//! Needs `docker-registry`: the script installs it with `.ci/peers` when missing and fails
//! (so this test fails) when it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// The `registry` binary of this build: beside `bench` once `cargo test --workspace` has
/// built every package, else built here.
fn registry_binary() -> PathBuf {
    let beside = Path::new(BENCH).with_file_name("registry");
    if !beside.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "quayside-server", "--bin", "registry"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the registry binary failed");
    }
    assert!(
        beside.exists(),
        "no registry binary at {}",
        beside.display()
    );
    beside
}

#[test]
fn comparison_script_prints_every_row_for_both_registries() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-compare");
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(&script)
        .args(["--rounds", "1", "--out"])
        .arg(out.path())
        .args(["--sizes", "64KiB", "--chunk", "16KiB", "--repeat", "1"])
        .args(["--min-bytes", "0"])
        .args(["--concurrency", "2", "--duration", "0.5", "--warmup", "0.1"])
        .env("QUAYSIDE_REGISTRY", registry_binary())
        .env("BENCH", BENCH)
        // The script's own work directory (storage, server logs) goes with the tempdir.
        .env("TMPDIR", out.path())
        .output()
        .expect("run bench-compare");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench-compare failed:\n{stderr}");
    let summary = std::fs::read_to_string(out.path().join("summary.md")).expect("summary");
    let rows = [
        "| push-monolithic 64KiB |",
        "| push-chunked 64KiB |",
        "| pull-first 64KiB |",
        "| pull 64KiB |",
        "| manifest-get req/s, 2 conns |",
        "| manifest-head req/s, 2 conns |",
        "| tag-list req/s, 2 conns |",
        "| catalog req/s, 2 conns |",
        "| RSS idle |",
        "| RSS peak, one 64KiB push |",
        "| RSS peak, whole workload |",
    ];
    for row in rows {
        let line = summary
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row} in:\n{summary}"));
        // A figure on both sides gives a ratio; a missing one prints "failed" or "-".
        assert!(line.contains('x'), "no ratio in {line}");
        assert!(!line.contains("failed"), "{line}");
    }
    assert!(summary.contains("in-process SHA-256:"), "{summary}");
    assert!(
        summary.contains("disk under the storage: durable writes"),
        "{summary}"
    );
    assert!(summary.contains("loopback TCP, one stream"), "{summary}");
    // Each push row names this machine's ceiling and the best ratio it allows.
    for row in &rows[..2] {
        let line = summary.lines().find(|l| l.starts_with(row)).unwrap_or("");
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cells[6].ends_with(" MiB/s"), "no ceiling in {line}");
        assert!(cells[7].ends_with('x'), "no ceiling ratio in {line}");
    }
    for name in ["disk-1.json", "loopback-1.json"] {
        let raw = std::fs::read_to_string(out.path().join(name)).expect(name);
        let _: serde_json::Value = serde_json::from_str(&raw).expect("ceilings are JSON");
    }
    for who in ["ours", "theirs"] {
        let raw = std::fs::read_to_string(out.path().join(format!("{who}-1.json")))
            .expect("per-registry results");
        let parsed: serde_json::Value = serde_json::from_str(&raw).expect("results are JSON");
        assert!(parsed["blobs"].as_array().is_some_and(|b| !b.is_empty()));
    }
}
