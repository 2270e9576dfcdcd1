//! A registry double for the transfer edge cases: it keeps upload state in the Location's
//! query (as Distribution does), demands a minimum chunk size, drops the connection after
//! storing the second chunk, and cuts the first blob download in half.

use std::sync::Arc;
use tokio::sync::Mutex;

use bytes::Bytes;
use quayside_client::sdk::registry::{BlobSource, Registry};
use quayside_spec::grammar::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIN_CHUNK: usize = 10 * 1024 * 1024;

#[derive(Default)]
struct State {
    upload: Vec<u8>,
    committed: Option<(String, Vec<u8>)>,
    patch_sizes: Vec<usize>,
    patches: usize,
    status_queries: usize,
    /// Every upload request (PATCH, PUT, status GET) carried the `_state` query.
    state_kept: bool,
    downloads: usize,
    ranges: Vec<String>,
    mounts: Vec<String>,
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

async fn respond(sock: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
    let _ = sock.shutdown().await;
}

async fn handle(mut sock: TcpStream, state: Arc<Mutex<State>>) {
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    let path = req.target.split('?').next().unwrap_or_default().to_owned();
    let location = |n: usize| ("Location", format!("/v2/r/blobs/uploads/u1?_state=s{n}"));
    if path.starts_with("/v2/r/blobs/uploads/u1") {
        let mut st = state.lock().await;
        st.state_kept &= req.target.contains("_state=");
        match req.method.as_str() {
            "PATCH" => {
                st.patches += 1;
                st.patch_sizes.push(req.body.len());
                st.upload.extend_from_slice(&req.body);
                if st.patches == 2 {
                    // Stored, but the answer never arrives.
                    drop(st);
                    drop(sock);
                    return;
                }
                let end = st.upload.len();
                drop(st);
                respond(
                    &mut sock,
                    "202 Accepted",
                    &[location(end), ("Range", format!("0-{}", end - 1))],
                    b"",
                )
                .await;
            }
            "GET" => {
                st.status_queries += 1;
                let end = st.upload.len();
                drop(st);
                respond(
                    &mut sock,
                    "204 No Content",
                    &[
                        location(end),
                        ("Range", format!("0-{}", end.saturating_sub(1))),
                    ],
                    b"",
                )
                .await;
            }
            "PUT" => {
                st.upload.extend_from_slice(&req.body);
                let digest = req
                    .target
                    .split("digest=")
                    .nth(1)
                    .unwrap_or_default()
                    .replace("%3A", ":");
                let data = std::mem::take(&mut st.upload);
                let ok = Digest::of(&data).to_string() == digest;
                st.committed = Some((digest, data));
                drop(st);
                let status = if ok { "201 Created" } else { "400 Bad Request" };
                respond(&mut sock, status, &[], b"").await;
            }
            _ => respond(&mut sock, "405 Method Not Allowed", &[], b"").await,
        }
    } else if path == "/v2/r/blobs/uploads/"
        && req.method == "POST"
        && req.target.contains("mount=")
    {
        state.lock().await.mounts.push(req.target.clone());
        respond(&mut sock, "201 Created", &[location(0)], b"").await;
    } else if path == "/v2/r/blobs/uploads/" && req.method == "POST" {
        respond(
            &mut sock,
            "202 Accepted",
            &[location(0), ("OCI-Chunk-Min-Length", MIN_CHUNK.to_string())],
            b"",
        )
        .await;
    } else if let Some(d) = path.strip_prefix("/v2/r/blobs/") {
        let mut st = state.lock().await;
        let Some((digest, data)) = st.committed.clone().filter(|(c, _)| c == d) else {
            drop(st);
            return respond(&mut sock, "404 Not Found", &[], b"").await;
        };
        if req.method == "HEAD" {
            drop(st);
            let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\n\r\n", data.len());
            let _ = sock.write_all(head.as_bytes()).await;
            return;
        }
        st.downloads += 1;
        let range = req
            .headers
            .iter()
            .find(|(k, _)| k == "range")
            .map(|(_, v)| v.clone());
        if let Some(r) = &range {
            st.ranges.push(r.clone());
        }
        let first = st.downloads == 1;
        drop(st);
        match range.and_then(|r| {
            r.strip_prefix("bytes=")?
                .trim_end_matches('-')
                .parse::<usize>()
                .ok()
        }) {
            Some(from) => {
                let cr = format!("bytes {from}-{}/{}", data.len() - 1, data.len());
                respond(
                    &mut sock,
                    "206 Partial Content",
                    &[("Content-Range", cr)],
                    &data[from..],
                )
                .await;
            }
            None if first => {
                // Promise everything, send half, hang up.
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", data.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&data[..data.len() / 2]).await;
                let _ = sock.flush().await;
            }
            None => respond(&mut sock, "200 OK", &[], &data).await,
        }
    } else if path == "/v2/r/tags/list" || path == "/v2/_catalog" {
        // Two pages: the first links to the second with a relative URL.
        let key = if path == "/v2/_catalog" {
            "repositories"
        } else {
            "tags"
        };
        let (items, link) = if req.target.contains("last=") {
            (vec!["c"], None)
        } else {
            (
                vec!["a", "b"],
                Some(format!("<{path}?n=2&last=b>; rel=\"next\"")),
            )
        };
        let body = serde_json::json!({ key: items }).to_string();
        let headers: Vec<(&str, String)> = link.into_iter().map(|l| ("Link", l)).collect();
        respond(&mut sock, "200 OK", &headers, body.as_bytes()).await;
    } else {
        respond(&mut sock, "200 OK", &[], b"{}").await;
    }
}

async fn flaky_registry() -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let state = Arc::new(Mutex::new(State {
        state_kept: true,
        ..State::default()
    }));
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(handle(sock, shared.clone()));
        }
    });
    (host, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_push_honours_min_chunk_keeps_location_query_and_resumes_after_a_drop() {
    let (host, state) = flaky_registry().await;
    let registry = Registry::new(&host, true, None).unwrap();
    let blob: Vec<u8> = (0..25 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let digest = Digest::of(&blob);
    let size = blob.len() as u64;
    let sent = registry
        .push_blob(
            "r",
            &digest,
            size,
            BlobSource::Bytes(Bytes::from(blob.clone())),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(sent);
    let st = state.lock().await;
    assert_eq!(st.patch_sizes, [MIN_CHUNK, MIN_CHUNK, 5 * 1024 * 1024]);
    assert_eq!(
        st.status_queries, 1,
        "the drop was answered by one upload-status query"
    );
    assert!(
        st.state_kept,
        "every upload request followed the Location with its query"
    );
    let (committed_digest, data) = st.committed.clone().unwrap();
    assert_eq!(committed_digest, digest.to_string());
    assert!(data == blob, "no chunk was sent twice or lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_resumes_with_range_after_the_connection_drops_mid_body() {
    let (host, state) = flaky_registry().await;
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    let digest = Digest::of(&blob);
    state.lock().await.committed = Some((digest.to_string(), blob.clone()));
    let registry = Registry::new(&host, true, None).unwrap();
    let got = registry
        .get_blob("r", &digest, Some(blob.len() as u64))
        .await
        .unwrap();
    assert!(got == blob);
    let st = state.lock().await;
    assert_eq!(st.downloads, 2);
    assert_eq!(st.ranges.len(), 1);
    assert!(
        st.ranges[0].starts_with("bytes=") && st.ranges[0] != "bytes=0-",
        "{:?}",
        st.ranges
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_catalog_follow_link_pagination_to_the_end() {
    let (host, _state) = flaky_registry().await;
    let home = tempfile::tempdir().unwrap();
    let out = crate::dist(home.path(), &["tags", &format!("{host}/r"), "--plain-http"]).await;
    crate::assert_ok(&out);
    assert_eq!(crate::stdout(&out), "a\nb\nc\n");
    let out = crate::dist(
        home.path(),
        &["catalog", &host, "--plain-http", "--output", "json"],
    )
    .await;
    crate::assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&crate::stdout(&out)).unwrap();
    assert_eq!(json, serde_json::json!({"repositories": ["a", "b", "c"]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_present_in_another_repository_is_mounted_not_uploaded() {
    let (host, state) = flaky_registry().await;
    let registry = Registry::new(&host, true, None).unwrap();
    let blob = Bytes::from_static(b"shared base layer");
    let digest = Digest::of(&blob);
    let sent = registry
        .push_blob(
            "r",
            &digest,
            blob.len() as u64,
            BlobSource::Bytes(blob),
            Some("base/img"),
            None,
        )
        .await
        .unwrap();
    assert!(!sent, "a mount sends no bytes");
    let st = state.lock().await;
    assert_eq!(st.mounts.len(), 1);
    assert!(
        st.mounts[0].contains(&format!("mount={}", digest.as_str().replace(':', "%3A"))),
        "{:?}",
        st.mounts
    );
    assert!(st.mounts[0].contains("from=base%2Fimg"), "{:?}", st.mounts);
    assert!(st.patch_sizes.is_empty() && st.committed.is_none());
}
