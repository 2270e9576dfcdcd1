//! Clients that stop mid-transfer must not take the server down with them: the registry
//! runs here on a runtime whose blocking pool has 8 threads, and far more stalled downloads
//! and uploads than that leave it answering everyone else.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{sha256, TestRegistry};

/// A connection that reads nothing back: its receive buffer fills and the server's writes
/// stop, as with a client on a stalled network.
async fn deaf_connection(base: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let addr = base.trim_start_matches("http://").parse().expect("address");
    socket.connect(addr).await.expect("connect")
}

#[test]
fn stalled_downloads_and_uploads_leave_the_registry_answering() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let registry = TestRegistry::fs().await;
        let blob: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
        let digest = registry.push_blob("stall/app", &blob).await;
        assert_eq!(digest, sha256(&blob));
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            let mut stalled = Vec::new();
            for _ in 0..40 {
                let mut conn = deaf_connection(&registry.base).await;
                let request =
                    format!("GET /v2/stall/app/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n");
                conn.write_all(request.as_bytes()).await.expect("send");
                stalled.push(conn);
            }
            for _ in 0..20 {
                let started = registry
                    .client
                    .post(registry.url("/v2/stall/up/blobs/uploads/"))
                    .send()
                    .await
                    .expect("POST");
                assert_eq!(started.status(), 202);
                let location = crate::common::header(&started, "location").to_owned();
                let mut conn = deaf_connection(&registry.base).await;
                let separator = if location.contains('?') { '&' } else { '?' };
                let head = format!(
                    "PUT {location}{separator}digest={digest} HTTP/1.1\r\nHost: x\r\n\
                     Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    64 << 20
                );
                conn.write_all(head.as_bytes()).await.expect("send");
                conn.write_all(&vec![7u8; 2 << 20])
                    .await
                    .expect("send part");
                stalled.push(conn);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Everyone else is still served, the whole blob included.
            let head = registry
                .head(&format!("/v2/stall/app/blobs/{digest}"))
                .await;
            assert_eq!(head.status(), 200);
            let other: Vec<u8> = (0..3u32 << 20).map(|i| (i % 241) as u8).collect();
            assert_eq!(
                registry.push_blob("stall/other", &other).await,
                sha256(&other)
            );
            let pulled = registry
                .get(&format!("/v2/stall/app/blobs/{digest}"))
                .await
                .bytes()
                .await
                .expect("body");
            assert!(
                pulled == blob,
                "the blob pulled while others stall is intact"
            );
            stalled
        })
        .await;
        let stalled = outcome.expect("the registry answers while 60 clients are stalled");
        drop(stalled);
    });
}
