//! The generated route matcher on tricky paths: names with reserved words as components,
//! deep names, trailing slashes, percent-encoded slashes.

use http::Method;
use quayside_server::generated::{route, Operation, RouteError};

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

fn ok(method: Method, path: &str) -> (Operation, Vec<(&'static str, String)>) {
    let matched = route(&method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
    (matched.operation, matched.vars)
}

fn vars(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[test]
fn v2_root_with_and_without_slash_is_v2_check() {
    assert_eq!(ok(Method::GET, "/v2/"), (Operation::V2Check, vec![]));
    assert_eq!(ok(Method::GET, "/v2"), (Operation::V2Check, vec![]));
}

#[test]
fn catalog_is_matched_before_any_name() {
    assert_eq!(
        ok(Method::GET, "/v2/_catalog"),
        (Operation::CatalogList, vec![])
    );
}

#[test]
fn catalog_is_not_a_valid_name_component() {
    assert_eq!(
        route(&Method::GET, "/v2/_catalog/tags/list"),
        Err(RouteError::NameInvalid("_catalog".into()))
    );
}

#[test]
fn deep_name_keeps_every_component() {
    let path = format!("/v2/a/b/c/d/e/blobs/{DIGEST}");
    assert_eq!(
        ok(Method::GET, &path),
        (
            Operation::BlobGet,
            vars(&[("name", "a/b/c/d/e"), ("digest", DIGEST)])
        )
    );
}

#[test]
fn reserved_words_inside_a_name_are_name_components() {
    let cases = [
        (
            format!("/v2/blobs/blobs/{DIGEST}"),
            Operation::BlobGet,
            "blobs",
        ),
        (
            format!("/v2/a/manifests/blobs/{DIGEST}"),
            Operation::BlobGet,
            "a/manifests",
        ),
        (
            "/v2/tags/list/tags/list".to_string(),
            Operation::TagList,
            "tags/list",
        ),
        (
            "/v2/a/blobs/uploads/manifests/latest".to_string(),
            Operation::ManifestGet,
            "a/blobs/uploads",
        ),
        (
            format!("/v2/referrers/uploads/referrers/{DIGEST}"),
            Operation::ReferrerList,
            "referrers/uploads",
        ),
        (
            "/v2/a/tags/manifests/list".to_string(),
            Operation::ManifestGet,
            "a/tags",
        ),
    ];
    for (path, operation, name) in cases {
        let (op, vars) = ok(Method::GET, &path);
        assert_eq!(op, operation, "{path}");
        assert_eq!(
            vars.iter()
                .find(|(k, _)| *k == "name")
                .map(|(_, v)| v.as_str()),
            Some(name),
            "{path}"
        );
    }
}

#[test]
fn uploads_inside_a_name_routes_to_the_upload_session() {
    let (op, got) = ok(Method::PATCH, "/v2/x/blobs/uploads/blobs/uploads/abc-123");
    assert_eq!(op, Operation::UploadChunk);
    assert_eq!(
        got,
        vars(&[("name", "x/blobs/uploads"), ("session_id", "abc-123")])
    );
}

#[test]
fn upload_start_needs_the_trailing_slash() {
    assert_eq!(
        ok(Method::POST, "/v2/lib/app/blobs/uploads/").0,
        Operation::UploadStart
    );
    // Without it, `uploads` is a digest position: POST is not allowed there.
    assert_eq!(
        route(&Method::POST, "/v2/lib/app/blobs/uploads"),
        Err(RouteError::MethodNotAllowed {
            allow: vec!["GET", "HEAD", "DELETE"]
        })
    );
}

#[test]
fn trailing_slash_on_tags_list_is_not_found() {
    assert_eq!(
        route(&Method::GET, "/v2/a/tags/list/"),
        Err(RouteError::NotFound)
    );
}

#[test]
fn percent_encoded_slash_in_name_is_rejected() {
    for path in [
        "/v2/library%2Falpine/tags/list",
        "/v2/library%2falpine/tags/list",
    ] {
        assert!(
            matches!(route(&Method::GET, path), Err(RouteError::BadSegment(_))),
            "{path}"
        );
    }
}

#[test]
fn percent_encoded_colon_in_digest_is_decoded() {
    let path = format!("/v2/a/blobs/{}", DIGEST.replace(':', "%3A"));
    assert_eq!(
        ok(Method::HEAD, &path),
        (
            Operation::BlobHead,
            vars(&[("name", "a"), ("digest", DIGEST)])
        )
    );
}

#[test]
fn empty_name_component_is_name_invalid() {
    assert_eq!(
        route(&Method::GET, "/v2/a//b/tags/list"),
        Err(RouteError::NameInvalid("a//b".into()))
    );
}

#[test]
fn uppercase_name_is_name_invalid() {
    assert_eq!(
        route(&Method::GET, "/v2/Library/tags/list"),
        Err(RouteError::NameInvalid("Library".into()))
    );
}

#[test]
fn name_of_256_characters_is_name_invalid_and_255_is_fine() {
    let long = "a".repeat(256);
    assert_eq!(
        route(&Method::GET, &format!("/v2/{long}/tags/list")),
        Err(RouteError::NameInvalid(long))
    );
    let fine = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    assert_eq!(fine.len(), 255);
    assert_eq!(
        ok(Method::GET, &format!("/v2/{fine}/tags/list")).0,
        Operation::TagList
    );
}

#[test]
fn missing_name_is_not_found() {
    assert_eq!(
        route(&Method::GET, "/v2/tags/list"),
        Err(RouteError::NotFound)
    );
    assert_eq!(
        route(&Method::GET, "/v2/blobs/x"),
        Err(RouteError::NotFound)
    );
}

#[test]
fn unknown_endpoint_is_not_found() {
    assert_eq!(route(&Method::GET, "/v2/a/b"), Err(RouteError::NotFound));
    assert_eq!(
        route(&Method::GET, "/v3/a/tags/list"),
        Err(RouteError::NotFound)
    );
}

#[test]
fn wrong_method_lists_the_allowed_ones() {
    assert_eq!(
        route(&Method::POST, "/v2/a/manifests/latest"),
        Err(RouteError::MethodNotAllowed {
            allow: vec!["GET", "HEAD", "PUT", "DELETE"]
        })
    );
    // HEAD is answered wherever GET is, so it is listed too.
    assert_eq!(
        route(&Method::DELETE, "/v2/a/tags/list"),
        Err(RouteError::MethodNotAllowed {
            allow: vec!["GET", "HEAD"]
        })
    );
}

#[test]
fn head_runs_the_get_where_the_spec_has_no_head() {
    let (op, _) = ok(Method::HEAD, "/v2/a/tags/list");
    assert_eq!(op, ok(Method::GET, "/v2/a/tags/list").0);
    assert_eq!(ok(Method::HEAD, "/v2/").0, ok(Method::GET, "/v2/").0);
    // Where the spec has its own HEAD, that one runs.
    let (head, _) = ok(Method::HEAD, "/v2/a/manifests/latest");
    assert_ne!(head, ok(Method::GET, "/v2/a/manifests/latest").0);
}

#[test]
fn every_operation_of_the_spec_is_routable() {
    for op in Operation::ALL {
        let path = op
            .path()
            .replace("{name}", "lib/app")
            .replace("{digest}", DIGEST)
            .replace("{reference}", "latest")
            .replace("{session_id}", "abc");
        let method = Method::from_bytes(op.method().as_bytes()).expect("method");
        assert_eq!(ok(method, &path).0, op, "{} {path}", op.method());
    }
}

#[test]
fn repository_is_the_multi_segment_name_when_there_is_one() {
    let upload = route(&Method::POST, "/v2/a/b/blobs/uploads/").expect("routes");
    assert_eq!(upload.repository(), Some("a/b"));
    let catalog = route(&Method::GET, "/v2/_catalog").expect("routes");
    assert_eq!(catalog.repository(), None);
}
