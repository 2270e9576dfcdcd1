//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`). A new
//! layout is written in a temporary sibling directory and renamed into place on commit,
//! so a failed pull leaves nothing behind; blobs are written to temporary files and renamed
//! only once their digest is verified.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use quayside_spec::grammar::{Digest, Digester};
use serde_json::{json, Value};

use super::registry::{Manifest, OCI_INDEX};
use super::Error;

/// The annotation an index entry's tag is kept in.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An existing layout, read-only.
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn open(root: &Path) -> Result<Layout, Error> {
        if !root.join("oci-layout").is_file() {
            return Err(Error::Usage(format!(
                "{} is not an OCI image layout (no oci-layout file)",
                root.display()
            )));
        }
        Ok(Layout {
            root: root.to_owned(),
        })
    }

    pub fn index(&self) -> Result<Value, Error> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.root.join("index.json"),
        )?)?)
    }

    /// The index entry for `tag`, or the only entry when no tag is given.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Value, Error> {
        let index = self.index()?;
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        match tag {
            Some(t) => entries
                .into_iter()
                .find(|d| d["annotations"][REF_NAME].as_str() == Some(t))
                .ok_or_else(|| Error::Usage(format!("no tag {t} in {}", self.root.display()))),
            None if entries.len() == 1 => Ok(entries[0].clone()),
            None => Err(Error::Usage(format!(
                "{} holds {} images: name one with oci:PATH:TAG",
                self.root.display(),
                entries.len()
            ))),
        }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.root, digest)
    }

    /// Descriptors (with `artifactType`) of the manifests listed in `index.json` whose
    /// `subject` is `subject`: a layout has no referrers API, so its index is searched.
    pub fn referrers(&self, subject: &Digest) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        for desc in self.index()?["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let Ok(m) = self.manifest(&desc) else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<Value>(&m.bytes) else {
                continue;
            };
            if json["subject"]["digest"].as_str() == Some(subject.as_str()) {
                let artifact_type = json
                    .get("artifactType")
                    .or_else(|| json["config"].get("mediaType"))
                    .cloned();
                let mut d = json!({"mediaType": m.media_type, "digest": m.digest.to_string(),
                    "size": m.bytes.len()});
                if let Some(t) = artifact_type {
                    d["artifactType"] = t;
                }
                out.push(d);
            }
        }
        Ok(out)
    }

    /// A blob's bytes, verified against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Bytes, Error> {
        let bytes = std::fs::read(self.blob_path(digest)).map_err(|e| {
            Error::Usage(format!(
                "blob {digest} missing in {}: {e}",
                self.root.display()
            ))
        })?;
        verify(&bytes, digest)?;
        Ok(bytes.into())
    }

    pub fn manifest(&self, desc: &Value) -> Result<Manifest, Error> {
        let digest: Digest = desc["digest"]
            .as_str()
            .ok_or_else(|| Error::Protocol("descriptor without digest".into()))?
            .parse()?;
        let bytes = self.read_blob(&digest)?;
        Ok(Manifest::from_bytes(bytes, desc["mediaType"].as_str()))
    }
}

fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs")
        .join(digest.algorithm_str())
        .join(digest.encoded())
}

fn verify(bytes: &[u8], digest: &Digest) -> Result<(), Error> {
    let got = Digest::of_with(digest.supported_algorithm()?, bytes);
    if &got != digest {
        return Err(Error::Corrupt(format!("blob {digest} hashes to {got}")));
    }
    Ok(())
}

/// A layout being written. Dropping it without [`LayoutWriter::commit`] removes a new
/// layout entirely (an existing one keeps its old `index.json`).
pub struct LayoutWriter {
    target: PathBuf,
    work: PathBuf,
    temp: Option<tempfile::TempDir>,
    index: Value,
}

impl LayoutWriter {
    pub fn create(target: &Path) -> Result<LayoutWriter, Error> {
        if target.join("oci-layout").is_file() {
            let index = Layout::open(target)?.index()?;
            return Ok(LayoutWriter {
                target: target.to_owned(),
                work: target.to_owned(),
                temp: None,
                index,
            });
        }
        if target.exists() && std::fs::read_dir(target)?.next().is_some() {
            return Err(Error::Usage(format!(
                "{} exists and is not an OCI image layout",
                target.display()
            )));
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let temp = tempfile::Builder::new()
            .prefix(".dist-partial-")
            .tempdir_in(&parent)?;
        let work = temp.path().to_owned();
        std::fs::write(
            work.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(LayoutWriter {
            target: target.to_owned(),
            work,
            temp: Some(temp),
            index: json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        })
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        blob_path(&self.work, digest).is_file()
    }

    /// A temporary file in the layout for a blob being written; pass it to
    /// [`LayoutWriter::commit_blob`] once written.
    pub fn blob_temp(&self) -> Result<tempfile::NamedTempFile, Error> {
        let dir = self.work.join("blobs");
        std::fs::create_dir_all(&dir)?;
        Ok(tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)?)
    }

    /// Verifies a written blob and moves it to its place.
    pub fn commit_blob(&self, temp: tempfile::NamedTempFile, digest: &Digest) -> Result<(), Error> {
        let mut hasher = Digester::new(digest.supported_algorithm()?);
        let mut f = std::fs::File::open(temp.path())?;
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let got = hasher.finalize();
        if &got != digest {
            return Err(Error::Corrupt(format!("blob {digest} hashes to {got}")));
        }
        let path = blob_path(&self.work, digest);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    pub fn write_blob(&self, bytes: &[u8], digest: &Digest) -> Result<(), Error> {
        verify(bytes, digest)?;
        let temp = self.blob_temp()?;
        std::fs::write(temp.path(), bytes)?;
        self.commit_blob(temp, digest)
    }

    /// Adds (or replaces, for the same tag) a top-level entry in `index.json`.
    pub fn add_ref(&mut self, m: &Manifest, tag: Option<&str>) {
        let mut desc = json!({
            "mediaType": m.media_type,
            "digest": m.digest.to_string(),
            "size": m.bytes.len(),
        });
        if let Some(t) = tag {
            desc["annotations"] = json!({ REF_NAME: t });
        }
        if let Some(list) = self.index["manifests"].as_array_mut() {
            list.retain(|d| match tag {
                Some(t) => d["annotations"][REF_NAME].as_str() != Some(t),
                None => d["digest"] != desc["digest"] || d.get("annotations").is_some(),
            });
            list.push(desc);
        }
    }

    /// Writes `index.json` and, for a new layout, renames it into place.
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        let index = tempfile::NamedTempFile::new_in(&self.work)?;
        std::fs::write(index.path(), serde_json::to_vec(&self.index)?)?;
        index
            .persist(self.work.join("index.json"))
            .map_err(|e| e.error)?;
        if let Some(temp) = self.temp.take() {
            let path = temp.keep();
            if self.target.exists() {
                std::fs::remove_dir(&self.target)?;
            }
            std::fs::rename(&path, &self.target)?;
        }
        Ok(self.target.clone())
    }
}
