//! A real client against the registry: `skopeo copy` of an image built by `umoci` into the
//! registry and back, as OCI and as Docker schema 2, must keep manifest digests and blobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{content, header, sha256, Api, Registry};

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/peers");
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs a command, failing the test with its output if it does not succeed.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// skopeo and umoci with every per-user path (auth, config, cache) inside the test's
/// directory and an accept-anything signature policy, so the user's setup is never read
/// or written.
struct Tools {
    dir: PathBuf,
    policy: PathBuf,
}

impl Tools {
    fn new(dir: &Path) -> Tools {
        let status = Command::new(PEERS)
            .args(["deb", "skopeo", "umoci"])
            .status()
            .unwrap_or_else(|e| panic!("cannot run {PEERS}: {e}"));
        assert!(
            status.success(),
            "{PEERS} could not install skopeo and umoci"
        );
        for sub in ["home", "run", "config", "cache"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create tool dirs");
        }
        let policy = dir.join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write policy");
        Tools {
            dir: dir.to_owned(),
            policy,
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY");
        cmd
    }

    fn umoci(&self, args: &[&str]) -> String {
        run(self.command("umoci").args(args))
    }

    fn skopeo(&self, args: &[&str]) -> String {
        let mut cmd = self.command("skopeo");
        cmd.arg("--policy").arg(&self.policy).args(args);
        run(&mut cmd)
    }
}

/// An OCI image layout on disk.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        std::fs::read(self.root.join("blobs/sha256").join(hex))
            .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", self.root.display()))
    }

    /// The manifest digest tagged `tag` in `index.json`.
    fn manifest_digest(&self, tag: &str) -> String {
        let index: Value = serde_json::from_slice(
            &std::fs::read(self.root.join("index.json")).expect("index.json"),
        )
        .expect("index.json is JSON");
        index["manifests"]
            .as_array()
            .expect("manifests array")
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .and_then(|m| m["digest"].as_str())
            .unwrap_or_else(|| panic!("no {tag} in {}/index.json", self.root.display()))
            .to_owned()
    }

    /// Every blob file, by digest.
    fn blobs(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.root.join("blobs/sha256"))
            .expect("blobs dir")
            .map(|e| {
                let path = e.expect("dir entry").path();
                let name = path.file_name().expect("file name").to_string_lossy();
                (
                    format!("sha256:{name}"),
                    std::fs::read(&path).expect("read blob"),
                )
            })
            .collect()
    }
}

/// Builds a two-layer image with umoci: a few text files, a binary, a symlink, then a
/// second layer that adds and removes files.
fn build_image(tools: &Tools, dir: &Path) -> Layout {
    let layout = dir.join("src");
    let image = format!("{}:base", layout.display());
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    let b = bundle.to_str().expect("utf-8 path");
    tools.umoci(&["init", "--layout", layout.to_str().expect("utf-8 path")]);
    tools.umoci(&["new", "--image", &image]);
    tools.umoci(&["unpack", "--rootless", "--image", &image, b]);
    std::fs::create_dir_all(rootfs.join("etc/quayside")).expect("mkdir");
    std::fs::write(
        rootfs.join("etc/quayside/greeting"),
        "hello from quayside\n",
    )
    .expect("write");
    std::fs::write(rootfs.join("etc/removed-later"), "soon gone\n").expect("write");
    std::fs::write(rootfs.join("payload.bin"), content(300_000, 3)).expect("write");
    std::os::unix::fs::symlink("etc/quayside/greeting", rootfs.join("greeting")).expect("symlink");
    tools.umoci(&["repack", "--image", &image, b]);
    // A repack is relative to what was unpacked: unpack again for a second layer.
    let bundle2 = dir.join("bundle2");
    let b2 = bundle2.to_str().expect("utf-8 path");
    tools.umoci(&["unpack", "--rootless", "--image", &image, b2]);
    let rootfs2 = bundle2.join("rootfs");
    std::fs::remove_file(rootfs2.join("etc/removed-later")).expect("rm");
    std::fs::write(rootfs2.join("etc/quayside/second"), "second layer\n").expect("write");
    tools.umoci(&["repack", "--image", &image, b2]);
    tools.umoci(&[
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/true",
        "--author",
        "quayside interop test",
    ]);
    // Drop the superseded manifests and configs so the layout holds exactly one image.
    tools.umoci(&["gc", "--layout", layout.to_str().expect("utf-8 path")]);
    Layout { root: layout }
}

/// Asserts the registry serves `digest` in `repo` as exactly `bytes`.
async fn assert_blob(api: &Api, repo: &str, digest: &str, bytes: &[u8]) {
    let r = api
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .await
        .expect("blob GET");
    assert_eq!(r.status(), StatusCode::OK, "GET blob {digest} in {repo}");
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let body = r.bytes().await.expect("blob body");
    assert!(
        body.as_ref() == bytes,
        "blob {digest} in {repo}: served bytes differ"
    );
}

/// Fetches a manifest from the registry, checking digest and type headers.
async fn manifest(api: &Api, repo: &str, tag: &str, media_type: &str) -> (String, Vec<u8>) {
    let r = api
        .fetch_manifest(Method::GET, repo, tag)
        .await
        .expect("manifest GET");
    assert_eq!(r.status(), StatusCode::OK, "GET manifest {repo}:{tag}");
    assert_eq!(header(&r, "content-type"), media_type, "{repo}:{tag}");
    let digest = header(&r, "docker-content-digest");
    let body = r.bytes().await.expect("manifest body").to_vec();
    assert_eq!(
        sha256(&body),
        digest,
        "{repo}:{tag}: digest header vs bytes"
    );
    (digest, body)
}

fn blob_digests(manifest: &[u8]) -> Vec<String> {
    let doc: Value = serde_json::from_slice(manifest).expect("manifest is JSON");
    std::iter::once(&doc["config"])
        .chain(doc["layers"].as_array().expect("layers").iter())
        .map(|d| d["digest"].as_str().expect("digest").to_owned())
        .collect()
}

fn layer_digests(manifest: &[u8]) -> Vec<String> {
    blob_digests(manifest)[1..].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_copies_umoci_image_through_registry_unchanged_as_oci_and_docker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tools = Tools::new(&dir.path().join("tools"));
    let src = build_image(&tools, dir.path());
    let src_digest = src.manifest_digest("base");
    let src_manifest = src.blob(&src_digest);
    assert_eq!(sha256(&src_manifest), src_digest);
    assert_eq!(
        layer_digests(&src_manifest).len(),
        2,
        "umoci should have built two layers"
    );
    let root = dir.path().join("registry");
    std::fs::create_dir(&root).expect("mkdir");
    let registry = Registry::start(&root).await;
    let api = registry.api();
    let host = &registry.host;
    let src_ref = format!("oci:{}:base", src.root.display());

    // OCI in: skopeo keeps the manifest as built, so the digest must not change.
    let repo = "quayside/interop/umoci";
    let pushed = dir.path().join("pushed.digest");
    tools.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--digestfile",
        pushed.to_str().expect("utf-8"),
        &src_ref,
        &format!("docker://{host}/{repo}:v1"),
    ]);
    assert_eq!(
        std::fs::read_to_string(&pushed).expect("digestfile").trim(),
        src_digest
    );
    let (digest, served) = manifest(&api, repo, "v1", OCI_MANIFEST).await;
    assert_eq!(digest, src_digest);
    assert!(
        served == src_manifest,
        "registry serves other manifest bytes than skopeo pushed"
    );
    for d in blob_digests(&src_manifest) {
        assert_blob(&api, repo, &d, &src.blob(&d)).await;
    }

    let inspect: Value = serde_json::from_str(&tools.skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{host}/{repo}:v1"),
    ]))
    .expect("skopeo inspect prints JSON");
    assert_eq!(inspect["Digest"], src_digest.as_str());
    assert_eq!(
        inspect["Layers"],
        serde_json::json!(layer_digests(&src_manifest))
    );
    let raw = tools.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/{repo}@{src_digest}"),
    ]);
    assert!(
        raw.as_bytes() == src_manifest,
        "skopeo inspect --raw differs from the source manifest"
    );

    let tags: Value = serde_json::from_str(&tools.skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/{repo}"),
    ]))
    .expect("skopeo list-tags prints JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));

    // OCI out: a fresh layout with the same manifest digest and byte-identical blobs.
    let back = Layout {
        root: dir.path().join("back"),
    };
    tools.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/{repo}:v1"),
        &format!("oci:{}:v1", back.root.display()),
    ]);
    assert_eq!(back.manifest_digest("v1"), src_digest);
    let (src_blobs, back_blobs) = (src.blobs(), back.blobs());
    assert_eq!(
        back_blobs.keys().collect::<Vec<_>>(),
        src_blobs.keys().collect::<Vec<_>>(),
        "blob sets differ after the round trip"
    );
    for (d, bytes) in &back_blobs {
        assert!(*bytes == src_blobs[d], "blob {d} changed in the round trip");
    }

    // Docker schema 2 in: skopeo converts; the registry must keep what skopeo sent.
    let docker_repo = "quayside/interop/umoci-docker";
    let pushed2 = dir.path().join("pushed-v2s2.digest");
    tools.skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        "--digestfile",
        pushed2.to_str().expect("utf-8"),
        &src_ref,
        &format!("docker://{host}/{docker_repo}:v2s2"),
    ]);
    let v2s2_digest = std::fs::read_to_string(&pushed2)
        .expect("digestfile")
        .trim()
        .to_owned();
    let (digest, v2s2) = manifest(&api, docker_repo, "v2s2", DOCKER_MANIFEST).await;
    assert_eq!(digest, v2s2_digest);
    let doc: Value = serde_json::from_slice(&v2s2).expect("JSON");
    assert_eq!(doc["mediaType"], DOCKER_MANIFEST);
    assert_eq!(
        doc["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    // Layers are reused as they are; only their media type changes.
    assert_eq!(layer_digests(&v2s2), layer_digests(&src_manifest));
    let inspect: Value = serde_json::from_str(&tools.skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{host}/{docker_repo}:v2s2"),
    ]))
    .expect("skopeo inspect prints JSON");
    assert_eq!(inspect["Digest"], v2s2_digest.as_str());

    // Docker out into `dir:`, which stores the manifest and blobs exactly as received.
    let back2 = dir.path().join("back-v2s2");
    tools.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/{docker_repo}:v2s2"),
        &format!("dir:{}", back2.display()),
    ]);
    let copied = std::fs::read(back2.join("manifest.json")).expect("dir: manifest.json");
    assert!(
        copied == v2s2,
        "skopeo pulled other manifest bytes than the registry stored"
    );
    for d in blob_digests(&v2s2) {
        let hex = d.strip_prefix("sha256:").expect("sha256");
        let bytes = std::fs::read(back2.join(hex)).expect("dir: blob");
        assert_eq!(sha256(&bytes), d, "pulled blob does not match its digest");
        assert_blob(&api, docker_repo, &d, &bytes).await;
        if let Some(original) = src_blobs.get(&d) {
            assert!(
                bytes == *original,
                "layer {d} differs from the umoci original"
            );
        }
    }
}
