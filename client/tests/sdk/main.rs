//! The SDK layer and the `dist` CLI against real registries: ours (in-process), Debian's
//! Distribution 2.8 (`docker-registry`), and a test double that serves corrupt bytes.

mod corrupt;
mod distribution;
mod flaky;
mod ours;

use std::path::{Path, PathBuf};
use std::process::Output;

use quayside_spec::grammar::Digest;
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Runs `dist` with a private HOME (no stray credentials) and returns its output.
pub async fn dist(home: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dist"))
        .args(args)
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("DIST_USERNAME")
        .env_remove("DIST_PASSWORD")
        .output()
        .await
        .expect("run dist")
}

/// `dist push oci:LAYOUT:TAG DEST --plain-http`, which must succeed.
pub async fn dist_push(home: &Path, layout: &Path, tag: &str, dest: &str) {
    let source = format!("oci:{}:{tag}", layout.display());
    assert_ok(&dist(home, &["push", &source, dest, "--plain-http"]).await);
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "dist failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        stdout(o)
    );
}

fn write_blob(root: &Path, bytes: &[u8]) -> Value {
    let d = Digest::of(bytes);
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.encoded()), bytes).unwrap();
    json!({"digest": d.to_string(), "size": bytes.len()})
}

/// One image (config + layers) written into a layout's blobs; returns its descriptor.
fn write_image(root: &Path, arch: &str, layers: &[&[u8]]) -> Value {
    let config = json!({"architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}});
    let mut cdesc = write_blob(root, &serde_json::to_vec(&config).unwrap());
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            let mut d = write_blob(root, l);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
            d
        })
        .collect();
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": cdesc, "layers": layers});
    let mut desc = write_blob(root, &serde_json::to_vec(&manifest).unwrap());
    desc["mediaType"] = OCI_MANIFEST.into();
    desc["platform"] = json!({"os": "linux", "architecture": arch});
    desc
}

fn finish_layout(root: &Path, mut top: Value, tag: &str) {
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A layout with one single-platform image tagged `tag`; returns its manifest digest.
pub fn image_layout(root: &Path, tag: &str, layers: &[&[u8]]) -> String {
    let mut desc = write_image(root, "amd64", layers);
    desc.as_object_mut().unwrap().remove("platform");
    let digest = desc["digest"].as_str().unwrap().to_owned();
    finish_layout(root, desc, tag);
    digest
}

/// A layout with a two-platform index tagged `tag`; returns the index digest.
pub fn index_layout(root: &Path, tag: &str) -> String {
    let a = write_image(root, "amd64", &[b"amd64 layer", b"shared layer"]);
    let b = write_image(root, "arm64", &[b"arm64 layer", b"shared layer"]);
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [a, b]});
    let mut desc = write_blob(root, &serde_json::to_vec(&index).unwrap());
    desc["mediaType"] = OCI_INDEX.into();
    let digest = desc["digest"].as_str().unwrap().to_owned();
    finish_layout(root, desc, tag);
    digest
}

/// Every blob file of a layout, by relative path.
pub fn blob_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let dir = root.join("blobs/sha256");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        out.push((
            p.strip_prefix(root).unwrap().to_owned(),
            std::fs::read(&p).unwrap(),
        ));
    }
    out.sort();
    out
}

/// The layout's tagged manifest digest.
pub fn tagged_digest(root: &Path, tag: &str) -> Option<String> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).ok()?).ok()?;
    index["manifests"].as_array()?.iter().find_map(|d| {
        (d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .then(|| d["digest"].as_str().unwrap_or_default().to_owned())
    })
}
