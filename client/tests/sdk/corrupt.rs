//! A registry double that serves a correct manifest but wrong bytes for its blobs.

use quayside_spec::grammar::Digest;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::*;

/// Answers every request on its own connection: `/v2/` 200, the manifest for any manifest
/// path, and `corrupt` bytes (same length as the real blob) for any blob path.
async fn corrupt_registry(manifest: Vec<u8>, corrupt: Vec<u8>) -> String {
    corrupt_registry_claiming(manifest, corrupt, None).await
}

/// Like [`corrupt_registry`], also sending `Docker-Content-Digest: claimed` on manifests.
async fn corrupt_registry_claiming(
    manifest: Vec<u8>,
    corrupt: Vec<u8>,
    claimed: Option<String>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let manifest = manifest.clone();
            let corrupt = corrupt.clone();
            let claimed = claimed.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let (status, ctype, body) = if line.contains("/manifests/") {
                    ("200 OK", OCI_MANIFEST, manifest)
                } else if line.contains("/blobs/") {
                    ("200 OK", "application/octet-stream", corrupt)
                } else {
                    ("200 OK", "application/json", b"{}".to_vec())
                };
                let body = if line.starts_with("HEAD") {
                    Vec::new()
                } else {
                    body
                };
                let extra = match (&claimed, line.contains("/manifests/")) {
                    (Some(d), true) => format!("Docker-Content-Digest: {d}\r\n"),
                    _ => String::new(),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_fails_the_pull_and_leaves_no_partial_layout() {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let digest = Digest::of(config);
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest.to_string(), "size": config.len()},
        "layers": []}))
    .unwrap();
    let mut wrong = config.to_vec();
    wrong[5] ^= 0x20;
    let host = corrupt_registry(manifest, wrong).await;

    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dst = work.path().join("pulled");
    let out = dist(
        home.path(),
        &[
            "pull",
            &format!("{host}/bad/image:v1"),
            &format!("oci:{}:v1", dst.display()),
            "--plain-http",
        ],
    )
    .await;
    assert!(!out.status.success(), "a corrupt blob must fail the pull");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt data") && err.contains(digest.as_str()),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing may be left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_whose_bytes_do_not_match_its_digest_is_refused() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.to_vec();
    let other = Digest::of(b"some other manifest");
    let host =
        corrupt_registry_claiming(manifest.clone(), Vec::new(), Some(other.to_string())).await;
    let home = tempfile::tempdir().unwrap();
    // By tag: checked against Docker-Content-Digest.
    let out = dist(
        home.path(),
        &[
            "manifest",
            "get",
            &format!("{host}/bad/image:v1"),
            "--plain-http",
        ],
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt data") && err.contains(other.as_str()),
        "{err}"
    );
    // By digest: checked against the digest asked for.
    let out = dist(
        home.path(),
        &[
            "manifest",
            "get",
            &format!("{host}/bad/image@{other}"),
            "--plain-http",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing unverified is printed");
}
