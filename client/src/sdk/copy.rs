//! Copying an image between any two endpoints (registry repository or OCI image layout):
//! indexes recursively, optionally the referrers, blobs concurrently with a bound. The
//! destination only gets a manifest after everything it points to is there.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use quayside_spec::grammar::Digest;
use serde_json::Value;

use super::layout::{Layout, LayoutWriter};
use super::registry::{BlobSource, Manifest, Registry, CHUNK_SIZE};
use super::Error;

/// One side of a copy.
pub enum Endpoint {
    Registry {
        registry: Arc<Registry>,
        repo: String,
        /// Tag or digest to read (source) or the tag to write (destination; `None` pushes
        /// by digest only).
        reference: Option<String>,
    },
    Layout {
        path: PathBuf,
        tag: Option<String>,
    },
}

/// How a copy runs.
pub struct CopyOptions {
    /// Also copy the manifests that refer to the image (signatures, SBOMs, …).
    pub referrers: bool,
    /// Blobs transferred at once.
    pub concurrency: usize,
    /// Progress bars (bytes, speed, ETA) per blob, when shown on a terminal.
    pub progress: Option<indicatif::MultiProgress>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            referrers: false,
            concurrency: 4,
            progress: None,
        }
    }
}

enum Src<'a> {
    Registry(&'a Registry, &'a str),
    Layout(Layout),
}

enum Dst<'a> {
    Registry(&'a Registry, &'a str),
    Layout(Mutex<LayoutWriter>),
}

/// Copies the image at `src` to `dst` and returns its digest. A layout destination is only
/// created (or its `index.json` changed) when the whole copy succeeded.
pub async fn copy(src: &Endpoint, dst: &Endpoint, opts: &CopyOptions) -> Result<Digest, Error> {
    let (source, root) = match src {
        Endpoint::Registry {
            registry,
            repo,
            reference,
        } => {
            let r = reference.as_deref().unwrap_or("latest");
            (
                Src::Registry(registry, repo),
                registry.get_manifest(repo, r).await?,
            )
        }
        Endpoint::Layout { path, tag } => {
            let layout = Layout::open(path)?;
            let m = layout.manifest(&layout.resolve(tag.as_deref())?)?;
            (Src::Layout(layout), m)
        }
    };
    let (sink, tag) = match dst {
        Endpoint::Registry {
            registry,
            repo,
            reference,
        } => (Dst::Registry(registry, repo), reference.clone()),
        Endpoint::Layout { path, tag } => (
            Dst::Layout(Mutex::new(LayoutWriter::create(path)?)),
            tag.clone(),
        ),
    };
    let ctx = Ctx {
        src: &source,
        dst: &sink,
        opts,
    };
    ctx.copy_children(&root).await?;
    ctx.put_manifest(&root, tag.as_deref()).await?;
    if opts.referrers {
        ctx.copy_referrers(&root.digest).await?;
    }
    if let Dst::Layout(w) = sink {
        let writer = w.into_inner().map_err(|_| Error::Poisoned)?;
        writer.commit()?;
    }
    Ok(root.digest)
}

struct Ctx<'a> {
    src: &'a Src<'a>,
    dst: &'a Dst<'a>,
    opts: &'a CopyOptions,
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

fn descriptor_digest(d: &Value) -> Result<Digest, Error> {
    Ok(d["digest"]
        .as_str()
        .ok_or_else(|| Error::Protocol(format!("descriptor without digest: {d}")))?
        .parse()?)
}

impl<'a> Ctx<'a> {
    async fn fetch_manifest(&self, desc: &Value) -> Result<Manifest, Error> {
        match self.src {
            Src::Registry(reg, repo) => {
                let digest = descriptor_digest(desc)?;
                reg.get_manifest(repo, digest.as_str()).await
            }
            Src::Layout(layout) => layout.manifest(desc),
        }
    }

    /// Copies everything a manifest points to (child manifests, config, layers).
    fn copy_children<'b>(&'b self, m: &'b Manifest) -> BoxFut<'b, Result<(), Error>> {
        Box::pin(async move {
            let json: Value = serde_json::from_slice(&m.bytes)?;
            if let Some(children) = json["manifests"].as_array() {
                for child in children {
                    let cm = self.fetch_manifest(child).await?;
                    self.copy_children(&cm).await?;
                    self.put_manifest(&cm, None).await?;
                }
                return Ok(());
            }
            let mut blobs: Vec<&Value> = Vec::new();
            if json["config"].is_object() {
                blobs.push(&json["config"]);
            }
            for key in ["layers", "blobs"] {
                if let Some(l) = json[key].as_array() {
                    blobs.extend(l.iter());
                }
            }
            futures::stream::iter(blobs)
                .map(|d| self.copy_blob(d))
                .buffer_unordered(self.opts.concurrency.max(1))
                .try_collect::<Vec<()>>()
                .await?;
            Ok(())
        })
    }

    async fn put_manifest(&self, m: &Manifest, tag: Option<&str>) -> Result<bool, Error> {
        match self.dst {
            Dst::Registry(reg, repo) => {
                let reference = tag.map_or_else(|| m.digest.to_string(), str::to_owned);
                reg.put_manifest(repo, &reference, m).await
            }
            Dst::Layout(w) => {
                let mut w = w.lock().map_err(|_| Error::Poisoned)?;
                w.write_blob(&m.bytes, &m.digest)?;
                if tag.is_some() {
                    w.add_ref(m, tag);
                }
                Ok(true)
            }
        }
    }

    fn bar(&self, size: u64, digest: &Digest) -> Option<indicatif::ProgressBar> {
        let mp = self.opts.progress.as_ref()?;
        let bar = mp.add(indicatif::ProgressBar::new(size));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(digest.encoded().chars().take(12).collect::<String>());
        Some(bar)
    }

    async fn copy_blob(&self, desc: &Value) -> Result<(), Error> {
        let digest = descriptor_digest(desc)?;
        let size = desc["size"]
            .as_u64()
            .ok_or_else(|| Error::Protocol(format!("descriptor without size: {desc}")))?;
        let bar = self.bar(size, &digest);
        let result = self.transfer(&digest, size, bar.as_ref()).await;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        result
    }

    async fn transfer(
        &self,
        digest: &Digest,
        size: u64,
        bar: Option<&indicatif::ProgressBar>,
    ) -> Result<(), Error> {
        match (self.src, self.dst) {
            (Src::Registry(sreg, srepo), Dst::Layout(w)) => {
                let temp = {
                    let w = w.lock().map_err(|_| Error::Poisoned)?;
                    if w.has_blob(digest) {
                        return Ok(());
                    }
                    w.blob_temp()?
                };
                let mut file = tokio::fs::File::create(temp.path()).await?;
                sreg.pull_blob(srepo, digest, Some(size), &mut file, bar)
                    .await?;
                drop(file);
                w.lock()
                    .map_err(|_| Error::Poisoned)?
                    .commit_blob(temp, digest)
            }
            (Src::Layout(layout), Dst::Registry(dreg, drepo)) => {
                let path = layout.blob_path(digest);
                if !path.is_file() {
                    return Err(Error::Usage(format!(
                        "blob {digest} missing from the layout ({})",
                        path.display()
                    )));
                }
                dreg.push_blob(drepo, digest, size, BlobSource::File(&path), None, bar)
                    .await
                    .map(drop)
            }
            (Src::Layout(layout), Dst::Layout(w)) => {
                let w = w.lock().map_err(|_| Error::Poisoned)?;
                if !w.has_blob(digest) {
                    w.write_blob(&layout.read_blob(digest)?, digest)?;
                }
                Ok(())
            }
            (Src::Registry(sreg, srepo), Dst::Registry(dreg, drepo)) => {
                if dreg.blob_size(drepo, digest).await?.is_some() {
                    return Ok(());
                }
                let mount = (sreg.host() == dreg.host() && srepo != drepo).then_some(*srepo);
                if size <= CHUNK_SIZE {
                    let bytes = sreg.get_blob(srepo, digest, Some(size)).await?;
                    dreg.push_blob(drepo, digest, size, BlobSource::Bytes(bytes), mount, bar)
                        .await
                        .map(drop)
                } else {
                    let spool = tempfile::NamedTempFile::new()?;
                    let mut file = tokio::fs::File::create(spool.path()).await?;
                    sreg.pull_blob(srepo, digest, Some(size), &mut file, None)
                        .await?;
                    drop(file);
                    dreg.push_blob(
                        drepo,
                        digest,
                        size,
                        BlobSource::File(spool.path()),
                        mount,
                        bar,
                    )
                    .await
                    .map(drop)
                }
            }
        }
    }

    /// Copies the manifests whose `subject` is `subject`, keeping them reachable: listed in
    /// a layout's `index.json`, or in the tag-schema fallback index on registries without a
    /// referrers API.
    fn copy_referrers<'b>(&'b self, subject: &'b Digest) -> BoxFut<'b, Result<(), Error>> {
        Box::pin(async move {
            let referrers = match self.src {
                Src::Registry(sreg, srepo) => sreg.referrers(srepo, subject).await?["manifests"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                Src::Layout(layout) => layout.referrers(subject)?,
            };
            for desc in referrers {
                let m = self.fetch_manifest(&desc).await?;
                self.copy_children(&m).await?;
                let processed = self.put_manifest(&m, None).await?;
                match self.dst {
                    Dst::Registry(dreg, drepo) if !processed => {
                        dreg.add_fallback_referrer(drepo, subject, desc.clone())
                            .await?;
                    }
                    Dst::Layout(w) => w.lock().map_err(|_| Error::Poisoned)?.add_ref(&m, None),
                    Dst::Registry(..) => {}
                }
                self.copy_referrers(&m.digest).await?;
            }
            Ok(())
        })
    }
}
