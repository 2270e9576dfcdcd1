//! Repository metadata in redb, an embedded ACID key-value store (pure Rust, maintained).
//!
//! Why redb rather than files: a manifest put touches the manifest record, several tags and
//! a referrer entry, and all of it must appear together or not at all, even after `kill -9`
//! or power loss. redb gives copy-on-write transactions committed with fsync, ordered keys
//! (tag and catalog pagination become range scans) and crash recovery, which hand-rolled
//! files would have to reimplement. The memory backend runs the same code on redb's
//! in-memory backend, so both share one implementation of the metadata rules.
//!
//! Layout: tables keyed by `repo \0 ...` strings (`\0` cannot occur in names, tags or
//! digests, and sorts before every allowed character, so a repository's keys form one
//! contiguous, lexically ordered range).

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use quayside_spec::grammar::{Digest, RepoName, Tag};
use redb::{Database, ReadTransaction, ReadableTable, TableDefinition};

use super::{ManifestRecord, MetadataStore, Page};
use crate::error::{Error, Result};

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// repo -> ()
const REPOS: Table = TableDefinition::new("repositories");
/// repo \0 digest -> ()
const LINKS: Table = TableDefinition::new("blob_links");
/// repo \0 digest -> ManifestRecord as JSON
const MANIFESTS: Table = TableDefinition::new("manifests");
/// repo \0 tag -> digest
const TAGS: Table = TableDefinition::new("tags");
/// repo \0 subject \0 referrer digest -> ()
const REFERRERS: Table = TableDefinition::new("referrers");

/// Metadata in one redb database (a file, or memory).
#[derive(Clone)]
pub struct RedbMetadataStore {
    shared: Arc<Shared>,
}

/// The database handle, replaceable: after an I/O failure (a full disk) redb refuses every
/// further write until the database is closed and opened again, so the store reopens it
/// rather than fail until the registry restarts.
struct Shared {
    /// The open database; `None` while it is being reopened.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    /// Serialises reopening.
    reopening: std::sync::Mutex<()>,
    /// The database file; `None` in memory, which has no I/O to fail.
    path: Option<PathBuf>,
}

/// How long a reopen waits for the failed handle's last transactions to end (its file
/// lock goes with them).
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Shared {
    fn current(&self) -> Option<Arc<Database>> {
        self.db.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The open database, reopening it first if a reopen is due. Blocking.
    fn database(&self) -> Result<Arc<Database>> {
        if let Some(db) = self.current() {
            return Ok(db);
        }
        self.reopen(None)
    }

    /// Replaces `failed` (or, with `None`, a missing handle) by a freshly opened database;
    /// a handle another thread replaced already is kept. Takes the caller's `failed`
    /// handle so that it is gone before the file is opened again. Blocking.
    fn reopen(&self, failed: Option<Arc<Database>>) -> Result<Arc<Database>> {
        let ctx = "reopening the metadata database";
        let _one_at_a_time = self.reopening.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
            match (slot.as_ref(), failed.as_ref()) {
                (Some(db), Some(failed)) if !Arc::ptr_eq(db, failed) => return Ok(db.clone()),
                (Some(db), None) => return Ok(db.clone()),
                _ => *slot = None,
            }
        }
        drop(failed);
        let Some(path) = &self.path else {
            return Err(Error::internal(
                ctx,
                "an in-memory database cannot be reopened",
            ));
        };
        let deadline = std::time::Instant::now() + REOPEN_WAIT;
        loop {
            match Database::create(path) {
                Ok(db) => {
                    let db = Arc::new(db);
                    *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(db.clone());
                    tracing::warn!("metadata database reopened after an I/O failure");
                    return Ok(db);
                }
                // The failed handle is still held by transactions finishing.
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => return Err(db_err(ctx)(e)),
            }
        }
    }
}

impl std::fmt::Debug for RedbMetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbMetadataStore").finish_non_exhaustive()
    }
}

/// A database failure as our error; an I/O failure stays one, so that a full disk is
/// recognised as such (redb's errors do not expose their cause).
fn db_err<E: Into<redb::Error>>(context: &'static str) -> impl Fn(E) -> Error {
    move |e| match e.into() {
        redb::Error::Io(io) => Error::io(context, io),
        redb::Error::PreviousIo => Error::io(
            context,
            std::io::Error::other("an earlier I/O failure left the metadata database to reopen"),
        ),
        other => Error::internal(context, other),
    }
}

fn key(repo: &RepoName, rest: &str) -> String {
    format!("{repo}\0{rest}")
}

/// The half-open key range of everything under `prefix \0`.
fn prefix_range(prefix: &str) -> (String, String) {
    (format!("{prefix}\0"), format!("{prefix}\u{1}"))
}

fn parse_record(bytes: &[u8]) -> Result<ManifestRecord> {
    serde_json::from_slice(bytes).map_err(|e| Error::internal("decoding a manifest record", e))
}

impl RedbMetadataStore {
    /// Opens or creates the database file (recovering it after a crash if needed).
    pub async fn open(path: PathBuf) -> Result<RedbMetadataStore> {
        let file = path.clone();
        let db = tokio::task::spawn_blocking(move || Database::create(file))
            .await
            .map_err(|e| Error::internal("opening the metadata database", e))?
            .map_err(db_err("opening the metadata database"))?;
        Self::init(db, Some(path))
    }

    /// A database that lives in memory only.
    pub fn in_memory() -> Result<RedbMetadataStore> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_err("creating the in-memory metadata database"))?;
        Self::init(db, None)
    }

    /// Creates every table up front so readers never meet a missing one.
    fn init(db: Database, path: Option<PathBuf>) -> Result<RedbMetadataStore> {
        let tx = db.begin_write().map_err(db_err("initialising metadata"))?;
        for t in [REPOS, LINKS, MANIFESTS, TAGS, REFERRERS] {
            tx.open_table(t).map_err(db_err("initialising metadata"))?;
        }
        tx.commit().map_err(db_err("initialising metadata"))?;
        Ok(RedbMetadataStore {
            shared: Arc::new(Shared {
                db: std::sync::RwLock::new(Some(Arc::new(db))),
                reopening: std::sync::Mutex::new(()),
                path,
            }),
        })
    }

    /// Runs a (blocking) redb transaction off the async executor.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let db = shared.database()?;
            let result = f(&db);
            if matches!(result, Err(Error::Io { .. })) && shared.path.is_some() {
                // This request fails (a full disk is reported as such); the next finds a
                // working database, or tries to reopen it again.
                if let Err(e) = shared.reopen(Some(db)) {
                    tracing::error!(error = %e, "the metadata database could not be reopened");
                }
            }
            result
        })
        .await
        .map_err(|e| Error::internal("running a metadata transaction", e))?
    }

    /// Runs a read-only closure on one consistent snapshot, on the calling task: a read
    /// takes microseconds from redb's in-memory page cache, less than the hop to a
    /// blocking thread, and 32 concurrent listings otherwise kept ~40 blocking threads
    /// (each with its own allocator heap) alive. Writes, which fsync, still run on the
    /// blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // While a reopen is under way, reads fail at once rather than wait on this task.
        let db = self.shared.current().ok_or_else(|| {
            Error::internal(
                "reading metadata",
                "the metadata database is being reopened",
            )
        })?;
        let tx = db.begin_read().map_err(db_err("reading metadata"))?;
        f(&tx)
    }

    fn get(tx: &ReadTransaction, table: Table, k: &str) -> Result<Option<Vec<u8>>> {
        let t = tx.open_table(table).map_err(db_err("reading metadata"))?;
        let v = t.get(k).map_err(db_err("reading metadata"))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    /// Up to `n` (+1 to learn whether more follow) keys under `prefix`, after `last`,
    /// with the prefix stripped. Values are not read: every listing needs only keys.
    fn page(
        tx: &ReadTransaction,
        table: Table,
        prefix: Option<&str>,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Page<String>> {
        let ctx = "listing metadata";
        let t = tx.open_table(table).map_err(db_err(ctx))?;
        let (lo, hi) = match prefix {
            Some(p) => prefix_range(p),
            None => (String::new(), String::new()),
        };
        let start = match last {
            Some(l) => Bound::Excluded(format!("{lo}{l}")),
            None => Bound::Included(lo.clone()),
        };
        let end = match prefix {
            Some(_) => Bound::Excluded(hi),
            None => Bound::Unbounded,
        };
        let bounds = (
            start.as_ref().map(String::as_str),
            end.as_ref().map(String::as_str),
        );
        let mut items = Vec::new();
        let mut more = false;
        for entry in t.range::<&str>(bounds).map_err(db_err(ctx))? {
            let (k, _) = entry.map_err(db_err(ctx))?;
            if n.is_some_and(|n| items.len() >= n) {
                more = true;
                break;
            }
            items.push(k.value()[lo.len()..].to_owned());
        }
        Ok(Page { items, more })
    }
}

#[async_trait]
impl MetadataStore for RedbMetadataStore {
    async fn repository_exists(&self, repo: &RepoName) -> Result<bool> {
        let k = repo.to_string();
        self.read(move |tx| Ok(Self::get(tx, REPOS, &k)?.is_some()))
            .await
    }

    async fn link_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let (r, k) = (repo.to_string(), key(repo, digest.as_str()));
        self.run(move |db| {
            let ctx = "linking a blob";
            let tx = db.begin_write().map_err(db_err(ctx))?;
            {
                let mut repos = tx.open_table(REPOS).map_err(db_err(ctx))?;
                repos.insert(r.as_str(), &[][..]).map_err(db_err(ctx))?;
                let mut links = tx.open_table(LINKS).map_err(db_err(ctx))?;
                links.insert(k.as_str(), &[][..]).map_err(db_err(ctx))?;
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn is_linked(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let k = key(repo, digest.as_str());
        self.read(move |tx| Ok(Self::get(tx, LINKS, &k)?.is_some()))
            .await
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let k = key(repo, digest.as_str());
        self.run(move |db| {
            let ctx = "unlinking a blob";
            let tx = db.begin_write().map_err(db_err(ctx))?;
            let was = {
                let mut links = tx.open_table(LINKS).map_err(db_err(ctx))?;
                let removed = links.remove(k.as_str()).map_err(db_err(ctx))?;
                removed.is_some()
            };
            tx.commit().map_err(db_err(ctx))?;
            Ok(was)
        })
        .await
    }

    async fn put_manifest(
        &self,
        repo: &RepoName,
        record: &ManifestRecord,
        tags: &[Tag],
    ) -> Result<()> {
        let repo = repo.clone();
        let record = record.clone();
        let tags = tags.to_vec();
        let json = serde_json::to_vec(&record)
            .map_err(|e| Error::internal("encoding a manifest record", e))?;
        self.run(move |db| {
            let ctx = "storing a manifest";
            let tx = db.begin_write().map_err(db_err(ctx))?;
            {
                let mut repos = tx.open_table(REPOS).map_err(db_err(ctx))?;
                repos.insert(repo.as_str(), &[][..]).map_err(db_err(ctx))?;
                let mut manifests = tx.open_table(MANIFESTS).map_err(db_err(ctx))?;
                let mk = key(&repo, record.digest.as_str());
                manifests
                    .insert(mk.as_str(), json.as_slice())
                    .map_err(db_err(ctx))?;
                let mut tag_table = tx.open_table(TAGS).map_err(db_err(ctx))?;
                for tag in &tags {
                    let tk = key(&repo, tag.as_str());
                    tag_table
                        .insert(tk.as_str(), record.digest.as_str().as_bytes())
                        .map_err(db_err(ctx))?;
                }
                if let Some(subject) = &record.subject {
                    let mut refs = tx.open_table(REFERRERS).map_err(db_err(ctx))?;
                    let rk = format!("{repo}\0{subject}\0{}", record.digest);
                    refs.insert(rk.as_str(), &[][..]).map_err(db_err(ctx))?;
                }
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn get_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>> {
        let k = key(repo, digest.as_str());
        self.read(move |tx| {
            Self::get(tx, MANIFESTS, &k)?
                .map(|v| parse_record(&v))
                .transpose()
        })
        .await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<Tag>> {
        let repo = repo.clone();
        let digest = digest.clone();
        self.run(move |db| {
            let ctx = "deleting a manifest";
            let tx = db.begin_write().map_err(db_err(ctx))?;
            let removed_tags = {
                let mut manifests = tx.open_table(MANIFESTS).map_err(db_err(ctx))?;
                let mk = key(&repo, digest.as_str());
                let record = match manifests.remove(mk.as_str()).map_err(db_err(ctx))? {
                    Some(v) => parse_record(v.value())?,
                    None => {
                        return Err(Error::ManifestUnknown {
                            repository: repo.clone(),
                            reference: digest.to_string(),
                        })
                    }
                };
                if let Some(subject) = &record.subject {
                    let mut refs = tx.open_table(REFERRERS).map_err(db_err(ctx))?;
                    let rk = format!("{repo}\0{subject}\0{digest}");
                    refs.remove(rk.as_str()).map_err(db_err(ctx))?;
                }
                let mut tags = tx.open_table(TAGS).map_err(db_err(ctx))?;
                let (lo, hi) = prefix_range(repo.as_str());
                let mut doomed = Vec::new();
                for entry in tags
                    .range::<&str>(lo.as_str()..hi.as_str())
                    .map_err(db_err(ctx))?
                {
                    let (k, v) = entry.map_err(db_err(ctx))?;
                    if v.value() == digest.as_str().as_bytes() {
                        doomed.push(k.value().to_owned());
                    }
                }
                let mut removed = Vec::new();
                for k in doomed {
                    tags.remove(k.as_str()).map_err(db_err(ctx))?;
                    removed.push(k[lo.len()..].parse::<Tag>()?);
                }
                removed
            };
            tx.commit().map_err(db_err(ctx))?;
            Ok(removed_tags)
        })
        .await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<Digest>> {
        let k = key(repo, tag.as_str());
        self.read(move |tx| {
            Self::get(tx, TAGS, &k)?
                .map(|v| {
                    String::from_utf8(v)
                        .map_err(|e| Error::internal("decoding a tag", e))?
                        .parse::<Digest>()
                        .map_err(Error::from)
                })
                .transpose()
        })
        .await
    }

    async fn put_tag(&self, repo: &RepoName, tag: &Tag, digest: &Digest) -> Result<()> {
        let repo = repo.clone();
        let tag = tag.clone();
        let digest = digest.clone();
        self.run(move |db| {
            let ctx = "tagging a manifest";
            let tx = db.begin_write().map_err(db_err(ctx))?;
            {
                let manifests = tx.open_table(MANIFESTS).map_err(db_err(ctx))?;
                let mk = key(&repo, digest.as_str());
                if manifests.get(mk.as_str()).map_err(db_err(ctx))?.is_none() {
                    return Err(Error::ManifestUnknown {
                        repository: repo.clone(),
                        reference: digest.to_string(),
                    });
                }
                let mut tags = tx.open_table(TAGS).map_err(db_err(ctx))?;
                let tk = key(&repo, tag.as_str());
                tags.insert(tk.as_str(), digest.as_str().as_bytes())
                    .map_err(db_err(ctx))?;
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        let repo = repo.clone();
        let tag = tag.clone();
        self.run(move |db| {
            let ctx = "deleting a tag";
            let tx = db.begin_write().map_err(db_err(ctx))?;
            let existed = {
                let mut tags = tx.open_table(TAGS).map_err(db_err(ctx))?;
                let tk = key(&repo, tag.as_str());
                let removed = tags.remove(tk.as_str()).map_err(db_err(ctx))?;
                removed.is_some()
            };
            if !existed {
                return Err(Error::ManifestUnknown {
                    repository: repo,
                    reference: tag.to_string(),
                });
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&Tag>,
        n: Option<usize>,
    ) -> Result<Page<Tag>> {
        let repo = repo.clone();
        let last = last.map(|t| t.to_string());
        self.read(move |tx| {
            if Self::get(tx, REPOS, repo.as_str())?.is_none() {
                return Err(Error::NameUnknown { repository: repo });
            }
            let page = Self::page(tx, TAGS, Some(repo.as_str()), last.as_deref(), n)?;
            let items = page
                .items
                .into_iter()
                .map(|t| t.parse::<Tag>().map_err(Error::from))
                .collect::<Result<_>>()?;
            Ok(Page {
                items,
                more: page.more,
            })
        })
        .await
    }

    async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestRecord>> {
        let prefix = key(repo, subject.as_str());
        let repo = repo.clone();
        let filter = artifact_type.map(str::to_owned);
        self.read(move |tx| {
            let page = Self::page(tx, REFERRERS, Some(&prefix), None, None)?;
            let mut out = Vec::new();
            for digest in page.items {
                let Some(raw) = Self::get(tx, MANIFESTS, &key(&repo, &digest))? else {
                    continue;
                };
                let record = parse_record(&raw)?;
                if filter.is_none() || record.artifact_type.as_deref() == filter.as_deref() {
                    out.push(record);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn list_repositories(
        &self,
        last: Option<&RepoName>,
        n: Option<usize>,
    ) -> Result<Page<RepoName>> {
        let last = last.map(|r| r.to_string());
        self.read(move |tx| {
            let page = Self::page(tx, REPOS, None, last.as_deref(), n)?;
            let items = page
                .items
                .into_iter()
                .map(|r| r.parse::<RepoName>().map_err(Error::from))
                .collect::<Result<_>>()?;
            Ok(Page {
                items,
                more: page.more,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A file backend whose writes fail with "no space left" while `full` is set.
    #[derive(Debug)]
    struct FillingDisk {
        file: redb::backends::FileBackend,
        full: Arc<AtomicBool>,
    }

    impl FillingDisk {
        fn check(&self) -> std::io::Result<()> {
            match self.full.load(Ordering::SeqCst) {
                true => Err(std::io::Error::from_raw_os_error(28)),
                false => Ok(()),
            }
        }
    }

    impl redb::StorageBackend for FillingDisk {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }
        fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.file.read(offset, len)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.file.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
            self.check()?;
            self.file.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.file.write(offset, data)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_fails_one_write_as_such_and_the_database_is_reopened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metadata.redb");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .expect("create");
        let full = Arc::new(AtomicBool::new(false));
        let backend = FillingDisk {
            file: redb::backends::FileBackend::new(file).expect("lock"),
            full: full.clone(),
        };
        let db = Database::builder()
            .create_with_backend(backend)
            .expect("database");
        let store = RedbMetadataStore::init(db, Some(path)).expect("store");
        let repo: RepoName = "team/app".parse().expect("name");
        let (before, during, after) = (Digest::of(b"1"), Digest::of(b"2"), Digest::of(b"3"));

        store.link_blob(&repo, &before).await.expect("first link");
        full.store(true, Ordering::SeqCst);
        let err = store
            .link_blob(&repo, &during)
            .await
            .expect_err("disk full");
        assert!(err.is_storage_full(), "{err}");
        // Space is back (the reopened database uses the file directly): writes work again
        // without a restart, and nothing committed before was lost.
        store
            .link_blob(&repo, &after)
            .await
            .expect("link after the failure");
        assert!(store.is_linked(&repo, &before).await.expect("read"));
        assert!(!store.is_linked(&repo, &during).await.expect("read"));
        assert!(store.is_linked(&repo, &after).await.expect("read"));
    }
}
