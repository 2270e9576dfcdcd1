//! Against Debian's `docker-registry` (CNCF Distribution 2.8), started per test with a
//! config in a temporary directory; with `umoci` building real images and `skopeo` as the
//! other client. Without the peers the tests skip, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use quayside_client::sdk::registry::{BlobSource, Manifest, Registry};
use quayside_spec::grammar::Digest;
use serde_json::json;

use crate::*;

/// Installs Debian peers; `false` (skip) when impossible outside CI, a panic under CI.
fn peers(packages: &[&str]) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/peers");
    let ok = Command::new(script)
        .arg("deb")
        .args(packages)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "peers {packages:?} could not be installed (CI=true: failing rather than skipping)"
        );
        eprintln!("skipping: peers {packages:?} not installable");
    }
    ok
}

pub struct Distribution {
    child: Child,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Distribution with filesystem storage and delete enabled; `auth` is an extra
/// YAML `auth:` section (indented two spaces) or empty.
async fn distribution(auth: &str) -> Option<Distribution> {
    if !peers(&["docker-registry"]) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
        root = dir.path().join("data").display()
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .expect("start docker-registry");
    let host = format!("127.0.0.1:{port}");
    let reg = Distribution { child, host, dir };
    // Ready when it accepts connections (bounded: 10 s).
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&reg.host).await.is_ok() {
            return Some(reg);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(reg.dir.path().join("log")).unwrap_or_default();
    panic!("docker-registry did not start on {}: {log}", reg.host);
}

/// A real image built by umoci (one layer from a directory), tagged `v1`.
fn umoci_image(work: &Path) -> Option<PathBuf> {
    if !peers(&["umoci"]) {
        return None;
    }
    let layout = work.join("umoci");
    let content = work.join("content/etc");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("greeting"), b"hello from umoci\n").unwrap();
    let run = |args: &[&str]| {
        let st = Command::new("umoci").args(args).status().expect("umoci");
        assert!(st.success(), "umoci {args:?}");
    };
    let image = format!("{}:v1", layout.display());
    run(&["init", "--layout", layout.to_str().unwrap()]);
    run(&["new", "--image", &image]);
    run(&[
        "insert",
        "--rootless",
        "--image",
        &image,
        content.to_str().unwrap(),
        "/etc",
    ]);
    run(&["gc", "--layout", layout.to_str().unwrap()]);
    Some(layout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn umoci_image_round_trips_through_distribution_byte_for_byte() {
    let Some(reg) = distribution("").await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(src) = umoci_image(work.path()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = &reg.host;
    let out = dist(
        home.path(),
        &[
            "copy",
            &format!("oci:{}:v1", src.display()),
            &format!("{h}/umoci/img:v1"),
            "--plain-http",
        ],
    )
    .await;
    assert_ok(&out);
    let digest = stdout(&out).trim().to_owned();
    assert_eq!(tagged_digest(&src, "v1").as_deref(), Some(digest.as_str()));
    let out = dist(
        home.path(),
        &["tags", &format!("{h}/umoci/img"), "--plain-http"],
    )
    .await;
    assert_ok(&out);
    assert_eq!(stdout(&out), "v1\n");
    let back = work.path().join("back");
    assert_ok(
        &dist(
            home.path(),
            &[
                "pull",
                &format!("{h}/umoci/img:v1"),
                &format!("oci:{}:v1", back.display()),
                "--plain-http",
            ],
        )
        .await,
    );
    assert_eq!(blob_files(&back), blob_files(&src));
    assert_eq!(tagged_digest(&back, "v1"), Some(digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_and_dist_agree_byte_for_byte_in_both_directions() {
    let Some(reg) = distribution("").await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(src) = umoci_image(work.path()) else {
        return;
    };
    if !peers(&["skopeo"]) {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = &reg.host;
    let skopeo = |args: &[&str]| {
        let out = Command::new("skopeo").args(args).output().expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // skopeo pushes; dist pulls; skopeo's own pull must give the same blobs.
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{h}/sk/img:v1"),
    ]);
    let by_dist = work.path().join("by-dist");
    let by_skopeo = work.path().join("by-skopeo");
    assert_ok(
        &dist(
            home.path(),
            &[
                "pull",
                &format!("{h}/sk/img:v1"),
                &format!("oci:{}:v1", by_dist.display()),
                "--plain-http",
            ],
        )
        .await,
    );
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{h}/sk/img:v1"),
        &format!("oci:{}:v1", by_skopeo.display()),
    ]);
    assert_eq!(blob_files(&by_dist), blob_files(&by_skopeo));
    assert_eq!(
        tagged_digest(&by_dist, "v1"),
        tagged_digest(&by_skopeo, "v1")
    );

    // dist pushes; skopeo pulls (verifying every digest) and inspects.
    dist_push(home.path(), &src, "v1", &format!("{h}/byd/img:v1")).await;
    let pulled = work.path().join("skopeo-pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{h}/byd/img:v1"),
        &format!("oci:{}:v1", pulled.display()),
    ]);
    assert_eq!(blob_files(&pulled), blob_files(&src));
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{h}/byd/img:v1"),
    ]);
    let digest = Digest::of(&out.stdout).to_string();
    assert_eq!(tagged_digest(&src, "v1"), Some(digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_referrer_use_the_tag_schema_fallback_on_distribution() {
    let Some(reg) = distribution("").await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let index = index_layout(&src, "multi");
    let h = &reg.host;
    dist_push(home.path(), &src, "multi", &format!("{h}/m/img:multi")).await;

    let registry = Registry::new(h, true, None).unwrap();
    let subject: Digest = index.parse().unwrap();
    let subject_size = registry
        .get_manifest("m/img", subject.as_str())
        .await
        .unwrap()
        .bytes
        .len();
    let empty = Bytes::from_static(b"{}");
    let ed = Digest::of(&empty);
    registry
        .push_blob("m/img", &ed, 2, BlobSource::Bytes(empty), None, None)
        .await
        .unwrap();
    let artifact = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed.to_string(), "size": 2}],
        "subject": {"mediaType": OCI_INDEX, "digest": subject.to_string(), "size": subject_size}});
    let m = Manifest::from_bytes(
        serde_json::to_vec(&artifact).unwrap().into(),
        Some(OCI_MANIFEST),
    );
    let processed = registry
        .put_manifest("m/img", m.digest.as_str(), &m)
        .await
        .unwrap();
    assert!(!processed, "Distribution 2.8 has no referrers support");
    let desc = json!({"mediaType": OCI_MANIFEST, "digest": m.digest.to_string(),
        "size": m.bytes.len(), "artifactType": "application/vnd.example.sig"});
    registry
        .add_fallback_referrer("m/img", &subject, desc)
        .await
        .unwrap();
    let tags = registry.tags("m/img").await.unwrap();
    assert!(
        tags.contains(&format!("sha256-{}", subject.encoded())),
        "{tags:?}"
    );

    let refs = registry.referrers("m/img", &subject).await.unwrap();
    assert_eq!(refs["manifests"][0]["digest"], m.digest.as_str());

    assert_ok(
        &dist(
            home.path(),
            &[
                "copy",
                "--referrers",
                &format!("{h}/m/img:multi"),
                &format!("{h}/m/copy:multi"),
                "--plain-http",
            ],
        )
        .await,
    );
    let copied = registry.referrers("m/copy", &subject).await.unwrap();
    assert_eq!(copied["manifests"][0]["digest"], m.digest.as_str());
    let back = work.path().join("back");
    assert_ok(
        &dist(
            home.path(),
            &[
                "pull",
                &format!("{h}/m/copy:multi"),
                &format!("oci:{}:multi", back.display()),
                "--plain-http",
            ],
        )
        .await,
    );
    assert_eq!(tagged_digest(&back, "multi"), Some(index));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_needs_credentials_and_login_stores_them() {
    if !peers(&["apache2-utils"]) {
        return;
    }
    let htdir = tempfile::tempdir().unwrap();
    let htpasswd = htdir.path().join("htpasswd");
    let st = Command::new("htpasswd")
        .args(["-Bbc", htpasswd.to_str().unwrap(), "alice", "s3cret"])
        .output()
        .expect("htpasswd");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        htpasswd.display()
    );
    let Some(reg) = distribution(&auth).await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    image_layout(&src, "v1", &[b"basic auth layer"]);
    let h = &reg.host;
    let src_ref = format!("oci:{}:v1", src.display());
    let dst_ref = format!("{h}/auth/img:v1");

    let out = dist(home.path(), &["copy", &src_ref, &dst_ref, "--plain-http"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not authorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dist(
        home.path(),
        &[
            "login",
            h,
            "--plain-http",
            "--username",
            "alice",
            "--password",
            "wrong",
        ],
    )
    .await;
    assert!(!out.status.success(), "a wrong password is refused");

    assert_ok(
        &dist(
            home.path(),
            &[
                "login",
                h,
                "--plain-http",
                "--username",
                "alice",
                "--password",
                "s3cret",
            ],
        )
        .await,
    );
    let config = std::fs::read_to_string(home.path().join(".docker/config.json")).unwrap();
    assert!(config.contains(h.as_str()), "{config}");
    assert_ok(&dist(home.path(), &["copy", &src_ref, &dst_ref, "--plain-http"]).await);
    let out = dist(
        home.path(),
        &["tags", &format!("{h}/auth/img"), "--plain-http"],
    )
    .await;
    assert_ok(&out);
    assert_eq!(stdout(&out), "v1\n");
}

/// A token issuer for Distribution's token auth: grants whatever scope is asked to
/// `alice:s3cret` (Basic on the token request), signing ES256 JWTs whose `x5c` header
/// carries the self-signed certificate Distribution trusts via `rootcertbundle`.
struct TokenIssuer {
    realm: String,
    cert_path: PathBuf,
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn token_issuer(dir: &Path) -> TokenIssuer {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["token-issuer".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.join("token.crt");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = issued.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let target = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let url = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
            let authorized = head.lines().any(|l| {
                l.to_ascii_lowercase().starts_with("authorization:") && l.ends_with(&expected_auth)
            });
            let (status, body) = if authorized {
                let access: Vec<_> = url
                    .query_pairs()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
                    .filter_map(|s| {
                        let mut parts = s.rsplitn(2, ':');
                        let actions = parts.next()?.to_owned();
                        let (kind, name) = parts.next()?.split_once(':')?;
                        Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let claims = json!({"iss": "test-issuer", "sub": "alice", "aud": "test-registry",
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{now}"),
                    "access": access});
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                header.x5c = Some(vec![x5c.clone()]);
                let token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ("200 OK", json!({"token": token}).to_string())
            } else {
                ("401 Unauthorized", "{}".to_owned())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    TokenIssuer {
        realm,
        cert_path,
        issued,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth_fetches_a_token_for_the_scope_and_caches_it() {
    let certs = tempfile::tempdir().unwrap();
    let issuer = token_issuer(certs.path()).await;
    let auth = format!(
        "auth:\n  token:\n    realm: {}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
        issuer.realm,
        issuer.cert_path.display()
    );
    let Some(reg) = distribution(&auth).await else {
        return;
    };
    let h = &reg.host;
    let creds = quayside_client::sdk::auth::Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    };

    // Without credentials the token server refuses, and so does the registry.
    let anonymous = Registry::new(h, true, None).unwrap();
    let err = anonymous.tags("tok/img").await.unwrap_err();
    assert!(err.to_string().contains("not authorized"), "{err}");

    let registry = Registry::new(h, true, Some(creds)).unwrap();
    let blob = Bytes::from_static(b"bearer layer");
    let digest = Digest::of(&blob);
    let before = issuer.issued.load(std::sync::atomic::Ordering::SeqCst);
    assert!(registry
        .push_blob(
            "tok/img",
            &digest,
            blob.len() as u64,
            BlobSource::Bytes(blob.clone()),
            None,
            None
        )
        .await
        .unwrap());
    let after_push = issuer.issued.load(std::sync::atomic::Ordering::SeqCst);
    assert!(after_push > before, "a token was fetched");
    assert_eq!(
        registry
            .get_blob("tok/img", &digest, Some(blob.len() as u64))
            .await
            .unwrap(),
        blob
    );
    // Later requests for the same scopes reuse the cached tokens.
    let cached = issuer.issued.load(std::sync::atomic::Ordering::SeqCst);
    let resent = registry
        .push_blob(
            "tok/img",
            &digest,
            blob.len() as u64,
            BlobSource::Bytes(blob),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(!resent, "the blob exists: skipped");
    assert_eq!(
        registry.blob_size("tok/img", &digest).await.unwrap(),
        Some(12)
    );
    assert_eq!(
        issuer.issued.load(std::sync::atomic::Ordering::SeqCst),
        cached
    );

    // The CLI with flags: push an image and list its tag.
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    image_layout(&src, "v1", &[b"bearer image layer"]);
    let flags = [
        "--plain-http",
        "--username",
        "alice",
        "--password",
        "s3cret",
    ];
    let mut args = vec![
        "copy".to_owned(),
        format!("oci:{}:v1", src.display()),
        format!("{h}/tok/app:v1"),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    assert_ok(
        &dist(
            home.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await,
    );
    let mut args = vec!["tags".to_owned(), format!("{h}/tok/app")];
    args.extend(flags.iter().map(|s| s.to_string()));
    let out = dist(
        home.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    assert_ok(&out);
    assert_eq!(stdout(&out), "v1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_copies_from_our_registry_to_distribution_unchanged() {
    let Some(theirs) = distribution("").await else {
        return;
    };
    let ours = crate::ours::ours().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let digest = index_layout(&src, "multi");
    let (a, b) = (&ours.host, &theirs.host);
    dist_push(home.path(), &src, "multi", &format!("{a}/x/multi:1")).await;
    let out = dist(
        home.path(),
        &[
            "copy",
            &format!("{a}/x/multi:1"),
            &format!("{b}/y/multi:1"),
            "--plain-http",
        ],
    )
    .await;
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), digest);
    let back = work.path().join("back");
    assert_ok(
        &dist(
            home.path(),
            &[
                "pull",
                &format!("{b}/y/multi:1"),
                &format!("oci:{}:multi", back.display()),
                "--plain-http",
            ],
        )
        .await,
    );
    assert_eq!(blob_files(&back), blob_files(&src));
    ours.server.shutdown().await.unwrap();
}
