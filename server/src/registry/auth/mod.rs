//! Authentication and authorisation, run by the generated `authorize` hook after routing
//! and before any parameter check (so an anonymous client learns nothing about a
//! repository). Each operation needs some access (`repository:<name>:pull`, …, see
//! [`required_access`]); Basic users get all of it, bearer tokens what their `access`
//! claim grants. Missing or bad credentials get 401 UNAUTHORIZED with a `WWW-Authenticate`
//! challenge; a valid token short of the access gets 403 DENIED.

mod basic;
mod token;

use base64::Engine as _;
use http::header::WWW_AUTHENTICATE;
use http::StatusCode;

use crate::config::AuthConfig;
use crate::generated::operations::Operation;
use crate::generated::routes::Route;
use crate::http::runtime::{parse_query, query_first, ApiError, ErrorCode, RequestMeta};

pub use basic::{htpasswd_entry, Htpasswd};
pub use token::{AccessClaim, TokenVerifier};

/// Access to one resource, as it appears in a token scope: `repository:library/alpine:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository` or `registry`.
    pub kind: &'static str,
    pub name: String,
    pub actions: Vec<&'static str>,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// The access an operation needs. `GET /v2/` needs none (only valid credentials).
/// A cross-repository mount also needs pull on `from`.
pub fn required_access(meta: &RequestMeta, route: &Route) -> Vec<Scope> {
    let repository = |actions: &[&'static str]| {
        route
            .repository()
            .map(|name| Scope {
                kind: "repository",
                name: name.to_owned(),
                actions: actions.to_vec(),
            })
            .into_iter()
            .collect::<Vec<_>>()
    };
    match route.operation {
        Operation::V2Check => Vec::new(),
        Operation::CatalogList => vec![Scope {
            kind: "registry",
            name: "catalog".to_owned(),
            actions: vec!["*"],
        }],
        Operation::BlobGet
        | Operation::BlobHead
        | Operation::ManifestGet
        | Operation::ManifestHead
        | Operation::TagList
        | Operation::ReferrerList
        | Operation::UploadStatus => repository(&["pull"]),
        Operation::UploadChunk
        | Operation::UploadComplete
        | Operation::UploadCancel
        | Operation::ManifestPut => repository(&["pull", "push"]),
        Operation::BlobDelete | Operation::ManifestDelete => repository(&["delete"]),
        Operation::UploadStart => {
            let mut scopes = repository(&["pull", "push"]);
            let query = parse_query(meta.uri.query());
            if let (Some(_), Some(from)) =
                (query_first(&query, "mount"), query_first(&query, "from"))
            {
                if route.repository() != Some(from) {
                    scopes.push(Scope {
                        kind: "repository",
                        name: from.to_owned(),
                        actions: vec!["pull"],
                    });
                }
            }
            scopes
        }
    }
}

/// How clients prove who they are.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Everyone may do everything.
    #[default]
    None,
    /// Basic auth; every known user may do everything.
    Basic { realm: String, users: Htpasswd },
    /// Bearer JWTs from the token service at `realm`.
    Token {
        realm: String,
        service: String,
        verifier: TokenVerifier,
    },
}

impl Auth {
    /// The scheme a configuration asks for, with its files read and checked.
    pub fn from_config(config: &AuthConfig) -> Result<Auth, String> {
        Ok(match config {
            AuthConfig::None => Auth::None,
            AuthConfig::Htpasswd(htpasswd) => Auth::Basic {
                realm: htpasswd.realm.clone(),
                users: Htpasswd::load(&htpasswd.path)?,
            },
            AuthConfig::Token(token) => {
                let bundle = std::fs::read(&token.rootcertbundle).map_err(|err| {
                    format!(
                        "reading token rootcertbundle {}: {err}",
                        token.rootcertbundle.display()
                    )
                })?;
                let verifier =
                    TokenVerifier::new(&token.issuer, &token.service, &bundle).map_err(|err| {
                        format!(
                            "token rootcertbundle {}: {err}",
                            token.rootcertbundle.display()
                        )
                    })?;
                Auth::Token {
                    realm: token.realm.clone(),
                    service: token.service.clone(),
                    verifier,
                }
            }
        })
    }

    /// Lets the request through, or says why not (401 with a challenge, or 403).
    pub async fn authorize(&self, meta: &RequestMeta, route: &Route) -> Result<(), ApiError> {
        match self {
            Auth::None => Ok(()),
            Auth::Basic { realm, users } => {
                let challenge = format!("Basic realm={}", quoted(realm));
                let Some((user, password)) = basic_credentials(meta) else {
                    return Err(unauthorized(
                        &challenge,
                        "authentication required: send Basic credentials",
                    ));
                };
                if users.verify(&user, &password).await {
                    Ok(())
                } else {
                    Err(unauthorized(&challenge, "invalid username or password"))
                }
            }
            Auth::Token {
                realm,
                service,
                verifier,
            } => {
                let scopes = required_access(meta, route);
                let challenge = |error: Option<&str>| {
                    let mut challenge =
                        format!("Bearer realm={},service={}", quoted(realm), quoted(service));
                    if !scopes.is_empty() {
                        let scope: Vec<String> = scopes.iter().map(Scope::to_string).collect();
                        challenge.push_str(&format!(",scope={}", quoted(&scope.join(" "))));
                    }
                    if let Some(error) = error {
                        challenge.push_str(&format!(",error={}", quoted(error)));
                    }
                    challenge
                };
                let Some(token) = bearer_token(meta) else {
                    return Err(unauthorized(
                        &challenge(None),
                        "authentication required: fetch a token from the realm in WWW-Authenticate",
                    )
                    .with_detail(access_detail(&scopes)));
                };
                let grants = verifier.verify(token).map_err(|reason| {
                    unauthorized(&challenge(Some("invalid_token")), reason)
                        .with_detail(access_detail(&scopes))
                })?;
                let missing: Vec<Scope> = scopes
                    .iter()
                    .filter_map(|scope| {
                        let actions: Vec<&'static str> = scope
                            .actions
                            .iter()
                            .copied()
                            .filter(|action| {
                                !grants
                                    .iter()
                                    .any(|grant| grant.allows(scope.kind, &scope.name, action))
                            })
                            .collect();
                        (!actions.is_empty()).then(|| Scope {
                            actions,
                            ..scope.clone()
                        })
                    })
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                let wanted: Vec<String> = missing.iter().map(Scope::to_string).collect();
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Denied,
                    format!("the token does not grant {}", wanted.join(" ")),
                )
                .with_detail(access_detail(&missing))
                .with_header(WWW_AUTHENTICATE, &challenge(Some("insufficient_scope"))))
            }
        }
    }
}

fn unauthorized(challenge: &str, message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        .with_header(WWW_AUTHENTICATE, challenge)
}

/// The detail Docker's registry gives: each access as `{type, name, action}`.
fn access_detail(scopes: &[Scope]) -> serde_json::Value {
    scopes
        .iter()
        .flat_map(|scope| {
            scope.actions.iter().map(|action| {
                serde_json::json!({ "type": scope.kind, "name": scope.name, "action": action })
            })
        })
        .collect()
}

/// A quoted-string for a challenge parameter (RFC 9110 §5.6.4).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The credentials of an `Authorization` header of `scheme` (case-insensitive).
fn credentials<'a>(meta: &'a RequestMeta, scheme: &str) -> Option<&'a str> {
    let value = meta.header("authorization")?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn basic_credentials(meta: &RequestMeta) -> Option<(String, String)> {
    let encoded = credentials(meta, "Basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn bearer_token(meta: &RequestMeta) -> Option<&str> {
    credentials(meta, "Bearer").filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::routes::route;
    use http::Method;

    fn meta(method: Method, uri: &str) -> RequestMeta {
        RequestMeta {
            method,
            uri: uri.parse().unwrap(),
            headers: http::HeaderMap::new(),
            remote_addr: None,
        }
    }

    fn scopes(method: Method, uri: &str) -> Vec<String> {
        let meta = meta(method, uri);
        let route = route(&meta.method, meta.uri.path()).unwrap();
        required_access(&meta, &route)
            .iter()
            .map(Scope::to_string)
            .collect()
    }

    #[test]
    fn operations_need_the_actions_docker_token_auth_defines() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(scopes(Method::GET, "/v2/").is_empty());
        assert_eq!(scopes(Method::GET, "/v2/_catalog"), ["registry:catalog:*"]);
        assert_eq!(
            scopes(Method::HEAD, &format!("/v2/team/app/blobs/{digest}")),
            ["repository:team/app:pull"]
        );
        assert_eq!(
            scopes(Method::PUT, "/v2/team/app/manifests/v1"),
            ["repository:team/app:pull,push"]
        );
        assert_eq!(
            scopes(Method::DELETE, "/v2/team/app/blobs/uploads/abc"),
            ["repository:team/app:pull,push"]
        );
        assert_eq!(
            scopes(Method::DELETE, "/v2/team/app/manifests/v1"),
            ["repository:team/app:delete"]
        );
        assert_eq!(
            scopes(
                Method::POST,
                &format!("/v2/team/app/blobs/uploads/?mount={digest}&from=library/base")
            ),
            [
                "repository:team/app:pull,push",
                "repository:library/base:pull"
            ]
        );
    }

    #[test]
    fn challenge_parameters_are_quoted_strings() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }

    #[test]
    fn authorization_scheme_is_case_insensitive() {
        let mut m = meta(Method::GET, "/v2/");
        m.headers
            .insert("authorization", "basic YWxpY2U6cHc6eA==".parse().unwrap());
        assert_eq!(
            basic_credentials(&m),
            Some(("alice".to_owned(), "pw:x".to_owned()))
        );
        assert_eq!(bearer_token(&m), None);
    }
}
