//! Authentication: the challenge a client gets without credentials, Basic, the Docker
//! token (Bearer) flow, and the refusal of wrong credentials. They need `--username` and
//! `--password` (or `--token`); without them they report Skip.
//!
//! Requests here deliberately leave out or replace the configured credentials, so they
//! go through their own client; each exchange is summarised with `ctx.note`.

use std::time::Duration;

use serde_json::Value;

use super::edge::expect_envelope;
use crate::check::{ensure, fail, skip, unsupported, Check, CheckResult, Level, Outcome, Workflow};
use crate::http::{Auth, Challenge, Response};
use crate::runner::Ctx;

/// How a request here authenticates.
enum Cred<'a> {
    Anonymous,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

async fn raw_get(ctx: &Ctx, url: &str, cred: Cred<'_>) -> Result<Response, Outcome> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(ctx.config().insecure)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| fail(format!("http client: {e}")))?;
    let mut req = client.get(url);
    let label = match cred {
        Cred::Anonymous => "anonymous",
        Cred::Basic(u, p) => {
            req = req.basic_auth(u, Some(p));
            "basic"
        }
        Cred::Bearer(t) => {
            req = req.bearer_auth(t);
            "bearer"
        }
    };
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("GET {url}: {e}")))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let final_url = resp.url().to_string();
    let body = resp
        .bytes()
        .await
        .map_err(|e| fail(format!("GET {url}: {e}")))?;
    ctx.note(format!(
        "GET {url} ({label}) -> {status} WWW-Authenticate: {:?}",
        headers.get("WWW-Authenticate")
    ));
    Ok(Response {
        status,
        headers,
        body,
        url: final_url,
    })
}

/// Parses one challenge, failing the check readably when it is malformed.
fn parse_challenge(header: &str) -> Result<Challenge, Outcome> {
    crate::http::parse_challenge(header).map_err(fail)
}

/// The challenge of an anonymous request to `path`; skips when no credentials are set.
async fn challenge(ctx: &Ctx, path: &str) -> Result<(Response, Challenge), Outcome> {
    if ctx.config().auth == Auth::None {
        return Err(skip(
            "no credentials configured (--username/--password or --token)",
        ));
    }
    let resp = raw_get(ctx, &ctx.url(path), Cred::Anonymous).await?;
    ensure(resp.status == 401, || {
        format!(
            "anonymous GET {path} answered {}, expected 401",
            resp.status
        )
    })?;
    let header = resp.require_header("WWW-Authenticate")?;
    let parsed = parse_challenge(header)?;
    ensure(
        ["basic", "bearer"].contains(&parsed.scheme.to_ascii_lowercase().as_str()),
        || {
            format!(
                "challenge scheme {:?} is neither Basic nor Bearer",
                parsed.scheme
            )
        },
    )?;
    ensure(parsed.params.contains_key("realm"), || {
        format!("challenge {header:?} has no realm")
    })?;
    Ok((resp, parsed))
}

/// Fetches a token from a Bearer challenge's realm with the configured Basic credentials.
async fn fetch_token(ctx: &Ctx, c: &Challenge) -> Result<String, Outcome> {
    let Auth::Basic { username, password } = &ctx.config().auth else {
        return Err(skip("token flow needs --username/--password"));
    };
    let realm = &c.params["realm"];
    let mut url = realm.clone();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for key in ["service", "scope"] {
        if let Some(v) = c.params.get(key) {
            url.push_str(&format!(
                "{sep}{key}={}",
                v.replace(' ', "%20").replace(':', "%3A")
            ));
            sep = '&';
        }
    }
    let resp = raw_get(ctx, &url, Cred::Basic(username, password)).await?;
    resp.expect_status(&[200])?;
    let body: Value = resp.json()?;
    body.get("token")
        .or_else(|| body.get("access_token"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            fail(format!(
                "token response has neither token nor access_token: {body}"
            ))
        })
}

/// An authenticated GET of `path` following whatever scheme the registry challenges with.
async fn authenticated_get(ctx: &Ctx, path: &str, c: &Challenge) -> Result<Response, Outcome> {
    let url = ctx.url(path);
    match (&ctx.config().auth, c.scheme.to_ascii_lowercase().as_str()) {
        (Auth::Basic { username, password }, "basic") => {
            raw_get(ctx, &url, Cred::Basic(username, password)).await
        }
        (Auth::Bearer(token), _) => raw_get(ctx, &url, Cred::Bearer(token)).await,
        (_, _) => {
            let token = fetch_token(ctx, c).await?;
            raw_get(ctx, &url, Cred::Bearer(&token)).await
        }
    }
}

fn scheme_is(c: &Challenge, scheme: &str) -> CheckResult {
    if c.scheme.eq_ignore_ascii_case(scheme) {
        Ok(())
    } else {
        Err(unsupported(format!(
            "registry challenges with {}, not {scheme}",
            c.scheme
        )))
    }
}

/// The auth checks.
pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "auth.challenge.base-401",
            Workflow::Auth,
            Level::Must,
            "anonymous GET /v2/ is 401 with a well-formed WWW-Authenticate (Basic or Bearer, realm)",
            "end-1 MUST: 401 with WWW-Authenticate when authentication is required",
            |ctx| async move { challenge(&ctx, "/v2/").await.map(|_| ()) },
        ),
        Check::new(
            "auth.challenge.unauthorized-envelope",
            Workflow::Auth,
            Level::Must,
            "the anonymous 401 body is an error envelope with UNAUTHORIZED",
            "error codes MUST: UNAUTHORIZED for a missing or rejected credential",
            |ctx| async move {
                let (resp, _) = challenge(&ctx, "/v2/").await?;
                expect_envelope(&resp, "401")?;
                resp.expect_error_code(&["UNAUTHORIZED"])
            },
        ),
        Check::new(
            "auth.challenge.repository-scope",
            Workflow::Auth,
            Level::Should,
            "a Bearer challenge on a repository names service and scope repository:<name>:pull",
            "Docker token auth SHOULD: the challenge tells the client which scope to ask for",
            |ctx| async move {
                let repo = ctx.repo();
                let (_, c) = challenge(&ctx, &format!("/v2/{repo}/tags/list")).await?;
                scheme_is(&c, "Bearer")?;
                let scope = c.params.get("scope").ok_or_else(|| fail("Bearer challenge without scope"))?;
                ensure(scope.split(' ').any(|s| s.starts_with(&format!("repository:{repo}:")) && s.contains("pull")), || {
                    format!("scope {scope:?} does not name repository:{repo}:pull")
                })?;
                ensure(c.params.contains_key("service"), || "Bearer challenge without service".to_owned())
            },
        ),
        Check::new(
            "auth.basic.accepted",
            Workflow::Auth,
            Level::Must,
            "with a Basic challenge, the configured credentials get 200 on /v2/",
            "RFC 7617 + end-1: valid credentials are accepted",
            |ctx| async move {
                let (_, c) = challenge(&ctx, "/v2/").await?;
                scheme_is(&c, "Basic")?;
                authenticated_get(&ctx, "/v2/", &c).await?.expect_status(&[200])?;
                Ok(())
            },
        ),
        Check::new(
            "auth.bearer.token-flow",
            Workflow::Auth,
            Level::Must,
            "with a Bearer challenge, a token from the realm (service, scope) gets 200",
            "Docker token auth MUST: a token from the realm authorises the retried request",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let path = format!("/v2/{repo}/tags/list");
                let (_, c) = challenge(&ctx, &path).await?;
                scheme_is(&c, "Bearer")?;
                authenticated_get(&ctx, &path, &c).await?.expect_status(&[200])?;
                Ok(())
            },
        ),
        Check::new(
            "auth.wrong-password-401",
            Workflow::Auth,
            Level::Must,
            "a wrong password is refused with 401 UNAUTHORIZED (not 200, not 5xx)",
            "end-1 MUST: rejected credentials get 401 with the UNAUTHORIZED envelope",
            |ctx| async move {
                let (_, c) = challenge(&ctx, "/v2/").await?;
                let Auth::Basic { username, .. } = &ctx.config().auth else {
                    return Err(skip("needs --username/--password"));
                };
                let wrong = format!("wrong-{}", ctx.tag("pw"));
                if c.scheme.eq_ignore_ascii_case("basic") {
                    let resp = raw_get(&ctx, &ctx.url("/v2/"), Cred::Basic(username, &wrong)).await?;
                    resp.expect_status(&[401])?;
                    return resp.expect_error_code(&["UNAUTHORIZED"]);
                }
                let realm = &c.params["realm"];
                let resp = raw_get(&ctx, realm, Cred::Basic(username, &wrong)).await?;
                ensure(resp.status == 401 || resp.status == 403, || format!("token realm gave {} for a wrong password", resp.status))
            },
        ),
        Check::new(
            "auth.bearer.garbage-token-401",
            Workflow::Auth,
            Level::Must,
            "a made-up Bearer token is refused with 401",
            "end-1 MUST: an invalid credential never authorises",
            |ctx| async move {
                let (_, c) = challenge(&ctx, "/v2/").await?;
                scheme_is(&c, "Bearer")?;
                let resp = raw_get(&ctx, &ctx.url("/v2/"), Cred::Bearer("not.a.token")).await?;
                resp.expect_status(&[401])?;
                Ok(())
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::parse_challenge;

    #[test]
    fn bearer_challenge_params_parse_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://a.test/token",service="reg",scope="repository:x/y:pull,push""#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.params["realm"], "https://a.test/token");
        assert_eq!(c.params["scope"], "repository:x/y:pull,push");
        assert_eq!(c.params["service"], "reg");
    }

    #[test]
    fn challenge_with_unterminated_quote_is_refused() {
        assert!(parse_challenge(r#"Basic realm="oops"#).is_err());
    }
}
