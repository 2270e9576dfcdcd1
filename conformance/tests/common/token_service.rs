//! A Docker token service for tests, shared by the test crates that include it with
//! `#[path]`: a realm on 127.0.0.1:0 that checks Basic credentials and signs ES256 JWTs
//! granting every scope asked for, with a key whose certificate the registry trusts.
// Each including crate uses a different part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The one user the service knows.
pub const USER: &str = "suite";
pub const PASSWORD: &str = "s3cret-pass";
/// The tokens' `aud`, and the `service` the registry's challenge names.
pub const SERVICE: &str = "registry.own.test";
/// The tokens' `iss`.
pub const ISSUER: &str = "token.own.test";

/// A token service on 127.0.0.1:0 (raw HTTP/1.1, one request per connection): checks the
/// Basic credentials and grants every scope asked for.
pub struct TokenService {
    pub realm: String,
    key: Arc<rcgen::KeyPair>,
    /// Tokens granted and requests refused.
    pub issued: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
}

impl TokenService {
    pub async fn start() -> TokenService {
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
    pub fn certificate_pem(&self) -> String {
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
