//! What the generated server code needs at run time and does not depend on the spec: the
//! OCI error envelope, request metadata, streaming bodies, parameter checks and the
//! right-to-left path matcher that the generated route table drives. The generated files
//! import it as `crate::http::runtime`.

use bytes::{Bytes, BytesMut};
use dropshot::Body;
use futures::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use percent_encoding::percent_decode_str;
use regex::Regex;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// Sent on every response: Docker clients check it before talking V2.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
/// The value of [`API_VERSION_HEADER`].
pub const API_VERSION: &str = "registry/2.0";
/// The largest collected (non-streaming) request body accepted unless the implementation
/// says otherwise; the OCI spec requires manifests of 4 MiB to be accepted.
pub const DEFAULT_MAX_BUFFERED_BODY: usize = 4 * 1024 * 1024;

/// The error codes of the OCI distribution spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        Self::BlobUnknown,
        Self::BlobUploadInvalid,
        Self::BlobUploadUnknown,
        Self::DigestInvalid,
        Self::ManifestBlobUnknown,
        Self::ManifestInvalid,
        Self::ManifestUnknown,
        Self::NameInvalid,
        Self::NameUnknown,
        Self::SizeInvalid,
        Self::Unauthorized,
        Self::Denied,
        Self::Unsupported,
        Self::TooManyRequests,
    ];

    /// The code as it appears in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
        }
    }

    /// The code named `text`, if it is one of the fourteen.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: rendered as `{"errors":[{"code","message","detail"}]}` with the given
/// status and extra headers (`WWW-Authenticate` on 401, `Allow` on 405, `Range` on 416).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// Detail and headers, boxed: most errors have neither and `Result`s stay small.
    extra: Option<Box<ErrorExtra>>,
}

#[derive(Debug, Clone, Default)]
struct ErrorExtra {
    detail: Option<serde_json::Value>,
    headers: HeaderMap,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// Attaches structured detail (e.g. which digest, what was expected).
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.extra.get_or_insert_default().detail = Some(detail);
        self
    }

    /// Adds a response header; a value that is not a valid header is dropped, since an error
    /// answer must still go out.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.extra
                .get_or_insert_default()
                .headers
                .append(name, value);
        }
        self
    }

    /// The detail, if any.
    pub fn detail(&self) -> Option<&serde_json::Value> {
        self.extra.as_ref().and_then(|extra| extra.detail.as_ref())
    }

    /// The extra headers, if any.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.extra.as_ref().map(|extra| &extra.headers)
    }

    /// For failures inside the server that the client cannot fix.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unsupported,
            message,
        )
    }

    /// The envelope as JSON.
    pub fn envelope(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
        });
        if let Some(detail) = self.detail() {
            error["detail"] = detail.clone();
        }
        serde_json::json!({ "errors": [error] })
    }

    /// The complete HTTP answer.
    pub fn into_response(self) -> Response<Body> {
        let body = self.envelope().to_string();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(extra) = self.extra {
            headers.extend(extra.headers);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// What an implementation may need beyond the typed parameters: raw headers (for auth and
/// `Accept`), the raw URI (for building `Location` and `Link`) and the peer.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub method: Method,
    pub uri: http::Uri,
    pub headers: HeaderMap,
    pub remote_addr: Option<SocketAddr>,
}

impl RequestMeta {
    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header as a parameter value: present-but-not-ASCII is kept (lossily decoded) so
    /// the parameter's checks reject it, rather than treating it as absent.
    pub fn header_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A request body read chunk by chunk as it arrives, never buffered whole.
pub struct RequestBody {
    stream: ByteStream,
}

impl RequestBody {
    /// Wraps the body of an incoming request.
    pub fn from_http(body: Body) -> Self {
        let stream = TryStreamExt::map_err(BodyStream::new(body), |err| {
            std::io::Error::other(err.to_string())
        })
        .try_filter_map(|frame| futures::future::ready(Ok(frame.into_data().ok())));
        Self::from_stream(stream)
    }

    /// Any stream of chunks (for tests and in-process callers).
    pub fn from_stream(
        stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    ) -> Self {
        Self {
            stream: Box::pin(stream),
        }
    }

    /// A body that is already in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::from_stream(futures::stream::iter(
            (!bytes.is_empty()).then_some(Ok(bytes)),
        ))
    }

    /// Collects at most `limit` bytes; more is a 413, since a caller that needs a bounded
    /// body (a manifest) must not be made to hold an unbounded one.
    pub async fn collect_limited(mut self, limit: usize) -> Result<Bytes, ApiError> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.stream.next().await {
            let chunk = chunk.map_err(|err| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::SizeInvalid,
                    format!("reading the request body failed: {err}"),
                )
            })?;
            if out.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestBody(..)")
    }
}

impl Stream for RequestBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::SizeInvalid,
        format!("the request body is larger than this registry accepts ({limit} bytes)"),
    )
    .with_detail(serde_json::json!({ "limit": limit }))
}

/// Refuses a body whose declared `Content-Length` is already over `limit`, before reading it.
pub fn check_declared_length(meta: &RequestMeta, limit: usize) -> Result<(), ApiError> {
    let declared = meta
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// A response body: nothing, bytes served exactly as given, or a stream.
pub enum ResponseBody {
    Empty,
    Bytes(Bytes),
    /// `SyncStream` because dropshot's body must be `Sync`; the stream itself need only be
    /// `Send` (it is only ever polled through `&mut`).
    Stream(sync_wrapper::SyncStream<ByteStream>),
}

impl ResponseBody {
    /// Streams chunks to the client as they are produced.
    pub fn stream(stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static) -> Self {
        Self::Stream(sync_wrapper::SyncStream::new(Box::pin(stream)))
    }

    /// Serialises `value` as JSON.
    pub fn json<T: serde::Serialize>(value: &T) -> Result<Self, ApiError> {
        serde_json::to_vec(value)
            .map(|bytes| Self::Bytes(bytes.into()))
            .map_err(|err| ApiError::internal(format!("serialising a response failed: {err}")))
    }

    fn into_body(self) -> (Body, Option<usize>) {
        match self {
            Self::Empty => (Body::empty(), None),
            Self::Bytes(bytes) => {
                let len = bytes.len();
                (Body::from(bytes), Some(len))
            }
            Self::Stream(stream) => (
                Body::wrap(StreamBody::new(stream.map_ok(http_body::Frame::data))),
                None,
            ),
        }
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// Builds a success response; header values are checked here so an implementation bug
/// becomes a 500 in the envelope, not a panic.
pub struct ResponseBuilder {
    status: StatusCode,
    headers: HeaderMap,
    error: Option<String>,
}

impl ResponseBuilder {
    pub fn new(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            error: None,
        }
    }

    /// Sets `name` to `value` (appends when the header repeats).
    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        let text = value.to_string();
        match HeaderValue::from_str(&text) {
            Ok(value) => {
                self.headers.append(HeaderName::from_static(name), value);
            }
            Err(_) => {
                self.error = Some(format!(
                    "invalid value for response header {name}: {text:?}"
                ))
            }
        }
        self
    }

    /// Sets `name` when `value` is present.
    pub fn header_opt(self, name: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.header(name, value),
            None => self,
        }
    }

    /// Finishes with `body`; a byte body sets its exact `Content-Length`.
    pub fn body(
        self,
        content_type: Option<&str>,
        body: ResponseBody,
    ) -> Result<Response<Body>, ApiError> {
        if let Some(error) = self.error {
            return Err(ApiError::internal(error));
        }
        let (body, len) = body.into_body();
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        if let Some(content_type) = content_type {
            let value = HeaderValue::from_str(content_type).map_err(|_| {
                ApiError::internal(format!("invalid response content type {content_type:?}"))
            })?;
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, value);
        }
        if let Some(len) = len {
            response
                .headers_mut()
                .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        Ok(response)
    }
}

/// The checks the spec declares for one parameter, and what breaking them answers.
pub struct ParamRule {
    pub name: &'static str,
    pub pattern: Option<&'static str>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    pub allowed: &'static [&'static str],
    pub status: u16,
    pub code: ErrorCode,
    /// The code for a digest-shaped bad value (a manifest reference meant as a digest).
    pub digest_code: Option<ErrorCode>,
    pub compiled: OnceLock<Option<Regex>>,
}

impl ParamRule {
    fn reject(&self, value: Option<&str>, why: String) -> ApiError {
        let code = match (self.digest_code, value) {
            (Some(code), Some(value)) if value.contains(':') => code,
            _ => self.code,
        };
        ApiError::new(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            why,
        )
        .with_detail(serde_json::json!({ "parameter": self.name }))
    }

    /// Whether `value` satisfies the text checks (pattern, length, enum).
    pub fn accepts(&self, value: &str) -> bool {
        let len = value.chars().count();
        if self.min_length.is_some_and(|min| len < min)
            || self.max_length.is_some_and(|max| len > max)
        {
            return false;
        }
        if !self.allowed.is_empty() && !self.allowed.contains(&value) {
            return false;
        }
        match self.pattern {
            None => true,
            Some(pattern) => self
                .compiled
                .get_or_init(|| Regex::new(pattern).ok())
                .as_ref()
                .is_some_and(|re| re.is_match(value)),
        }
    }

    /// `value` as text, checked.
    pub fn text(&self, value: &str) -> Result<String, ApiError> {
        if self.accepts(value) {
            Ok(value.to_string())
        } else {
            Err(self.reject(Some(value), format!("invalid {}: {value:?}", self.name)))
        }
    }

    /// `value` checked, then parsed into a grammar type (which may be stricter than the
    /// spec's pattern, e.g. a sha256 digest's length); its error message is passed on.
    pub fn parse<T>(&self, value: &str) -> Result<T, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.text(value)?;
        text.parse::<T>()
            .map_err(|err| self.reject(Some(value), format!("invalid {}: {err}", self.name)))
    }

    /// `value` as an integer within the declared bounds.
    pub fn integer<T: TryFrom<i64>>(&self, value: &str) -> Result<T, ApiError> {
        let number = value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| self.minimum.is_none_or(|min| *n >= min))
            .filter(|n| self.maximum.is_none_or(|max| *n <= max));
        number.and_then(|n| T::try_from(n).ok()).ok_or_else(|| {
            self.reject(
                None,
                format!(
                    "invalid {}: expected an integer in range, got {value:?}",
                    self.name
                ),
            )
        })
    }

    /// `value` as `true` or `false`.
    pub fn boolean(&self, value: &str) -> Result<bool, ApiError> {
        value.parse::<bool>().map_err(|_| {
            self.reject(
                None,
                format!(
                    "invalid {}: expected true or false, got {value:?}",
                    self.name
                ),
            )
        })
    }

    /// The error for a required parameter that is absent.
    pub fn missing(&self) -> ApiError {
        self.reject(None, format!("missing required parameter {}", self.name))
    }
}

/// The query string as decoded pairs in order. `+` stays `+` (digests may contain it);
/// pairs that are not valid UTF-8 after decoding are dropped.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode_str(key).decode_utf8().ok()?;
            let value = percent_decode_str(value).decode_utf8().ok()?;
            Some((key.into_owned(), value.into_owned()))
        })
        .collect()
}

/// The first value of query parameter `name`.
pub fn query_first<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of query parameter `name`, in order.
pub fn query_all<'a>(query: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Checks the request's `Content-Type` against the declared media types (`*/*` and
/// `type/*` match families; parameters such as `charset` are ignored) and returns the media
/// type without parameters. An absent `Content-Type` is accepted (the implementation decides
/// from the bytes), and so is any type on a body declared empty (`Content-Length: 0`), since
/// some clients label an empty POST as a form.
pub fn check_content_type(
    meta: &RequestMeta,
    declared: &[&str],
) -> Result<Option<String>, ApiError> {
    let Some(raw) = meta.headers.get(http::header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or_default();
    let media_type = text.split(';').next().unwrap_or_default().trim();
    let essence = media_type.to_ascii_lowercase();
    let matches = |declared: &&str| {
        let declared = declared.to_ascii_lowercase();
        declared == "*/*"
            || declared == essence
            || declared
                .strip_suffix("/*")
                .is_some_and(|family| essence.split('/').next() == Some(family))
    };
    let empty = meta.header("content-length").map(str::trim) == Some("0");
    if declared.iter().any(matches) || empty {
        Ok(Some(media_type.to_string()))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unsupported,
            format!(
                "unsupported Content-Type {text:?}; expected one of: {}",
                declared.join(", ")
            ),
        ))
    }
}

/// One component of a path template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Literal text.
    Lit(&'static str),
    /// A variable filling exactly one non-empty segment.
    Var(&'static str),
    /// A variable spanning one or more segments (a repository name).
    Multi(&'static str),
}

/// A path template of the spec and the operations on it, by method.
pub struct RouteTemplate<Op: 'static> {
    pub path: &'static str,
    pub segments: &'static [Segment],
    pub methods: &'static [(&'static str, Op)],
}

/// A matched path: the template and its variables (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch<Op: 'static> {
    pub template: &'static str,
    pub methods: &'static [(&'static str, Op)],
    pub vars: Vec<(&'static str, String)>,
}

/// Why a request matched no operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No template has this shape.
    NotFound,
    /// A template fits but no split of the path yields a valid repository name.
    NameInvalid(String),
    /// A segment is not valid (a percent-encoded `/`, or not UTF-8 once decoded).
    BadSegment(String),
    /// The path exists but not for this method; `allow` lists the ones it has.
    MethodNotAllowed { allow: Vec<&'static str> },
}

impl RouteError {
    /// The answer in the OCI envelope.
    pub fn into_api_error(self) -> ApiError {
        match self {
            Self::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::Unsupported,
                "no registry API endpoint has this path",
            ),
            Self::NameInvalid(name) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::NameInvalid,
                format!("invalid repository name {name:?}"),
            )
            .with_detail(serde_json::json!({ "name": name })),
            Self::BadSegment(segment) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::NameInvalid,
                format!("invalid path segment {segment:?}: send `/` in names unencoded"),
            ),
            Self::MethodNotAllowed { allow } => {
                let allow = allow.join(", ");
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorCode::Unsupported,
                    format!("method not allowed here; allowed: {allow}"),
                )
                .with_header(http::header::ALLOW, &allow)
            }
        }
    }
}

/// Splits a raw (still percent-encoded) path into decoded segments, refusing any segment
/// that decodes to something containing `/`: the name's slashes must be real ones, or
/// `a%2Fb` and `a/b` would be two spellings of one repository.
fn decode_segments(raw_path: &str) -> Result<Vec<String>, RouteError> {
    raw_path
        .split('/')
        .map(|segment| {
            let decoded = percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| RouteError::BadSegment(segment.to_string()))?;
            if decoded.contains('/') {
                return Err(RouteError::BadSegment(segment.to_string()));
            }
            Ok(decoded.into_owned())
        })
        .collect()
}

/// Matches `raw_path` against `templates`, in order, from the right: the fixed tail of a
/// template (`blobs/{digest}`) is matched against the last segments and whatever precedes
/// it is the multi-segment name, so names may contain `blobs`, `manifests` and the like.
/// The first template whose name passes `name_ok` wins.
pub fn match_path<Op: Copy + 'static>(
    templates: &'static [RouteTemplate<Op>],
    raw_path: &str,
    name_ok: impl Fn(&str) -> bool,
) -> Result<PathMatch<Op>, RouteError> {
    let segments = decode_segments(raw_path)?;
    let mut bad_name = None;
    for template in templates {
        let Some(vars) = match_template(template.segments, &segments) else {
            continue;
        };
        let multi = template.segments.iter().find_map(|s| match s {
            Segment::Multi(name) => Some(*name),
            _ => None,
        });
        if let Some(multi) = multi {
            let value = vars
                .iter()
                .find(|(k, _)| *k == multi)
                .map(|(_, v)| v.as_str());
            if !value.is_some_and(&name_ok) {
                bad_name.get_or_insert_with(|| value.unwrap_or_default().to_string());
                continue;
            }
        }
        return Ok(PathMatch {
            template: template.path,
            methods: template.methods,
            vars,
        });
    }
    Err(bad_name.map_or(RouteError::NotFound, RouteError::NameInvalid))
}

fn match_template(template: &[Segment], path: &[String]) -> Option<Vec<(&'static str, String)>> {
    let mut vars = Vec::new();
    let Some(at) = template.iter().position(|s| matches!(s, Segment::Multi(_))) else {
        let fits = template.len() == path.len()
            && template
                .iter()
                .zip(path)
                .all(|(s, v)| match_segment(s, v, &mut vars));
        return fits.then_some(vars);
    };
    let (head, tail) = (&template[..at], &template[at + 1..]);
    if path.len() < head.len() + tail.len() + 1 {
        return None;
    }
    let name_end = path.len() - tail.len();
    if !head
        .iter()
        .zip(path)
        .all(|(s, v)| match_segment(s, v, &mut vars))
    {
        return None;
    }
    if let Segment::Multi(name) = template[at] {
        vars.push((name, path[at..name_end].join("/")));
    }
    tail.iter()
        .zip(&path[name_end..])
        .all(|(s, v)| match_segment(s, v, &mut vars))
        .then_some(vars)
}

/// Whether one path segment fits one template segment; records variables.
fn match_segment(segment: &Segment, value: &str, vars: &mut Vec<(&'static str, String)>) -> bool {
    match segment {
        Segment::Lit(text) => *text == value,
        Segment::Var(name) => {
            vars.push((name, value.to_string()));
            !value.is_empty()
        }
        Segment::Multi(_) => false,
    }
}

/// Picks the operation for `method` on a matched path, or a 405 listing the allowed ones.
///
/// A `HEAD` where the spec has only a `GET` runs the `GET`: HTTP defines `HEAD` as `GET`
/// without the content (RFC 9110, 9.3.2), every general-purpose server must support it,
/// and hyper sends a `HEAD`'s answer without its body. So `HEAD /v2/` answers as
/// `GET /v2/` does, which clients and health checks use to probe a registry.
pub fn pick_method<Op: Copy + 'static>(
    matched: &PathMatch<Op>,
    method: &Method,
) -> Result<Op, RouteError> {
    let find = |wanted: &str| {
        matched
            .methods
            .iter()
            .find(|(m, _)| *m == wanted)
            .map(|(_, op)| *op)
    };
    let mut picked = find(method.as_str());
    if picked.is_none() && method == Method::HEAD {
        picked = find("GET");
    }
    picked.ok_or_else(|| {
        let mut allow: Vec<&'static str> = matched.methods.iter().map(|(m, _)| *m).collect();
        if allow.contains(&"GET") && !allow.contains(&"HEAD") {
            allow.push("HEAD");
        }
        RouteError::MethodNotAllowed { allow }
    })
}

/// Adds the headers every answer carries.
pub fn finish(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(
        HeaderName::from_static(API_VERSION_HEADER),
        HeaderValue::from_static(API_VERSION),
    );
    response
}

/// Reads a whole response body (for in-process tests of the dispatcher).
pub async fn read_body(body: Body) -> std::io::Result<Bytes> {
    body.collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|err| std::io::Error::other(err.to_string()))
}
