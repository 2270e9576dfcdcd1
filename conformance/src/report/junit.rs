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
