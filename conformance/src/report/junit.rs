//! The JUnit XML report: one `<testsuite>` per workflow, one `<testcase>` per check, so CI
//! systems show conformance like any test run. SHOULD failures are failures too, with the
//! level in the message; unsupported and skipped checks are `<skipped>`.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::check::Outcome;
use crate::runner::RunReport;

/// The report as a JUnit XML document.
pub fn render(report: &RunReport) -> String {
    let total = report.tally();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"quayside-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        total.total(),
        total.failed(),
        total.unsupported + total.skipped,
        report.duration_ms as f64 / 1000.0
    );
    for (workflow, tally) in report.tally_by_workflow() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{workflow}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            tally.total(),
            tally.failed(),
            tally.unsupported + tally.skipped
        );
        for r in report.results.iter().filter(|r| r.workflow == workflow) {
            let _ = write!(
                out,
                "    <testcase classname=\"{workflow}\" name=\"{}\" time=\"{:.3}\">",
                escape(r.id),
                r.duration_ms as f64 / 1000.0
            );
            match &r.outcome {
                Outcome::Pass => {}
                Outcome::Fail(reason) => {
                    let transcript: String = r.transcript.iter().map(|e| e.render()).collect();
                    let _ = write!(
                        out,
                        "\n      <failure message=\"{} {}\" type=\"{}\">{}\n\nrule: {}\n\n{}</failure>\n    ",
                        r.level,
                        escape(reason.as_str()),
                        r.level,
                        escape(reason.as_str()),
                        escape(r.rule),
                        escape(transcript.as_str())
                    );
                }
                Outcome::Unsupported(reason) | Outcome::Skip(reason) => {
                    let _ = write!(
                        out,
                        "\n      <skipped message=\"{}: {}\"/>\n    ",
                        r.outcome.label(),
                        escape(reason.as_str())
                    );
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Level, Workflow};
    use crate::http::{preview, Exchange};
    use crate::runner::CheckReport;

    #[test]
    fn failure_with_binary_body_stays_well_formed_xml() {
        let exchange = Exchange {
            operation: Some("upload_complete".into()),
            method: "PUT".into(),
            url: "http://r.test/v2/a/blobs/uploads/x?digest=sha256:00".into(),
            request_headers: Vec::new(),
            request_body_len: 6,
            request_body: preview(b"\x00\x01<&>\x1b", 100),
            status: Some(400),
            response_headers: Vec::new(),
            response_body_len: 0,
            response_body: String::new(),
            error: None,
            violations: Vec::new(),
        };
        let result = |id, outcome| CheckReport {
            id,
            workflow: Workflow::Push,
            level: Level::Should,
            title: "t",
            rule: "end-6 \"MUST\" <x>",
            outcome,
            duration_ms: 1,
            notes: Vec::new(),
            transcript: vec![exchange.clone()],
        };
        let report = RunReport {
            registry: "http://r.test".into(),
            namespace: "ns".into(),
            started_unix: 0,
            duration_ms: 10,
            results: vec![
                result("push.a", Outcome::Fail("expected 201, got 400 <&>".into())),
                result("push.b", Outcome::Unsupported("no mount".into())),
            ],
        };
        let xml = render(&report);
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap_or_else(|| panic!("no <failure> in {xml}"));
        assert_eq!(failure.attribute("type"), Some("SHOULD"));
        assert!(failure
            .text()
            .unwrap_or("")
            .contains("> PUT http://r.test/v2/a/blobs/uploads/x"));
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("skipped"))
                .count(),
            1
        );
        assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    }
}
