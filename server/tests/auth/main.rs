//! Authentication and TLS of a running registry, started the way the binary and the
//! conformance suite start it: `registry::start` with `Config::auth` / `Config::tls`.
//! Tokens are minted here with a fresh EC key, as a token service would.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use quayside_server::config::{
    AuthConfig, Backend, Config, HtpasswdConfig, TlsSection, TokenConfig,
};
use quayside_server::registry::auth::htpasswd_entry;
use quayside_server::registry::{self, server::StartError, RunningRegistry};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const REALM: &str = "https://auth.quayside.test/token";
const SERVICE: &str = "registry.quayside.test";
const ISSUER: &str = "auth.quayside.test";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A registry on 127.0.0.1:0 with memory storage, and the directory of its auth files.
struct Running {
    registry: RunningRegistry,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn start(dir: tempfile::TempDir, auth: AuthConfig, tls: Option<TlsSection>) -> Running {
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            auth,
            tls,
            ..memory_config()
        };
        let registry = registry::start(&config).await.expect("registry starts");
        Running {
            registry,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.registry.url())
    }
}

fn memory_config() -> Config {
    let mut config = Config::default();
    config.storage.backend = Backend::Memory;
    config
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An OCI image: its config blob, and a manifest referring to it.
fn image() -> (Vec<u8>, Vec<u8>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [],
    });
    (
        config,
        serde_json::to_vec(&manifest).expect("manifest JSON"),
    )
}

/// Pushes `image()` to `name` (monolithic blob upload, manifest by tag `v1`), each request
/// passed through `auth`; returns the statuses.
async fn push(
    running: &Running,
    name: &str,
    auth: impl Fn(RequestBuilder) -> RequestBuilder,
) -> (StatusCode, StatusCode) {
    let (config, manifest) = image();
    let blob = auth(
        running
            .client
            .post(running.url(&format!(
                "/v2/{name}/blobs/uploads/?digest={}",
                sha256(&config)
            )))
            .header("content-type", "application/octet-stream")
            .body(config),
    )
    .send()
    .await
    .expect("blob push");
    let manifest = auth(
        running
            .client
            .put(running.url(&format!("/v2/{name}/manifests/v1")))
            .header("content-type", OCI_MANIFEST)
            .body(manifest),
    )
    .send()
    .await
    .expect("manifest push");
    (blob.status(), manifest.status())
}

/// The one error of an OCI envelope: its code.
async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("JSON error envelope");
    let errors = body["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1, "{body}");
    errors[0]["code"].as_str().expect("code").to_owned()
}

fn challenge(response: &Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate header")
        .to_str()
        .expect("ASCII challenge")
        .to_owned()
}

// ---------------------------------------------------------------- Basic

async fn basic_registry() -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("htpasswd");
    let file = format!(
        "{}\n{}\n",
        htpasswd_entry("alice", "s3cret", 4).expect("bcrypt"),
        htpasswd_entry("bob", "hunter2", 4).expect("bcrypt")
    );
    std::fs::write(&path, file).expect("write htpasswd");
    Running::start(
        dir,
        AuthConfig::Htpasswd(HtpasswdConfig {
            path,
            realm: "Quayside Test".to_owned(),
        }),
        None,
    )
    .await
}

#[tokio::test]
async fn basic_without_credentials_is_401_with_challenge_and_envelope() {
    let running = basic_registry().await;
    for path in ["/v2/", "/v2/team/app/manifests/v1", "/v2/_catalog"] {
        let response = running.client.get(running.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(challenge(&response), r#"Basic realm="Quayside Test""#);
        assert_eq!(
            response.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        assert_eq!(error_code(response).await, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn basic_wrong_password_or_unknown_user_is_401() {
    let running = basic_registry().await;
    for (user, password) in [("alice", "hunter2"), ("carol", "s3cret"), ("alice", "")] {
        let response = running
            .client
            .get(running.url("/v2/"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{user}:{password}"
        );
        assert_eq!(challenge(&response), r#"Basic realm="Quayside Test""#);
        assert_eq!(error_code(response).await, "UNAUTHORIZED");
    }
    // A bearer token means nothing to a Basic registry.
    let response = running
        .client
        .get(running.url("/v2/"))
        .bearer_auth("abc.def.ghi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn basic_right_password_checks_pushes_and_pulls() {
    let running = basic_registry().await;
    let login = |request: RequestBuilder| request.basic_auth("alice", Some("s3cret"));
    let response = login(running.client.get(running.url("/v2/")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (blob, manifest) = push(&running, "team/app", login).await;
    assert_eq!((blob, manifest), (StatusCode::CREATED, StatusCode::CREATED));

    let (config, manifest) = image();
    let pulled = login(running.client.get(running.url("/v2/team/app/manifests/v1")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.unwrap(), manifest);
    let blob = login(
        running
            .client
            .get(running.url(&format!("/v2/team/app/blobs/{}", sha256(&config)))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(blob.status(), StatusCode::OK);
    assert_eq!(blob.bytes().await.unwrap(), config);

    // The other user is let in too; without credentials the pull is refused.
    let bob = running
        .client
        .get(running.url("/v2/team/app/manifests/v1"))
        .basic_auth("bob", Some("hunter2"))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), StatusCode::OK);
    let anonymous = running
        .client
        .get(running.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_htpasswd_file_stops_the_start() {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: AuthConfig::Htpasswd(HtpasswdConfig {
            path: "/nonexistent/htpasswd".into(),
            realm: "x".to_owned(),
        }),
        ..memory_config()
    };
    match registry::start(&config).await {
        Err(StartError::Auth(message)) => {
            assert!(message.contains("/nonexistent/htpasswd"), "{message}")
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("started without its htpasswd file"),
    }
}

// ---------------------------------------------------------------- Bearer tokens

/// A token service's signing key, trusted by the registry through its certificate.
struct Issuer {
    key: rcgen::KeyPair,
}

impl Issuer {
    fn new() -> Issuer {
        Issuer {
            key: rcgen::KeyPair::generate().expect("EC key"),
        }
    }

    /// The key's self-signed certificate, as Docker's token setups ship it.
    fn certificate_pem(&self) -> String {
        rcgen::CertificateParams::new(vec!["token-signer".to_owned()])
            .expect("params")
            .self_signed(&self.key)
            .expect("certificate")
            .pem()
    }

    fn sign(&self, claims: &Value) -> String {
        let key = EncodingKey::from_ec_pem(self.key.serialize_pem().as_bytes()).expect("EC key");
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).expect("signed JWT")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims the registry accepts, granting `access`.
fn claims(access: Value) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": "tester",
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now - 10,
        "jti": "test",
        "access": access,
    })
}

fn repository(name: &str, actions: &[&str]) -> Value {
    json!({ "type": "repository", "name": name, "actions": actions })
}

async fn token_registry(issuer: &Issuer) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("token.pem");
    // An unrelated public key first: the registry must try every trusted key.
    let other = rcgen::KeyPair::generate().expect("EC key").public_key_pem();
    std::fs::write(&bundle, format!("{other}{}", issuer.certificate_pem())).expect("bundle");
    Running::start(
        dir,
        AuthConfig::Token(TokenConfig {
            realm: REALM.to_owned(),
            service: SERVICE.to_owned(),
            issuer: ISSUER.to_owned(),
            rootcertbundle: bundle,
        }),
        None,
    )
    .await
}

#[tokio::test]
async fn bearer_challenge_names_realm_service_and_the_access_needed() {
    let issuer = Issuer::new();
    let running = token_registry(&issuer).await;
    let digest = sha256(b"x");
    let cases = [
        (
            "GET",
            "/v2/".to_owned(),
            format!(r#"Bearer realm="{REALM}",service="{SERVICE}""#),
        ),
        (
            "GET",
            "/v2/team/app/manifests/v1".to_owned(),
            format!(
                r#"Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:pull""#
            ),
        ),
        (
            "PUT",
            "/v2/team/app/manifests/v1".to_owned(),
            format!(
                r#"Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:pull,push""#
            ),
        ),
        (
            "DELETE",
            format!("/v2/team/app/blobs/{digest}"),
            format!(
                r#"Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:delete""#
            ),
        ),
        (
            "POST",
            format!("/v2/team/app/blobs/uploads/?mount={digest}&from=library/base"),
            format!(
                r#"Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:pull,push repository:library/base:pull""#
            ),
        ),
        (
            "GET",
            "/v2/_catalog".to_owned(),
            format!(r#"Bearer realm="{REALM}",service="{SERVICE}",scope="registry:catalog:*""#),
        ),
    ];
    for (method, path, expected) in cases {
        let response = running
            .client
            .request(method.parse().unwrap(), running.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_eq!(challenge(&response), expected, "{method} {path}");
        assert_eq!(
            error_code(response).await,
            "UNAUTHORIZED",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn pull_only_token_pulls_but_push_is_403_denied() {
    let issuer = Issuer::new();
    let running = token_registry(&issuer).await;
    let writer = issuer.sign(&claims(json!([repository("team/app", &["pull", "push"])])));
    let (blob, manifest) = push(&running, "team/app", |r| r.bearer_auth(&writer)).await;
    assert_eq!((blob, manifest), (StatusCode::CREATED, StatusCode::CREATED));

    let reader = issuer.sign(&claims(json!([repository("team/app", &["pull"])])));
    let pulled = running
        .client
        .get(running.url("/v2/team/app/manifests/v1"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.unwrap(), image().1);

    let refused = running
        .client
        .post(running.url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&refused),
        format!(
            r#"Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:pull,push",error="insufficient_scope""#
        )
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert_eq!(
        body["errors"][0]["detail"],
        json!([{ "type": "repository", "name": "team/app", "action": "push" }])
    );

    // Pull on one repository grants nothing on another.
    let elsewhere = running
        .client
        .get(running.url("/v2/team/other/tags/list"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(elsewhere).await, "DENIED");
}

#[tokio::test]
async fn delete_needs_the_delete_action_and_star_grants_everything() {
    let issuer = Issuer::new();
    let running = token_registry(&issuer).await;
    let writer = issuer.sign(&claims(json!([repository("team/app", &["pull", "push"])])));
    push(&running, "team/app", |r| r.bearer_auth(&writer)).await;
    let digest = sha256(&image().1);
    let delete = |token: String| {
        running
            .client
            .delete(running.url(&format!("/v2/team/app/manifests/{digest}")))
            .bearer_auth(token)
            .send()
    };
    let refused = delete(writer.clone()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(refused).await, "DENIED");
    let admin = issuer.sign(&claims(json!([repository("team/app", &["*"])])));
    assert_eq!(delete(admin).await.unwrap().status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn mount_needs_pull_on_the_source_repository() {
    let issuer = Issuer::new();
    let running = token_registry(&issuer).await;
    let writer = issuer.sign(&claims(json!([repository(
        "library/base",
        &["pull", "push"]
    )])));
    push(&running, "library/base", |r| r.bearer_auth(&writer)).await;
    let config = sha256(&image().0);
    let mount = |token: String| {
        running
            .client
            .post(running.url(&format!(
                "/v2/team/app/blobs/uploads/?mount={config}&from=library/base"
            )))
            .bearer_auth(token)
            .send()
    };
    let target_only = issuer.sign(&claims(json!([repository("team/app", &["pull", "push"])])));
    let refused = mount(target_only).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["detail"],
        json!([{ "type": "repository", "name": "library/base", "action": "pull" }])
    );
    let both = issuer.sign(&claims(json!([
        repository("team/app", &["pull", "push"]),
        repository("library/base", &["pull"]),
    ])));
    assert_eq!(mount(both).await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn expired_foreign_or_misaddressed_tokens_are_401() {
    let issuer = Issuer::new();
    let running = token_registry(&issuer).await;
    let access = json!([repository("team/app", &["pull"])]);
    let mut expired = claims(access.clone());
    expired["exp"] = json!(now() - 3600);
    let mut not_yet = claims(access.clone());
    not_yet["nbf"] = json!(now() + 3600);
    let mut wrong_issuer = claims(access.clone());
    wrong_issuer["iss"] = json!("someone-else");
    let mut wrong_audience = claims(access.clone());
    wrong_audience["aud"] = json!("other-registry");
    let mut no_expiry = claims(access.clone());
    no_expiry.as_object_mut().unwrap().remove("exp");
    let stranger = Issuer::new();
    let cases = [
        ("expired", issuer.sign(&expired), "expired"),
        ("not yet valid", issuer.sign(&not_yet), "not valid yet"),
        ("wrong issuer", issuer.sign(&wrong_issuer), "issued by"),
        (
            "wrong audience",
            issuer.sign(&wrong_audience),
            "not for service",
        ),
        ("no exp", issuer.sign(&no_expiry), "exp"),
        (
            "untrusted key",
            stranger.sign(&claims(access.clone())),
            "signature",
        ),
        ("not a JWT", "not-a-token".to_owned(), "not a JWT"),
        (
            "HMAC keyed with the public key",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(access.clone()),
                &EncodingKey::from_secret(issuer.certificate_pem().as_bytes()),
            )
            .unwrap(),
            "not accepted",
        ),
    ];
    for (case, token, reason) in cases {
        let response = running
            .client
            .get(running.url("/v2/team/app/tags/list"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert!(
            challenge(&response).ends_with(r#",error="invalid_token""#),
            "{case}: {}",
            challenge(&response)
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{case}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{case}: {message}");
    }
    // A tampered payload breaks the signature.
    let token = issuer.sign(&claims(access));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let response = running
        .client
        .get(running.url("/v2/team/app/tags/list"))
        .bearer_auth(parts.join("."))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn any_valid_token_opens_v2_but_catalog_needs_registry_catalog_scope() {
    let issuer = Issuer::new();
    let running = token_registry(&issuer).await;
    let get = |path: &'static str, token: String| {
        running
            .client
            .get(running.url(path))
            .bearer_auth(token)
            .send()
    };
    let nothing = issuer.sign(&claims(json!([])));
    assert_eq!(
        get("/v2/", nothing.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    let refused = get("/v2/_catalog", nothing).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(refused).await, "DENIED");
    let repo_only = issuer.sign(&claims(json!([repository("team/app", &["*"])])));
    assert_eq!(
        get("/v2/_catalog", repo_only).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let catalog = issuer.sign(&claims(
        json!([{ "type": "registry", "name": "catalog", "actions": ["*"] }]),
    ));
    let listed = get("/v2/_catalog", catalog).await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let body: Value = listed.json().await.unwrap();
    assert!(body["repositories"].is_array(), "{body}");
}

// ---------------------------------------------------------------- TLS

/// A self-signed certificate for `localhost` and its key, written to `dir`.
fn self_signed(dir: &Path) -> (TlsSection, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let certificate = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&certificate, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    (TlsSection { certificate, key }, certified.cert.pem())
}

fn trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("PEM cert")])
        .build()
        .expect("client")
}

#[tokio::test]
async fn https_serves_the_api_and_plain_http_to_it_fails_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tls, cert_pem) = self_signed(dir.path());
    let running = Running::start(dir, AuthConfig::None, Some(tls)).await;
    let port = running.registry.local_addr().port();
    assert_eq!(running.registry.url(), format!("https://127.0.0.1:{port}"));
    let client = trusting(&cert_pem);
    let https = format!("https://localhost:{port}/v2/");

    let response = client.get(&https).send().await.expect("HTTPS request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // Plain HTTP gets no API answer (the handshake fails), and the server carries on.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v2/"))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await;
    match plain {
        Err(err) => assert!(!err.is_timeout(), "plain HTTP hung: {err}"),
        Ok(response) => assert!(!response.status().is_success(), "{}", response.status()),
    }
    // A client that does not trust the certificate is refused by its own TLS check.
    assert!(reqwest::Client::new().get(&https).send().await.is_err());
    let again = client.get(&https).send().await.expect("HTTPS after plain");
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn tls_key_of_another_certificate_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut tls, _) = self_signed(dir.path());
    let other = dir.path().join("other.key");
    std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    tls.key = other;
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(tls),
        ..memory_config()
    };
    match registry::start(&config).await {
        Err(StartError::Tls(message)) => assert!(message.contains("does not fit"), "{message}"),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("started with a mismatched key"),
    }
}

// ---------------------------------------------------------------- the binary's flags

/// Runs `registry` with `args`; returns it and the URL of its `listening on` line.
fn spawn_binary(args: &[&std::ffi::OsStr]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["--listen", "127.0.0.1:0", "--storage", "memory"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("registry starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first stdout line");
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

#[tokio::test]
async fn htpasswd_and_tls_flags_serve_basic_auth_over_https() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tls, cert_pem) = self_signed(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, htpasswd_entry("alice", "s3cret", 4).unwrap()).unwrap();
    let (mut child, url) = spawn_binary(&[
        "--htpasswd".as_ref(),
        htpasswd.as_os_str(),
        "--tls-cert".as_ref(),
        tls.certificate.as_os_str(),
        "--tls-key".as_ref(),
        tls.key.as_os_str(),
    ]);
    let port = url
        .strip_prefix("https://127.0.0.1:")
        .unwrap_or_else(|| panic!("not an https URL: {url}"))
        .to_owned();
    let client = trusting(&cert_pem);
    let v2 = format!("https://localhost:{port}/v2/");
    let anonymous = client.get(&v2).send().await.unwrap();
    let with_login = client
        .get(&v2)
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    child.kill().expect("stop registry");
    child.wait().expect("registry exits");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&anonymous), r#"Basic realm="Quayside""#);
    assert_eq!(with_login.status(), StatusCode::OK);
}

#[tokio::test]
async fn rs256_tokens_verify_against_an_rsa_public_key() {
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("token.pem");
    std::fs::write(&bundle, rsa.public_key_pem()).expect("bundle");
    let running = Running::start(
        dir,
        AuthConfig::Token(TokenConfig {
            realm: REALM.to_owned(),
            service: SERVICE.to_owned(),
            issuer: ISSUER.to_owned(),
            rootcertbundle: bundle,
        }),
        None,
    )
    .await;
    let key = EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).expect("RSA key");
    let sign = |alg| {
        jsonwebtoken::encode(&Header::new(alg), &claims(json!([])), &key).expect("signed JWT")
    };
    let get = |token: String| {
        running
            .client
            .get(running.url("/v2/"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get(sign(Algorithm::RS256)).await.unwrap().status(),
        StatusCode::OK
    );
    // An EC-signed token cannot pass against an RSA-only bundle.
    let stranger = Issuer::new().sign(&claims(json!([])));
    assert_eq!(
        get(stranger).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
