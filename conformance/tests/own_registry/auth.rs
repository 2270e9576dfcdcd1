//! The full suite against our registry with authentication on: Basic (htpasswd) and
//! Docker token auth, where the suite must fetch tokens from a realm itself. The realm is a
//! small token service here, signing ES256 JWTs with a key the registry trusts.

use std::sync::atomic::Ordering;

use quayside_conformance::check::{Outcome, Workflow};
use quayside_conformance::checks;
use quayside_conformance::http::Auth;
use quayside_conformance::report::terminal;
use quayside_conformance::runner::{run, Config, RunReport};
use quayside_server::config::{
    AuthConfig, Backend, Config as ServerConfig, HtpasswdConfig, TokenConfig,
};
use quayside_server::registry::auth::htpasswd_entry;
use quayside_server::registry::{self, RunningRegistry};

use super::failures;
use super::token_service::{TokenService, ISSUER, PASSWORD, SERVICE, USER};

async fn registry_with(auth: AuthConfig) -> RunningRegistry {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        auth,
        ..ServerConfig::default()
    };
    config.storage.backend = Backend::Memory;
    registry::start(&config)
        .await
        .unwrap_or_else(|e| panic!("starting the registry: {e}"))
}

async fn run_with_credentials(url: &str) -> RunReport {
    let mut config = Config::new(url);
    config.namespace = "own/auth".to_owned();
    config.auth = Auth::Basic {
        username: USER.to_owned(),
        password: PASSWORD.to_owned(),
    };
    run(config, checks::all(), |_, _, _| {})
        .await
        .unwrap_or_else(|e| panic!("running the suite: {e}"))
}

/// Asserts the run passed, and that nothing but `allowed` (optional features, and auth
/// checks of the scheme the registry does not use) is anything but Pass.
fn assert_all_pass(report: &RunReport, allowed: &[&str], must_pass: &[&str]) {
    eprintln!("{}", terminal::summary(report));
    assert!(report.success(), "failed checks:\n{}", failures(report));
    let not_passed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass && !allowed.contains(&r.id))
        .map(|r| format!("{}: {} {}", r.id, r.outcome.label(), r.outcome.reason()))
        .collect();
    assert!(
        not_passed.is_empty(),
        "checks neither passing nor expected as unsupported: {not_passed:#?}"
    );
    for id in must_pass {
        let result = report
            .results
            .iter()
            .find(|r| r.id == *id)
            .unwrap_or_else(|| panic!("{id} did not run"));
        assert_eq!(result.outcome, Outcome::Pass, "{id}");
    }
    let auth_ran = report
        .results
        .iter()
        .filter(|r| r.workflow == Workflow::Auth)
        .count();
    assert!(auth_ran >= 7, "only {auth_ran} auth checks ran");
    assert!(
        report.duration_ms < 30_000,
        "suite took {} ms",
        report.duration_ms
    );
}

/// Optional features our registry does not implement, whatever the auth.
const OPTIONAL: [&str; 2] = ["push.blob.mount-anonymous", "push.manifest.sparse-index"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_check_passes_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let htpasswd = dir.path().join("htpasswd");
    let entry = htpasswd_entry(USER, PASSWORD, 4).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&htpasswd, format!("{entry}\n")).unwrap_or_else(|e| panic!("{e}"));
    let registry = registry_with(AuthConfig::Htpasswd(HtpasswdConfig {
        path: htpasswd,
        realm: "own".to_owned(),
    }))
    .await;
    let report = run_with_credentials(&registry.url()).await;
    registry.shutdown().await.unwrap_or_else(|e| panic!("{e}"));

    let bearer_only = [
        "auth.challenge.repository-scope",
        "auth.bearer.token-flow",
        "auth.bearer.garbage-token-401",
    ];
    for id in bearer_only {
        let result = report.results.iter().find(|r| r.id == id);
        assert!(
            result.is_some_and(|r| matches!(r.outcome, Outcome::Unsupported(_))),
            "{id} should be Unsupported under Basic auth: {:?}",
            result.map(|r| &r.outcome)
        );
    }
    let allowed: Vec<&str> = OPTIONAL.iter().chain(&bearer_only).copied().collect();
    assert_all_pass(
        &report,
        &allowed,
        &[
            "auth.challenge.base-401",
            "auth.challenge.unauthorized-envelope",
            "auth.basic.accepted",
            "auth.wrong-password-401",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_check_passes_with_bearer_tokens_from_the_realm() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let issuer = TokenService::start().await;
    let bundle = dir.path().join("token.pem");
    std::fs::write(&bundle, issuer.certificate_pem()).unwrap_or_else(|e| panic!("{e}"));
    let registry = registry_with(AuthConfig::Token(TokenConfig {
        realm: issuer.realm.clone(),
        service: SERVICE.to_owned(),
        issuer: ISSUER.to_owned(),
        rootcertbundle: bundle,
    }))
    .await;
    let report = run_with_credentials(&registry.url()).await;
    registry.shutdown().await.unwrap_or_else(|e| panic!("{e}"));

    let issued = issuer.issued.load(Ordering::Relaxed);
    let refused = issuer.refused.load(Ordering::Relaxed);
    let allowed: Vec<&str> = OPTIONAL
        .iter()
        .chain(&["auth.basic.accepted"])
        .copied()
        .collect();
    assert_all_pass(
        &report,
        &allowed,
        &[
            "auth.challenge.base-401",
            "auth.challenge.unauthorized-envelope",
            "auth.challenge.repository-scope",
            "auth.bearer.token-flow",
            "auth.bearer.garbage-token-401",
            "auth.wrong-password-401",
            "push.blob.post-put",
            "push.blob.chunked-patch-sequence",
            "pull.manifest.get-by-tag",
        ],
    );
    // tokens are cached per scope: far fewer fetches than requests, yet one per repository
    let requests: usize = report.results.iter().map(|r| r.transcript.len()).sum();
    assert!(issued >= 20, "only {issued} tokens issued");
    assert!(
        issued < requests / 2,
        "{issued} tokens for {requests} requests: no caching?"
    );
    assert!(
        refused >= 1,
        "the wrong-password check never reached the realm"
    );
}
