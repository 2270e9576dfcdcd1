//! Request-rate scenarios: a fixed number of keep-alive HTTP/1.1 connections, each sending
//! the same request back to back for a fixed time. Over plain HTTP, raw hyper connections
//! keep the benchmark's own cost per request small, since it shares the CPUs with the
//! server; over HTTPS, the same loop runs through reqwest's connection pool and TLS.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::{client::conn::http1, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where to connect: `host:port` and the `Host` header.
pub struct Target {
    addr: String,
    host: String,
}

impl Target {
    /// `host:port` to connect to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The `Host` header.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn parse(base: &str) -> Result<Target> {
        let Some(rest) = base.strip_prefix("http://") else {
            bail!("request-rate scenarios need a plain http:// URL, got {base}");
        };
        let host = rest.split('/').next().unwrap_or(rest).to_string();
        if host.is_empty() {
            bail!("{base} has no host");
        }
        let addr = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.clone()
        } else {
            format!("{host}:80")
        };
        Ok(Target { addr, host })
    }
}

/// One request, repeated.
#[derive(Clone)]
pub struct RequestSpec {
    method: Method,
    path: String,
    accept: Option<&'static str>,
    authorization: Option<String>,
}

impl RequestSpec {
    pub fn get(path: String, accept: Option<&'static str>) -> RequestSpec {
        RequestSpec {
            method: Method::GET,
            path,
            accept,
            authorization: None,
        }
    }

    pub fn head(path: String, accept: Option<&'static str>) -> RequestSpec {
        RequestSpec {
            method: Method::HEAD,
            path,
            accept,
            authorization: None,
        }
    }

    /// Sends `authorization` (the `Authorization` value) with every request.
    pub fn with_authorization(mut self, authorization: Option<String>) -> RequestSpec {
        self.authorization = authorization;
        self
    }

    fn build(&self, host: &str) -> Result<Request<Empty<Bytes>>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header(hyper::header::HOST, host);
        if let Some(accept) = self.accept {
            builder = builder.header(hyper::header::ACCEPT, accept);
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header(hyper::header::AUTHORIZATION, authorization);
        }
        Ok(builder.body(Empty::new())?)
    }
}

/// What a scenario measured.
pub struct Outcome {
    /// Requests that completed (any status) within the measured window.
    pub completed: u64,
    /// Of those, the ones not answered 2xx, plus connection failures.
    pub errors: u64,
    pub seconds: f64,
    /// Latency in microseconds of the completed requests.
    pub latency: Histogram<u64>,
}

/// How requests reach the registry.
pub enum Via<'a> {
    /// Plain HTTP over raw hyper connections: the cheapest client.
    Raw(&'a Target),
    /// Anything else (HTTPS) through reqwest's connection pool.
    Pool {
        client: &'a reqwest::Client,
        base: &'a str,
    },
}

/// Runs `concurrency` connections for `warmup` (unmeasured) plus `duration`.
pub async fn run(
    via: Via<'_>,
    request: &RequestSpec,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Outcome> {
    let begin = Instant::now() + warmup;
    let end = begin + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let request = request.clone();
        workers.push(match &via {
            Via::Raw(target) => {
                let (addr, host) = (target.addr.clone(), target.host.clone());
                tokio::spawn(async move { connection(&addr, &host, &request, begin, end).await })
            }
            Via::Pool { client, base } => {
                let url = format!("{base}{}", request.path);
                tokio::spawn(pooled((*client).clone(), url, request, begin, end))
            }
        });
    }
    collect(workers, duration).await
}

/// One task's loop through reqwest: one connection of the pool, kept alive.
async fn pooled(
    client: reqwest::Client,
    url: String,
    spec: RequestSpec,
    begin: Instant,
    end: Instant,
) -> Result<Measured> {
    let mut latency = new_histogram()?;
    let (mut done, mut failed) = (0u64, 0u64);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let mut builder = client.request(spec.method.clone(), &url);
        if let Some(accept) = spec.accept {
            builder = builder.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(authorization) = &spec.authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let result = async {
            let response = builder.send().await?;
            let ok = response.status().is_success();
            response.bytes().await?;
            anyhow::Ok(ok)
        }
        .await;
        let finished = Instant::now();
        if sent >= begin && finished <= end {
            done += 1;
            if !matches!(result, Ok(true)) {
                failed += 1;
            }
            let micros = finished.duration_since(sent).as_micros() as u64;
            latency.saturating_record(micros.max(1));
        }
    }
    Ok((latency, done, failed))
}

/// What one connection measured: latencies, requests done, requests failed.
type Measured = (Histogram<u64>, u64, u64);

/// Merges what each connection measured.
async fn collect(
    workers: Vec<tokio::task::JoinHandle<Result<Measured>>>,
    duration: Duration,
) -> Result<Outcome> {
    let mut latency = new_histogram()?;
    let mut completed = 0;
    let mut errors = 0;
    for worker in workers {
        let (histogram, done, failed) = worker.await.context("a connection task panicked")??;
        latency
            .add(&histogram)
            .context("merging latency histograms")?;
        completed += done;
        errors += failed;
    }
    Ok(Outcome {
        completed,
        errors,
        seconds: duration.as_secs_f64(),
        latency,
    })
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs to 60 s at 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// One connection's loop; reconnects after a failure so one reset does not end the test.
async fn connection(
    addr: &str,
    host: &str,
    spec: &RequestSpec,
    begin: Instant,
    end: Instant,
) -> Result<(Histogram<u64>, u64, u64)> {
    let mut latency = new_histogram()?;
    let (mut done, mut failed) = (0u64, 0u64);
    'connect: while Instant::now() < end {
        let stream = match TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(err) => {
                if Instant::now() >= begin {
                    failed += 1;
                }
                if failed > 1000 {
                    bail!("cannot connect to {addr}: {err}");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        loop {
            let sent = Instant::now();
            if sent >= end {
                break 'connect;
            }
            let result = async {
                sender.ready().await?;
                let response = sender.send_request(spec.build(host)?).await?;
                let ok = response.status().is_success();
                response.into_body().collect().await?;
                anyhow::Ok(ok)
            }
            .await;
            let finished = Instant::now();
            let measured = sent >= begin && finished <= end;
            match result {
                Ok(ok) => {
                    if measured {
                        done += 1;
                        if !ok {
                            failed += 1;
                        }
                        let micros = finished.duration_since(sent).as_micros() as u64;
                        latency.saturating_record(micros.max(1));
                    }
                }
                Err(_) => {
                    if measured {
                        failed += 1;
                    }
                    continue 'connect;
                }
            }
        }
    }
    Ok((latency, done, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_takes_host_and_port_from_the_url() {
        let target = Target::parse("http://127.0.0.1:5000/").expect("valid URL");
        assert_eq!(target.addr, "127.0.0.1:5000");
        assert_eq!(target.host, "127.0.0.1:5000");
        let target = Target::parse("http://registry.local").expect("valid URL");
        assert_eq!(target.addr, "registry.local:80");
    }

    #[test]
    fn target_refuses_https_and_empty_hosts() {
        assert!(Target::parse("https://127.0.0.1:5000").is_err());
        assert!(Target::parse("http://").is_err());
    }
}
