//! The behaviour every storage backend must show. Each function takes a fresh `Storage`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{stream, StreamExt};
use quayside_server::error::Error;
use quayside_server::storage::{ByteRange, ManifestRecord, Page, Storage, UploadId};
use quayside_spec::grammar::{Algorithm, Digest, RepoName, Tag};

use crate::{chunks, collect, content, once};

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn tag(s: &str) -> Tag {
    s.parse().unwrap()
}

fn tags(page: &Page<Tag>) -> Vec<&str> {
    page.items.iter().map(Tag::as_str).collect()
}

fn record(bytes: &[u8], subject: Option<&Digest>, artifact_type: Option<&str>) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::of(bytes),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: bytes.len() as u64,
        subject: subject.cloned(),
        artifact_type: artifact_type.map(str::to_owned),
        annotations: BTreeMap::from([("org.example".to_owned(), "x".to_owned())]),
        references: vec![Digest::of(b"config")],
    }
}

async fn assert_absent(s: &Storage, digest: &Digest) {
    assert_eq!(s.blobs.stat(digest).await.unwrap(), None);
    let err = s.blobs.read(digest, None).await.unwrap_err();
    assert!(matches!(err, Error::BlobUnknown { .. }), "{err}");
}

pub async fn blob_put_then_stat_read_and_delete(s: &Storage) {
    let data = content(1000, 1);
    let d = Digest::of(&data);
    let info = s.blobs.put(&d, Bytes::from(data.clone())).await.unwrap();
    assert_eq!((info.digest.clone(), info.size), (d.clone(), 1000));
    assert_eq!(s.blobs.stat(&d).await.unwrap(), Some(1000));
    let read = s.blobs.read(&d, None).await.unwrap();
    assert_eq!((read.size, read.range.clone()), (1000, 0..1000));
    assert_eq!(collect(read).await, data);
    // Putting the same content again is harmless.
    s.blobs.put(&d, Bytes::from(data)).await.unwrap();
    s.blobs.delete(&d).await.unwrap();
    assert_absent(s, &d).await;
    let err = s.blobs.delete(&d).await.unwrap_err();
    assert_eq!(err.code(), "BLOB_UNKNOWN");
}

pub async fn put_with_wrong_digest_is_digest_invalid_and_stores_nothing(s: &Storage) {
    let claimed = Digest::of(b"what the client said");
    let err = s
        .blobs
        .put(&claimed, Bytes::from_static(b"what it sent"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "DIGEST_INVALID");
    assert!(
        matches!(&err, Error::DigestMismatch { expected, actual }
            if expected == &claimed && actual == &Digest::of(b"what it sent")),
        "{err}"
    );
    assert_absent(s, &claimed).await;
    assert_absent(s, &Digest::of(b"what it sent")).await;
}

pub async fn range_reads_return_the_selected_bytes(s: &Storage) {
    let data = content(5000, 2);
    let d = Digest::of(&data);
    s.blobs.put(&d, Bytes::from(data.clone())).await.unwrap();
    let cases = [
        (
            ByteRange::From {
                start: 0,
                end: Some(0),
            },
            0..1,
        ),
        (
            ByteRange::From {
                start: 100,
                end: Some(199),
            },
            100..200,
        ),
        (
            ByteRange::From {
                start: 4990,
                end: None,
            },
            4990..5000,
        ),
        (
            ByteRange::From {
                start: 4000,
                end: Some(9999),
            },
            4000..5000,
        ),
        (ByteRange::Suffix(7), 4993..5000),
    ];
    for (range, want) in cases {
        let read = s.blobs.read(&d, Some(range)).await.unwrap();
        assert_eq!(read.size, 5000);
        assert_eq!(read.range, want, "{range}");
        assert_eq!(
            collect(read).await,
            &data[want.start as usize..want.end as usize]
        );
    }
}

pub async fn range_outside_the_blob_is_not_satisfiable(s: &Storage) {
    let d = Digest::of(b"0123456789");
    s.blobs
        .put(&d, Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let range = ByteRange::From {
        start: 10,
        end: None,
    };
    let err = s.blobs.read(&d, Some(range)).await.unwrap_err();
    assert!(
        matches!(&err, Error::RangeNotSatisfiable { size: 10, requested } if requested == "bytes=10-"),
        "{err}"
    );
}

pub async fn unknown_blob_is_blob_unknown(s: &Storage) {
    assert_absent(s, &Digest::of(b"never stored")).await;
    // An unregistered algorithm can never name a stored blob.
    let odd: Digest = "md5:d41d8cd98f00b204e9800998ecf8427e".parse().unwrap();
    assert_absent(s, &odd).await;
}

pub async fn chunked_upload_reports_status_and_commits(s: &Storage) {
    let data = content(300_000, 3);
    let up = s.blobs.upload_create(None).await.unwrap();
    assert_eq!((up.size, up.algorithm), (0, None));
    let size = s
        .blobs
        .upload_append(&up.id, Some(0), chunks(&data[..100_000], 7))
        .await
        .unwrap();
    assert_eq!(size, 100_000);
    let size = s
        .blobs
        .upload_append(&up.id, Some(100_000), chunks(&data[100_000..], 3))
        .await
        .unwrap();
    assert_eq!(size, 300_000);
    let status = s.blobs.upload_status(&up.id).await.unwrap();
    assert_eq!((status.id.clone(), status.size), (up.id.clone(), 300_000));
    assert!(status.updated >= up.updated);
    let d = Digest::of(&data);
    assert_absent(s, &d).await; // nothing visible before the commit
    let info = s
        .blobs
        .upload_commit(&up.id, &d, Some(300_000), None)
        .await
        .unwrap();
    assert_eq!((info.digest.clone(), info.size), (d.clone(), 300_000));
    assert_eq!(collect(s.blobs.read(&d, None).await.unwrap()).await, data);
    let err = s.blobs.upload_status(&up.id).await.unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
}

pub async fn upload_without_offsets_appends_at_the_end(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    assert_eq!(
        s.blobs
            .upload_append(&up.id, None, once(b"ab"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.blobs
            .upload_append(&up.id, None, once(b"cd"))
            .await
            .unwrap(),
        4
    );
    let d = Digest::of(b"abcd");
    s.blobs.upload_commit(&up.id, &d, None, None).await.unwrap();
    assert_eq!(
        collect(s.blobs.read(&d, None).await.unwrap()).await,
        b"abcd"
    );
}

pub async fn chunk_out_of_order_is_rejected_and_writes_nothing(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, Some(0), once(b"hello "))
        .await
        .unwrap();
    for wrong in [0, 5, 7, 100] {
        let err = s
            .blobs
            .upload_append(&up.id, Some(wrong), once(b"XXXX"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ChunkOutOfOrder { expected: 6, given, session }
                if *given == wrong && session == up.id.as_str()),
            "{err}"
        );
    }
    assert_eq!(s.blobs.upload_status(&up.id).await.unwrap().size, 6);
    s.blobs
        .upload_append(&up.id, Some(6), once(b"world"))
        .await
        .unwrap();
    let d = Digest::of(b"hello world");
    s.blobs
        .upload_commit(&up.id, &d, Some(11), None)
        .await
        .unwrap();
    assert_eq!(
        collect(s.blobs.read(&d, None).await.unwrap()).await,
        b"hello world"
    );
}

pub async fn commit_with_wrong_digest_is_digest_invalid_and_nothing_visible(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, Some(0), once(b"real bytes"))
        .await
        .unwrap();
    let claimed = Digest::of(b"other bytes");
    let err = s
        .blobs
        .upload_commit(&up.id, &claimed, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "DIGEST_INVALID");
    assert!(
        matches!(&err, Error::DigestMismatch { actual, .. } if actual == &Digest::of(b"real bytes")),
        "{err}"
    );
    assert_absent(s, &claimed).await;
    assert_absent(s, &Digest::of(b"real bytes")).await;
    // The failed upload is discarded: the client starts again.
    let err = s.blobs.upload_status(&up.id).await.unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
}

pub async fn commit_alongside_runs_once_content_is_verified(s: &Storage) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = AtomicUsize::new(0);
    let count = || {
        Box::pin(async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    };
    // Verified content: it runs, and the blob is visible.
    let bytes = b"recorded next to its commit";
    let d = Digest::of(bytes);
    let up = s.blobs.upload_create(None).await.unwrap();
    let info = s
        .blobs
        .upload_commit_alongside(
            &up.id,
            &d,
            Some(bytes.len() as u64),
            Some(once(bytes)),
            count(),
        )
        .await
        .unwrap();
    assert_eq!(info.digest, d);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(s.blobs.stat(&d).await.unwrap(), Some(bytes.len() as u64));
    // The same content again (already stored): it runs too.
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_commit_alongside(&up.id, &d, None, Some(once(bytes)), count())
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // A wrong digest or size: it never runs.
    for (claimed, size) in [(Digest::of(b"other"), None), (d.clone(), Some(3))] {
        let up = s.blobs.upload_create(None).await.unwrap();
        let err = s
            .blobs
            .upload_commit_alongside(&up.id, &claimed, size, Some(once(bytes)), count())
            .await
            .unwrap_err();
        assert!(
            ["DIGEST_INVALID", "SIZE_INVALID"].contains(&err.code()),
            "{err}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
    // Its failure fails the commit, and the session is over either way.
    let other = b"a commit whose companion fails";
    let up = s.blobs.upload_create(None).await.unwrap();
    let failing = Box::pin(async { Err(Error::internal("recording a blob", "refused")) });
    let err = s
        .blobs
        .upload_commit_alongside(&up.id, &Digest::of(other), None, Some(once(other)), failing)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let err = s.blobs.upload_status(&up.id).await.unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
}

pub async fn commit_with_wrong_size_is_size_invalid_and_nothing_visible(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, Some(0), once(b"12345"))
        .await
        .unwrap();
    let d = Digest::of(b"12345");
    let err = s
        .blobs
        .upload_commit(&up.id, &d, Some(6), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SizeInvalid {
                expected: 6,
                actual: 5
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), "SIZE_INVALID");
    assert_absent(s, &d).await;
}

pub async fn commit_with_final_chunk_stores_all_bytes(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, Some(0), once(b"first,"))
        .await
        .unwrap();
    let d = Digest::of(b"first,last");
    let info = s
        .blobs
        .upload_commit(&up.id, &d, Some(10), Some(once(b"last")))
        .await
        .unwrap();
    assert_eq!(info.size, 10);
    assert_eq!(
        collect(s.blobs.read(&d, None).await.unwrap()).await,
        b"first,last"
    );
    // A monolithic upload: everything in the commit.
    let up = s.blobs.upload_create(None).await.unwrap();
    let data = content(70_000, 4);
    let d = Digest::of(&data);
    s.blobs
        .upload_commit(&up.id, &d, Some(70_000), Some(chunks(&data, 5)))
        .await
        .unwrap();
    assert_eq!(s.blobs.stat(&d).await.unwrap(), Some(70_000));
}

pub async fn sha512_chosen_at_create_commits_under_sha512(s: &Storage) {
    let data = content(200_000, 5);
    let up = s
        .blobs
        .upload_create(Some(Algorithm::Sha512))
        .await
        .unwrap();
    assert_eq!(up.algorithm, Some(Algorithm::Sha512));
    s.blobs
        .upload_append(&up.id, Some(0), chunks(&data, 4))
        .await
        .unwrap();
    assert_eq!(
        s.blobs.upload_status(&up.id).await.unwrap().algorithm,
        Some(Algorithm::Sha512)
    );
    let d = Digest::of_with(Algorithm::Sha512, &data);
    let info = s.blobs.upload_commit(&up.id, &d, None, None).await.unwrap();
    assert_eq!(info.digest.algorithm(), Some(Algorithm::Sha512));
    assert_eq!(collect(s.blobs.read(&d, None).await.unwrap()).await, data);
    // The same bytes are not visible under their sha256 name.
    assert_absent(s, &Digest::of(&data)).await;
}

pub async fn sha512_chosen_at_commit_rehashes_the_upload(s: &Storage) {
    let data = content(150_000, 6);
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, Some(0), chunks(&data, 3))
        .await
        .unwrap();
    let d = Digest::of_with(Algorithm::Sha512, &data);
    s.blobs.upload_commit(&up.id, &d, None, None).await.unwrap();
    assert_eq!(s.blobs.stat(&d).await.unwrap(), Some(150_000));
}

pub async fn unsupported_algorithm_at_commit_is_unsupported(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, None, once(b"x"))
        .await
        .unwrap();
    let odd: Digest = "md5:9dd4e461268c8034f5c8564e155c67a6".parse().unwrap();
    let err = s
        .blobs
        .upload_commit(&up.id, &odd, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED");
    // The upload itself is untouched and can still be committed properly.
    s.blobs
        .upload_commit(&up.id, &Digest::of(b"x"), Some(1), None)
        .await
        .unwrap();
}

pub async fn failed_chunk_leaves_upload_at_previous_size(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, Some(0), once(b"keep"))
        .await
        .unwrap();
    let broken = stream::iter([
        Ok(Bytes::from_static(b"lost bytes")),
        Err(Error::BlobUploadInvalid {
            session: up.id.to_string(),
            reason: "client went away".into(),
        }),
    ])
    .boxed();
    let err = s
        .blobs
        .upload_append(&up.id, Some(4), broken)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(s.blobs.upload_status(&up.id).await.unwrap().size, 4);
    s.blobs
        .upload_append(&up.id, Some(4), once(b"+more"))
        .await
        .unwrap();
    let d = Digest::of(b"keep+more");
    s.blobs
        .upload_commit(&up.id, &d, Some(9), None)
        .await
        .unwrap();
    assert_eq!(
        collect(s.blobs.read(&d, None).await.unwrap()).await,
        b"keep+more"
    );
}

/// Requests queue on a session: one that waited while the session was cancelled must find
/// it gone, not resume it from what the request before it left.
pub async fn a_request_queued_behind_a_cancel_finds_the_session_gone(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, None, once(b"abc"))
        .await
        .unwrap();
    // An append whose body waits for a signal holds the session meanwhile.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let held = stream::once(async move {
        let _ = released.await;
        Ok(Bytes::from_static(b"def"))
    })
    .boxed();
    let blobs = std::sync::Arc::clone(&s.blobs);
    let id = up.id.clone();
    let holding = tokio::spawn(async move { blobs.upload_append(&id, None, held).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let blobs = std::sync::Arc::clone(&s.blobs);
    let id = up.id.clone();
    let cancel = tokio::spawn(async move { blobs.upload_cancel(&id).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let blobs = std::sync::Arc::clone(&s.blobs);
    let id = up.id.clone();
    let queued = tokio::spawn(async move { blobs.upload_append(&id, None, once(b"g")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();
    // Backends that lock sessions finish the append first; others let the cancel win.
    match holding.await.unwrap() {
        Ok(size) => assert_eq!(size, 6),
        Err(err) => assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN", "{err}"),
    }
    cancel.await.unwrap().unwrap();
    let err = queued.await.unwrap().unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN", "{err}");
    assert_absent(s, &Digest::of(b"abcdef")).await;
}

pub async fn cancelled_upload_is_unknown(s: &Storage) {
    let up = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&up.id, None, once(b"abc"))
        .await
        .unwrap();
    s.blobs.upload_cancel(&up.id).await.unwrap();
    for err in [
        s.blobs.upload_status(&up.id).await.unwrap_err(),
        s.blobs
            .upload_append(&up.id, None, once(b"d"))
            .await
            .unwrap_err(),
        s.blobs
            .upload_commit(&up.id, &Digest::of(b"abc"), None, None)
            .await
            .unwrap_err(),
        s.blobs.upload_cancel(&up.id).await.unwrap_err(),
    ] {
        assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN", "{err}");
    }
    assert_absent(s, &Digest::of(b"abc")).await;
}

pub async fn unknown_upload_is_blob_upload_unknown(s: &Storage) {
    let id = UploadId::random();
    let err = s.blobs.upload_status(&id).await.unwrap_err();
    assert!(
        matches!(&err, Error::BlobUploadUnknown { session } if session == id.as_str()),
        "{err}"
    );
    let err = s
        .blobs
        .upload_append(&id, Some(0), once(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
}

pub async fn expiry_removes_only_idle_sessions(s: &Storage) {
    let a = s.blobs.upload_create(None).await.unwrap();
    let b = s.blobs.upload_create(None).await.unwrap();
    s.blobs
        .upload_append(&a.id, None, once(b"data"))
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    assert_eq!(s.blobs.expire_uploads(hour).await.unwrap(), 0);
    assert_eq!(s.blobs.upload_status(&a.id).await.unwrap().size, 4);
    // Zero idle time: every session is old enough.
    assert_eq!(s.blobs.expire_uploads(Duration::ZERO).await.unwrap(), 2);
    for id in [&a.id, &b.id] {
        let err = s.blobs.upload_status(id).await.unwrap_err();
        assert_eq!(err.code(), "BLOB_UPLOAD_UNKNOWN");
    }
    assert_eq!(s.blobs.expire_uploads(Duration::ZERO).await.unwrap(), 0);
}

pub async fn large_upload_in_many_chunks_matches_its_digest(s: &Storage) {
    let data = content(5 << 20, 7);
    let up = s.blobs.upload_create(None).await.unwrap();
    let mut offset = 0u64;
    for part in data.chunks(1 << 20) {
        offset = s
            .blobs
            .upload_append(&up.id, Some(offset), chunks(part, 16))
            .await
            .unwrap();
    }
    let d = Digest::of(&data);
    let info = s
        .blobs
        .upload_commit(&up.id, &d, Some(5 << 20), None)
        .await
        .unwrap();
    assert_eq!(info.digest, d);
    assert_eq!(collect(s.blobs.read(&d, None).await.unwrap()).await, data);
}

pub async fn manifest_and_tags_are_recorded_together(s: &Storage) {
    let r = repo("library/alpine");
    assert!(!s.metadata.repository_exists(&r).await.unwrap());
    let m = record(b"manifest one", None, None);
    s.metadata
        .put_manifest(&r, &m, &[tag("latest"), tag("3.20")])
        .await
        .unwrap();
    assert!(s.metadata.repository_exists(&r).await.unwrap());
    assert_eq!(
        s.metadata.get_manifest(&r, &m.digest).await.unwrap(),
        Some(m.clone())
    );
    for t in ["latest", "3.20"] {
        assert_eq!(
            s.metadata.resolve_tag(&r, &tag(t)).await.unwrap(),
            Some(m.digest.clone())
        );
    }
    // Manifests are per repository.
    let other = repo("library/other");
    assert_eq!(
        s.metadata.get_manifest(&other, &m.digest).await.unwrap(),
        None
    );
    // Re-tagging moves the tag.
    let m2 = record(b"manifest two", None, None);
    s.metadata
        .put_manifest(&r, &m2, &[tag("latest")])
        .await
        .unwrap();
    assert_eq!(
        s.metadata.resolve_tag(&r, &tag("latest")).await.unwrap(),
        Some(m2.digest.clone())
    );
    assert_eq!(
        s.metadata.resolve_tag(&r, &tag("3.20")).await.unwrap(),
        Some(m.digest)
    );
}

pub async fn deleting_a_manifest_removes_its_tags_and_referrer_entry(s: &Storage) {
    let r = repo("a/b");
    let subject = Digest::of(b"subject");
    let m = record(b"sig", Some(&subject), Some("application/example.sig"));
    let keep = record(b"keep", None, None);
    s.metadata
        .put_manifest(&r, &m, &[tag("x"), tag("y")])
        .await
        .unwrap();
    s.metadata
        .put_manifest(&r, &keep, &[tag("z")])
        .await
        .unwrap();
    let mut removed = s.metadata.delete_manifest(&r, &m.digest).await.unwrap();
    removed.sort();
    assert_eq!(removed, [tag("x"), tag("y")]);
    assert_eq!(s.metadata.get_manifest(&r, &m.digest).await.unwrap(), None);
    assert_eq!(s.metadata.resolve_tag(&r, &tag("x")).await.unwrap(), None);
    assert_eq!(
        s.metadata.resolve_tag(&r, &tag("z")).await.unwrap(),
        Some(keep.digest)
    );
    assert!(s
        .metadata
        .list_referrers(&r, &subject, None)
        .await
        .unwrap()
        .is_empty());
    let err = s.metadata.delete_manifest(&r, &m.digest).await.unwrap_err();
    assert_eq!(err.code(), "MANIFEST_UNKNOWN");
}

pub async fn tag_list_is_lexical_and_paginates(s: &Storage) {
    let r = repo("app");
    // "app" must not see the tags of "app/sub" or "app-x" (names that share a prefix).
    for (name, t) in [("app/sub", "zzz"), ("app-x", "aaa")] {
        let m = record(name.as_bytes(), None, None);
        s.metadata
            .put_manifest(&repo(name), &m, &[tag(t)])
            .await
            .unwrap();
    }
    let m = record(b"m", None, None);
    let all = ["1.0", "10", "2.0", "A", "B", "_x", "a", "latest", "v1"];
    let mut shuffled: Vec<Tag> = all.iter().rev().map(|t| tag(t)).collect();
    shuffled.swap(0, 4);
    s.metadata.put_manifest(&r, &m, &shuffled).await.unwrap();
    let full = s.metadata.list_tags(&r, None, None).await.unwrap();
    assert_eq!(tags(&full), all);
    assert!(!full.more);
    let p1 = s.metadata.list_tags(&r, None, Some(4)).await.unwrap();
    assert_eq!((tags(&p1), p1.more), (vec!["1.0", "10", "2.0", "A"], true));
    let p2 = s
        .metadata
        .list_tags(&r, p1.items.last(), Some(4))
        .await
        .unwrap();
    assert_eq!((tags(&p2), p2.more), (vec!["B", "_x", "a", "latest"], true));
    let p3 = s
        .metadata
        .list_tags(&r, p2.items.last(), Some(4))
        .await
        .unwrap();
    assert_eq!((tags(&p3), p3.more), (vec!["v1"], false));
    // Exactly n left: no further page.
    let exact = s
        .metadata
        .list_tags(&r, Some(&tag("a")), Some(2))
        .await
        .unwrap();
    assert_eq!((tags(&exact), exact.more), (vec!["latest", "v1"], false));
    // `last` need not be an existing tag; n = 0 gives nothing.
    let after = s
        .metadata
        .list_tags(&r, Some(&tag("b")), None)
        .await
        .unwrap();
    assert_eq!(tags(&after), ["latest", "v1"]);
    let none = s.metadata.list_tags(&r, None, Some(0)).await.unwrap();
    assert_eq!((none.items.len(), none.more), (0, true));
}

pub async fn tag_list_of_unknown_repository_is_name_unknown(s: &Storage) {
    let err = s
        .metadata
        .list_tags(&repo("nobody/here"), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NameUnknown { repository } if repository.as_str() == "nobody/here"),
        "{err}"
    );
}

pub async fn tag_changes_need_an_existing_manifest_or_tag(s: &Storage) {
    let r = repo("r");
    let m = record(b"m", None, None);
    let err = s
        .metadata
        .put_tag(&r, &tag("t"), &m.digest)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "MANIFEST_UNKNOWN");
    s.metadata.put_manifest(&r, &m, &[]).await.unwrap();
    s.metadata.put_tag(&r, &tag("t"), &m.digest).await.unwrap();
    assert_eq!(
        s.metadata.resolve_tag(&r, &tag("t")).await.unwrap(),
        Some(m.digest.clone())
    );
    s.metadata.delete_tag(&r, &tag("t")).await.unwrap();
    assert_eq!(s.metadata.resolve_tag(&r, &tag("t")).await.unwrap(), None);
    // The manifest stays when its tag goes.
    assert!(s
        .metadata
        .get_manifest(&r, &m.digest)
        .await
        .unwrap()
        .is_some());
    let err = s.metadata.delete_tag(&r, &tag("t")).await.unwrap_err();
    assert_eq!(err.code(), "MANIFEST_UNKNOWN");
}

pub async fn referrers_list_subjects_and_filter_by_artifact_type(s: &Storage) {
    let r = repo("app");
    let subject = Digest::of(b"image");
    let sig = record(b"sig", Some(&subject), Some("application/vnd.example.sig"));
    let sbom = record(b"sbom", Some(&subject), Some("application/spdx+json"));
    let elsewhere = record(b"other", Some(&Digest::of(b"other image")), Some("x/y"));
    for m in [&sig, &sbom, &elsewhere] {
        s.metadata.put_manifest(&r, m, &[]).await.unwrap();
    }
    // Same subject in another repository is not listed here.
    s.metadata
        .put_manifest(&repo("other"), &record(b"o", Some(&subject), None), &[])
        .await
        .unwrap();
    let all = s.metadata.list_referrers(&r, &subject, None).await.unwrap();
    let mut want = vec![sig.clone(), sbom.clone()];
    want.sort_by(|a, b| a.digest.cmp(&b.digest));
    assert_eq!(all, want);
    let only = s
        .metadata
        .list_referrers(&r, &subject, Some("application/spdx+json"))
        .await
        .unwrap();
    assert_eq!(only, [sbom]);
    let none = s
        .metadata
        .list_referrers(&r, &subject, Some("no/such"))
        .await
        .unwrap();
    assert!(none.is_empty());
    let unknown = s
        .metadata
        .list_referrers(&r, &Digest::of(b"unknown"), None)
        .await
        .unwrap();
    assert!(unknown.is_empty());
}

pub async fn catalog_is_lexical_and_paginates(s: &Storage) {
    let d = Digest::of(b"blob");
    let names = ["b", "a/z", "a", "a-b", "a.b", "c/d/e", "a/b"];
    for n in names {
        s.metadata.link_blob(&repo(n), &d).await.unwrap();
    }
    let mut sorted = names.to_vec();
    sorted.sort();
    let full = s.metadata.list_repositories(None, None).await.unwrap();
    let got: Vec<_> = full.items.iter().map(RepoName::as_str).collect();
    assert_eq!(got, sorted);
    let mut seen = Vec::new();
    let mut last: Option<RepoName> = None;
    loop {
        let page = s
            .metadata
            .list_repositories(last.as_ref(), Some(3))
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|r| r.to_string()));
        last = page.items.last().cloned();
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, sorted);
}

pub async fn blob_links_are_per_repository(s: &Storage) {
    let (a, b) = (repo("team/a"), repo("team/b"));
    let d = Digest::of(b"layer");
    s.metadata.link_blob(&a, &d).await.unwrap();
    assert!(s.metadata.is_linked(&a, &d).await.unwrap());
    assert!(!s.metadata.is_linked(&b, &d).await.unwrap());
    assert!(s.metadata.repository_exists(&a).await.unwrap());
    // Mount: link into another repository.
    s.metadata.link_blob(&b, &d).await.unwrap();
    assert!(s.metadata.unlink_blob(&a, &d).await.unwrap());
    assert!(!s.metadata.unlink_blob(&a, &d).await.unwrap());
    assert!(!s.metadata.is_linked(&a, &d).await.unwrap());
    assert!(s.metadata.is_linked(&b, &d).await.unwrap());
}

/// Clients that stop mid-transfer (a download no longer read, an upload whose body stops
/// coming) hold no blocking thread: run on a blocking pool of 4 threads, 16 of each leave
/// the store serving everyone else, and a stalled download still ends intact.
pub async fn stalled_clients_leave_the_store_usable(s: &Storage) {
    tokio::time::timeout(Duration::from_secs(30), stall_clients_then_use_the_store(s))
        .await
        .expect("the store answers while clients are stalled");
}

async fn stall_clients_then_use_the_store(s: &Storage) {
    let data = content(8 << 20, 21);
    let d = Digest::of(&data);
    s.blobs.put(&d, Bytes::from(data.clone())).await.unwrap();
    let mut downloads = Vec::new();
    for _ in 0..16 {
        let mut read = s.blobs.read(&d, None).await.unwrap();
        let first = read.body.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        downloads.push((first, read));
    }
    let other = content(3 << 20, 22);
    let other_digest = Digest::of(&other);
    let (uploads, served) = async {
        let mut uploads = Vec::new();
        for _ in 0..16 {
            let up = s.blobs.upload_create(None).await.unwrap();
            let body = stream::iter([Ok(Bytes::from(vec![7u8; 1 << 20]))])
                .chain(stream::pending())
                .boxed();
            let blobs = s.blobs.clone();
            uploads.push(tokio::spawn(async move {
                blobs.upload_append(&up.id, None, body).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let up = s.blobs.upload_create(None).await.unwrap();
        s.blobs
            .upload_append(&up.id, None, chunks(&other, 8))
            .await
            .unwrap();
        s.blobs
            .upload_commit(&up.id, &other_digest, None, None)
            .await
            .unwrap();
        let served = collect(s.blobs.read(&other_digest, None).await.unwrap()).await;
        (uploads, served)
    }
    .await;
    assert!(served == other);
    let (first, rest) = downloads.pop().unwrap();
    let mut whole = first.to_vec();
    whole.extend(collect(rest).await);
    assert!(whole == data, "a stalled download resumes intact");
    for upload in uploads {
        assert!(
            !upload.is_finished(),
            "the stalled uploads are still waiting for data"
        );
        upload.abort();
    }
}
