//! The JSON report: the whole [`RunReport`] plus its tallies, for tools.

use serde_json::json;

use crate::runner::RunReport;

/// The report as pretty JSON: `{registry, namespace, summary, workflows, results}`.
pub fn render(report: &RunReport) -> String {
    let workflows: serde_json::Map<String, serde_json::Value> = report
        .tally_by_workflow()
        .into_iter()
        .map(|(wf, t)| (wf.as_str().to_owned(), json!(t)))
        .collect();
    let value = json!({
        "registry": report.registry,
        "namespace": report.namespace,
        "started_unix": report.started_unix,
        "duration_ms": report.duration_ms,
        "summary": report.tally(),
        "workflows": workflows,
        "results": report.results,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
