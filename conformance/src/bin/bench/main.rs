//! `bench`: measures any OCI registry over HTTP — blob push (monolithic and chunked) and
//! pull throughput at several blob sizes, and request rate and latency of manifest GET/HEAD,
//! tag list and catalog at a fixed number of connections. Prints a table, or JSON for
//! scripts (`conformance/scripts/bench-compare`).

mod auth;
mod blobs;
mod ceilings;
mod load;
mod rawget;
mod report;
mod units;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use sha2::{Digest as _, Sha256};

use report::{BlobResult, LoadResult, Report, Throughput};

/// Most transfers a small blob size gets per scenario.
const SMALL_BLOB_TRANSFERS: u32 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmark an OCI registry (push, pull, manifest and listing requests)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the workload against a registry at URL.
    Run(Box<RunArgs>),
    /// Measure in-process SHA-256 speed: the ceiling of a registry that verifies digests.
    Sha256 {
        /// Bytes to hash (e.g. 1GiB).
        #[arg(long, default_value = "1GiB", value_parser = units::parse_size)]
        size: u64,
        /// Print JSON instead of a line of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure the disk under DIR: durable writes (direct, and buffered then fdatasync), the
    /// time to publish a 1 MiB file durably, and cold reads: the ceilings of a registry
    /// storing there that syncs before it answers.
    Disk {
        /// Directory on the disk to measure (scratch files are made and removed there).
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// Bytes to write into each scratch file and read back (e.g. 1GiB).
        #[arg(long, default_value = "1GiB", value_parser = units::parse_size)]
        size: u64,
        /// Print JSON instead of a line of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure one TCP stream over 127.0.0.1 between two threads, from a buffer larger than
    /// the CPU caches: a reference for pulls over loopback.
    Loopback {
        /// Bytes to send (e.g. 1GiB).
        #[arg(long, default_value = "1GiB", value_parser = units::parse_size)]
        size: u64,
        /// Print JSON instead of a line of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    PushMonolithic,
    PushChunked,
    /// Pull just-pushed blobs once each (reported as `pull-first`; small sizes push fresh
    /// blobs as `--min-bytes` covers), then the last one `--repeat` times more (`pull`).
    Pull,
    ManifestGet,
    ManifestHead,
    TagList,
    Catalog,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Registry base URL, e.g. http://127.0.0.1:5000 or https://registry.example.com.
    #[arg(long, env = "BENCH_URL")]
    url: String,
    /// Repository the benchmark writes to (a random suffix keeps runs apart).
    #[arg(long, default_value = "bench/load")]
    repo: String,
    /// What to measure (comma separated); all by default.
    #[arg(long, value_delimiter = ',', value_enum)]
    scenarios: Vec<Scenario>,
    /// Blob sizes for push and pull (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1MiB,64MiB,1GiB", value_parser = units::parse_size)]
    sizes: Vec<u64>,
    /// PATCH size for chunked pushes.
    #[arg(long, default_value = "64MiB", value_parser = units::parse_size)]
    chunk: u64,
    /// Transfers per blob size and scenario, at least (see `--min-bytes`); the median is
    /// reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Smaller blobs get more transfers, as many as move this many bytes (up to 64), so a
    /// small blob's median is not of three millisecond-long samples (first pulls included,
    /// each of a freshly pushed blob); 0 turns this off.
    #[arg(long, default_value = "64MiB", value_parser = units::parse_size)]
    min_bytes: u64,
    /// Open connections for the request-rate scenarios.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long each request-rate scenario runs, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured time before each request-rate scenario, in seconds.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Tags created for the tag-list scenario.
    #[arg(long, default_value_t = 20)]
    tags: u32,
    /// Also check the SHA-256 of pulled blobs (costs client CPU on a shared machine).
    #[arg(long)]
    verify: bool,
    /// Delete pushed blobs afterwards so large runs do not fill the disk.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    cleanup: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Worker threads of the benchmark's own runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// User name for registries that want credentials (Basic, or a token from the realm).
    #[arg(long, env = "BENCH_USERNAME", requires = "password")]
    username: Option<String>,
    /// Password for `--username`.
    #[arg(
        long,
        env = "BENCH_PASSWORD",
        requires = "username",
        hide_env_values = true
    )]
    password: Option<String>,
    /// PEM certificate of a CA to trust for HTTPS (e.g. a registry's self-signed one).
    #[arg(long, env = "BENCH_CA_CERT", value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sha256 { size, json } => {
            emit(&hash_speed(size), json, |r| throughput_line("sha256", r))
        }
        Command::Disk { dir, size, json } => emit(&ceilings::disk(&dir, size)?, json, |r| {
            let direct = r
                .direct_write_mib_per_s
                .map_or("refused".to_string(), |v| format!("{v:.0} MiB/s"));
            format!(
                "disk {}: durable writes {:.0} MiB/s (direct {direct}, buffered + fdatasync {:.0} MiB/s), cold reads {:.0} MiB/s; a 1MiB file published durably in {:.2} ms ({:.0} MiB/s)",
                units::format_size(r.bytes),
                r.durable_write_mib_per_s,
                r.buffered_write_mib_per_s,
                r.cold_read_mib_per_s,
                r.small_file_ms,
                r.small_file_mib_per_s
            )
        }),
        Command::Loopback { size, json } => emit(&ceilings::loopback(size)?, json, |r| {
            throughput_line("loopback", r)
        }),
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            let report = runtime.block_on(run(&args))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            if report.failed() {
                bail!("some requests failed (see the errors column)");
            }
            Ok(())
        }
    }
}

/// Prints `result` as JSON, or as the line `line` makes of it.
fn emit<T: serde::Serialize>(
    result: &T,
    json: bool,
    line: impl FnOnce(&T) -> String,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        println!("{}", line(result));
    }
    Ok(())
}

fn throughput_line(name: &str, result: &Throughput) -> String {
    format!(
        "{name}: {} in {:.3} s = {:.0} MiB/s",
        units::format_size(result.bytes),
        result.seconds,
        result.mib_per_s
    )
}

/// Hashes `size` bytes from one 1 MiB buffer, as a verifying registry does on upload.
fn hash_speed(size: u64) -> Throughput {
    let buffer = blobs::pattern(1 << 20, 0);
    let start = Instant::now();
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        hasher.update(&buffer[..n]);
        left -= n as u64;
    }
    std::hint::black_box(hasher.finalize());
    let seconds = start.elapsed().as_secs_f64();
    Throughput {
        bytes: size,
        seconds,
        mib_per_s: units::mib_per_s(size, seconds),
    }
}

async fn run(args: &RunArgs) -> Result<Report> {
    let base = args.url.trim_end_matches('/').to_string();
    let scenarios = if args.scenarios.is_empty() {
        vec![
            Scenario::PushMonolithic,
            Scenario::PushChunked,
            Scenario::Pull,
            Scenario::ManifestGet,
            Scenario::ManifestHead,
            Scenario::TagList,
            Scenario::Catalog,
        ]
    } else {
        args.scenarios.clone()
    };
    let repo = format!("{}-{:08x}", args.repo, rand_u32());
    let credentials = match (&args.username, &args.password) {
        (Some(username), Some(password)) => Some(auth::Credentials {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => None,
    };
    let builder = || -> Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder().http1_only();
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading --ca-cert {}", path.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!("--ca-cert {} is not a PEM certificate", path.display())
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(builder)
    };
    let probe = builder()?.build()?;
    let authorization = auth::authorization(&probe, &base, &repo, credentials.as_ref())
        .await
        .context("authenticating")?;
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = &authorization {
        headers.insert(reqwest::header::AUTHORIZATION, value.parse()?);
    }
    let client = builder()?
        .pool_max_idle_per_host(args.concurrency.max(4))
        .default_headers(headers)
        .build()?;
    let registry = blobs::Registry::new(
        client.clone(),
        base.clone(),
        repo.clone(),
        authorization.clone(),
    );
    registry
        .ping()
        .await
        .with_context(|| format!("{base}/v2/ does not answer as a registry"))?;

    let mut report = Report::new(base.clone(), repo.clone(), args.concurrency);
    let transfers = |size: u64| transfers(size, args.repeat, args.min_bytes);
    let mut to_delete = Vec::new();
    for &size in &args.sizes {
        let mut pushed = None;
        for (scenario, chunk) in [
            (Scenario::PushMonolithic, None),
            (Scenario::PushChunked, Some(args.chunk)),
        ] {
            if !scenarios.contains(&scenario) {
                continue;
            }
            let mut runs = Vec::new();
            let mut errors = 0;
            for _ in 0..transfers(size) {
                let blob = blobs::Blob::new(size, rand_u32());
                match registry.push(&blob, chunk).await {
                    Ok(seconds) => {
                        runs.push(seconds);
                        to_delete.push(blob.digest.clone());
                        pushed = Some(blob);
                    }
                    Err(err) => {
                        eprintln!("{scenario:?} {}: {err:#}", units::format_size(size));
                        errors += 1;
                    }
                }
            }
            report.blobs.push(BlobResult::new(
                scenario_name(scenario),
                size,
                chunk,
                runs,
                errors,
            ));
        }
        if scenarios.contains(&Scenario::Pull) {
            let mut blob = match pushed {
                Some(blob) => blob,
                None => push_fresh(&registry, size, &mut to_delete).await?,
            };
            // A blob just pushed: its first pull is what a deploy right after a build sees,
            // and may come from disk where later ones come from a cache. Reported apart, so
            // neither hides the other in one median. Each blob has one first pull, so small
            // sizes push fresh blobs until `--min-bytes` is covered (one 1 MiB sample per
            // run swung by 2x between runs); large ones take the one blob.
            let mut runs = Vec::new();
            let mut errors = 0;
            for round in 0..first_pulls(size, args.min_bytes) {
                if round > 0 {
                    blob = push_fresh(&registry, size, &mut to_delete).await?;
                }
                timed(
                    registry.pull(&blob, args.verify).await,
                    "pull-first",
                    size,
                    &mut runs,
                    &mut errors,
                );
            }
            report
                .blobs
                .push(BlobResult::new("pull-first", size, None, runs, errors));
            let mut runs = Vec::new();
            let mut errors = 0;
            for _ in 0..transfers(size) {
                timed(
                    registry.pull(&blob, args.verify).await,
                    "pull",
                    size,
                    &mut runs,
                    &mut errors,
                );
            }
            report
                .blobs
                .push(BlobResult::new("pull", size, None, runs, errors));
        }
        if args.cleanup {
            for digest in to_delete.drain(..) {
                // Best effort: registries may disable deletion.
                let _ = registry.delete_blob(&digest).await;
            }
        }
    }

    let wants_requests = scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::ManifestGet | Scenario::ManifestHead | Scenario::TagList | Scenario::Catalog
        )
    });
    if wants_requests {
        let fixture = registry
            .push_image(args.tags)
            .await
            .context("pushing the image the request scenarios read")?;
        // Plain HTTP: raw connections; HTTPS: the same loop through reqwest.
        let target = if base.starts_with("https://") {
            None
        } else {
            Some(load::Target::parse(&base)?)
        };
        let duration = Duration::from_secs_f64(args.duration);
        let warmup = Duration::from_secs_f64(args.warmup);
        for scenario in scenarios.iter().copied() {
            let request = match scenario {
                Scenario::ManifestGet => load::RequestSpec::get(
                    format!("/v2/{repo}/manifests/{}", fixture.tag),
                    Some(blobs::OCI_MANIFEST),
                ),
                Scenario::ManifestHead => load::RequestSpec::head(
                    format!("/v2/{repo}/manifests/{}", fixture.tag),
                    Some(blobs::OCI_MANIFEST),
                ),
                Scenario::TagList => load::RequestSpec::get(format!("/v2/{repo}/tags/list"), None),
                Scenario::Catalog => load::RequestSpec::get("/v2/_catalog".to_string(), None),
                _ => continue,
            }
            .with_authorization(authorization.clone());
            let via = match &target {
                Some(target) => load::Via::Raw(target),
                None => load::Via::Pool {
                    client: &client,
                    base: &base,
                },
            };
            let outcome = load::run(via, &request, args.concurrency, warmup, duration).await?;
            report.requests.push(LoadResult::new(
                scenario_name(scenario),
                args.concurrency,
                &outcome,
            ));
        }
        if args.cleanup {
            let _ = registry.delete_image(&fixture).await;
        }
    }
    Ok(report)
}

fn scenario_name(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::PushMonolithic => "push-monolithic",
        Scenario::PushChunked => "push-chunked",
        Scenario::Pull => "pull",
        Scenario::ManifestGet => "manifest-get",
        Scenario::ManifestHead => "manifest-head",
        Scenario::TagList => "tag-list",
        Scenario::Catalog => "catalog",
    }
}

/// How many transfers of `size` to time: `repeat`, or for small blobs as many as move
/// `min_bytes` (at most [`SMALL_BLOB_TRANSFERS`]), so their median is stable.
fn transfers(size: u64, repeat: u32, min_bytes: u64) -> u32 {
    let enough = min_bytes / size.max(1);
    repeat.max(enough.min(u64::from(SMALL_BLOB_TRANSFERS)) as u32)
}

/// Counts one transfer: its seconds into `runs`, or its error (reported) into `errors`.
fn timed(result: Result<f64>, name: &str, size: u64, runs: &mut Vec<f64>, errors: &mut u64) {
    match result {
        Ok(seconds) => runs.push(seconds),
        Err(err) => {
            eprintln!("{name} {}: {err:#}", units::format_size(size));
            *errors += 1;
        }
    }
}

/// How many fresh blobs of `size` get a first pull: as many as `min_bytes` covers (at most
/// [`SMALL_BLOB_TRANSFERS`]), and at least one.
fn first_pulls(size: u64, min_bytes: u64) -> u64 {
    (min_bytes / size.max(1)).clamp(1, u64::from(SMALL_BLOB_TRANSFERS))
}

/// Pushes a new blob of `size` (untimed) for pulls to read, noting it for cleanup.
async fn push_fresh(
    registry: &blobs::Registry,
    size: u64,
    to_delete: &mut Vec<String>,
) -> Result<blobs::Blob> {
    let blob = blobs::Blob::new(size, rand_u32());
    registry
        .push(&blob, None)
        .await
        .context("pushing the blob to pull")?;
    to_delete.push(blob.digest.clone());
    Ok(blob)
}

/// Random enough to keep blobs and repositories of different runs apart.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blobs_get_enough_transfers_for_a_stable_median() {
        let mib = 1 << 20;
        assert_eq!(transfers(mib, 3, 64 * mib), 64);
        assert_eq!(transfers(16 * mib, 3, 64 * mib), 4);
        assert_eq!(transfers(64 * mib, 3, 64 * mib), 3);
        assert_eq!(transfers(1024 * mib, 5, 64 * mib), 5);
        assert_eq!(transfers(1, 3, 64 * mib), SMALL_BLOB_TRANSFERS);
        assert_eq!(first_pulls(mib, 64 * mib), 64);
        assert_eq!(first_pulls(64 * mib, 64 * mib), 1);
        assert_eq!(first_pulls(1024 * mib, 64 * mib), 1);
        assert_eq!(first_pulls(1, 64 * mib), u64::from(SMALL_BLOB_TRANSFERS));
        assert_eq!(transfers(mib, 2, 0), 2, "0 turns it off");
    }
}
