//! What the generated client puts on the wire, and how it reads answers, checked against a
//! one-shot HTTP listener that records the raw request and replies with a canned response.

use futures::StreamExt;
use quayside_client::{types, Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A request as the listener received it.
#[derive(Debug)]
struct Captured {
    request_line: String,
    /// Lowercased names, in arrival order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// Listens on a loopback port, answers exactly one request with `response`, and returns the
/// client's base URL plus the captured request.
async fn one_shot(response: Vec<u8>) -> (String, JoinHandle<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let captured = read_request(&mut socket).await;
        socket.write_all(&response).await.expect("respond");
        socket.shutdown().await.expect("close");
        captured
    });
    (base, task)
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Captured {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.expect("read head");
        assert!(n > 0, "connection closed inside the request head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().expect("request line").to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = header("content-length") {
        let len: usize = len.parse().expect("numeric Content-Length");
        fill(socket, &mut rest, len).await;
        rest[..len].to_vec()
    } else if header("transfer-encoding").as_deref() == Some("chunked") {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                let want = rest.len() + 1;
                fill(socket, &mut rest, want).await;
            };
            let size_text = String::from_utf8(rest[..line_end].to_vec()).expect("chunk size");
            let size = usize::from_str_radix(size_text.trim(), 16).expect("hex chunk size");
            let start = line_end + 2;
            fill(socket, &mut rest, start + size + 2).await;
            body.extend_from_slice(&rest[start..start + size]);
            rest.drain(..start + size + 2);
            if size == 0 {
                break body;
            }
        }
    } else {
        Vec::new()
    };
    Captured {
        request_line,
        headers,
        body,
    }
}

/// Reads from `socket` until `rest` holds at least `want` bytes.
async fn fill(socket: &mut tokio::net::TcpStream, rest: &mut Vec<u8>, want: usize) {
    while rest.len() < want {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed inside the body");
        rest.extend_from_slice(&chunk[..n]);
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn manifest_get_sends_name_with_raw_slashes_and_only_the_headers_asked_for() {
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let (base, server) = one_shot(response(
        "200 OK",
        &[
            ("Content-Type", OCI_MANIFEST),
            ("Docker-Content-Digest", DIGEST),
        ],
        manifest,
    ))
    .await;

    let answer = Client::new(&base)
        .manifest_get()
        .name("team/project/api")
        .reference("3.21")
        .accept(OCI_MANIFEST)
        .send()
        .await
        .expect("200");
    let sent = server.await.expect("listener");

    assert_eq!(
        sent.request_line,
        "GET /v2/team/project/api/manifests/3.21 HTTP/1.1"
    );
    assert_eq!(sent.names(), ["accept", "host"], "{:?}", sent.headers);
    assert_eq!(sent.values("accept"), [OCI_MANIFEST]);

    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(answer.headers()["docker-content-digest"], DIGEST);
    let mut stream = answer.into_inner();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.expect("body chunk"));
    }
    assert_eq!(body, manifest, "the manifest arrives byte for byte");
}

#[tokio::test]
async fn monolithic_blob_push_sends_octet_stream_and_the_digest_query() {
    let blob = b"hello, layer".to_vec();
    let location = format!("/v2/library/alpine/blobs/{DIGEST}");
    let (base, server) = one_shot(response(
        "201 Created",
        &[("Location", &location), ("Docker-Content-Digest", DIGEST)],
        b"",
    ))
    .await;

    let answer = Client::new(&base)
        .upload_start()
        .name("library/alpine")
        .digest(DIGEST)
        .body(blob.clone())
        .send()
        .await
        .expect("201");
    let sent = server.await.expect("listener");

    assert_eq!(
        sent.request_line,
        format!(
            "POST /v2/library/alpine/blobs/uploads/?digest=sha256%3A{} HTTP/1.1",
            &DIGEST[7..]
        )
    );
    assert_eq!(sent.values("content-type"), ["application/octet-stream"]);
    assert_eq!(sent.values("content-length"), [blob.len().to_string()]);
    assert!(sent.values("api-version").is_empty());
    assert_eq!(sent.body, blob);
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["location"], location.as_str());
}

#[tokio::test]
async fn chunk_upload_streams_its_body_with_content_range() {
    let (base, server) = one_shot(response(
        "202 Accepted",
        &[
            ("Location", "/v2/library/alpine/blobs/uploads/abc"),
            ("Range", "0-9"),
        ],
        b"",
    ))
    .await;
    let parts: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"01234".to_vec()), Ok(b"56789".to_vec())];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(parts));

    let answer = Client::new(&base)
        .upload_chunk()
        .name("library/alpine")
        .session_id("abc")
        .content_range("0-9")
        .body(body)
        .send()
        .await
        .expect("202");
    let sent = server.await.expect("listener");

    assert_eq!(
        sent.request_line,
        "PATCH /v2/library/alpine/blobs/uploads/abc HTTP/1.1"
    );
    assert_eq!(sent.values("transfer-encoding"), ["chunked"]);
    assert_eq!(sent.values("content-type"), ["application/octet-stream"]);
    assert_eq!(sent.values("content-range"), ["0-9"]);
    assert_eq!(sent.body, b"0123456789");
    assert_eq!(answer.headers()["range"], "0-9");
}

#[tokio::test]
async fn manifest_put_sends_the_vendor_media_type_once_and_repeats_tag() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let (base, server) = one_shot(response(
        "201 Created",
        &[("OCI-Tag", "3.21"), ("OCI-Tag", "latest")],
        b"",
    ))
    .await;

    let answer = Client::new(&base)
        .manifest_put()
        .name("library/alpine")
        .reference(DIGEST)
        .tag(vec![
            types::Tag::try_from("3.21").expect("tag"),
            types::Tag::try_from("latest").expect("tag"),
        ])
        .content_type(docker)
        .body(manifest.to_vec())
        .send()
        .await
        .expect("201");
    let sent = server.await.expect("listener");

    assert_eq!(
        sent.request_line,
        format!(
            "PUT /v2/library/alpine/manifests/sha256:{}?tag=3.21&tag=latest HTTP/1.1",
            &DIGEST[7..]
        )
    );
    assert_eq!(sent.values("content-type"), [docker]);
    assert_eq!(sent.body, manifest);
    let tags: Vec<_> = answer.headers().get_all("oci-tag").iter().collect();
    assert_eq!(tags, ["3.21", "latest"]);
}

#[tokio::test]
async fn error_envelope_with_an_unknown_code_is_a_typed_error() {
    let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"tag":"3.22"}},{"code":"FROM_A_NEWER_SPEC"}]}"#;
    let (base, server) = one_shot(response(
        "404 Not Found",
        &[("Content-Type", "application/json")],
        body,
    ))
    .await;

    let Err(err) = Client::new(&base)
        .manifest_get()
        .name("library/alpine")
        .reference("3.22")
        .send()
        .await
    else {
        panic!("a 404 is an error");
    };
    let sent = server.await.expect("listener");
    // reqwest's default: the registry then serves the manifest as stored
    assert_eq!(sent.values("accept"), ["*/*"]);

    let Error::ErrorResponse(envelope) = err else {
        panic!("expected the error envelope, got {err:?}");
    };
    assert_eq!(envelope.status(), 404);
    let codes: Vec<&str> = envelope.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["MANIFEST_UNKNOWN", "FROM_A_NEWER_SPEC"]);
    assert_eq!(
        envelope.errors[0].detail,
        Some(serde_json::json!({"tag": "3.22"}))
    );
}

#[tokio::test]
async fn body_less_error_keeps_its_status() {
    let (base, server) = one_shot(response("404 Not Found", &[], b"404 page not found")).await;

    let err = Client::new(&base).v2_check().send().await.expect_err("404");
    server.await.expect("listener");

    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if r.status() == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_name_is_refused_before_anything_is_sent() {
    // nothing listens on port 9 of the loopback: a request that went out would fail to connect
    let err = Client::new("http://127.0.0.1:9")
        .tag_list()
        .name("Library/Alpine")
        .send()
        .await
        .expect_err("uppercase is not in the name grammar");
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
}

#[tokio::test]
async fn referrers_index_is_read_as_typed_json_despite_its_vendor_type() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{DIGEST}","size":812,"artifactType":"application/spdx+json"}}]}}"#
    );
    let (base, server) = one_shot(response(
        "200 OK",
        &[
            ("Content-Type", "application/vnd.oci.image.index.v1+json"),
            ("OCI-Filters-Applied", "artifactType"),
        ],
        body.as_bytes(),
    ))
    .await;

    let answer = Client::new(&base)
        .referrer_list()
        .name("library/alpine")
        .digest(DIGEST)
        .artifact_type("application/spdx+json")
        .send()
        .await
        .expect("200");
    let sent = server.await.expect("listener");

    assert_eq!(
        sent.request_line,
        format!(
            "GET /v2/library/alpine/referrers/sha256:{}?artifactType=application%2Fspdx%2Bjson HTTP/1.1",
            &DIGEST[7..]
        )
    );
    assert_eq!(answer.headers()["oci-filters-applied"], "artifactType");
    let index = answer.into_inner();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].size.0, 812);
    assert_eq!(index.manifests[0].digest.as_str(), DIGEST);
}
