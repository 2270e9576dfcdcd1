//! Real-world manifests from `shared/vectors` pushed over HTTP: valid ones are never refused
//! as MANIFEST_INVALID, invalid ones (not JSON, or breaking the schema) always are, and
//! whatever is stored comes back byte for byte with its digest and media type.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{content, error_code, header, sha256, Api, Registry};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// The digest of `{}`, the OCI empty descriptor's content.
const EMPTY_JSON: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Vector kinds that are manifests or indexes, and the media type each is pushed with
/// when the document does not name its own.
const MANIFEST_KINDS: &[(&str, &str)] = &[
    ("oci-image-manifest", OCI_MANIFEST),
    ("oci-artifact-manifest", OCI_MANIFEST),
    ("oci-image-index", OCI_INDEX),
    ("docker-v2s2-manifest", DOCKER_MANIFEST),
    ("docker-manifest-list", DOCKER_LIST),
    (
        "docker-v2s1-signed",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ),
    (
        "docker-v2s1-unsigned",
        "application/vnd.docker.distribution.manifest.v1+json",
    ),
    (
        "oci-artifact-manifest-legacy",
        "application/vnd.oci.artifact.manifest.v1+json",
    ),
];

/// One row of `SOURCES.tsv` with its file's bytes.
struct Vector {
    file: String,
    kind: String,
    valid: bool,
    invalid_class: String,
    bytes: Vec<u8>,
}

impl Vector {
    fn is_schema1(&self) -> bool {
        self.kind.starts_with("docker-v2s1")
    }

    /// `application/vnd.oci.artifact.manifest.v1+json`, withdrawn before image-spec 1.1:
    /// our spec reads it as JSON but does not list it as a PUT body type.
    fn is_withdrawn_artifact(&self) -> bool {
        self.kind == "oci-artifact-manifest-legacy"
    }

    /// The media type to push with: the document's own `mediaType` if it has one.
    fn media_type(&self) -> String {
        let own = serde_json::from_slice::<Value>(&self.bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned));
        let default = MANIFEST_KINDS
            .iter()
            .find(|(k, _)| *k == self.kind)
            .map(|(_, m)| m.to_string());
        own.filter(|m| MANIFEST_KINDS.iter().any(|(_, known)| known == m))
            .or(default)
            .unwrap_or_else(|| panic!("{} is not a manifest kind", self.kind))
    }
}

fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(VECTORS);
    assert!(
        dir.join("SOURCES.tsv").is_file(),
        "test vectors missing: expected {}/SOURCES.tsv",
        dir.display()
    );
    dir
}

/// The manifest and index vectors listed in `SOURCES.tsv`; panics on anything missing.
fn manifest_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let tsv = std::fs::read_to_string(dir.join("SOURCES.tsv")).expect("read SOURCES.tsv");
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines
        .next()
        .expect("SOURCES.tsv header")
        .split('\t')
        .collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("SOURCES.tsv has no {name:?} column"))
    };
    let (file, kind, validity, class) = (
        col("file"),
        col("kind"),
        col("validity"),
        col("invalid_class"),
    );
    let vectors: Vec<Vector> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| MANIFEST_KINDS.iter().any(|(k, _)| Some(k) == f.get(kind)))
        .map(|f| {
            let path = f[file];
            Vector {
                file: path.to_owned(),
                kind: f[kind].to_owned(),
                valid: match f[validity] {
                    "valid" => true,
                    "invalid" => false,
                    other => panic!("{path}: validity {other:?}"),
                },
                invalid_class: f.get(class).copied().unwrap_or("").to_owned(),
                bytes: std::fs::read(dir.join(path))
                    .unwrap_or_else(|e| panic!("vector {path} listed but unreadable: {e}")),
            }
        })
        .collect();
    assert!(
        vectors.len() > 100,
        "only {} manifest vectors found in SOURCES.tsv",
        vectors.len()
    );
    vectors
}

/// What a manifest PUT came to.
struct Answer {
    status: StatusCode,
    digest: String,
    code: Option<(String, String)>,
}

async fn put(api: &Api, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Answer {
    let r = api
        .put_manifest(repo, reference, media_type, bytes.to_vec())
        .await
        .expect("manifest PUT request");
    let status = r.status();
    let digest = header(&r, "docker-content-digest");
    let body = r.bytes().await.expect("manifest PUT body");
    Answer {
        status,
        digest,
        code: error_code(&body),
    }
}

fn describe(a: &Answer) -> String {
    match &a.code {
        Some((code, message)) => format!("{} {code}: {message}", a.status),
        None => a.status.to_string(),
    }
}

/// Invalid-labelled vectors we accept on purpose, held to the valid rule instead.
/// Empty `layers` breaks image-spec's schema (`minItems: 1`) but its prose only says
/// SHOULD, and real ORAS artifacts labelled valid use `"layers": []`.
const ACCEPTED_DESPITE_LABEL: &[&str] =
    &["invalid/oci-image-manifest/imagespec_mt06_empty-layers.json"];

/// A document with both `manifests` and `config`/`layers` (CVE-2021-41190): refusing it
/// as MANIFEST_INVALID is a legitimate choice even when the vector is labelled valid.
fn is_ambiguous(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|doc| {
        doc.get("manifests").is_some()
            && (doc.get("config").is_some() || doc.get("layers").is_some())
    })
}

/// Whether a PUT answer is right for a valid document pushed without its blobs.
fn acceptable_for_valid(v: &Vector, a: &Answer) -> bool {
    let code = a.code.as_ref().map(|(c, m)| (c.as_str(), m.to_lowercase()));
    match (a.status, code) {
        (StatusCode::CREATED, _) => a.digest == sha256(&v.bytes),
        (_, Some(("MANIFEST_BLOB_UNKNOWN", _))) => a.status.is_client_error(),
        (StatusCode::BAD_REQUEST, Some(("MANIFEST_INVALID", _))) if is_ambiguous(&v.bytes) => true,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_manifest_vectors_are_never_refused_as_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(dir.path()).await;
    let api = registry.api();
    let mut wrong = Vec::new();
    let valid: Vec<Vector> = manifest_vectors()
        .into_iter()
        .filter(|v| v.valid && !v.is_withdrawn_artifact())
        .collect();
    for (i, v) in valid.iter().enumerate() {
        let repo = format!("vectors/valid/{}", v.kind);
        let a = put(&api, &repo, &format!("v{i}"), &v.media_type(), &v.bytes).await;
        let mut fine = acceptable_for_valid(v, &a);
        if fine && a.status == StatusCode::CREATED {
            // Whatever was stored reads back as sent, with the type it was pushed with.
            let r = api
                .fetch_manifest(Method::GET, &repo, &format!("v{i}"))
                .await
                .expect("manifest GET");
            fine = r.status() == StatusCode::OK && header(&r, "content-type") == v.media_type();
            fine &= r.bytes().await.expect("manifest body").as_ref() == v.bytes.as_slice();
        }
        if !fine {
            wrong.push(format!(
                "{} ({}): {} digest {:?}",
                v.file,
                v.media_type(),
                describe(&a),
                a.digest
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} valid vectors were refused or mis-stored:\n{}\n--- server stderr ---\n{}",
        wrong.len(),
        valid.len(),
        wrong.join("\n"),
        registry.log_tail()
    );
}

/// Pushing a withdrawn OCI artifact manifest is refused for its media type (415
/// UNSUPPORTED, as for any Content-Type the spec does not list), not as an invalid manifest.
#[tokio::test(flavor = "multi_thread")]
async fn withdrawn_artifact_manifests_are_refused_as_unsupported_media_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(dir.path()).await;
    let api = registry.api();
    let artifacts: Vec<Vector> = manifest_vectors()
        .into_iter()
        .filter(Vector::is_withdrawn_artifact)
        .collect();
    assert!(
        !artifacts.is_empty(),
        "no oci-artifact-manifest-legacy vectors"
    );
    for (i, v) in artifacts.iter().enumerate() {
        let a = put(
            &api,
            "vectors/artifact",
            &format!("v{i}"),
            &v.media_type(),
            &v.bytes,
        )
        .await;
        let code = a.code.as_ref().map(|(c, _)| c.as_str());
        assert_eq!(
            (a.status, code),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("UNSUPPORTED")),
            "{}: {}",
            v.file,
            describe(&a)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_json_and_schema_vectors_are_refused_as_manifest_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(dir.path()).await;
    let api = registry.api();
    let (accepted, invalid): (Vec<Vector>, Vec<Vector>) = manifest_vectors()
        .into_iter()
        .filter(|v| !v.valid && (v.invalid_class == "json" || v.invalid_class == "schema"))
        .partition(|v| ACCEPTED_DESPITE_LABEL.contains(&v.file.as_str()));
    assert_eq!(
        accepted.len(),
        ACCEPTED_DESPITE_LABEL.len(),
        "ACCEPTED_DESPITE_LABEL names vectors SOURCES.tsv no longer lists as invalid"
    );
    assert!(
        invalid.len() >= 20,
        "only {} invalid vectors",
        invalid.len()
    );
    let mut wrong = Vec::new();
    for (i, v) in accepted.iter().enumerate() {
        let a = put(
            &api,
            "vectors/accepted",
            &format!("v{i}"),
            &v.media_type(),
            &v.bytes,
        )
        .await;
        if !acceptable_for_valid(v, &a) {
            wrong.push(format!(
                "{} (accepted on purpose): {}",
                v.file,
                describe(&a)
            ));
        }
    }
    for (i, v) in invalid.iter().enumerate() {
        let repo = format!("vectors/invalid/{}", v.kind);
        let tag = format!("v{i}");
        let a = put(&api, &repo, &tag, &v.media_type(), &v.bytes).await;
        let refused = a.status == StatusCode::BAD_REQUEST
            && a.code
                .as_ref()
                .is_some_and(|(c, _)| c == "MANIFEST_INVALID");
        let r = api
            .fetch_manifest(Method::HEAD, &repo, &tag)
            .await
            .expect("manifest HEAD");
        if !refused || r.status() != StatusCode::NOT_FOUND {
            wrong.push(format!(
                "{} ({}, {}): {}; HEAD afterwards {}",
                v.file,
                v.invalid_class,
                v.media_type(),
                describe(&a),
                r.status()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} invalid vectors were not answered as expected (400 MANIFEST_INVALID):\n{}",
        wrong.len(),
        invalid.len(),
        wrong.join("\n")
    );
}

/// Asserts a stored manifest reads back exactly: GET by tag and digest, HEAD by digest.
async fn assert_round_trip(api: &Api, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) {
    let digest = sha256(bytes);
    for (method, reference) in [
        (Method::GET, tag),
        (Method::GET, digest.as_str()),
        (Method::HEAD, digest.as_str()),
    ] {
        let r = api
            .fetch_manifest(method.clone(), repo, reference)
            .await
            .expect("manifest request");
        let what = format!("{method} {repo}:{reference}");
        assert_eq!(r.status(), StatusCode::OK, "{what}");
        assert_eq!(header(&r, "docker-content-digest"), digest, "{what}");
        assert_eq!(header(&r, "content-type"), media_type, "{what}");
        assert_eq!(
            header(&r, "content-length"),
            bytes.len().to_string(),
            "{what}"
        );
        let body = r.bytes().await.expect("manifest body");
        if method == Method::GET {
            assert!(
                body.as_ref() == bytes,
                "{what}: served bytes differ from the pushed ones"
            );
        } else {
            assert!(body.is_empty(), "{what}: HEAD carried a body");
        }
    }
}

/// Pushes a manifest by tag, insists on 201 with its digest, and reads it back.
async fn push_and_round_trip(api: &Api, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) {
    let a = put(api, repo, tag, media_type, bytes).await;
    assert_eq!(
        (a.status, a.digest.as_str()),
        (StatusCode::CREATED, sha256(bytes).as_str()),
        "PUT {repo}:{tag} ({media_type}): {}",
        describe(&a)
    );
    assert_round_trip(api, repo, tag, media_type, bytes).await;
}

fn descriptor(media_type: &str, bytes: &[u8]) -> String {
    format!(
        r#"{{"mediaType": "{media_type}", "digest": "{}", "size": {}}}"#,
        sha256(bytes),
        bytes.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn crafted_oci_and_docker_manifests_round_trip_byte_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(dir.path()).await;
    let api = registry.api();
    let repo = "vectors/crafted/app";
    let layer = content(70_000, 7);
    let oci_config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let docker_config = br#"{"architecture":"arm64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    for blob in [&layer, &oci_config, &docker_config, &b"{}".to_vec()] {
        api.must_push_blob(repo, blob).await;
    }

    // Odd indentation, key order and a trailing newline: the bytes must survive as sent.
    let image = format!(
        "{{\n   \"schemaVersion\" : 2,\n   \"mediaType\": \"{OCI_MANIFEST}\",\n   \"config\": {},\n   \"layers\": [ {} ],\n   \"annotations\": {{ \"z\": \"1\", \"a\": \"\\u00e9\" }}\n}}\n",
        descriptor("application/vnd.oci.image.config.v1+json", &oci_config),
        descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer),
    )
    .into_bytes();
    push_and_round_trip(&api, repo, "oci", OCI_MANIFEST, &image).await;

    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        sha256(&image),
        image.len()
    )
    .into_bytes();
    push_and_round_trip(&api, repo, "oci-index", OCI_INDEX, &index).await;

    let docker = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{},"layers":[{}]}}"#,
        descriptor(
            "application/vnd.docker.container.image.v1+json",
            &docker_config
        ),
        descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", &layer),
    )
    .into_bytes();
    push_and_round_trip(&api, repo, "docker", DOCKER_MANIFEST, &docker).await;

    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
        sha256(&docker),
        docker.len()
    )
    .into_bytes();
    push_and_round_trip(&api, repo, "docker-list", DOCKER_LIST, &list).await;

    // An artifact in the OCI 1.1 style: empty config, subject pointing at the image.
    let artifact = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom.v1","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{EMPTY_JSON}","size":2,"data":"e30="}},"layers":[{}],"subject":{}}}"#,
        descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        descriptor(OCI_MANIFEST, &image),
    )
    .into_bytes();
    push_and_round_trip(&api, repo, "sbom", OCI_MANIFEST, &artifact).await;
}

/// Digests a document refers to: (blobs, child manifests).
fn references(doc: &Value) -> (Vec<(String, u64)>, Vec<String>) {
    let desc = |d: &Value| {
        Some((
            d.get("digest")?.as_str()?.to_owned(),
            d.get("size").and_then(Value::as_u64).unwrap_or(u64::MAX),
        ))
    };
    let list = |key: &str| -> Vec<Value> {
        doc.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut blobs: Vec<(String, u64)> = doc.get("config").and_then(desc).into_iter().collect();
    for key in ["layers", "blobs"] {
        blobs.extend(list(key).iter().filter_map(desc));
    }
    let manifests = list("manifests")
        .iter()
        .filter_map(|d| Some(desc(d)?.0))
        .collect();
    (blobs, manifests)
}

/// Every file under the vectors directory, by digest: the blobs we can satisfy.
fn blob_pool(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut pool = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read vectors dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read vector");
                pool.insert(sha256(&bytes), bytes);
            }
        }
    }
    pool.insert(sha256(b"{}"), b"{}".to_vec());
    pool.insert(sha256(b""), Vec::new());
    pool
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_vectors_whose_references_exist_round_trip_byte_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(dir.path()).await;
    let api = registry.api();
    let repo = "vectors/satisfiable";
    let pool = blob_pool(&vectors_dir());
    let mut pending: Vec<Vector> = manifest_vectors()
        .into_iter()
        .filter(|v| v.valid && !v.is_schema1() && !v.is_withdrawn_artifact())
        .collect();
    let mut pushed_blobs = BTreeSet::new();
    let mut pushed_manifests = BTreeSet::new();
    let mut pushed_files = Vec::new();
    // Indexes can only go in after their children: repeat until nothing more fits.
    loop {
        let before = pushed_manifests.len();
        let mut rest = Vec::new();
        for v in pending {
            let Ok(doc) = serde_json::from_slice::<Value>(&v.bytes) else {
                rest.push(v);
                continue;
            };
            let (blobs, children) = references(&doc);
            let satisfiable = blobs
                .iter()
                .all(|(d, size)| pool.get(d).is_some_and(|b| b.len() as u64 == *size))
                && children.iter().all(|d| pushed_manifests.contains(d));
            if !satisfiable {
                rest.push(v);
                continue;
            }
            for (d, _) in blobs {
                if pushed_blobs.insert(d.clone()) {
                    api.must_push_blob(repo, &pool[&d]).await;
                }
            }
            let tag = format!("m{}", pushed_manifests.len());
            push_and_round_trip(&api, repo, &tag, &v.media_type(), &v.bytes).await;
            pushed_manifests.insert(sha256(&v.bytes));
            pushed_files.push(v.file);
        }
        pending = rest;
        if pushed_manifests.len() == before {
            break;
        }
    }
    assert!(
        pushed_files.len() >= 5,
        "only {} vectors had satisfiable references ({pushed_files:?}); the pool or SOURCES.tsv changed",
        pushed_files.len()
    );
}
