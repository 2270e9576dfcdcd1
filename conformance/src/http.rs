//! Raw HTTP for checks, recording every exchange.
//!
//! Checks need to send malformed requests, so this is a thin layer over reqwest rather than
//! the typed client. Each exchange lands in the check's transcript (with bodies truncated)
//! so a failure report shows exactly what was sent and received, and each response to a
//! request tagged with an operationId is validated against `spec/openapi.yaml`.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    auth: Auth,
}

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

    /// Sends `req`, recording the exchange in `transcript`.
    pub async fn send(
        &self,
        req: Request,
        transcript: &Arc<Mutex<Vec<Exchange>>>,
    ) -> Result<Response, Outcome> {
        let url = self.url(&req.path);
        let mut headers = HeaderMap::new();
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let token = base64_encode(format!("{username}:{password}").as_bytes());
                if let Ok(v) = HeaderValue::from_str(&format!("Basic {token}")) {
                    headers.insert(reqwest::header::AUTHORIZATION, v);
                }
            }
            Auth::Bearer(token) => {
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    headers.insert(reqwest::header::AUTHORIZATION, v);
                }
            }
        }
        for (name, value) in &req.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| fail(format!("bad request header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| fail(format!("bad request header value {value:?}: {e}")))?;
            headers.append(name, value);
        }
        let body = req.body.clone().unwrap_or_default();
        let mut exchange = Exchange {
            operation: req.operation.map(str::to_owned),
            method: req.method.to_string(),
            url: url.clone(),
            request_headers: header_pairs(&headers, true),
            request_body_len: body.len(),
            request_body: preview(&body, BODY_PREVIEW_BYTES),
            status: None,
            response_headers: Vec::new(),
            response_body_len: 0,
            response_body: String::new(),
            error: None,
            violations: Vec::new(),
        };
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
        if let Ok(mut t) = transcript.lock() {
            t.push(exchange);
        }
        outcome
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
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = self.url(&req.path);
        let Some(rest) = url.strip_prefix("http://") else {
            return self.send(req, transcript).await;
        };
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
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let token = base64_encode(format!("{username}:{password}").as_bytes());
                head.push_str(&format!("Authorization: Basic {token}\r\n"));
                request_headers.push(("authorization".into(), "<redacted>".into()));
            }
            Auth::Bearer(token) => {
                head.push_str(&format!("Authorization: Bearer {token}\r\n"));
                request_headers.push(("authorization".into(), "<redacted>".into()));
            }
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
        if let Ok(mut t) = transcript.lock() {
            t.push(exchange);
        }
        outcome
    }
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
}
