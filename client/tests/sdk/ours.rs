//! Against Quayside's own registry, started in-process on a free port.

use bytes::Bytes;
use quayside_client::sdk::registry::{BlobSource, Manifest, Registry};
use quayside_server::config::Config;
use quayside_server::registry::{start, RunningRegistry};
use quayside_spec::grammar::Digest;
use serde_json::json;

use crate::*;

pub struct Ours {
    pub server: RunningRegistry,
    pub host: String,
    _root: tempfile::TempDir,
}

pub async fn ours() -> Ours {
    let root = tempfile::tempdir().unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nstorage:\n  backend: filesystem\n  root: {}\n",
        root.path().display()
    );
    let config = Config::from_yaml(&yaml).expect("config");
    let server = start(&config).await.expect("start registry");
    let host = server.local_addr().to_string();
    Ours {
        server,
        host,
        _root: root,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_layout_to_registry_and_back_is_byte_identical_and_tags_list_one_per_line() {
    let reg = ours().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let digest = image_layout(&src, "v1", &[b"layer one", b"layer two"]);

    let src_ref = format!("oci:{}:v1", src.display());
    let dst_ref = format!("{}/demo/app:v1", reg.host);
    let out = dist(home.path(), &["copy", &src_ref, &dst_ref, "--plain-http"]).await;
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), digest);
    let out = dist(
        home.path(),
        &[
            "copy",
            &src_ref,
            &format!("{}/demo/app:v2", reg.host),
            "--plain-http",
        ],
    )
    .await;
    assert_ok(&out);

    let out = dist(
        home.path(),
        &["tags", &format!("{}/demo/app", reg.host), "--plain-http"],
    )
    .await;
    assert_ok(&out);
    assert_eq!(stdout(&out), "v1\nv2\n");

    let back = work.path().join("back");
    let out = dist(
        home.path(),
        &[
            "pull",
            &dst_ref,
            &format!("oci:{}:v1", back.display()),
            "--plain-http",
        ],
    )
    .await;
    assert_ok(&out);
    assert_eq!(blob_files(&back), blob_files(&src));
    assert_eq!(tagged_digest(&back, "v1").as_deref(), Some(digest.as_str()));
    reg.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_index_is_copied_recursively_between_repositories() {
    let reg = ours().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let digest = index_layout(&src, "multi");

    let h = &reg.host;
    dist_push(home.path(), &src, "multi", &format!("{h}/a/multi:1")).await;
    // Registry to registry (same host: blobs are mounted), then to a layout.
    assert_ok(
        &dist(
            home.path(),
            &[
                "copy",
                &format!("{h}/a/multi:1"),
                &format!("{h}/b/multi:1"),
                "--plain-http",
            ],
        )
        .await,
    );
    let back = work.path().join("back");
    assert_ok(
        &dist(
            home.path(),
            &[
                "pull",
                &format!("{h}/b/multi@{digest}"),
                &format!("oci:{}:multi", back.display()),
                "--plain-http",
            ],
        )
        .await,
    );
    assert_eq!(blob_files(&back), blob_files(&src));

    let out = dist(
        home.path(),
        &[
            "inspect",
            &format!("{h}/b/multi:1"),
            "--plain-http",
            "--output",
            "json",
        ],
    )
    .await;
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["digest"], digest.as_str());
    let archs: Vec<_> = summary["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    reg.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blob_goes_in_chunks_is_skipped_when_present_and_pulls_verified() {
    let reg = ours().await;
    let registry = Registry::new(&reg.host, true, None).unwrap();
    let blob: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::of(&blob);
    let size = blob.len() as u64;
    let bytes = Bytes::from(blob);
    let sent = registry
        .push_blob(
            "big/blob",
            &digest,
            size,
            BlobSource::Bytes(bytes.clone()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(sent);
    let again = registry
        .push_blob(
            "big/blob",
            &digest,
            size,
            BlobSource::Bytes(bytes.clone()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(!again, "an existing blob is not uploaded again");
    assert_eq!(
        registry.blob_size("big/blob", &digest).await.unwrap(),
        Some(size)
    );
    let pulled = registry
        .get_blob("big/blob", &digest, Some(size))
        .await
        .unwrap();
    assert!(pulled == bytes);
    // A wrong expected size is caught rather than accepted.
    let err = registry
        .get_blob("big/blob", &digest, Some(size - 1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    reg.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_with_subject_is_listed_as_referrer_and_copied_with_referrers() {
    let reg = ours().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let subject = image_layout(&src, "v1", &[b"subject layer"]);
    let h = &reg.host;
    dist_push(home.path(), &src, "v1", &format!("{h}/art/app:v1")).await;

    let registry = Registry::new(h, true, None).unwrap();
    let subject: Digest = subject.parse().unwrap();
    let subject_size = registry
        .get_manifest("art/app", subject.as_str())
        .await
        .unwrap()
        .bytes
        .len();
    let empty = Bytes::from_static(b"{}");
    let empty_digest = Digest::of(&empty);
    registry
        .push_blob(
            "art/app",
            &empty_digest,
            2,
            BlobSource::Bytes(empty),
            None,
            None,
        )
        .await
        .unwrap();
    let artifact = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest.to_string(), "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_size}});
    let m = Manifest::from_bytes(
        serde_json::to_vec(&artifact).unwrap().into(),
        Some(OCI_MANIFEST),
    );
    let processed = registry
        .put_manifest("art/app", m.digest.as_str(), &m)
        .await
        .unwrap();
    assert!(processed, "our registry answers OCI-Subject");

    let refs = registry.referrers("art/app", &subject).await.unwrap();
    assert_eq!(refs["manifests"][0]["digest"], m.digest.as_str());

    assert_ok(
        &dist(
            home.path(),
            &[
                "copy",
                "--referrers",
                &format!("{h}/art/app:v1"),
                &format!("{h}/art/copy:v1"),
                "--plain-http",
            ],
        )
        .await,
    );
    let copied = registry.referrers("art/copy", &subject).await.unwrap();
    assert_eq!(copied["manifests"][0]["digest"], m.digest.as_str());
    assert_eq!(
        copied["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    // Through a layout and back: the referrer travels in the layout's index.json.
    let via = work.path().join("via");
    let via_ref = format!("oci:{}:v1", via.display());
    assert_ok(
        &dist(
            home.path(),
            &[
                "pull",
                "--referrers",
                &format!("{h}/art/app:v1"),
                &via_ref,
                "--plain-http",
            ],
        )
        .await,
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(via.join("index.json")).unwrap()).unwrap();
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["digest"] == m.digest.as_str()),
        "{index}"
    );
    let out = dist(home.path(), &["inspect", &via_ref, "--output", "json"]).await;
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["digest"], subject.as_str());
    assert_eq!(summary["layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(summary["referrers"][0]["digest"], m.digest.as_str());
    assert_eq!(
        summary["referrers"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    let out = dist(
        home.path(),
        &["inspect", &format!("{h}/art/app:v1"), "--plain-http"],
    )
    .await;
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("layers (1, 13 bytes)") && text.contains("referrers: 1"),
        "{text}"
    );
    assert_ok(
        &dist(
            home.path(),
            &[
                "push",
                "--referrers",
                &via_ref,
                &format!("{h}/art/again:v1"),
                "--plain-http",
            ],
        )
        .await,
    );
    let again = registry.referrers("art/again", &subject).await.unwrap();
    assert_eq!(again["manifests"][0]["digest"], m.digest.as_str());
    reg.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_and_blob_commands_round_trip_and_validate_rejects_bad_files() {
    let reg = ours().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let h = &reg.host;
    let file = work.path().join("layer");
    std::fs::write(&file, b"some blob").unwrap();
    let out = dist(
        home.path(),
        &[
            "blob",
            "put",
            &format!("{h}/cli/x"),
            file.to_str().unwrap(),
            "--plain-http",
        ],
    )
    .await;
    assert_ok(&out);
    let digest = stdout(&out).trim().to_owned();
    assert_eq!(digest, Digest::of(b"some blob").to_string());
    let got = work.path().join("got");
    assert_ok(
        &dist(
            home.path(),
            &[
                "blob",
                "get",
                &format!("{h}/cli/x@{digest}"),
                "-o",
                got.to_str().unwrap(),
                "--plain-http",
            ],
        )
        .await,
    );
    assert_eq!(std::fs::read(&got).unwrap(), b"some blob");

    let src = work.path().join("src");
    let mdigest = image_layout(&src, "v1", &[b"some blob"]);
    let mpath = src
        .join("blobs/sha256")
        .join(mdigest.trim_start_matches("sha256:"));
    // The config blob must exist before the manifest: push the image's blobs with copy.
    assert_ok(
        &dist(
            home.path(),
            &[
                "copy",
                &format!("oci:{}:v1", src.display()),
                &format!("{h}/cli/x"),
                "--plain-http",
            ],
        )
        .await,
    );
    let out = dist(
        home.path(),
        &[
            "manifest",
            "put",
            &format!("{h}/cli/x:t"),
            mpath.to_str().unwrap(),
            "--plain-http",
        ],
    )
    .await;
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), mdigest);
    let out = dist(
        home.path(),
        &["manifest", "get", &format!("{h}/cli/x:t"), "--plain-http"],
    )
    .await;
    assert_ok(&out);
    assert_eq!(out.stdout, std::fs::read(&mpath).unwrap());

    let out = dist(home.path(), &["validate", mpath.to_str().unwrap()]).await;
    assert_ok(&out);
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#).unwrap();
    let out = dist(home.path(), &["validate", bad.to_str().unwrap()]).await;
    assert!(
        !out.status.success(),
        "a manifest without config is invalid"
    );
    reg.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_manifest_keeps_its_media_type_and_bytes_across_a_copy() {
    let reg = ours().await;
    let registry = Registry::new(&reg.host, true, None).unwrap();
    let config = Bytes::from_static(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let layer = Bytes::from_static(b"docker layer bytes");
    let (cd, ld) = (Digest::of(&config), Digest::of(&layer));
    registry
        .push_blob(
            "dock/src",
            &cd,
            config.len() as u64,
            BlobSource::Bytes(config.clone()),
            None,
            None,
        )
        .await
        .unwrap();
    registry
        .push_blob(
            "dock/src",
            &ld,
            layer.len() as u64,
            BlobSource::Bytes(layer.clone()),
            None,
            None,
        )
        .await
        .unwrap();
    const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
    // Indented on purpose: the copy must keep these exact bytes.
    let text = serde_json::to_string_pretty(&json!({"schemaVersion": 2, "mediaType": DOCKER,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld.to_string(), "size": layer.len()}]})).unwrap();
    let m = Manifest::from_bytes(Bytes::from(text), Some(DOCKER));
    registry.put_manifest("dock/src", "v1", &m).await.unwrap();

    let home = tempfile::tempdir().unwrap();
    let h = &reg.host;
    assert_ok(
        &dist(
            home.path(),
            &[
                "copy",
                &format!("{h}/dock/src:v1"),
                &format!("{h}/dock/dst:v1"),
                "--plain-http",
            ],
        )
        .await,
    );
    let got = registry.get_manifest("dock/dst", "v1").await.unwrap();
    assert_eq!(got.media_type, DOCKER);
    assert_eq!(got.bytes, m.bytes);
    assert_eq!(got.digest, m.digest);
    reg.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_has_help_and_bad_references_are_explained() {
    let home = tempfile::tempdir().unwrap();
    for cmd in [
        &["--help"][..],
        &["copy", "--help"],
        &["push", "--help"],
        &["pull", "--help"],
        &["tags", "--help"],
        &["catalog", "--help"],
        &["manifest", "get", "--help"],
        &["manifest", "put", "--help"],
        &["manifest", "delete", "--help"],
        &["blob", "get", "--help"],
        &["blob", "put", "--help"],
        &["blob", "delete", "--help"],
        &["inspect", "--help"],
        &["validate", "--help"],
        &["login", "--help"],
    ] {
        let out = dist(home.path(), cmd).await;
        assert_ok(&out);
        assert!(stdout(&out).contains("Usage: dist"), "{cmd:?}");
    }
    let out = dist(home.path(), &["tags", "alpine"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registry host"));
    let out = dist(home.path(), &["push", "h:1/a:v1", "oci:x"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("source must be oci:"));
}
