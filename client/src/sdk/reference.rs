//! Image references as users type them: `host[:port]/repo[:tag][@digest]` for a registry,
//! `oci:PATH[:tag]` for an OCI image layout directory.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use quayside_spec::grammar::{Digest, RepoName, Tag};

/// Why a reference string was rejected; the message names the offending part.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefError {
    #[error("empty reference")]
    Empty,
    #[error("`{0}` has no registry host: write HOST[:PORT]/REPO[:TAG][@DIGEST]")]
    NoHost(String),
    #[error(
        "invalid repository name `{name}` in `{input}` (lowercase letters, digits, separators)"
    )]
    Repo { input: String, name: String },
    #[error("invalid tag `{tag}` in `{input}`")]
    Tag { input: String, tag: String },
    #[error("invalid digest `{digest}` in `{input}`: {reason}")]
    Digest {
        input: String,
        digest: String,
        reason: String,
    },
    #[error("`oci:` needs a directory path, as in oci:./image:latest")]
    EmptyLayoutPath,
}

/// A repository (and optionally a tag and/or digest) on a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host` or `host:port`, as typed.
    pub host: String,
    pub repo: RepoName,
    pub tag: Option<Tag>,
    pub digest: Option<Digest>,
}

impl RegistryRef {
    /// What to ask the registry for: the digest when given (it pins the content), else the
    /// tag, else `latest` as Docker does.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// An image in an OCI image layout directory, selected by tag
/// (`org.opencontainers.image.ref.name`) or the only image there when no tag is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    pub path: PathBuf,
    pub tag: Option<String>,
}

/// Either end of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Registry(RegistryRef),
    Layout(LayoutRef),
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Registry(r) => r.fmt(f),
            ImageRef::Layout(l) => {
                write!(f, "oci:{}", l.path.display())?;
                if let Some(t) = &l.tag {
                    write!(f, ":{t}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for ImageRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, RefError> {
        if let Some(rest) = s.strip_prefix("oci:") {
            return parse_layout(rest).map(ImageRef::Layout);
        }
        s.parse().map(ImageRef::Registry)
    }
}

fn parse_layout(rest: &str) -> Result<LayoutRef, RefError> {
    // A tag never contains `/` or `:`, so the last `:` after the last `/` starts one.
    let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[after_slash..].rfind(':') {
        Some(i) => {
            let split = after_slash + i;
            (&rest[..split], Some(&rest[split + 1..]))
        }
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(RefError::EmptyLayoutPath);
    }
    if let Some(t) = tag {
        t.parse::<Tag>().map_err(|_| RefError::Tag {
            input: format!("oci:{rest}"),
            tag: t.to_owned(),
        })?;
    }
    Ok(LayoutRef {
        path: PathBuf::from(path),
        tag: tag.map(str::to_owned),
    })
}

impl FromStr for RegistryRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, RefError> {
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        let input = s.to_owned();
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse_supported(d).map_err(|e| RefError::Digest {
                    input: input.clone(),
                    digest: d.to_owned(),
                    reason: e.to_string(),
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        let (host, path) = rest
            .split_once('/')
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| RefError::NoHost(input.clone()))?;
        let (repo, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        let repo = repo.parse::<RepoName>().map_err(|_| RefError::Repo {
            input: input.clone(),
            name: repo.to_owned(),
        })?;
        let tag = tag
            .map(|t| {
                t.parse::<Tag>().map_err(|_| RefError::Tag {
                    input: input.clone(),
                    tag: t.to_owned(),
                })
            })
            .transpose()?;
        Ok(RegistryRef {
            host: host.to_owned(),
            repo,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn registry_reference_with_port_tag_and_digest_splits_into_parts() {
        let r: RegistryRef = format!("localhost:5000/lib/alpine:3.19@{D}")
            .parse()
            .unwrap();
        assert_eq!(r.host, "localhost:5000");
        assert_eq!(r.repo.as_str(), "lib/alpine");
        assert_eq!(r.tag.as_ref().map(Tag::as_str), Some("3.19"));
        assert_eq!(r.digest.as_ref().map(Digest::as_str), Some(D));
        assert_eq!(r.reference(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/lib/alpine:3.19@{D}"));
    }

    #[test]
    fn port_is_not_mistaken_for_a_tag_and_default_is_latest() {
        let r: RegistryRef = "127.0.0.1:5000/a".parse().unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), "latest");
    }

    #[test]
    fn bad_parts_are_named_in_the_error() {
        assert_eq!(
            "alpine".parse::<RegistryRef>(),
            Err(RefError::NoHost("alpine".into()))
        );
        assert!(
            matches!("h/Upper:t".parse::<RegistryRef>(), Err(RefError::Repo { name, .. }) if name == "Upper")
        );
        assert!(
            matches!("h/a:-bad".parse::<RegistryRef>(), Err(RefError::Tag { tag, .. }) if tag == "-bad")
        );
        assert!(matches!(
            "h/a@sha256:xyz".parse::<RegistryRef>(),
            Err(RefError::Digest { .. })
        ));
    }

    #[test]
    fn layout_reference_takes_tag_after_the_last_slash_only() {
        let r: ImageRef = "oci:/tmp/x.d/img:v1".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Layout(LayoutRef {
                path: "/tmp/x.d/img".into(),
                tag: Some("v1".into())
            })
        );
        let r: ImageRef = "oci:./dir".parse().unwrap();
        assert!(matches!(r, ImageRef::Layout(LayoutRef { tag: None, .. })));
        assert_eq!("oci:".parse::<ImageRef>(), Err(RefError::EmptyLayoutPath));
    }
}
