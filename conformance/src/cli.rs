//! Command-line options, with the OCI conformance suite's environment variables as
//! fallbacks so CI set-ups written for it can switch over unchanged.

use std::path::PathBuf;

use clap::Parser;

use crate::check::Workflow;
use crate::http::Auth;
use crate::runner::Config;

/// Runs the Quayside conformance suite against a registry.
#[derive(Debug, Parser)]
#[command(name = "conformance", version)]
pub struct Args {
    /// Registry base URL, e.g. http://127.0.0.1:5000.
    #[arg(long, env = "OCI_ROOT_URL")]
    pub url: String,
    /// Namespace every check writes under.
    #[arg(long, env = "OCI_NAMESPACE", default_value = "conformance")]
    pub namespace: String,
    /// Second namespace for cross-repository mounts.
    #[arg(long, env = "OCI_CROSSMOUNT_NAMESPACE")]
    pub crossmount_namespace: Option<String>,
    /// User name: sent as Basic, or to the realm of a Bearer challenge for a token.
    #[arg(long, env = "OCI_USERNAME", requires = "password")]
    pub username: Option<String>,
    /// Password for `--username`.
    #[arg(long, env = "OCI_PASSWORD")]
    pub password: Option<String>,
    /// Bearer token used as is.
    #[arg(long, conflicts_with = "username")]
    pub token: Option<String>,
    /// Comma-separated workflows (pull,push,discovery,management,docker,edge,auth); default:
    /// those enabled by OCI_TEST_* variables, else all.
    #[arg(long, value_delimiter = ',')]
    pub workflows: Vec<String>,
    /// Run only checks whose id contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Accept any TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Checks running at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Directory for junit.xml, report.json and report.html (the OCI suite's variable).
    #[arg(long, env = "OCI_REPORT_DIR")]
    pub report_dir: Option<PathBuf>,
}

/// `OCI_TEST_*` variables and the workflows they enable.
const OCI_TEST_VARS: &[(&str, Workflow)] = &[
    ("OCI_TEST_PULL", Workflow::Pull),
    ("OCI_TEST_PUSH", Workflow::Push),
    ("OCI_TEST_CONTENT_DISCOVERY", Workflow::Discovery),
    ("OCI_TEST_CONTENT_MANAGEMENT", Workflow::Management),
];

impl Args {
    /// The run configuration these options describe.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::new(self.url.clone());
        config.namespace = self.namespace.clone();
        config.crossmount_namespace = self.crossmount_namespace.clone();
        config.insecure = self.insecure;
        config.concurrency = self.concurrency;
        config.filter = self.filter.clone();
        config.auth = match (&self.username, &self.password, &self.token) {
            (_, _, Some(token)) => Auth::Bearer(token.clone()),
            (Some(u), Some(p), None) => Auth::Basic {
                username: u.clone(),
                password: p.clone(),
            },
            _ => Auth::None,
        };
        config.workflows = if self.workflows.is_empty() {
            OCI_TEST_VARS
                .iter()
                .filter(|(var, _)| {
                    std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
                })
                .map(|(_, wf)| *wf)
                .collect()
        } else {
            self.workflows
                .iter()
                .map(|name| {
                    Workflow::parse(name).ok_or_else(|| {
                        anyhow::anyhow!("unknown workflow {name:?}; known: pull, push, discovery, management, docker, edge, auth")
                    })
                })
                .collect::<anyhow::Result<_>>()?
        };
        Ok(config)
    }

    /// (junit, json, html) output paths, explicit flags winning over OCI_REPORT_DIR.
    pub fn report_paths(&self) -> (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>) {
        let in_dir = |name: &str| self.report_dir.as_ref().map(|d| d.join(name));
        (
            self.junit.clone().or_else(|| in_dir("junit.xml")),
            self.json.clone().or_else(|| in_dir("report.json")),
            self.html.clone().or_else(|| in_dir("report.html")),
        )
    }
}
