//! Crash safety of the filesystem backend: a child process (this test binary, re-run on
//! the ignored `crash_writer_child` test) pushes blobs, manifests and tags in a loop and is
//! killed with SIGKILL at random moments; after each kill the store must be consistent.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use quayside_server::storage::{ManifestRecord, Storage, StorageConfig};
use quayside_spec::grammar::{Algorithm, Digest, RepoName, Tag};

use crate::{chunks, collect, content};

const ROOT_ENV: &str = "QUAYSIDE_CRASH_ROOT";
const ROUND_ENV: &str = "QUAYSIDE_CRASH_ROUND";
/// `0` runs the child with fsync off (`storage.sync: false`).
const SYNC_ENV: &str = "QUAYSIDE_CRASH_SYNC";
const ROUNDS: u64 = 6;

fn random_below(n: u64) -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now()) % n
}

async fn open(root: &Path, sync: bool) -> Storage {
    Storage::open(&StorageConfig::Filesystem {
        root: root.to_owned(),
        direct_io: true,
        sync,
    })
    .await
    .unwrap()
}

/// The child's work loop; does nothing unless started by the crash test.
#[test]
#[ignore = "child process of kill_9_at_random_moments_leaves_no_corrupt_or_dangling_state"]
fn crash_writer_child() {
    let Ok(root) = std::env::var(ROOT_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sync = std::env::var(SYNC_ENV).as_deref() != Ok("0");
        let s = open(Path::new(&root), sync).await;
        let mut previous: Option<Digest> = None;
        for i in 0u64.. {
            let seed = round * 1_000_000 + i;
            let len = 1 + (seed.wrapping_mul(7919) % 1_500_000) as usize;
            let data = content(len, seed);
            let repo: RepoName = format!("crash/r{}", i % 3).parse().unwrap();
            let up = s.blobs.upload_create(None).await.unwrap();
            let half = len / 2;
            s.blobs
                .upload_append(&up.id, Some(0), chunks(&data[..half], 4))
                .await
                .unwrap();
            s.blobs
                .upload_append(&up.id, Some(half as u64), chunks(&data[half..], 3))
                .await
                .unwrap();
            let layer = Digest::of(&data);
            // As the registry does: linked while the blob is made durable.
            let link = Box::pin(s.metadata.link_blob(&repo, &layer));
            s.blobs
                .upload_commit_alongside(&up.id, &layer, Some(len as u64), None, link)
                .await
                .unwrap();
            if i % 4 == 0 {
                // An upload left behind mid-way, as by a client that went away.
                let up = s.blobs.upload_create(Some(Algorithm::Sha512)).await.unwrap();
                s.blobs
                    .upload_append(&up.id, None, chunks(&data[..half], 2))
                    .await
                    .unwrap();
            }
            let manifest = format!(
                r#"{{"schemaVersion":2,"config":{{"digest":"{layer}","size":{len}}},"round":{round},"i":{i}}}"#
            );
            let digest = Digest::of(manifest.as_bytes());
            s.blobs
                .put(&digest, manifest.clone().into())
                .await
                .unwrap();
            let record = ManifestRecord {
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: manifest.len() as u64,
                subject: previous.take(),
                artifact_type: None,
                annotations: Default::default(),
                references: vec![layer],
            };
            let tags: Vec<Tag> = vec![format!("t{}", i % 5).parse().unwrap(), "latest".parse().unwrap()];
            s.metadata.put_manifest(&repo, &record, &tags).await.unwrap();
            previous = Some(digest);
            println!("op {i}");
        }
    });
}

/// Every file under `blobs/` holds exactly the bytes its name promises.
fn check_blob_files(root: &Path) -> usize {
    let mut count = 0;
    for alg in std::fs::read_dir(root.join("blobs")).unwrap() {
        let alg = alg.unwrap().path();
        let algorithm: Algorithm = alg.file_name().unwrap().to_str().unwrap().parse().unwrap();
        for fan in std::fs::read_dir(&alg).unwrap() {
            let fan = fan.unwrap().path();
            for blob in std::fs::read_dir(&fan).unwrap() {
                let blob = blob.unwrap().path();
                let hex = blob.file_name().unwrap().to_str().unwrap().to_owned();
                assert_eq!(&hex[..2], fan.file_name().unwrap().to_str().unwrap());
                let want = Digest::from_parts(algorithm, &hex)
                    .unwrap_or_else(|e| panic!("stray file in blobs/: {}: {e}", blob.display()));
                let bytes = std::fs::read(&blob).unwrap();
                assert_eq!(
                    Digest::of_with(algorithm, &bytes),
                    want,
                    "blob file {} does not hold its content",
                    blob.display()
                );
                count += 1;
            }
        }
    }
    count
}

/// Every tag leads to a recorded manifest whose bytes and referenced blobs are stored.
async fn check_metadata(s: &Storage) -> usize {
    let mut tags_seen = 0;
    let repos = s.metadata.list_repositories(None, None).await.unwrap();
    for repo in &repos.items {
        let tags = s.metadata.list_tags(repo, None, None).await.unwrap();
        for tag in &tags.items {
            let digest = s.metadata.resolve_tag(repo, tag).await.unwrap().unwrap();
            let record = s
                .metadata
                .get_manifest(repo, &digest)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{repo}:{tag} points at missing manifest {digest}"));
            let bytes = collect(s.blobs.read(&digest, None).await.unwrap()).await;
            assert_eq!(bytes.len() as u64, record.size);
            assert_eq!(Digest::of(&bytes), digest);
            for layer in &record.references {
                assert!(
                    s.blobs.stat(layer).await.unwrap().is_some(),
                    "{layer} missing"
                );
                assert!(s.metadata.is_linked(repo, layer).await.unwrap());
            }
            tags_seen += 1;
        }
    }
    tags_seen
}

#[test]
fn kill_9_at_random_moments_leaves_no_corrupt_or_dangling_state() {
    kill_9_rounds(true);
}

/// Without fsync, the guarantee against a crash of the process is the same: writes are
/// atomic renames and ordered, and the page cache outlives the process.
#[test]
fn kill_9_with_fsync_off_leaves_no_corrupt_or_dangling_state() {
    kill_9_rounds(false);
}

fn kill_9_rounds(sync: bool) {
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for round in 0..ROUNDS {
        let target = 1 + random_below(12);
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROOT_ENV, root.path())
            .env(ROUND_ENV, round.to_string())
            .env(SYNC_ENV, if sync { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut ops = 0;
        for line in BufReader::new(stdout).lines() {
            if line.unwrap().starts_with("op ") {
                ops += 1;
                if ops >= target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructors, no flushing
        child.wait().unwrap();
        assert_eq!(ops, target, "round {round}: the writer stopped on its own");

        rt.block_on(async {
            let s = open(root.path(), sync).await;
            let blobs = check_blob_files(root.path());
            assert!(blobs as u64 >= 2 * target, "round {round}: {blobs} blobs");
            assert!(check_metadata(&s).await > 0);
            let leftovers = std::fs::read_dir(root.path().join("tmp")).unwrap().count();
            assert_eq!(leftovers, 0, "temp files survived reopening");
            // A surviving session is whole (its data covers what it acknowledged) or, when a
            // commit was cut short after publishing, unknown; expiry clears both kinds.
            for entry in std::fs::read_dir(root.path().join("uploads")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap();
                // `<id>.data`, and `<id>.json` beside it or left by a commit cut short.
                let (id, kind) = name.split_once('.').unwrap();
                assert!(kind == "data" || kind == "json", "stray file {name}");
                let id = id.parse().unwrap();
                match s.blobs.upload_status(&id).await {
                    Ok(status) => {
                        let data = path.with_extension("data");
                        let on_disk = std::fs::metadata(data).unwrap().len();
                        assert!(on_disk >= status.size, "session {id} lost data");
                    }
                    Err(e) => assert_eq!(e.code(), "BLOB_UPLOAD_UNKNOWN", "{e}"),
                }
            }
            s.blobs
                .expire_uploads(std::time::Duration::ZERO)
                .await
                .unwrap();
            let sessions = std::fs::read_dir(root.path().join("uploads"))
                .unwrap()
                .count();
            assert_eq!(sessions, 0, "expiry left sessions behind");
        });
    }
}
