//! Runs the whole conformance suite against CNCF Distribution 2.8 (Debian's
//! `docker-registry`) and compares every check's outcome class with
//! `expectations/distribution-2.8.yaml`, in both directions: a check that starts passing
//! or failing unexpectedly fails this test, as does a check missing from either side.
//!
//! `QUAYSIDE_BLESS=1` rewrites the file from the observed outcomes, keeping the reasons
//! already written (review the diff: every non-pass needs a one-line human reason).
//! Without the peer, the test is skipped, except under `CI=true`, where it fails.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use quayside_conformance::{checks, run, Config, Outcome};

const EXPECTATIONS: &str = "expectations/distribution-2.8.yaml";
const EXPECTATIONS_HTPASSWD: &str = "expectations/distribution-2.8-htpasswd.yaml";

/// One expected outcome: `pass`, or a class with the reason it is not a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Expected {
    Pass(String),
    Other { outcome: String, reason: String },
}

impl Expected {
    fn class(&self) -> &str {
        match self {
            Expected::Pass(s) => s,
            Expected::Other { outcome, .. } => outcome,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ExpectationsFile {
    registry: String,
    checks: BTreeMap<String, Expected>,
}

/// The `docker-registry` process, killed when dropped.
struct Distribution {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Installs the peer if needed; `None` (with a message) when it is unavailable outside CI.
fn ensure_peer() -> Option<()> {
    let present = || {
        Command::new("docker-registry")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return Some(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/peers");
    let installed = Command::new(&script)
        .args(["deb", "docker-registry"])
        .status()
        .is_ok_and(|s| s.success());
    if installed && present() {
        return Some(());
    }
    assert!(
        !in_ci(),
        "CI=true but docker-registry could not be installed with {}",
        script.display()
    );
    eprintln!(
        "SKIP: docker-registry (Distribution 2.8) is not installed and could not be installed"
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Starts Distribution; with `htpasswd` (user, password) it requires Basic auth.
fn start_distribution(htpasswd: Option<(&str, &str)>) -> Distribution {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let port = free_port();
    let storage = dir.path().join("storage");
    let config = dir.path().join("config.yml");
    let log = dir.path().join("registry.log");
    let mut text = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    );
    if let Some((user, password)) = htpasswd {
        let hash = bcrypt::hash(password, 5).unwrap_or_else(|e| panic!("bcrypt: {e}"));
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, format!("{user}:{hash}\n"))
            .unwrap_or_else(|e| panic!("write htpasswd: {e}"));
        text.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: quayside-test\n    path: {}\n",
            file.display()
        ));
    }
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("write config: {e}"));
    let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log file: {e}"));
    let log_err = log_file
        .try_clone()
        .unwrap_or_else(|e| panic!("log file: {e}"));
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
    Distribution {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        log,
    }
}

fn log_text(path: &Path) -> String {
    let mut text = String::new();
    let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    text
}

async fn wait_until_up(registry: &mut Distribution) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = registry.child.try_wait() {
            panic!(
                "docker-registry exited ({status}) before answering:\n{}",
                log_text(&registry.log)
            );
        }
        if let Ok(resp) = client.get(format!("{}/v2/", registry.url)).send().await {
            // 401 is "up" too: the htpasswd instance challenges anonymous requests
            if matches!(resp.status().as_u16(), 200 | 401) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry did not answer /v2/ within 30 s:\n{}",
            log_text(&registry.log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first line of a reason, short enough for a one-line entry.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut cut: String = line.chars().take(160).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_fails_exactly_the_expected_checks() {
    if ensure_peer().is_none() {
        return;
    }
    let mut registry = start_distribution(None);
    wait_until_up(&mut registry).await;
    let mut config = Config::new(registry.url.clone());
    config.concurrency = 8;
    config.check_timeout = Duration::from_secs(60);
    compare(
        config,
        EXPECTATIONS,
        "CNCF Distribution 2.8 (Debian docker-registry), filesystem storage, delete enabled, no auth",
    )
    .await;
}

/// The auth checks need credentials: a second Distribution requiring htpasswd Basic auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_with_htpasswd_meets_the_auth_expectations() {
    if ensure_peer().is_none() {
        return;
    }
    let mut registry = start_distribution(Some(("alice", "s3cret-pw")));
    wait_until_up(&mut registry).await;
    let mut config = Config::new(registry.url.clone());
    config.workflows = vec![quayside_conformance::Workflow::Auth];
    config.auth = quayside_conformance::http::Auth::Basic {
        username: "alice".to_owned(),
        password: "s3cret-pw".to_owned(),
    };
    compare(
        config,
        EXPECTATIONS_HTPASSWD,
        "CNCF Distribution 2.8 (Debian docker-registry), htpasswd Basic auth, auth workflow only",
    )
    .await;
}

/// Runs the suite with `config` and compares (or, with QUAYSIDE_BLESS=1, rewrites) the
/// expectations file `file`.
async fn compare(config: Config, file: &str, registry: &str) {
    let report = run(config, checks::all(), |_, _, _| {})
        .await
        .unwrap_or_else(|e| panic!("suite did not run: {e}"));
    let observed: BTreeMap<String, Outcome> = report
        .results
        .iter()
        .map(|r| (r.id.to_owned(), r.outcome.clone()))
        .collect();

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let existing: Option<ExpectationsFile> = std::fs::read_to_string(&path).ok().map(|text| {
        serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
    });

    if std::env::var("QUAYSIDE_BLESS").is_ok_and(|v| v == "1") {
        let old = existing.map(|e| e.checks).unwrap_or_default();
        let checks = observed
            .iter()
            .map(|(id, outcome)| {
                let entry = match outcome {
                    Outcome::Pass => Expected::Pass("pass".to_owned()),
                    other => {
                        let reason = match old.get(id) {
                            Some(Expected::Other { outcome, reason })
                                if outcome == other.label() =>
                            {
                                reason.clone()
                            }
                            _ => one_line(other.reason()),
                        };
                        Expected::Other {
                            outcome: other.label().to_owned(),
                            reason,
                        }
                    }
                };
                (id.clone(), entry)
            })
            .collect();
        let file = ExpectationsFile {
            registry: registry.to_owned(),
            checks,
        };
        let text = serde_yaml::to_string(&file).unwrap_or_else(|e| panic!("yaml: {e}"));
        std::fs::write(&path, format!("# Expected outcome of every conformance check against Distribution 2.8.\n# Regenerate with QUAYSIDE_BLESS=1 cargo test -p quayside-conformance --test distribution,\n# then review: each non-pass carries a one-line reason.\n{text}"))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("blessed {} with {} checks", path.display(), observed.len());
        return;
    }

    let expected = existing
        .unwrap_or_else(|| {
            panic!(
                "{} is missing; create it with QUAYSIDE_BLESS=1",
                path.display()
            )
        })
        .checks;
    let problems = differences(&expected, &observed);
    let failures = observed.values().filter(|o| o.is_fail()).count();
    let matching = observed
        .iter()
        .filter(|(id, o)| expected.get(*id).is_some_and(|e| e.class() == o.label()))
        .count();
    eprintln!(
        "{registry}: {} checks, {failures} failures, {matching} as expected",
        observed.len()
    );
    assert!(
        problems.is_empty(),
        "{registry}: outcomes differ from {file}:\n  {}",
        problems.join("\n  ")
    );
}

/// Every way `observed` departs from `expected`: a changed outcome class, a check missing
/// from either side, or a non-pass expectation without a one-line reason.
fn differences(
    expected: &BTreeMap<String, Expected>,
    observed: &BTreeMap<String, Outcome>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, outcome) in observed {
        match expected.get(id) {
            None => problems.push(format!(
                "{id}: not in the expectations file (observed {}: {})",
                outcome.label(),
                one_line(outcome.reason())
            )),
            Some(want) if want.class() != outcome.label() => problems.push(format!(
                "{id}: expected {}, observed {}: {}",
                want.class(),
                outcome.label(),
                one_line(outcome.reason())
            )),
            Some(_) => {}
        }
    }
    for id in expected.keys() {
        if !observed.contains_key(id) {
            problems.push(format!(
                "{id}: in the expectations file but no such check ran"
            ));
        }
    }
    for (id, want) in expected {
        if let Expected::Other { reason, .. } = want {
            if reason.trim().is_empty() || reason.contains('\n') {
                problems.push(format!("{id}: the expectation needs a one-line reason"));
            }
        }
    }
    problems
}

#[test]
fn differences_catch_changes_in_both_directions() {
    let expected: BTreeMap<String, Expected> = [
        ("a.passes".to_owned(), Expected::Pass("pass".to_owned())),
        (
            "a.fails".to_owned(),
            Expected::Other {
                outcome: "fail".to_owned(),
                reason: "known gap".to_owned(),
            },
        ),
        ("a.gone".to_owned(), Expected::Pass("pass".to_owned())),
    ]
    .into_iter()
    .collect();
    let as_expected: BTreeMap<String, Outcome> = [
        ("a.passes".to_owned(), Outcome::Pass),
        ("a.fails".to_owned(), Outcome::Fail("x".to_owned())),
        ("a.gone".to_owned(), Outcome::Pass),
    ]
    .into_iter()
    .collect();
    assert!(differences(&expected, &as_expected).is_empty());

    let changed: BTreeMap<String, Outcome> = [
        ("a.passes".to_owned(), Outcome::Fail("broke".to_owned())),
        ("a.fails".to_owned(), Outcome::Pass),
        ("a.new".to_owned(), Outcome::Pass),
    ]
    .into_iter()
    .collect();
    let problems = differences(&expected, &changed);
    let has = |prefix: &str| problems.iter().any(|p| p.starts_with(prefix));
    assert!(
        has("a.passes: expected pass, observed fail"),
        "{problems:?}"
    );
    assert!(has("a.fails: expected fail, observed pass"), "{problems:?}");
    assert!(has("a.new: not in the expectations file"), "{problems:?}");
    assert!(
        has("a.gone: in the expectations file but no such check ran"),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 4, "{problems:?}");
}
