//! The full suite against our registry with authentication on: Basic (htpasswd) and
//! Docker token auth, where the suite must fetch tokens from a realm itself. The realm is a
//! small token service here, signing ES256 JWTs with a key the registry trusts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
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
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::failures;

const USER: &str = "suite";
const PASSWORD: &str = "s3cret-pass";
const SERVICE: &str = "registry.own.test";
const ISSUER: &str = "token.own.test";

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

/// A token service on 127.0.0.1:0 (raw HTTP/1.1, one request per connection): checks the
/// Basic credentials and grants every scope asked for.
struct TokenService {
    realm: String,
    key: Arc<rcgen::KeyPair>,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl TokenService {
    async fn start() -> TokenService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let service = TokenService {
            realm: format!("http://{addr}/token"),
            key: Arc::new(rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"))),
            issued: Arc::default(),
            refused: Arc::default(),
        };
        let (key, issued, refused) = (
            service.key.clone(),
            service.issued.clone(),
            service.refused.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (key, issued, refused) = (key.clone(), issued.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let (status, body) = answer(&String::from_utf8_lossy(&buf), &key);
                    let counter = if status == 200 { &issued } else { &refused };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        service
    }

    /// The signing key's self-signed certificate, for the registry's rootcertbundle.
    fn certificate_pem(&self) -> String {
        rcgen::CertificateParams::new(vec!["own-token-signer".to_owned()])
            .and_then(|p| p.self_signed(self.key.as_ref()))
            .unwrap_or_else(|e| panic!("{e}"))
            .pem()
    }
}

/// The status and JSON body for one token request.
fn answer(request: &str, key: &rcgen::KeyPair) -> (u16, String) {
    let expected = format!(
        "basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let authorized = request.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("authorization")
                && value.trim().eq_ignore_ascii_case(&expected)
        })
    });
    if !authorized {
        return (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_owned(),
        );
    }
    let target = request.split_whitespace().nth(1).unwrap_or_default();
    let Ok(url) = url::Url::parse(&format!("http://realm{target}")) else {
        return (400, "{}".to_owned());
    };
    let mut service = None;
    let mut access = Vec::new();
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "service" => service = Some(value.into_owned()),
            // type:name:actions; the name may hold ':' only in theory, so split at the ends
            "scope" => {
                let Some((kind, rest)) = value.split_once(':') else {
                    continue;
                };
                let Some((name, actions)) = rest.rsplit_once(':') else {
                    continue;
                };
                access.push(json!({
                    "type": kind,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }));
            }
            _ => {}
        }
    }
    if service.as_deref() != Some(SERVICE) {
        return (400, r#"{"details":"unknown service"}"#.to_owned());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = json!({
        "iss": ISSUER, "sub": USER, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
        "jti": format!("{now}-{}", access.len()),
        "access": Value::Array(access),
    });
    let signing =
        EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &signing)
        .unwrap_or_else(|e| panic!("{e}"));
    let body = json!({"token": token, "access_token": token, "expires_in": 300});
    (200, body.to_string())
}
