//! The committed generated files must equal what the spec produces: `--check` passes on the
//! repository, and fails, naming the files, once the spec changes.

use std::path::Path;
use std::process::Command;

fn codegen(args: &[&str], root: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quayside-codegen"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run quayside-codegen")
}

/// A copy of `spec/` and of every committed generated file, so the tool can be run on it
/// without touching the repository.
fn copy_of_repo() -> tempfile::TempDir {
    let repo = super::repo_root();
    let spec = quayside_codegen::SpecInput::load(&repo).expect("repo spec loads");
    let files = quayside_codegen::generate_all(&spec).expect("generation succeeds");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo.join("spec"), &tmp.path().join("spec"));
    for file in &files {
        let to = tmp.path().join(&file.path);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        if let Ok(bytes) = std::fs::read(repo.join(&file.path)) {
            std::fs::write(&to, bytes).expect("copy generated file");
        }
    }
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn committed_generated_files_are_current() {
    let out = codegen(&["--check"], &super::repo_root());
    assert!(
        out.status.success(),
        "generated files are stale; run `cargo run -p quayside-codegen`:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn editing_an_operation_summary_makes_check_fail_naming_the_server_files() {
    let tmp = copy_of_repo();
    assert!(
        codegen(&["--check"], tmp.path()).status.success(),
        "copy starts current"
    );

    edit_spec(tmp.path(), |doc| {
        let get = doc
            .pointer_mut("/paths/~1v2~1{name}~1blobs~1{digest}/get")
            .expect("blob_get exists");
        get["summary"] = serde_json::json!("An edited summary");
    });

    let out = codegen(&["--check"], tmp.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "--check must fail on a stale tree"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stale: server/src/generated/api.rs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stale: server/src/generated/operations.rs"),
        "{stderr}"
    );

    // Regenerating makes the tree current again, and a second run changes nothing.
    assert!(codegen(&[], tmp.path()).status.success());
    assert!(codegen(&["--check"], tmp.path()).status.success());
    let again = codegen(&[], tmp.path());
    assert!(String::from_utf8_lossy(&again.stdout).contains(", 0 changed"));
}

#[test]
fn adding_a_response_header_makes_check_fail() {
    let tmp = copy_of_repo();
    edit_spec(tmp.path(), |doc| {
        let ok = doc
            .pointer_mut("/paths/~1v2~1{name}~1tags~1list/get/responses/200")
            .expect("tag_list 200 exists");
        let headers = ok
            .as_object_mut()
            .expect("object")
            .entry("headers")
            .or_insert_with(|| serde_json::json!({}));
        headers["X-Edited"] = serde_json::json!({"schema": {"type": "string"}});
    });

    let out = codegen(&["--check"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stale: server/src/generated/operations.rs"),
        "{stderr}"
    );
}

/// Rewrites the copy's `spec/openapi.yaml` through `edit` (as a JSON value).
fn edit_spec(root: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = root.join("spec/openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("read spec");
    let mut doc: serde_json::Value = serde_yaml::from_str(&text).expect("parse spec");
    edit(&mut doc);
    let edited = serde_yaml::to_string(&doc).expect("serialise spec");
    assert_ne!(edited, text, "the edit applies");
    std::fs::write(&path, edited).expect("write spec");
}
