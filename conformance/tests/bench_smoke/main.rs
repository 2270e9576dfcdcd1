//! CI smoke test of the `bench` binary: a tiny workload against an in-process registry on
//! loopback, so the tool keeps working. It checks what the tool reports (every scenario
//! present, counts consistent, nothing failed), never how fast anything was.

use std::process::Command;

#[path = "../common/token_service.rs"]
mod token_service;

use quayside_server::registry::{server::serve, Registry, Settings};
use quayside_server::storage::{Storage, StorageConfig};
use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// Starts a filesystem-backed registry in a tempdir; returns it with its base URL.
async fn registry(root: &std::path::Path) -> (quayside_server::registry::RunningRegistry, String) {
    let storage = Storage::open(&StorageConfig::Filesystem {
        root: root.to_path_buf(),
        direct_io: true,
        sync: true,
    })
    .await
    .expect("open storage");
    let running = serve(
        Registry::new(storage, Settings::default()),
        "127.0.0.1:0".parse().expect("address"),
    )
    .expect("serve");
    let url = format!("http://{}", running.local_addr());
    (running, url)
}

/// Runs the bench binary off the async runtime (it blocks until done).
async fn bench(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || Command::new(BENCH).args(args).output())
        .await
        .expect("join")
        .expect("run bench")
}

fn args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = ["run", "--url", url, "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_run_reports_every_scenario_without_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, url) = registry(dir.path()).await;
    let output = bench(args(
        &url,
        &[
            "--sizes",
            "4KiB,1MiB",
            "--chunk",
            "256KiB",
            "--repeat",
            "2",
            "--min-bytes",
            "0",
            "--concurrency",
            "4",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--tags",
            "3",
        ],
    ))
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("bench prints JSON");

    let blobs = report["blobs"].as_array().expect("blobs array");
    let mut seen = Vec::new();
    for blob in blobs {
        let scenario = blob["scenario"].as_str().expect("scenario name");
        let size = blob["size"].as_u64().expect("size");
        assert_eq!(blob["errors"], 0, "{scenario} {size}: {stderr}");
        // `--repeat 2`; the first pull of the just-pushed blob is reported on its own.
        let expected = if scenario == "pull-first" { 1 } else { 2 };
        assert_eq!(
            blob["runs"].as_array().map(Vec::len),
            Some(expected),
            "{blob}"
        );
        assert!(
            blob["median_mib_per_s"].as_f64().is_some_and(|v| v > 0.0),
            "{blob}"
        );
        if scenario == "push-chunked" {
            assert_eq!(blob["chunk"], 256 * 1024);
        }
        seen.push(format!("{scenario}@{size}"));
    }
    for size in [4096, 1 << 20] {
        for scenario in ["push-monolithic", "push-chunked", "pull-first", "pull"] {
            assert!(
                seen.contains(&format!("{scenario}@{size}")),
                "{scenario} at {size} missing from {seen:?}"
            );
        }
    }

    let requests = report["requests"].as_array().expect("requests array");
    let names: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["scenario"].as_str())
        .collect();
    assert_eq!(
        names,
        ["manifest-get", "manifest-head", "tag-list", "catalog"]
    );
    for r in requests {
        assert_eq!(r["concurrency"], 4);
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["requests"].as_u64().is_some_and(|n| n > 0), "{r}");
        let (p50, p99, max) = (
            r["p50_ms"].as_f64().expect("p50"),
            r["p99_ms"].as_f64().expect("p99"),
            r["max_ms"].as_f64().expect("max"),
        );
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{r}");
    }
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_output_names_each_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, url) = registry(dir.path()).await;
    let output = bench(vec![
        "run".into(),
        "--url".into(),
        url.clone(),
        "--scenarios".into(),
        "push-chunked,manifest-get".into(),
        "--sizes".into(),
        "64KiB".into(),
        "--chunk".into(),
        "16KiB".into(),
        "--repeat".into(),
        "1".into(),
        "--min-bytes".into(),
        "0".into(),
        "--concurrency".into(),
        "2".into(),
        "--duration".into(),
        "0.2".into(),
        "--warmup".into(),
        "0".into(),
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains(&url), "{table}");
    assert!(
        table.contains("push-chunked") && table.contains("16KiB"),
        "{table}"
    );
    assert!(table.contains("manifest-get"), "{table}");
    assert!(!table.contains("push-monolithic"), "{table}");
    running.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unreachable_registry_fails_with_a_message() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let output = bench(args(
        &format!("http://127.0.0.1:{port}"),
        &["--sizes", "4KiB"],
    ))
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not answer as a registry"), "{stderr}");
}

/// Runs `bench` with `args` (a subcommand ending in `--json`) and returns its JSON, failing
/// with its stderr when it fails.
fn bench_json(args: &[&std::ffi::OsStr]) -> Value {
    let output = Command::new(BENCH).args(args).output().expect("run bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// The arguments as `OsStr`s, for [`bench_json`].
fn os<'a>(args: &[&'a str]) -> Vec<&'a std::ffi::OsStr> {
    args.iter().map(|a| std::ffi::OsStr::new(*a)).collect()
}

/// Asserts that `field` of `result` is a positive number.
fn positive(result: &Value, field: &str) {
    assert!(
        result[field].as_f64().is_some_and(|v| v > 0.0),
        "{field}: {result}"
    );
}

#[test]
fn sha256_subcommand_reports_the_bytes_it_hashed() {
    let result = bench_json(&os(&["sha256", "--size", "8MiB", "--json"]));
    assert_eq!(result["bytes"], 8 << 20);
    positive(&result, "mib_per_s");
}

#[test]
fn disk_subcommand_measures_writes_and_reads_and_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = os(&["disk", "--size", "4MiB", "--json", "--dir"]);
    args.push(dir.path().as_os_str());
    let result = bench_json(&args);
    assert_eq!(result["bytes"], 4 << 20);
    for field in [
        "buffered_write_mib_per_s",
        "durable_write_mib_per_s",
        "small_file_ms",
        "small_file_mib_per_s",
        "cold_read_mib_per_s",
    ] {
        positive(&result, field);
    }
    // ext4 in CI takes direct I/O; elsewhere the field is null, never absent.
    assert!(result.get("direct_write_mib_per_s").is_some(), "{result}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list").count(),
        0,
        "scratch files left behind"
    );
}

#[test]
fn disk_subcommand_names_a_directory_it_cannot_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").expect("write");
    let output = Command::new(BENCH)
        .args(["disk", "--size", "1MiB", "--dir"])
        .arg(&file)
        .output()
        .expect("run bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not-a-directory"), "{stderr}");
}

#[test]
fn loopback_subcommand_reports_the_bytes_it_carried() {
    let result = bench_json(&os(&["loopback", "--size", "8MiB", "--json"]));
    assert_eq!(result["bytes"], 8 << 20);
    positive(&result, "mib_per_s");
}

/// A registry with authentication on, in memory.
async fn registry_with(
    auth: quayside_server::config::AuthConfig,
) -> quayside_server::registry::RunningRegistry {
    let mut config = quayside_server::config::Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        auth,
        ..quayside_server::config::Config::default()
    };
    config.storage.backend = quayside_server::config::Backend::Memory;
    quayside_server::registry::start(&config)
        .await
        .expect("start the registry")
}

/// A small run with `credentials` (user, password): its exit status, JSON report and stderr.
/// Each first pull is of a freshly pushed blob, so small sizes push as many as
/// `--min-bytes` covers; a large size's one blob gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_blobs_get_several_first_pulls_of_fresh_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, url) = registry(dir.path()).await;
    let output = bench(args(
        &url,
        &[
            "--scenarios",
            "pull",
            "--sizes",
            "64KiB,1MiB",
            "--repeat",
            "1",
            "--min-bytes",
            "256KiB",
        ],
    ))
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("bench prints JSON");
    let runs = |scenario: &str, size: u64| {
        report["blobs"]
            .as_array()
            .expect("blobs array")
            .iter()
            .find(|b| b["scenario"] == scenario && b["size"] == size)
            .and_then(|b| b["runs"].as_array().map(Vec::len))
    };
    assert_eq!(runs("pull-first", 64 << 10), Some(4), "{report}");
    assert_eq!(runs("pull", 64 << 10), Some(4), "{report}");
    assert_eq!(runs("pull-first", 1 << 20), Some(1), "{report}");
    assert_eq!(runs("pull", 1 << 20), Some(1), "{report}");
    running.shutdown().await.expect("shutdown");
}

async fn small_run(
    url: &str,
    credentials: Option<(&str, &str)>,
    more: &[&str],
) -> (bool, Value, String) {
    let mut extra = vec![
        "--sizes",
        "64KiB",
        "--chunk",
        "16KiB",
        "--repeat",
        "1",
        "--min-bytes",
        "0",
        "--concurrency",
        "2",
        "--duration",
        "0.2",
        "--warmup",
        "0.05",
        "--tags",
        "2",
    ];
    if let Some((user, password)) = credentials {
        extra.extend(["--username", user, "--password", password]);
    }
    extra.extend(more);
    let output = bench(args(url, &extra)).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), report, stderr)
}

/// Every transfer and request of a report succeeded, and there were some.
fn assert_no_errors(report: &Value, stderr: &str) {
    let blobs = report["blobs"].as_array().expect("blobs array");
    let requests = report["requests"].as_array().expect("requests array");
    // push-monolithic, push-chunked, pull-first, pull
    assert_eq!(blobs.len(), 4, "{report}");
    assert_eq!(requests.len(), 4, "{report}");
    for entry in blobs.iter().chain(requests) {
        assert_eq!(entry["errors"], 0, "{entry}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registries_are_measured_with_credentials_and_refused_without() {
    use quayside_server::config::{AuthConfig, HtpasswdConfig};
    use token_service::{PASSWORD, USER};
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    let entry =
        quayside_server::registry::auth::htpasswd_entry(USER, PASSWORD, 4).expect("htpasswd entry");
    std::fs::write(&htpasswd, format!("{entry}\n")).expect("write htpasswd");
    let running = registry_with(AuthConfig::Htpasswd(HtpasswdConfig {
        path: htpasswd,
        realm: "bench".to_owned(),
    }))
    .await;
    let url = running.url();

    let (ok, report, stderr) = small_run(&url, Some((USER, PASSWORD)), &[]).await;
    assert!(ok, "bench with credentials failed: {stderr}");
    assert_no_errors(&report, &stderr);

    let (ok, _, stderr) = small_run(&url, None, &[]).await;
    assert!(!ok, "bench without credentials should stop");
    assert!(stderr.contains("--username"), "unhelpful error: {stderr}");
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registries_are_measured_with_a_token_from_the_realm() {
    use quayside_server::config::{AuthConfig, TokenConfig};
    use std::sync::atomic::Ordering;
    use token_service::{TokenService, ISSUER, PASSWORD, SERVICE, USER};
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = TokenService::start().await;
    let bundle = dir.path().join("token.pem");
    std::fs::write(&bundle, issuer.certificate_pem()).expect("write the bundle");
    let running = registry_with(AuthConfig::Token(TokenConfig {
        realm: issuer.realm.clone(),
        service: SERVICE.to_owned(),
        issuer: ISSUER.to_owned(),
        rootcertbundle: bundle,
    }))
    .await;

    let (ok, report, stderr) = small_run(&running.url(), Some((USER, PASSWORD)), &[]).await;
    assert!(ok, "bench with a token failed: {stderr}");
    assert_no_errors(&report, &stderr);
    // One token, fetched before measuring, served every request.
    assert_eq!(issuer.issued.load(Ordering::Relaxed), 1);

    let (ok, _, stderr) = small_run(&running.url(), Some((USER, "wrong")), &[]).await;
    assert!(!ok, "bench with a wrong password should stop");
    assert!(stderr.contains("token realm"), "unhelpful error: {stderr}");
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registries_are_measured_with_their_certificate_trusted() {
    use quayside_server::config::{Backend, Config, TlsSection};
    let dir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let certificate = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&certificate, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        tls: Some(TlsSection {
            certificate: certificate.clone(),
            key,
        }),
        ..Config::default()
    };
    config.storage.backend = Backend::Memory;
    let running = quayside_server::registry::start(&config)
        .await
        .expect("start the registry");
    let url = format!("https://localhost:{}", running.local_addr().port());
    let ca = certificate.to_string_lossy().into_owned();

    let (ok, report, stderr) = small_run(&url, None, &["--ca-cert", &ca]).await;
    assert!(ok, "bench over HTTPS failed: {stderr}");
    assert_no_errors(&report, &stderr);

    // Without trusting the certificate, it stops at the first request.
    let (ok, _, stderr) = small_run(&url, None, &[]).await;
    assert!(!ok, "bench should refuse an untrusted certificate");
    assert!(stderr.contains("does not answer as a registry"), "{stderr}");
    running.shutdown().await.expect("shutdown");
}
