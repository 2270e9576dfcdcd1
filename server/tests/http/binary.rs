//! The `registry` binary's contract, which the interop tests rely on: the one
//! `listening on http://ADDR` line, flags and `QUAYSIDE_*` variables, a YAML config file,
//! and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;

/// Starts the binary and returns it with the base URL from its first stdout line.
fn spawn(configure: impl FnOnce(&mut Command)) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registry"));
    command
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    configure(&mut command);
    let mut child = command.spawn().expect("registry starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first stdout line");
    let base = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base)
}

/// Sends SIGTERM and checks the process exits successfully.
fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("registry exits");
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn binary_prints_its_address_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (child, base) = spawn(|c| {
        c.args(["serve", "--listen", "127.0.0.1:0", "--root"])
            .arg(&root);
    });
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!base.ends_with(":0"), "{base}");
    let response = reqwest::get(format!("{base}/v2/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    terminate(child);
    assert!(root.join("metadata.redb").exists(), "storage under --root");
}

#[tokio::test]
async fn environment_and_config_file_configure_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:1\nstorage:\n  backend: memory\n  delete:\n    enabled: false\n",
    )
    .unwrap();
    // The variable overrides the file's address; the file switches deletion off.
    let (child, base) = spawn(|c| {
        c.arg("serve")
            .arg("--config")
            .arg(&config)
            .env("QUAYSIDE_LISTEN", "127.0.0.1:0")
            .current_dir(dir.path());
    });
    let client = reqwest::Client::new();
    let response = client
        .delete(format!("{base}/v2/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    terminate(child);
    assert!(
        !dir.path().join("data").exists(),
        "memory backend wrote nothing"
    );
}

#[test]
fn help_explains_each_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["serve", "--help"])
        .output()
        .expect("registry --help runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--listen",
        "--root",
        "--config",
        "--no-delete",
        "--log-level",
        "QUAYSIDE_LISTEN",
        "QUAYSIDE_ROOT",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn invalid_config_file_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "listen: nowhere\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_registry"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("registry runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml"), "{stderr}");
}
