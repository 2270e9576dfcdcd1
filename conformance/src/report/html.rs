//! The HTML report: one self-contained page (inline CSS, no scripts or external assets)
//! listing every check with its rule, and for failures the exact exchanges that failed.
//! The summary numbers carry stable ids (`total-passed`, …) so tests can read the DOM.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::check::Outcome;
use crate::runner::{RunReport, Tally};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}\
td:first-child,th:first-child{text-align:left}.pass{color:#176c2c}.fail{color:#b00020;font-weight:bold}\
.unsupported,.skip{color:#8a6d00}pre{background:#f6f6f6;padding:.7em;overflow-x:auto;font-size:12px}\
li{margin:.3em 0}code{font-size:90%}.rule{color:#555}";

fn row(out: &mut String, name: &str, id_prefix: &str, t: &Tally) {
    let _ = writeln!(
        out,
        "<tr><td>{name}</td><td id=\"{id_prefix}-passed\">{}</td><td id=\"{id_prefix}-failed-must\">{}</td>\
<td id=\"{id_prefix}-failed-should\">{}</td><td id=\"{id_prefix}-unsupported\">{}</td><td id=\"{id_prefix}-skipped\">{}</td></tr>",
        t.passed, t.failed_must, t.failed_should, t.unsupported, t.skipped
    );
}

/// The report as a complete HTML document.
pub fn render(report: &RunReport) -> String {
    let total = report.tally();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Quayside conformance: {}</title><style>{STYLE}</style></head><body>",
        escape(report.registry.as_str())
    );
    let _ = writeln!(
        out,
        "<h1>Conformance of <code>{}</code></h1><p id=\"verdict\" class=\"{}\">{} of {} checks passed; {} failed MUST, {} failed SHOULD, {} unsupported, {} skipped ({:.1} s).</p>",
        escape(report.registry.as_str()),
        if total.failed() == 0 { "pass" } else { "fail" },
        total.passed,
        total.total(),
        total.failed_must,
        total.failed_should,
        total.unsupported,
        total.skipped,
        report.duration_ms as f64 / 1000.0
    );
    out.push_str("<table id=\"summary\"><thead><tr><th>workflow</th><th>passed</th><th>failed MUST</th><th>failed SHOULD</th><th>unsupported</th><th>skipped</th></tr></thead><tbody>\n");
    for (wf, t) in report.tally_by_workflow() {
        row(&mut out, wf.as_str(), wf.as_str(), &t);
    }
    row(&mut out, "<b>total</b>", "total", &total);
    out.push_str("</tbody></table>\n");
    for (wf, _) in report.tally_by_workflow() {
        let _ = writeln!(out, "<h2>{wf}</h2><ul>");
        for r in report.results.iter().filter(|r| r.workflow == wf) {
            let class = r.outcome.label();
            let _ = write!(
                out,
                "<li id=\"check-{}\"><span class=\"{class}\">{}</span> <code>{}</code> [{}] {}<br><span class=\"rule\">{}</span>",
                escape(r.id),
                class.to_uppercase(),
                escape(r.id),
                r.level,
                escape(r.title),
                escape(r.rule)
            );
            if r.outcome != Outcome::Pass {
                let _ = write!(out, "<br><i>{}</i>", escape(r.outcome.reason()));
            }
            for note in &r.notes {
                let _ = write!(out, "<br><small>note: {}</small>", escape(note.as_str()));
            }
            if r.outcome.is_fail() {
                let transcript: String = r.transcript.iter().map(|e| e.render() + "\n").collect();
                let _ = write!(
                    out,
                    "<details open><summary>{} request(s)</summary><pre>{}</pre></details>",
                    r.transcript.len(),
                    escape(transcript.as_str())
                );
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Level, Workflow};
    use crate::http::Exchange;
    use crate::runner::CheckReport;

    #[test]
    fn failure_shows_its_exchange_escaped() {
        let exchange = Exchange {
            operation: Some("blob_get".into()),
            method: "GET".into(),
            url: "http://r.test/v2/a/blobs/sha256:00".into(),
            request_headers: vec![("accept".into(), "*/*".into())],
            request_body_len: 0,
            request_body: String::new(),
            status: Some(500),
            response_headers: vec![("content-type".into(), "text/html".into())],
            response_body_len: 26,
            response_body: "<script>alert(1)</script>".into(),
            error: None,
            violations: vec!["status 500 is not declared for blob_get".into()],
        };
        let report = RunReport {
            registry: "http://r.test".into(),
            namespace: "ns".into(),
            started_unix: 0,
            duration_ms: 1200,
            results: vec![CheckReport {
                id: "pull.blob.get-existing",
                workflow: Workflow::Pull,
                level: Level::Must,
                title: "GET a blob",
                rule: "end-2 MUST: 200",
                outcome: Outcome::Fail("expected status 200, got 500".into()),
                duration_ms: 3,
                notes: Vec::new(),
                transcript: vec![exchange],
            }],
        };
        let page = render(&report);
        assert!(!page.contains("<script>"), "response body must be escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&gt; GET http://r.test/v2/a/blobs/sha256:00"));
        assert!(page.contains("! spec: status 500 is not declared for blob_get"));
        assert!(page.contains("<td id=\"total-failed-must\">1</td>"));
        assert!(page.contains("class=\"fail\">0 of 1 checks passed"));
    }
}
