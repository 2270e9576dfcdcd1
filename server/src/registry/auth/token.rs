//! Docker token auth: verifying the bearer JWTs an external token service issues. A token
//! is accepted when one of the configured keys signed it (ES256/ES384 or RS*/PS*), its
//! `iss` is the configured issuer, its `aud` is this registry's service name, and it is
//! within `nbf`..`exp`. What it allows is its `access` claim.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Clock skew tolerated between the token service and the registry.
const LEEWAY_SECS: u64 = 30;

/// One grant of a token: `{"type":"repository","name":"library/alpine","actions":["pull"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessClaim {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl AccessClaim {
    /// Whether this grant covers `action` on `kind:name`; `*` grants every action.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    access: Vec<AccessClaim>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Ec,
    Rsa,
}

/// Checks tokens against the configured issuer, service and signing keys.
#[derive(Clone)]
pub struct TokenVerifier {
    issuer: String,
    service: String,
    keys: Vec<(Family, DecodingKey)>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier trusting the keys in `pem_bundle`: certificates and/or `PUBLIC KEY`
    /// blocks, EC (P-256/P-384) or RSA.
    pub fn new(issuer: &str, service: &str, pem_bundle: &[u8]) -> Result<TokenVerifier, String> {
        let blocks =
            pem::parse_many(pem_bundle).map_err(|err| format!("not a PEM bundle: {err}"))?;
        let mut keys = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            let text = pem::encode(block);
            let key = if let Ok(key) = DecodingKey::from_ec_pem(text.as_bytes()) {
                (Family::Ec, key)
            } else if let Ok(key) = DecodingKey::from_rsa_pem(text.as_bytes()) {
                (Family::Rsa, key)
            } else {
                return Err(format!(
                    "PEM block {} ({}) holds no EC or RSA public key",
                    index + 1,
                    block.tag()
                ));
            };
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("no certificates or public keys in the bundle".to_owned());
        }
        Ok(TokenVerifier {
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            keys,
        })
    }

    /// The token's grants, or why it is not acceptable (said to the client: names no key).
    pub fn verify(&self, token: &str) -> Result<Vec<AccessClaim>, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the bearer token is not a JWT".to_owned())?;
        let family = match header.alg {
            Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            other => return Err(format!("token algorithm {other:?} is not accepted")),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.service]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        for (_, key) in self.keys.iter().filter(|(f, _)| *f == family) {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims.access),
                // Another key may have signed it.
                Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => continue,
                Err(err) => return Err(self.explain(err.kind())),
            }
        }
        Err("the token's signature does not match any trusted key".to_owned())
    }

    fn explain(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidIssuer => format!("the token was not issued by {:?}", self.issuer),
            ErrorKind::InvalidAudience => {
                format!("the token is not for service {:?}", self.service)
            }
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim:?} claim"),
            _ => "the token is malformed".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_without_a_usable_key_are_refused() {
        let empty = TokenVerifier::new("iss", "svc", b"").err().unwrap();
        assert!(empty.contains("no certificates"), "{empty}");
        let junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let err = TokenVerifier::new("iss", "svc", junk.as_bytes())
            .err()
            .unwrap();
        assert!(err.contains("PEM block 1 (PUBLIC KEY)"), "{err}");
    }

    #[test]
    fn star_grants_every_action_on_its_resource_only() {
        let grant = AccessClaim {
            kind: "repository".to_owned(),
            name: "team/app".to_owned(),
            actions: vec!["*".to_owned()],
        };
        assert!(grant.allows("repository", "team/app", "delete"));
        assert!(!grant.allows("repository", "team/other", "pull"));
        assert!(!grant.allows("registry", "team/app", "pull"));
    }
}
