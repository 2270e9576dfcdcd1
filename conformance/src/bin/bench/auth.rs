//! Credentials for registries that want them. The `Authorization` value every benchmark
//! request carries is worked out once, before anything is measured: Basic credentials, or
//! a Docker token fetched from the realm the registry names, scoped to the benchmark's
//! repository and the catalog. No measured request pays for an auth round trip. Tokens
//! are not renewed, so a run must fit in the token's lifetime (commonly 5 minutes or more).

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use quayside_conformance::http::parse_challenge;
use reqwest::{header, Client, StatusCode};
use serde_json::Value;

/// A user name and password (`--username`/`--password`).
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The `Authorization` value for requests to `base`, or `None` when `GET /v2/` needs none.
pub async fn authorization(
    client: &Client,
    base: &str,
    repo: &str,
    credentials: Option<&Credentials>,
) -> Result<Option<String>> {
    let response = client
        .get(format!("{base}/v2/"))
        .send()
        .await
        .with_context(|| format!("{base}/v2/ does not answer as a registry"))?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    let header = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .context("GET /v2/ answered 401 without a WWW-Authenticate challenge")?;
    let challenge = parse_challenge(header).map_err(anyhow::Error::msg)?;
    match challenge.scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let Some(c) = credentials else {
                bail!("the registry wants Basic credentials: give --username and --password");
            };
            let pair = format!("{}:{}", c.username, c.password);
            Ok(Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )))
        }
        "bearer" => {
            let realm = challenge
                .params
                .get("realm")
                .context("the Bearer challenge names no realm")?;
            let mut query = vec![
                ("scope", format!("repository:{repo}:pull,push,delete")),
                ("scope", "registry:catalog:*".to_owned()),
            ];
            if let Some(service) = challenge.params.get("service") {
                query.push(("service", service.clone()));
            }
            let mut request = client.get(realm).query(&query);
            if let Some(c) = credentials {
                request = request.basic_auth(&c.username, Some(&c.password));
            }
            let response = request.send().await?;
            let status = response.status();
            if !status.is_success() {
                bail!("the token realm {realm} answered {status}: check --username and --password");
            }
            let body = response
                .bytes()
                .await
                .context("reading the token response")?;
            let body: Value =
                serde_json::from_slice(&body).context("the token response is not JSON")?;
            let token = body
                .get("token")
                .or_else(|| body.get("access_token"))
                .and_then(Value::as_str)
                .context("the token response holds no token")?;
            Ok(Some(format!("Bearer {token}")))
        }
        other => bail!("the registry asks for {other} authentication, which bench does not speak"),
    }
}
