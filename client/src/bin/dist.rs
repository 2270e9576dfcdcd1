//! `dist`: copy, push, pull, list and inspect images on OCI registries and in OCI image
//! layouts. Run `dist --help` or `dist <command> --help`.

// Argument docs are clap help text, where `[:TAG]` means optional, not a doc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use quayside_client::sdk::auth::{
    docker_config_credentials, docker_config_path, store_docker_credentials, Credentials,
};
use quayside_client::sdk::copy::{copy, CopyOptions, Endpoint};
use quayside_client::sdk::layout::Layout;
use quayside_client::sdk::reference::{ImageRef, RegistryRef};
use quayside_client::sdk::registry::{BlobSource, Manifest, Registry};
use quayside_spec::grammar::Digest;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "dist",
    version,
    about = "Move container images between OCI registries and image layouts"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Talk HTTP, not HTTPS, to registries (local test registries).
    #[arg(long, global = true)]
    plain_http: bool,
    /// Registry username (else from `dist login` / ~/.docker/config.json).
    #[arg(long, global = true, env = "DIST_USERNAME")]
    username: Option<String>,
    /// Registry password or token.
    #[arg(long, global = true, env = "DIST_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Copy an image (indexes recursively) between registries and `oci:DIR[:TAG]` layouts.
    Copy(CopyArgs),
    /// Push a layout image to a registry (copy with `oci:` on the source side).
    Push(CopyArgs),
    /// Pull a registry image into a layout (copy with `oci:` on the destination side).
    Pull(CopyArgs),
    /// List a repository's tags, one per line.
    Tags { repo: String },
    /// List a registry's repositories, one per line.
    Catalog { host: String },
    /// Get, put or delete a manifest.
    Manifest {
        #[command(subcommand)]
        op: ManifestOp,
    },
    /// Get, put or delete a blob.
    Blob {
        #[command(subcommand)]
        op: BlobOp,
    },
    /// Summarise an image (registry or oci: layout): media type, platforms, layers, sizes,
    /// referrers.
    Inspect { reference: String },
    /// Check manifest/index/config JSON files against the spec's schemas.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Store credentials for a registry in ~/.docker/config.json, as `docker login` does.
    Login { host: String },
}

#[derive(Args)]
struct CopyArgs {
    /// Source: HOST/REPO[:TAG][@DIGEST] or oci:DIR[:TAG].
    src: String,
    /// Destination: HOST/REPO[:TAG] or oci:DIR[:TAG].
    dst: String,
    /// Also copy referrers (signatures, SBOMs) of the image.
    #[arg(long)]
    referrers: bool,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[derive(Subcommand)]
enum ManifestOp {
    /// Print a manifest's exact bytes.
    Get { reference: String },
    /// Push a manifest file under the reference's tag (or its digest).
    Put {
        reference: String,
        file: PathBuf,
        /// Media type (default: the file's `mediaType`).
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Delete a manifest (by digest, or the tag where the registry allows).
    Delete { reference: String },
}

#[derive(Subcommand)]
enum BlobOp {
    /// Write a blob (verified) to a file, or stdout.
    Get {
        /// HOST/REPO@DIGEST
        reference: String,
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Push a file as a blob to HOST/REPO; prints its digest.
    Put { repo: String, file: PathBuf },
    /// Delete a blob: HOST/REPO@DIGEST.
    Delete { reference: String },
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dist: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("dist: {e:#}");
        std::process::exit(1);
    }
}

impl Global {
    fn credentials(&self, host: &str) -> Option<Credentials> {
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => docker_config_path().and_then(|p| docker_config_credentials(&p, host)),
        }
    }

    fn registry(&self, host: &str) -> Result<Arc<Registry>> {
        Ok(Arc::new(Registry::new(
            host,
            self.plain_http,
            self.credentials(host),
        )?))
    }

    fn endpoint(&self, r: &ImageRef) -> Result<Endpoint> {
        Ok(match r {
            ImageRef::Registry(r) => Endpoint::Registry {
                registry: self.registry(&r.host)?,
                repo: r.repo.to_string(),
                reference: Some(r.reference()),
            },
            ImageRef::Layout(l) => Endpoint::Layout {
                path: l.path.clone(),
                tag: l.tag.clone(),
            },
        })
    }
}

fn registry_ref(s: &str) -> Result<RegistryRef> {
    s.parse::<RegistryRef>()
        .with_context(|| format!("reading reference `{s}`"))
}

async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    let json_out = g.output == Output::Json;
    match &cli.command {
        Command::Copy(a) | Command::Push(a) | Command::Pull(a) => {
            let src: ImageRef = a.src.parse().context("source reference")?;
            let dst: ImageRef = a.dst.parse().context("destination reference")?;
            match (&cli.command, &src, &dst) {
                (Command::Push(_), ImageRef::Registry(_), _) => {
                    bail!("push reads from a layout: the source must be oci:DIR[:TAG]")
                }
                (Command::Pull(_), _, ImageRef::Registry(_)) => {
                    bail!("pull writes a layout: the destination must be oci:DIR[:TAG]")
                }
                _ => {}
            }
            // A destination registry ref keeps its tag; without one, push by digest.
            let dst_ep = match &dst {
                ImageRef::Registry(r) => Endpoint::Registry {
                    registry: g.registry(&r.host)?,
                    repo: r.repo.to_string(),
                    reference: r.tag.as_ref().map(ToString::to_string),
                },
                other => g.endpoint(other)?,
            };
            let opts = CopyOptions {
                referrers: a.referrers,
                concurrency: a.concurrency,
                progress: std::io::stdout()
                    .is_terminal()
                    .then(indicatif::MultiProgress::new)
                    .filter(|_| !json_out),
            };
            let digest = copy(&g.endpoint(&src)?, &dst_ep, &opts)
                .await
                .with_context(|| format!("copying {src} to {dst}"))?;
            if json_out {
                println!("{}", json!({"digest": digest.to_string()}));
            } else if std::io::stdout().is_terminal() {
                println!("copied {src} to {dst} ({digest})");
            } else {
                println!("{digest}");
            }
        }
        Command::Tags { repo } => {
            let r = registry_ref(repo)?;
            let tags = g.registry(&r.host)?.tags(r.repo.as_str()).await?;
            print_list(&tags, json_out, "tags");
        }
        Command::Catalog { host } => {
            let repos = g.registry(host)?.catalog().await?;
            print_list(&repos, json_out, "repositories");
        }
        Command::Manifest { op } => manifest(g, op).await?,
        Command::Blob { op } => blob(g, op).await?,
        Command::Inspect { reference } => inspect(g, reference, json_out).await?,
        Command::Validate { files } => validate(files, json_out)?,
        Command::Login { host } => {
            let username = g.username.clone().context("--username is required")?;
            let password = match &g.password {
                Some(p) => p.clone(),
                None => {
                    let mut line = String::new();
                    eprintln!("password (read from stdin):");
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let creds = Credentials { username, password };
            Registry::new(host, g.plain_http, Some(creds.clone()))?
                .ping()
                .await
                .with_context(|| format!("logging in to {host}"))?;
            let path = docker_config_path().context("no HOME to store credentials in")?;
            store_docker_credentials(&path, host, &creds)?;
            println!("login succeeded; credentials stored in {}", path.display());
        }
    }
    Ok(())
}

fn print_list(items: &[String], json_out: bool, key: &str) {
    if json_out {
        println!("{}", json!({ key: items }));
    } else {
        for i in items {
            println!("{i}");
        }
    }
}

async fn manifest(g: &Global, op: &ManifestOp) -> Result<()> {
    use std::io::Write;
    match op {
        ManifestOp::Get { reference } => {
            let r = registry_ref(reference)?;
            let m = g
                .registry(&r.host)?
                .get_manifest(r.repo.as_str(), &r.reference())
                .await?;
            std::io::stdout().write_all(&m.bytes)?;
        }
        ManifestOp::Put {
            reference,
            file,
            media_type,
        } => {
            let r = registry_ref(reference)?;
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let m = Manifest::from_bytes(bytes.into(), media_type.as_deref());
            let target = r
                .tag
                .as_ref()
                .map_or_else(|| m.digest.to_string(), ToString::to_string);
            g.registry(&r.host)?
                .put_manifest(r.repo.as_str(), &target, &m)
                .await?;
            println!("{}", m.digest);
        }
        ManifestOp::Delete { reference } => {
            let r = registry_ref(reference)?;
            g.registry(&r.host)?
                .delete_manifest(r.repo.as_str(), &r.reference())
                .await?;
        }
    }
    Ok(())
}

fn pinned(r: &RegistryRef) -> Result<&Digest> {
    r.digest
        .as_ref()
        .with_context(|| format!("{r}: a blob is named by digest (HOST/REPO@sha256:…)"))
}

async fn blob(g: &Global, op: &BlobOp) -> Result<()> {
    match op {
        BlobOp::Get { reference, out } => {
            let r = registry_ref(reference)?;
            let d = pinned(&r)?;
            let reg = g.registry(&r.host)?;
            match out {
                Some(path) => {
                    // Written beside the target and renamed once verified: no partial file.
                    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
                    let temp = tempfile::NamedTempFile::new_in(dir.unwrap_or(".".as_ref()))?;
                    let mut f = tokio::fs::File::create(temp.path()).await?;
                    reg.pull_blob(r.repo.as_str(), d, None, &mut f, None)
                        .await?;
                    drop(f);
                    temp.persist(path)?;
                }
                None => {
                    let mut stdout = tokio::io::stdout();
                    reg.pull_blob(r.repo.as_str(), d, None, &mut stdout, None)
                        .await?;
                }
            }
        }
        BlobOp::Put { repo, file } => {
            let r = registry_ref(repo)?;
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let digest = Digest::of(&bytes);
            let size = bytes.len() as u64;
            g.registry(&r.host)?
                .push_blob(
                    r.repo.as_str(),
                    &digest,
                    size,
                    BlobSource::Bytes(bytes.into()),
                    None,
                    None,
                )
                .await?;
            println!("{digest}");
        }
        BlobOp::Delete { reference } => {
            let r = registry_ref(reference)?;
            g.registry(&r.host)?
                .delete_blob(r.repo.as_str(), pinned(&r)?)
                .await?;
        }
    }
    Ok(())
}

async fn inspect(g: &Global, reference: &str, json_out: bool) -> Result<()> {
    let r: ImageRef = reference.parse().context("reference")?;
    // The manifest and its referrers, from a registry or a layout alike.
    let (m, referrers) = match &r {
        ImageRef::Registry(rr) => {
            let reg = g.registry(&rr.host)?;
            let repo = rr.repo.as_str();
            let m = reg.get_manifest(repo, &rr.reference()).await?;
            let refs = reg.referrers(repo, &m.digest).await?["manifests"].clone();
            (m, refs)
        }
        ImageRef::Layout(l) => {
            let layout = Layout::open(&l.path)?;
            let m = layout.manifest(&layout.resolve(l.tag.as_deref())?)?;
            let refs = Value::Array(layout.referrers(&m.digest)?);
            (m, refs)
        }
    };
    let body: Value = serde_json::from_slice(&m.bytes)?;
    let mut summary = json!({
        "reference": r.to_string(),
        "digest": m.digest.to_string(),
        "mediaType": m.media_type,
        "size": m.bytes.len(),
    });
    if let Some(children) = body["manifests"].as_array() {
        summary["platforms"] = children
            .iter()
            .map(|c| {
                json!({
                    "digest": c["digest"],
                    "size": c["size"],
                    "platform": c["platform"],
                })
            })
            .collect();
    }
    if let Some(layers) = body["layers"].as_array() {
        summary["config"] = body["config"].clone();
        summary["layers"] = layers
            .iter()
            .map(|l| json!({"mediaType": l["mediaType"], "digest": l["digest"], "size": l["size"]}))
            .collect();
        let total: u64 = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
        summary["layersSize"] = total.into();
    }
    summary["referrers"] = referrers;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "{}\n  digest:     {}\n  media type: {}",
        r, m.digest, m.media_type
    );
    if let Some(ps) = summary["platforms"].as_array() {
        println!("  platforms:");
        for p in ps {
            let pl = &p["platform"];
            println!(
                "    {}/{}{}  {}  {} bytes",
                pl["os"].as_str().unwrap_or("?"),
                pl["architecture"].as_str().unwrap_or("?"),
                pl["variant"]
                    .as_str()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default(),
                p["digest"].as_str().unwrap_or("?"),
                p["size"]
            );
        }
    }
    if let Some(ls) = summary["layers"].as_array() {
        println!("  layers ({}, {} bytes):", ls.len(), summary["layersSize"]);
        for l in ls {
            println!(
                "    {}  {} bytes  {}",
                l["digest"].as_str().unwrap_or("?"),
                l["size"],
                l["mediaType"].as_str().unwrap_or("?")
            );
        }
    }
    let refs = summary["referrers"].as_array().cloned().unwrap_or_default();
    println!("  referrers: {}", refs.len());
    for d in refs {
        println!(
            "    {}  {}",
            d["digest"].as_str().unwrap_or("?"),
            d["artifactType"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn validate(files: &[PathBuf], json_out: bool) -> Result<()> {
    let mut failed = 0;
    let mut results = Vec::new();
    for file in files {
        let outcome = check_file(file);
        if let Err(e) = &outcome {
            failed += 1;
            if !json_out {
                println!("{}: INVALID: {e:#}", file.display());
            }
        } else if !json_out {
            println!("{}: ok", file.display());
        }
        results.push(
            json!({"file": file.display().to_string(), "valid": outcome.is_ok(),
            "error": outcome.err().map(|e| format!("{e:#}"))}),
        );
    }
    if json_out {
        println!("{}", Value::Array(results));
    }
    if failed > 0 {
        bail!("{failed} of {} files invalid", files.len());
    }
    Ok(())
}

fn check_file(file: &PathBuf) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let value: Value = serde_json::from_slice(&bytes).context("not JSON")?;
    let media_type = value["mediaType"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| guess_media_type(&value))
        .context("no mediaType and the document's kind cannot be told")?;
    quayside_spec::schemas::validate(&media_type, &bytes).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Documents that may omit `mediaType`: an index has `manifests`, an image `layers`, a
/// config `rootfs`.
fn guess_media_type(v: &Value) -> Option<String> {
    let t = if v.get("manifests").is_some() {
        "application/vnd.oci.image.index.v1+json"
    } else if v.get("layers").is_some() {
        "application/vnd.oci.image.manifest.v1+json"
    } else if v.get("rootfs").is_some() {
        "application/vnd.oci.image.config.v1+json"
    } else {
        return None;
    };
    Some(t.to_owned())
}
