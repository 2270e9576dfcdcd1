//! Raw HTTP for checks, recording every exchange.
//!
//! Checks need to send malformed requests, so this is a thin layer over reqwest rather than
//! the typed client. Each exchange lands in the check's transcript (with bodies truncated)
//! so a failure report shows exactly what was sent and received, and each response to a
//! request tagged with an operationId is validated against `spec/openapi.yaml`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde::Serialize;

use crate::check::{fail, Outcome};

/// Bytes of each body kept in a transcript.
pub const BODY_PREVIEW_BYTES: usize = 2048;

/// Credentials sent with every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A bearer token used as is.
    Bearer(String),
}

/// One request and its response, as kept in a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// operationId the request targets, when the check said so.
    pub operation: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Request headers (credentials masked).
    pub request_headers: Vec<(String, String)>,
    /// Request body length in bytes.
    pub request_body_len: usize,
    /// The start of the request body, lossily decoded.
    pub request_body: String,
    /// Response status, `None` when the request failed in transport.
    pub status: Option<u16>,
    /// Response headers.
    pub response_headers: Vec<(String, String)>,
    /// Response body length in bytes.
    pub response_body_len: usize,
    /// The start of the response body, lossily decoded.
    pub response_body: String,
    /// Transport error, if any.
    pub error: Option<String>,
    /// Spec violations found in the response.
    pub violations: Vec<String>,
}

impl Exchange {
    /// The exchange as an HTTP-like text block for terminal and JUnit reports.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let op = self.operation.as_deref().unwrap_or("-");
        let _ = writeln!(out, "> {} {}   [{op}]", self.method, self.url);
        for (name, value) in &self.request_headers {
            let _ = writeln!(out, "> {name}: {value}");
        }
        if self.request_body_len > 0 {
            let _ = writeln!(
                out,
                "> ({} bytes) {}",
                self.request_body_len, self.request_body
            );
        }
        match (self.status, &self.error) {
            (_, Some(error)) => {
                let _ = writeln!(out, "< transport error: {error}");
            }
            (Some(status), None) => {
                let _ = writeln!(out, "< {status}");
            }
            (None, None) => {}
        }
        for (name, value) in &self.response_headers {
            let _ = writeln!(out, "< {name}: {value}");
        }
        if self.response_body_len > 0 {
            let _ = writeln!(
                out,
                "< ({} bytes) {}",
                self.response_body_len, self.response_body
            );
        }
        for violation in &self.violations {
            let _ = writeln!(out, "! spec: {violation}");
        }
        out
    }
}

/// A response with its body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Response {
    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a repeated header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// Fails unless the status is one of `expected`.
    pub fn expect_status(&self, expected: &[u16]) -> Result<&Response, Outcome> {
        if expected.contains(&self.status) {
            Ok(self)
        } else {
            Err(fail(format!(
                "expected status {}, got {} (body: {})",
                expected
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.status,
                preview(&self.body, 300)
            )))
        }
    }

    /// The header's value, failing with a readable message when absent.
    pub fn require_header(&self, name: &str) -> Result<&str, Outcome> {
        self.header(name)
            .ok_or_else(|| fail(format!("response {} lacks the {name} header", self.status)))
    }

    /// The body parsed as JSON, failing readably when it is not.
    pub fn json(&self) -> Result<serde_json::Value, Outcome> {
        serde_json::from_slice(&self.body).map_err(|e| {
            fail(format!(
                "body is not JSON ({e}): {}",
                preview(&self.body, 300)
            ))
        })
    }

    /// The `code`s of an OCI error envelope, empty when the body is not one.
    pub fn error_codes(&self) -> Vec<String> {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return Vec::new();
        };
        value
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails unless the body is an error envelope containing one of `codes`.
    pub fn expect_error_code(&self, codes: &[&str]) -> Result<(), Outcome> {
        let got = self.error_codes();
        if got.iter().any(|c| codes.contains(&c.as_str())) {
            Ok(())
        } else {
            Err(fail(format!(
                "expected an error envelope with code {}, got codes {got:?} (body: {})",
                codes.join(" or "),
                preview(&self.body, 300)
            )))
        }
    }
}

/// The start of `body` as lossy text, with an ellipsis note when cut.
pub fn preview(body: &[u8], max: usize) -> String {
    let cut = body.len().min(max);
    // control characters would corrupt terminals and make XML reports ill-formed
    let text: String = String::from_utf8_lossy(&body[..cut])
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t') {
                '\u{b7}'
            } else {
                c
            }
        })
        .collect();
    if body.len() > max {
        format!("{text}… ({} more bytes)", body.len() - max)
    } else {
        text
    }
}

/// The shared HTTP client with its credentials and base URL.
///
/// With Basic credentials it also speaks the Docker token flow: a 401 carrying a `Bearer`
/// challenge makes it fetch a token from the challenge's realm (service and scope as
/// given, the credentials as Basic), cache it, and retry the request once with it.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    auth: Auth,
    tokens: Arc<Mutex<TokenCache>>,
}

/// Tokens from the realm: by the scope they were asked for, and the last one that served
/// each repository (so later requests there skip the 401 round trip). Each expires a
/// little before the `expires_in` the realm gave.
#[derive(Debug, Default)]
struct TokenCache {
    by_scope: HashMap<String, (String, Instant)>,
    by_repo: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    fn live(entry: Option<&(String, Instant)>) -> Option<String> {
        entry
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(token, _)| token.clone())
    }
}

/// Token lifetime when the realm names none (the Docker token spec's default).
const DEFAULT_TOKEN_SECS: u64 = 60;

impl Http {
    /// A client for the registry at `base` (`http://host:port`, no trailing `/`).
    pub fn new(base: &str, auth: Auth, insecure: bool) -> anyhow::Result<Http> {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            tokens: Arc::default(),
        })
    }

    /// The registry's base URL, without trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` made absolute: an absolute URL stays, `/v2/...` gets the base prepended
    /// (so relative `Location` headers resolve as RFC 9110 says).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// The `Authorization` value for a request to `url`: a cached token for its
    /// repository when the registry asked for one before, else the configured credential.
    fn authorization(&self, url: &str) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
            Auth::Basic { username, password } => {
                let cached = self
                    .tokens
                    .lock()
                    .ok()
                    .and_then(|t| TokenCache::live(t.by_repo.get(&repository_of(url))));
                Some(match cached {
                    Some(token) => format!("Bearer {token}"),
                    None => format!(
                        "Basic {}",
                        base64_encode(format!("{username}:{password}").as_bytes())
                    ),
                })
            }
        }
    }

    /// When `resp` is a 401 (or 403) with a Bearer challenge and Basic credentials are configured,
    /// a token for the challenged scope (cached, or fetched from the realm now).
    /// Also returns the exchange with the realm, when there was one.
    async fn token_for(&self, url: &str, resp: &Response) -> (Option<String>, Option<Exchange>) {
        let Auth::Basic { username, password } = &self.auth else {
            return (None, None);
        };
        // 403 with a challenge is Docker's `insufficient_scope`: the token lacks an action
        if resp.status != 401 && resp.status != 403 {
            return (None, None);
        }
        let Some(challenge) = resp
            .header_all("www-authenticate")
            .into_iter()
            .filter_map(|h| parse_challenge(h).ok())
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        else {
            return (None, None);
        };
        let Some(realm) = challenge.params.get("realm") else {
            return (None, None);
        };
        let scope = challenge.params.get("scope").cloned().unwrap_or_default();
        // an `error` param means the token we sent was refused: fetch a new one
        let cached = self
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.by_scope.get(&scope).cloned())
            .filter(|(_, until)| Instant::now() < *until);
        if let (Some(entry), None) = (cached, challenge.params.get("error")) {
            let token = entry.0.clone();
            if let Ok(mut t) = self.tokens.lock() {
                t.by_repo.insert(repository_of(url), entry);
            }
            return (Some(token), None);
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = challenge.params.get("service") {
            query.push(("service", service));
        }
        // Docker sends one `scope` parameter per space-separated scope
        query.extend(
            scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| ("scope", s)),
        );
        let mut exchange = Exchange {
            operation: None,
            method: "GET".to_owned(),
            url: realm.clone(),
            request_headers: vec![("authorization".into(), "<redacted>".into())],
            request_body_len: 0,
            request_body: String::new(),
            status: None,
            response_headers: Vec::new(),
            response_body_len: 0,
            response_body: String::new(),
            error: None,
            violations: Vec::new(),
        };
        let fetched = async {
            let resp = self
                .client
                .get(realm)
                .query(&query)
                .basic_auth(username, Some(password))
                .send()
                .await?;
            let status = resp.status().as_u16();
            let final_url = resp.url().to_string();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, final_url, body))
        }
        .await;
        let issued = match fetched {
            Ok((status, final_url, body)) => {
                exchange.url = final_url;
                exchange.status = Some(status);
                exchange.response_body_len = body.len();
                let token = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .filter(|_| status == 200)
                    .and_then(|v| {
                        let token = v
                            .get("token")
                            .or_else(|| v.get("access_token"))
                            .and_then(|t| t.as_str())?
                            .to_owned();
                        let secs = v
                            .get("expires_in")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(DEFAULT_TOKEN_SECS);
                        // renew 10% early so a token never expires in flight
                        let until = Instant::now() + Duration::from_secs(secs) * 9 / 10;
                        Some((token, until))
                    });
                exchange.response_body = if token.is_some() {
                    "(token response, redacted)".to_owned()
                } else {
                    preview(&body, BODY_PREVIEW_BYTES)
                };
                token
            }
            Err(e) => {
                exchange.error = Some(error_chain(&e));
                None
            }
        };
        let Some((token, until)) = issued else {
            return (None, Some(exchange));
        };
        if let Ok(mut t) = self.tokens.lock() {
            t.by_scope.insert(scope, (token.clone(), until));
            t.by_repo.insert(repository_of(url), (token.clone(), until));
        }
        (Some(token), Some(exchange))
    }

    /// Sends `req`, recording the exchange in `transcript`. A Bearer challenge is answered
    /// with a token from the realm and the request retried once (see [`Http`]).
    pub async fn send(
        &self,
        req: Request,
        transcript: &Arc<Mutex<Vec<Exchange>>>,
    ) -> Result<Response, Outcome> {
        let url = self.url(&req.path);
        let authorization = self.authorization(&url);
        let (first, exchange) = self.send_once(&req, authorization).await;
        self.retry_with_token(&req, &url, first, exchange, transcript, false)
            .await
    }

    /// After a first attempt: records it and, when it was a Bearer challenge we can answer,
    /// retries with the token.
    async fn retry_with_token(
        &self,
        req: &Request,
        url: &str,
        first: Result<Response, Outcome>,
        mut exchange: Exchange,
        transcript: &Arc<Mutex<Vec<Exchange>>>,
        early: bool,
    ) -> Result<Response, Outcome> {
        let (token, realm_exchange) = match &first {
            Ok(resp) => self.token_for(url, resp).await,
            Err(_) => (None, None),
        };
        if token.is_some() {
            // the challenge answered the first attempt; only the retry is judged by the spec
            exchange.violations.clear();
        }
        if let Ok(mut t) = transcript.lock() {
            t.push(exchange);
            t.extend(realm_exchange);
        }
        let Some(token) = token else {
            return first;
        };
        let authorization = Some(format!("Bearer {token}"));
        let (second, exchange) = if early {
            self.send_early_once(req, authorization).await
        } else {
            self.send_once(req, authorization).await
        };
        if let Ok(mut t) = transcript.lock() {
            t.push(exchange);
        }
        second
    }

    async fn send_once(
        &self,
        req: &Request,
        authorization: Option<String>,
    ) -> (Result<Response, Outcome>, Exchange) {
        let url = self.url(&req.path);
        let mut headers = HeaderMap::new();
        if let Some(v) = authorization.and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut exchange = Exchange {
            operation: req.operation.map(str::to_owned),
            method: req.method.to_string(),
            url: url.clone(),
            request_headers: Vec::new(),
            request_body_len: 0,
            request_body: String::new(),
            status: None,
            response_headers: Vec::new(),
            response_body_len: 0,
            response_body: String::new(),
            error: None,
            violations: Vec::new(),
        };
        for (name, value) in &req.headers {
            let parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("bad request header name {name:?}: {e}"))
                .and_then(|n| {
                    HeaderValue::from_str(value)
                        .map(|v| (n, v))
                        .map_err(|e| format!("bad request header value {value:?}: {e}"))
                });
            match parsed {
                Ok((n, v)) => {
                    headers.append(n, v);
                }
                Err(e) => {
                    exchange.error = Some(e.clone());
                    return (Err(fail(e)), exchange);
                }
            }
        }
        let body = req.body.clone().unwrap_or_default();
        exchange.request_headers = header_pairs(&headers, true);
        exchange.request_body_len = body.len();
        exchange.request_body = preview(&body, BODY_PREVIEW_BYTES);
        let mut builder = self
            .client
            .request(req.method.clone(), &url)
            .headers(headers);
        if req.body.is_some() {
            builder = builder.body(body);
        }
        let result = async {
            let resp = builder.send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let final_url = resp.url().to_string();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>(Response {
                status,
                headers,
                body,
                url: final_url,
            })
        }
        .await;
        let outcome = match result {
            Ok(resp) => {
                exchange.status = Some(resp.status);
                exchange.response_headers = header_pairs(&resp.headers, false);
                exchange.response_body_len = resp.body.len();
                exchange.response_body = preview(&resp.body, BODY_PREVIEW_BYTES);
                if let Some(op) = req.operation {
                    exchange.violations =
                        crate::specval::validate_response(op, req.method.as_str(), &resp);
                }
                Ok(resp)
            }
            Err(e) => {
                let message = format!("{} {url}: {e}", req.method);
                exchange.error = Some(error_chain(&e));
                Err(fail(format!("transport error: {message}")))
            }
        };
        (outcome, exchange)
    }
}

impl Http {
    /// Sends `req` over a raw HTTP/1.1 connection while reading the response concurrently,
    /// so a registry that answers early (a 413 before the body is read) and closes is heard
    /// rather than seen as a broken pipe. Plain `http://` only; other schemes use [`Http::send`].
    pub async fn send_reading_early(
        &self,
        req: Request,
        transcript: &Arc<Mutex<Vec<Exchange>>>,
    ) -> Result<Response, Outcome> {
        let url = self.url(&req.path);
        if !url.starts_with("http://") {
            return self.send(req, transcript).await;
        }
        let authorization = self.authorization(&url);
        let (first, exchange) = self.send_early_once(&req, authorization).await;
        self.retry_with_token(&req, &url, first, exchange, transcript, true)
            .await
    }

    async fn send_early_once(
        &self,
        req: &Request,
        authorization: Option<String>,
    ) -> (Result<Response, Outcome>, Exchange) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = self.url(&req.path);
        let rest = url.strip_prefix("http://").unwrap_or(&url);
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host.to_owned(), format!("/{path}")),
            None => (rest.to_owned(), "/".to_owned()),
        };
        let body = req.body.clone().unwrap_or_default();
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
            req.method,
            body.len()
        );
        let mut request_headers = req.headers.clone();
        if let Some(authorization) = authorization {
            head.push_str(&format!("Authorization: {authorization}\r\n"));
            request_headers.push(("authorization".into(), "<redacted>".into()));
        }
        for (name, value) in &req.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut exchange = Exchange {
            operation: req.operation.map(str::to_owned),
            method: req.method.to_string(),
            url: url.clone(),
            request_headers,
            request_body_len: body.len(),
            request_body: preview(&body, BODY_PREVIEW_BYTES),
            status: None,
            response_headers: Vec::new(),
            response_body_len: 0,
            response_body: String::new(),
            error: None,
            violations: Vec::new(),
        };
        let raw = async {
            let stream = tokio::net::TcpStream::connect(&host).await?;
            let (mut rd, mut wr) = stream.into_split();
            let writer = tokio::spawn(async move {
                // a server answering early may close mid-body: that is what we test for
                let _ = wr.write_all(head.as_bytes()).await;
                let _ = wr.write_all(&body).await;
                let _ = wr.flush().await;
                wr
            });
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(60), rd.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            writer.abort();
            Ok::<_, std::io::Error>(buf)
        }
        .await;
        let outcome = match raw
            .map_err(|e| e.to_string())
            .and_then(|b| parse_raw(&b, &url))
        {
            Ok(resp) => {
                exchange.status = Some(resp.status);
                exchange.response_headers = header_pairs(&resp.headers, false);
                exchange.response_body_len = resp.body.len();
                exchange.response_body = preview(&resp.body, BODY_PREVIEW_BYTES);
                if let Some(op) = req.operation {
                    exchange.violations =
                        crate::specval::validate_response(op, req.method.as_str(), &resp);
                }
                Ok(resp)
            }
            Err(e) => {
                exchange.error = Some(e.clone());
                Err(fail(format!("transport error: {} {url}: {e}", req.method)))
            }
        };
        (outcome, exchange)
    }
}

/// A parsed `WWW-Authenticate` challenge: scheme and its auth-params (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Basic`, `Bearer`, … as sent.
    pub scheme: String,
    /// Auth-params, quotes removed.
    pub params: HashMap<String, String>,
}

/// Parses one challenge, `Scheme k="v", k2=v2` (RFC 9110 §11.6.1); quoted values may hold
/// commas (Docker scopes do: `repository:a:pull,push`).
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("WWW-Authenticate {header:?}: parameter without '='"))?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("WWW-Authenticate {header:?}: unterminated quote"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(Challenge {
        scheme: scheme.to_owned(),
        params,
    })
}

/// The repository a `/v2/<name>/<kind>/…` URL addresses (empty for `/v2/` and the
/// catalog). The last route keyword wins, since names may contain `manifests` or `blobs`.
fn repository_of(url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("/v2/") else {
        return String::new();
    };
    ["/blobs/", "/manifests/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|kw| rest.rfind(kw))
        .max()
        .map(|at| rest[..at].to_owned())
        .unwrap_or_default()
}

/// Parses an HTTP/1.1 response read to connection close (Content-Length bodies only).
fn parse_raw(bytes: &[u8], url: &str) -> Result<Response, String> {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete response head in {} bytes", bytes.len()))?;
    let head = String::from_utf8_lossy(&bytes[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) {
                headers.append(n, v);
            }
        }
    }
    let mut body = &bytes[split + 4..];
    if let Some(len) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        body = &body[..len.min(body.len())];
    }
    Ok(Response {
        status,
        headers,
        body: Bytes::copy_from_slice(body),
        url: url.to_owned(),
    })
}

/// A request under construction; see [`Request::new`].
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Path (`/v2/...`) or absolute URL.
    pub path: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body, if any.
    pub body: Option<Bytes>,
    /// operationId whose responses the reply is validated against.
    pub operation: Option<&'static str>,
}

impl Request {
    /// A request without headers or body, validated against no operation.
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            operation: None,
        }
    }

    /// Validates the response against this operation of `spec/openapi.yaml`.
    pub fn op(mut self, operation_id: &'static str) -> Request {
        self.operation = Some(operation_id);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = Some(body.into());
        self
    }
}

fn header_pairs(headers: &HeaderMap, mask_auth: bool) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = if mask_auth && name == reqwest::header::AUTHORIZATION {
                "<redacted>".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), text)
        })
        .collect()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// Standard base64 (RFC 4648) for Basic credentials; too small to justify a crate.
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_encode_as_rfc4648() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn relative_location_resolves_against_base() {
        let http = Http::new("http://r.test/", Auth::None, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            http.url("/v2/a/blobs/uploads/x"),
            "http://r.test/v2/a/blobs/uploads/x"
        );
        assert_eq!(http.url("https://s3.test/x"), "https://s3.test/x");
    }

    /// One listener playing registry and realm: `/token` issues `tok-<n>` for valid Basic
    /// credentials; everything else wants `Bearer tok-…` and challenges otherwise.
    async fn fake_token_registry() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let base = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (realm, counter) = (format!("{base}/token"), issued.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 2048];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                let (status, extra, body) = if head
                    .starts_with("get /token?service=reg&scope=repository%3aa%2fb%3apull ")
                {
                    if head.contains(&format!(
                        "authorization: basic {}",
                        base64_encode(b"u:p").to_ascii_lowercase()
                    )) {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        (
                            200,
                            String::new(),
                            format!(r#"{{"token":"tok-{n}","expires_in":300}}"#),
                        )
                    } else {
                        (401, String::new(), "{}".to_owned())
                    }
                } else if head.contains("authorization: bearer tok-") {
                    (200, String::new(), "{}".to_owned())
                } else {
                    let challenge = format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"reg\",scope=\"repository:a/b:pull\"\r\n");
                    (401, challenge, "{}".to_owned())
                };
                let reply = format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        (base, issued)
    }

    #[tokio::test]
    async fn bearer_challenge_fetches_a_token_retries_once_and_caches_it() {
        let (base, issued) = fake_token_registry().await;
        let auth = Auth::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let http = Http::new(&base, auth, false).unwrap_or_else(|e| panic!("{e}"));
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let first = http
            .send(Request::new(Method::GET, "/v2/a/b/tags/list"), &transcript)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(first.status, 200);
        let statuses = |t: &Arc<Mutex<Vec<Exchange>>>| -> Vec<Option<u16>> {
            t.lock()
                .map(|t| t.iter().map(|e| e.status).collect())
                .unwrap_or_default()
        };
        // challenged, token from the realm, retried
        assert_eq!(statuses(&transcript), [Some(401), Some(200), Some(200)]);
        let second = http
            .send(
                Request::new(Method::GET, "/v2/a/b/manifests/x"),
                &transcript,
            )
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(second.status, 200);
        assert_eq!(
            statuses(&transcript).len(),
            4,
            "the cached token went first"
        );
        assert_eq!(issued.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn bearer_challenge_with_refused_credentials_returns_the_401() {
        let (base, issued) = fake_token_registry().await;
        let auth = Auth::Basic {
            username: "u".into(),
            password: "wrong".into(),
        };
        let http = Http::new(&base, auth, false).unwrap_or_else(|e| panic!("{e}"));
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let resp = http
            .send(Request::new(Method::GET, "/v2/a/b/tags/list"), &transcript)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resp.status, 401);
        assert_eq!(transcript.lock().map(|t| t.len()).unwrap_or_default(), 2);
        assert_eq!(issued.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn repository_is_taken_before_the_last_route_keyword() {
        assert_eq!(
            repository_of("http://r.test/v2/a/b/manifests/latest"),
            "a/b"
        );
        assert_eq!(
            repository_of("http://r.test/v2/ns/manifests/x/blobs/uploads/u?digest=1"),
            "ns/manifests/x"
        );
        assert_eq!(repository_of("/v2/x/tags/list?n=1"), "x");
        assert_eq!(repository_of("http://r.test/v2/"), "");
        assert_eq!(repository_of("http://r.test/v2/_catalog"), "");
    }

    #[test]
    fn bearer_challenge_keeps_commas_inside_quotes() {
        let c = parse_challenge(
            r#"Bearer realm="https://a.test/token",service="reg",scope="repository:x/y:pull,push""#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.params["realm"], "https://a.test/token");
        assert_eq!(c.params["scope"], "repository:x/y:pull,push");
        assert_eq!(c.params["service"], "reg");
        assert!(parse_challenge(r#"Basic realm="oops"#).is_err());
    }
}
