//! The grammar of names, tags, digests and references, shared by server, client and suite.
//!
//! Each type can only hold a value that matches the distribution-spec grammar, so code that
//! receives one never re-validates. All of them print, parse and (de)serialize as the plain
//! string the protocol carries.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// Longest repository name we accept (the spec leaves the cap to registries; 255 keeps
/// names usable as path and key material everywhere).
pub const MAX_NAME_LEN: usize = 255;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("name grammar compiles")
});
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("tag grammar compiles")
});
static DIGEST_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").expect("digest grammar compiles")
});

/// Why a string is not a valid name, tag, digest or reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    #[error("invalid repository name {value:?}: {reason}")]
    InvalidName { value: String, reason: &'static str },
    #[error("invalid tag {value:?}: a tag is 1 to 128 of [A-Za-z0-9_.-] and cannot start with '.' or '-'")]
    InvalidTag { value: String },
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: String },
    #[error("unsupported digest algorithm {algorithm:?}: use sha256 or sha512")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("invalid reference {value:?}: expected a tag or a digest (algorithm:hex)")]
    InvalidReference { value: String },
}

/// The registered digest algorithms this project can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The identifier used before the `:` in a digest.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex-encoded hash.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            _ => Err(GrammarError::UnsupportedAlgorithm {
                algorithm: s.to_owned(),
            }),
        }
    }
}

/// A content digest `algorithm:encoded`.
///
/// Any digest matching the general grammar parses, so that a registry can answer
/// "unsupported" rather than "malformed"; [`Digest::algorithm`] is `None` for those.
/// Registered algorithms must carry a correctly sized lowercase hex encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    text: String,
    colon: usize,
    algorithm: Option<Algorithm>,
}

impl Digest {
    /// SHA-256 digest of `bytes` (the default algorithm for new content).
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::of_with(Algorithm::Sha256, bytes)
    }

    /// Digest of `bytes` with the given algorithm.
    pub fn of_with(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut d = Digester::new(algorithm);
        d.update(bytes);
        d.finalize()
    }

    /// Builds a digest from a registered algorithm and its lowercase hex encoding.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Digest, GrammarError> {
        format!("{algorithm}:{hex}").parse()
    }

    /// Parses and additionally requires a registered algorithm.
    pub fn parse_supported(s: &str) -> Result<Digest, GrammarError> {
        let d: Digest = s.parse()?;
        d.supported_algorithm()?;
        Ok(d)
    }

    /// The registered algorithm, or `None` if the digest names an unregistered one.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm
    }

    /// The registered algorithm, or an `UnsupportedAlgorithm` error naming it.
    pub fn supported_algorithm(&self) -> Result<Algorithm, GrammarError> {
        self.algorithm
            .ok_or_else(|| GrammarError::UnsupportedAlgorithm {
                algorithm: self.algorithm_str().to_owned(),
            })
    }

    /// The algorithm text before the `:`.
    pub fn algorithm_str(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The encoded hash after the `:` (lowercase hex for registered algorithms).
    pub fn encoded(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The whole `algorithm:encoded` string.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Digest {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| GrammarError::InvalidDigest {
            value: s.to_owned(),
            reason,
        };
        if !DIGEST_RE.is_match(s) {
            return Err(invalid(
                "expected algorithm:encoded, e.g. sha256:<64 lowercase hex>".into(),
            ));
        }
        let colon = s.find(':').ok_or_else(|| invalid("missing ':'".into()))?;
        let algorithm = s[..colon].parse::<Algorithm>().ok();
        if let Some(alg) = algorithm {
            let enc = &s[colon + 1..];
            let hex_ok = enc
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if enc.len() != alg.hex_len() || !hex_ok {
                return Err(invalid(format!(
                    "{alg} needs exactly {} lowercase hex characters",
                    alg.hex_len()
                )));
            }
        }
        Ok(Digest {
            text: s.to_owned(),
            colon,
            algorithm,
        })
    }
}

impl TryFrom<String> for Digest {
    type Error = GrammarError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A streaming hasher producing a [`Digest`]; sha2 picks SHA-NI at run time.
#[derive(Clone)]
pub struct Digester {
    inner: Hasher,
}

#[derive(Clone)]
enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Digester {
        let inner = match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        };
        Digester { inner }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Digest {
        let (algorithm, hex) = match self.inner {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        let text = format!("{algorithm}:{hex}");
        Digest {
            colon: algorithm.as_str().len(),
            text,
            algorithm: Some(algorithm),
        }
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// A repository name such as `library/alpine` (slash-separated components).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl FromStr for RepoName {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| GrammarError::InvalidName {
            value: s.to_owned(),
            reason,
        };
        if s.len() > MAX_NAME_LEN {
            return Err(invalid("longer than 255 characters"));
        }
        if !NAME_RE.is_match(s) {
            return Err(invalid(
                "components are lowercase letters and digits, joined by '.', '_', '__' or \
                 dashes, separated by single '/'",
            ));
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl TryFrom<String> for RepoName {
    type Error = GrammarError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RepoName> for String {
    fn from(n: RepoName) -> String {
        n.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag such as `latest` or `v1.2.3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if TAG_RE.is_match(s) {
            Ok(Tag(s.to_owned()))
        } else {
            Err(GrammarError::InvalidTag {
                value: s.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for Tag {
    type Error = GrammarError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference path segment: a tag or a digest.
///
/// Tags cannot contain `:` and digests always do, so the two never overlap.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn as_tag(&self) -> Option<&Tag> {
        match self {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        }
    }

    pub fn as_digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }
}

impl FromStr for Reference {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            // A digest-shaped reference reports the digest's own error (DIGEST_INVALID).
            s.parse().map(Reference::Digest)
        } else {
            s.parse()
                .map(Reference::Tag)
                .map_err(|_| GrammarError::InvalidReference {
                    value: s.to_owned(),
                })
        }
    }
}

impl TryFrom<String> for Reference {
    type Error = GrammarError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Reference> for String {
    fn from(r: Reference) -> String {
        r.to_string()
    }
}

impl From<Tag> for Reference {
    fn from(t: Tag) -> Self {
        Reference::Tag(t)
    }
}

impl From<Digest> for Reference {
    fn from(d: Digest) -> Self {
        Reference::Digest(d)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn name_ok(s: &str) -> bool {
        s.parse::<RepoName>().is_ok()
    }

    #[test]
    fn names_with_separators_and_path_words_are_valid() {
        for ok in [
            "a",
            "library/alpine",
            "a/b/blobs/c",
            "a/manifests/tags/referrers/uploads",
            "my.org/team__x/app-1",
            "a---b",
            "a_b.c",
            "0/9",
        ] {
            assert!(name_ok(ok), "{ok} should be valid");
        }
    }

    #[test]
    fn malformed_names_are_rejected() {
        for bad in [
            "",
            "_catalog",
            "a/_catalog",
            "a//b",
            "a..b",
            "a___b",
            "Alpine",
            "a/",
            "/a",
            "a-",
            "-a",
            "a.-b",
            "a b",
            "ä",
        ] {
            assert!(!name_ok(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn name_length_is_capped_at_255() {
        let max = "a".repeat(255);
        assert!(name_ok(&max));
        let err = "a".repeat(256).parse::<RepoName>().unwrap_err();
        assert!(matches!(err, GrammarError::InvalidName { reason, .. } if reason.contains("255")));
    }

    #[test]
    fn name_components_split_on_slash() {
        let n: RepoName = "a/b/blobs/c".parse().unwrap();
        assert_eq!(n.components().collect::<Vec<_>>(), ["a", "b", "blobs", "c"]);
    }

    #[test]
    fn tags_follow_the_grammar_and_length_limit() {
        for ok in ["latest", "_x", "V1.2.3-rc_1", "0"] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok}");
        }
        assert!("a".repeat(128).parse::<Tag>().is_ok());
        for bad in ["", ".hidden", "-x", "a:b", "a/b", "a+b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digest_of_empty_input_is_the_known_sha256() {
        let d = Digest::of(b"");
        assert_eq!(d.as_str(), EMPTY_SHA256);
        assert_eq!(d.algorithm(), Some(Algorithm::Sha256));
        assert_eq!(d.algorithm_str(), "sha256");
        assert_eq!(d.encoded().len(), 64);
        assert_eq!(d, EMPTY_SHA256.parse().unwrap());
    }

    #[test]
    fn sha512_digest_matches_the_known_value() {
        let d = Digest::of_with(Algorithm::Sha512, b"abc");
        assert_eq!(
            d.encoded(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn streaming_digester_equals_one_shot_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = Digester::new(Algorithm::Sha512);
        for chunk in data.chunks(777) {
            h.update(chunk);
        }
        assert_eq!(h.finalize(), Digest::of_with(Algorithm::Sha512, &data));
    }

    #[test]
    fn registered_digests_need_exact_lowercase_hex() {
        let upper = EMPTY_SHA256.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "sha256:abc",
            &upper,
            &format!("{EMPTY_SHA256}0"),
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:",
            ":abc",
            "sha256",
            "SHA256:abc",
            "sha256::abc",
        ] {
            assert!(
                matches!(
                    bad.parse::<Digest>(),
                    Err(GrammarError::InvalidDigest { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unregistered_algorithms_parse_but_are_flagged_unsupported() {
        let d: Digest = "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"
            .parse()
            .unwrap();
        assert_eq!(d.algorithm(), None);
        assert_eq!(d.algorithm_str(), "multihash+base58");
        assert!(matches!(
            d.supported_algorithm(),
            Err(GrammarError::UnsupportedAlgorithm { algorithm }) if algorithm == "multihash+base58"
        ));
        assert!(Digest::parse_supported("md5:abcd").is_err());
        assert!(Digest::parse_supported(EMPTY_SHA256).is_ok());
    }

    #[test]
    fn reference_is_a_digest_when_it_has_a_colon() {
        assert_eq!(
            "latest".parse::<Reference>().unwrap(),
            Reference::Tag("latest".parse().unwrap())
        );
        let r: Reference = EMPTY_SHA256.parse().unwrap();
        assert_eq!(r.as_digest().map(Digest::as_str), Some(EMPTY_SHA256));
        assert!(matches!(
            "sha256:nothex".parse::<Reference>(),
            Err(GrammarError::InvalidDigest { .. })
        ));
        assert!(matches!(
            ".bad".parse::<Reference>(),
            Err(GrammarError::InvalidReference { .. })
        ));
    }

    #[test]
    fn values_serialize_as_plain_strings_and_validate_on_the_way_in() {
        let d = Digest::of(b"");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{EMPTY_SHA256}\"")
        );
        let back: Digest = serde_json::from_str(&format!("\"{EMPTY_SHA256}\"")).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
        let n: RepoName = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"a/b\"");
        assert!(serde_json::from_str::<RepoName>("\"A\"").is_err());
        let r: Reference = serde_json::from_str("\"v1\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"v1\"");
        assert!(serde_json::from_str::<Tag>("\"-x\"").is_err());
    }
}
