//! Storage tests: one behavioural suite run against every backend, then what only the
//! filesystem backend promises (restart survival, crash safety).

mod crash;
mod fs_only;
mod suite;

use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use quayside_server::storage::{BlobRead, ByteStream, Storage, StorageConfig};

/// A storage under test and whatever must outlive it (the temporary root).
pub struct Harness {
    pub storage: Storage,
    pub _root: Option<tempfile::TempDir>,
}

pub async fn memory() -> Harness {
    Harness {
        storage: Storage::open(&StorageConfig::Memory).await.unwrap(),
        _root: None,
    }
}

pub async fn filesystem() -> Harness {
    filesystem_with(true, true).await
}

/// The filesystem backend writing uploads through the page cache, as it does where
/// `O_DIRECT` is refused or switched off.
pub async fn filesystem_buffered() -> Harness {
    filesystem_with(false, true).await
}

/// The filesystem backend with fsync off (`storage.sync: false`).
pub async fn filesystem_unsynced() -> Harness {
    filesystem_with(true, false).await
}

async fn filesystem_with(direct_io: bool, sync: bool) -> Harness {
    let root = tempfile::tempdir().unwrap();
    let config = StorageConfig::Filesystem {
        root: root.path().to_owned(),
        direct_io,
        sync,
    };
    Harness {
        storage: Storage::open(&config).await.unwrap(),
        _root: Some(root),
    }
}

/// `data` as a stream of `pieces` roughly equal chunks.
pub fn chunks(data: &[u8], pieces: usize) -> ByteStream {
    let size = data.len().div_ceil(pieces.max(1)).max(1);
    let parts: Vec<_> = data
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(parts).boxed()
}

pub fn once(data: &[u8]) -> ByteStream {
    chunks(data, 1)
}

/// Deterministic, non-repeating-looking test content.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub async fn collect(read: BlobRead) -> Vec<u8> {
    let parts: Vec<Bytes> = read.body.try_collect().await.unwrap();
    parts.concat()
}

/// Instantiates every suite test for one backend.
macro_rules! storage_suite {
    ($backend:ident, $make:path) => {
        mod $backend {
            storage_suite!(@each $make;
                blob_put_then_stat_read_and_delete,
                put_with_wrong_digest_is_digest_invalid_and_stores_nothing,
                range_reads_return_the_selected_bytes,
                range_outside_the_blob_is_not_satisfiable,
                unknown_blob_is_blob_unknown,
                chunked_upload_reports_status_and_commits,
                upload_without_offsets_appends_at_the_end,
                chunk_out_of_order_is_rejected_and_writes_nothing,
                commit_with_wrong_digest_is_digest_invalid_and_nothing_visible,
                commit_with_wrong_size_is_size_invalid_and_nothing_visible,
                commit_alongside_runs_once_content_is_verified,
                commit_with_final_chunk_stores_all_bytes,
                sha512_chosen_at_create_commits_under_sha512,
                sha512_chosen_at_commit_rehashes_the_upload,
                unsupported_algorithm_at_commit_is_unsupported,
                failed_chunk_leaves_upload_at_previous_size,
                cancelled_upload_is_unknown,
                a_request_queued_behind_a_cancel_finds_the_session_gone,
                unknown_upload_is_blob_upload_unknown,
                expiry_removes_only_idle_sessions,
                large_upload_in_many_chunks_matches_its_digest,
                manifest_and_tags_are_recorded_together,
                deleting_a_manifest_removes_its_tags_and_referrer_entry,
                tag_list_is_lexical_and_paginates,
                tag_list_of_unknown_repository_is_name_unknown,
                tag_changes_need_an_existing_manifest_or_tag,
                referrers_list_subjects_and_filter_by_artifact_type,
                catalog_is_lexical_and_paginates,
                blob_links_are_per_repository,
            );
            storage_suite!(@small_pool $make; stalled_clients_leave_the_store_usable);
        }
    };
    // On a runtime whose blocking pool has 4 threads, so that tests can show none is held.
    (@small_pool $make:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .max_blocking_threads(4)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let harness = $make().await;
                    crate::suite::$name(&harness.storage).await;
                });
            }
        )*
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let harness = $make().await;
                crate::suite::$name(&harness.storage).await;
            }
        )*
    };
}

storage_suite!(memory_backend, crate::memory);
storage_suite!(fs_backend, crate::filesystem);
storage_suite!(fs_buffered_backend, crate::filesystem_buffered);
storage_suite!(fs_unsynced_backend, crate::filesystem_unsynced);
