//! `quayside-codegen`: regenerate everything derived from `spec/`, or check it is current.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Regenerates the server stubs, the client, the schema types, the bundled spec and the API
/// reference from `spec/`.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Do not write: exit 1, naming the files, when any committed file differs.
    #[arg(long)]
    check: bool,
    /// The workspace root (holding `spec/`, `server/`, `client/`).
    #[arg(long, default_value_os_t = default_root())]
    root: PathBuf,
}

/// The workspace this binary belongs to: `cargo run` names the package folder at run time
/// (right even when a shared target dir holds a binary built from another checkout);
/// otherwise the folder it was built from.
fn default_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.join("..")
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("quayside-codegen: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let spec = quayside_codegen::SpecInput::load(&args.root)?;
    let files = quayside_codegen::generate_all(&spec)?;
    if args.check {
        let stale = quayside_codegen::stale_files(&args.root, &files);
        if stale.is_empty() {
            println!("{} generated files are up to date", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for path in &stale {
            eprintln!(
                "stale: {} (run `cargo run -p quayside-codegen`)",
                path.display()
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    let written = quayside_codegen::write_files(&args.root, &files)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!("{} generated files, {} changed", files.len(), written.len());
    Ok(ExitCode::SUCCESS)
}
