//! `spec-lint [--media-type TYPE] FILE...`: checks documents against Quayside's JSON Schemas.
//!
//! Without `--media-type`, each file is checked against the schema of its own top-level
//! `mediaType`. A `+json` type without a schema (vendor artifact configs, the empty
//! descriptor, the withdrawn artifact manifest) is checked for strict JSON only.
//! Exit status: 0 if every file is valid, 1 if any is invalid, 2 on a usage error (bad
//! arguments, unreadable file, unknown media type).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use quayside_spec::schemas::{self, ValidateError, Violation};

#[derive(Parser)]
#[command(
    name = "spec-lint",
    about = "Validate OCI/Docker documents against Quayside's JSON Schemas"
)]
struct Args {
    /// Media type to validate every file as (default: each document's own mediaType).
    #[arg(long = "media-type", value_name = "TYPE")]
    media_type: Option<String>,
    /// Documents to check.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// Outcome of one file.
enum Outcome {
    Valid,
    Invalid(Vec<Violation>),
    Usage(String),
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let usage = err.use_stderr();
            let _ = err.print();
            return ExitCode::from(if usage { 2 } else { 0 });
        }
    };
    if let Some(media_type) = &args.media_type {
        if !is_checkable(media_type) {
            eprintln!("spec-lint: no schema for media type {media_type:?}");
            return ExitCode::from(2);
        }
    }
    let mut stdout = std::io::stdout().lock();
    let (mut invalid, mut usage) = (false, false);
    for file in &args.files {
        let name = file.display();
        match lint(file, args.media_type.as_deref()) {
            Outcome::Valid => {}
            Outcome::Invalid(violations) => {
                invalid = true;
                for violation in violations {
                    let _ = writeln!(stdout, "{name}: {violation}");
                }
            }
            Outcome::Usage(message) => {
                usage = true;
                eprintln!("spec-lint: {name}: {message}");
            }
        }
    }
    ExitCode::from(if usage {
        2
    } else if invalid {
        1
    } else {
        0
    })
}

/// A media type spec-lint can check: one with a schema, or any `+json` type (JSON only).
fn is_checkable(media_type: &str) -> bool {
    schemas::schema_for_media_type(media_type).is_some() || media_type.ends_with("+json")
}

fn lint(file: &PathBuf, media_type: Option<&str>) -> Outcome {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(err) => return Outcome::Usage(format!("cannot read: {err}")),
    };
    let media_type = match media_type {
        Some(media_type) => media_type.to_owned(),
        None => match own_media_type(&bytes) {
            Ok(media_type) => media_type,
            Err(outcome) => return outcome,
        },
    };
    match schemas::validate(&media_type, &bytes) {
        Ok(()) => Outcome::Valid,
        Err(ValidateError::Invalid(violations)) => Outcome::Invalid(violations),
        Err(ValidateError::UnknownMediaType(_)) if media_type.ends_with("+json") => {
            match schemas::parse_strict(&bytes) {
                Ok(_) => Outcome::Valid,
                Err(violation) => Outcome::Invalid(vec![violation]),
            }
        }
        Err(ValidateError::UnknownMediaType(media_type)) => Outcome::Usage(format!(
            "no schema for media type {media_type:?}; pass --media-type"
        )),
    }
}

/// The document's top-level `mediaType`; a document that is not JSON is simply invalid.
fn own_media_type(bytes: &[u8]) -> Result<String, Outcome> {
    let value =
        schemas::parse_strict(bytes).map_err(|violation| Outcome::Invalid(vec![violation]))?;
    match value
        .get("mediaType")
        .and_then(|media_type| media_type.as_str())
    {
        Some(media_type) => Ok(media_type.to_owned()),
        None => Err(Outcome::Usage(
            "no top-level mediaType; pass --media-type".to_owned(),
        )),
    }
}
