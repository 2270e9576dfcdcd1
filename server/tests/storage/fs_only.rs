//! What only the filesystem backend promises: state survives a restart (a new instance on
//! the same root), and leftovers of interrupted work are never visible.

use std::time::Duration;

use quayside_server::storage::{Storage, StorageConfig};
use quayside_spec::grammar::{Algorithm, Digest, RepoName, Tag};

use crate::{chunks, collect, content, once};

async fn open(root: &std::path::Path) -> Storage {
    Storage::open(&StorageConfig::Filesystem {
        root: root.to_owned(),
        direct_io: true,
        sync: true,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn upload_session_survives_reopening_and_can_be_resumed_and_committed() {
    let root = tempfile::tempdir().unwrap();
    let data = content(400_000, 11);
    let (id, size) = {
        let s = open(root.path()).await;
        let up = s.blobs.upload_create(None).await.unwrap();
        let size = s
            .blobs
            .upload_append(&up.id, Some(0), chunks(&data[..250_000], 5))
            .await
            .unwrap();
        (up.id, size)
    }; // the first instance is gone, as after a restart
    let s = open(root.path()).await;
    let status = s.blobs.upload_status(&id).await.unwrap();
    assert_eq!(status.size, size);
    let err = s
        .blobs
        .upload_append(&id, Some(0), once(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_INVALID");
    s.blobs
        .upload_append(&id, Some(size), chunks(&data[250_000..], 2))
        .await
        .unwrap();
    let d = Digest::of(&data);
    s.blobs
        .upload_commit(&id, &d, Some(400_000), None)
        .await
        .unwrap();
    assert_eq!(collect(s.blobs.read(&d, None).await.unwrap()).await, data);
}

#[tokio::test]
async fn sha512_session_rehashes_from_disk_after_reopening() {
    let root = tempfile::tempdir().unwrap();
    let data = content(100_000, 12);
    let id = {
        let s = open(root.path()).await;
        let up = s
            .blobs
            .upload_create(Some(Algorithm::Sha512))
            .await
            .unwrap();
        s.blobs
            .upload_append(&up.id, None, once(&data[..60_000]))
            .await
            .unwrap();
        up.id
    };
    let s = open(root.path()).await;
    assert_eq!(
        s.blobs.upload_status(&id).await.unwrap().algorithm,
        Some(Algorithm::Sha512)
    );
    let d = Digest::of_with(Algorithm::Sha512, &data);
    s.blobs
        .upload_commit(&id, &d, None, Some(once(&data[60_000..])))
        .await
        .unwrap();
    assert_eq!(s.blobs.stat(&d).await.unwrap(), Some(100_000));
}

/// The names of the files in `dir`, sorted, once there are `count` of them (the files of a
/// new session are made in the background).
async fn files_once_there(dir: &std::path::Path, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..200 {
        names = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        if names.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    names.sort();
    names
}

/// A session nothing was appended to yet is one data file (plus its state when an algorithm
/// was chosen): once made, after a restart it has nothing acknowledged, keeps its
/// algorithm, and goes on from there.
#[tokio::test]
async fn a_session_without_appends_survives_reopening_with_its_algorithm() {
    let root = tempfile::tempdir().unwrap();
    let uploads = root.path().join("uploads");
    let (plain, sha512) = {
        let s = open(root.path()).await;
        let plain = s.blobs.upload_create(None).await.unwrap().id;
        let sha512 = s
            .blobs
            .upload_create(Some(Algorithm::Sha512))
            .await
            .unwrap()
            .id;
        (plain, sha512)
    };
    let names = files_once_there(&uploads, 3).await;
    let mut want = vec![
        format!("{plain}.data"),
        format!("{sha512}.data"),
        format!("{sha512}.json"),
    ];
    want.sort();
    assert_eq!(names, want);

    let s = open(root.path()).await;
    let status = s.blobs.upload_status(&plain).await.unwrap();
    assert_eq!((status.size, status.algorithm), (0, None));
    let status = s.blobs.upload_status(&sha512).await.unwrap();
    assert_eq!(
        (status.size, status.algorithm),
        (0, Some(Algorithm::Sha512))
    );
    let data = content(300_000, 13);
    let d = Digest::of(&data);
    s.blobs
        .upload_commit(&plain, &d, Some(300_000), Some(chunks(&data, 3)))
        .await
        .unwrap();
    let d512 = Digest::of_with(Algorithm::Sha512, &data);
    s.blobs
        .upload_commit(&sha512, &d512, None, Some(once(&data)))
        .await
        .unwrap();
    assert_eq!(collect(s.blobs.read(&d, None).await.unwrap()).await, data);
    assert_eq!(s.blobs.stat(&d512).await.unwrap(), Some(300_000));
}

/// A POST answers before its session's files are made; when making them fails, the next
/// request on the session reports it and the session is gone. One never asked for again
/// is swept by expiry.
#[tokio::test]
async fn a_session_whose_files_could_not_be_made_fails_its_next_request() {
    let root = tempfile::tempdir().unwrap();
    let s = open(root.path()).await;
    let uploads = root.path().join("uploads");
    std::fs::remove_dir(&uploads).unwrap(); // no place for session files
    let first = s.blobs.upload_create(None).await.unwrap().id;
    let second = s.blobs.upload_create(None).await.unwrap().id;
    // Known from memory, with nothing acknowledged.
    assert_eq!(s.blobs.upload_status(&first).await.unwrap().size, 0);
    let err = s
        .blobs
        .upload_append(&first, Some(0), once(b"abc"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNKNOWN", "{err}");
    assert!(err.to_string().contains("creating an upload"), "{err}");
    let err = s.blobs.upload_status(&first).await.unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
    std::fs::create_dir(&uploads).unwrap();
    // The other one, never asked for, is expired from memory.
    assert_eq!(s.blobs.expire_uploads(Duration::ZERO).await.unwrap(), 1);
    let err = s.blobs.upload_status(&second).await.unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
    // New sessions work again.
    let third = s.blobs.upload_create(None).await.unwrap().id;
    let d = Digest::of(b"abc");
    s.blobs
        .upload_commit(&third, &d, Some(3), Some(once(b"abc")))
        .await
        .unwrap();
    assert_eq!(s.blobs.stat(&d).await.unwrap(), Some(3));
}

/// Sessions of the earlier layout (a directory per session) are moved to the flat one at
/// open and go on where they were.
#[tokio::test]
async fn a_session_in_the_earlier_directory_layout_is_taken_over() {
    let root = tempfile::tempdir().unwrap();
    drop(open(root.path()).await);
    let id = "0123456789abcdef0123456789abcdef";
    let dir = root.path().join("uploads").join(id);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("data"), b"abcXX").unwrap(); // 2 bytes never acknowledged
    std::fs::write(
        dir.join("state.json"),
        br#"{"size":3,"algorithm":null,"updated_ms":1}"#,
    )
    .unwrap();
    std::fs::create_dir(root.path().join("uploads").join("not-a-session")).unwrap();

    let s = open(root.path()).await;
    let id = id.parse().unwrap();
    assert_eq!(s.blobs.upload_status(&id).await.unwrap().size, 3);
    let d = Digest::of(b"abcdef");
    s.blobs
        .upload_commit(&id, &d, Some(6), Some(once(b"def")))
        .await
        .unwrap();
    assert_eq!(
        collect(s.blobs.read(&d, None).await.unwrap()).await,
        b"abcdef"
    );
    let mut left = 0;
    for _ in 0..200 {
        left = std::fs::read_dir(root.path().join("uploads"))
            .unwrap()
            .count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0, "directories and files of the old layout are gone");
}

#[tokio::test]
async fn blobs_and_metadata_survive_reopening() {
    let root = tempfile::tempdir().unwrap();
    let repo: RepoName = "team/app".parse().unwrap();
    let tag: Tag = "v1".parse().unwrap();
    let manifest = br#"{"schemaVersion":2}"#;
    let d = Digest::of(manifest);
    {
        let s = open(root.path()).await;
        s.blobs.put(&d, manifest.to_vec().into()).await.unwrap();
        let record = quayside_server::storage::ManifestRecord {
            digest: d.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: manifest.len() as u64,
            subject: None,
            artifact_type: None,
            annotations: Default::default(),
            references: vec![],
        };
        s.metadata
            .put_manifest(&repo, &record, std::slice::from_ref(&tag))
            .await
            .unwrap();
        s.metadata.link_blob(&repo, &d).await.unwrap();
    }
    let s = open(root.path()).await;
    assert_eq!(
        s.metadata.resolve_tag(&repo, &tag).await.unwrap(),
        Some(d.clone())
    );
    assert!(s.metadata.is_linked(&repo, &d).await.unwrap());
    assert_eq!(
        collect(s.blobs.read(&d, None).await.unwrap()).await,
        manifest
    );
}

#[tokio::test]
async fn leftover_temp_files_are_removed_at_open_and_never_served() {
    let root = tempfile::tempdir().unwrap();
    drop(open(root.path()).await);
    let junk = root.path().join("tmp").join("half-written");
    std::fs::write(&junk, b"partial").unwrap();
    std::fs::create_dir(root.path().join("tmp").join("half-made-session")).unwrap();
    let s = open(root.path()).await;
    assert_eq!(
        std::fs::read_dir(root.path().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(s.blobs.stat(&Digest::of(b"partial")).await.unwrap(), None);
}

#[tokio::test]
async fn expiry_sweeps_sessions_left_by_a_previous_run() {
    let root = tempfile::tempdir().unwrap();
    let id = {
        let s = open(root.path()).await;
        s.blobs.upload_create(None).await.unwrap().id
    };
    files_once_there(&root.path().join("uploads"), 1).await;
    let s = open(root.path()).await;
    assert_eq!(
        s.blobs
            .expire_uploads(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.blobs.expire_uploads(Duration::ZERO).await.unwrap(), 1);
    let uploads = root.path().join("uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        0,
        "{id}'s files are gone"
    );
}

/// Throughput of a verified filesystem upload; run with
/// `cargo test --release -p quayside-server --test storage -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn upload_throughput_of_a_large_blob() {
    use bytes::Bytes;
    use futures::StreamExt;
    const MIB: usize = 1 << 20;
    let total_mib = 512;
    let root = tempfile::tempdir().unwrap();
    let s = open(root.path()).await;
    let piece = Bytes::from(content(MIB, 99));
    let mut hasher = quayside_spec::grammar::Digester::new(Algorithm::Sha256);
    for _ in 0..total_mib {
        hasher.update(&piece);
    }
    let d = hasher.finalize();
    // 64 KiB frames, as an HTTP body arrives.
    let frames: Vec<_> = (0..total_mib * 16)
        .map(|i| Ok(piece.slice((i % 16) * 65536..(i % 16 + 1) * 65536)))
        .collect();
    let up = s.blobs.upload_create(None).await.unwrap();
    let started = std::time::Instant::now();
    let info = s
        .blobs
        .upload_commit(
            &up.id,
            &d,
            None,
            Some(futures::stream::iter(frames).boxed()),
        )
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(info.size, (total_mib * MIB) as u64);
    println!("verified upload: {:.0} MiB/s", total_mib as f64 / secs);
}

#[tokio::test(start_paused = true)]
async fn background_expiry_discards_idle_sessions() {
    let root = tempfile::tempdir().unwrap();
    let s = open(root.path()).await;
    let id = s.blobs.upload_create(None).await.unwrap().id;
    // Idle limit zero: the first sweep takes the session (the paused clock makes the
    // interval fire at once, with no real waiting).
    let task = s.spawn_upload_expiry(Duration::ZERO, Duration::from_secs(60));
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if s.blobs.upload_status(&id).await.is_err() {
            gone = true;
            break;
        }
    }
    task.abort();
    assert!(gone, "the sweeper never removed the idle session");
}
