//! What `saga scenarios` prints: a table for people, JSON for scripts.
//!
//! | output            | shape                                                                   |
//! |-------------------|-------------------------------------------------------------------------|
//! | text (default)    | one block per scenario: a row (number, scenario, order id, status), the path taken wrapped at the terminal's width, the design's path when they differ, and the Web UI link on a line of its own |
//! | `--json`          | one JSON document, [`Report`]: `{"all_match": bool, "scenarios": [ScenarioRun, …]}` |
//!
//! The text reads at 100 columns: the row fits in 100, the path wraps between steps, and the
//! link is alone on its line so a terminal can still open it when it is wider than the screen.

use crate::{
    history::{Closed, SagaHistory},
    launch,
};
use saga_protos::scenario::{SAGA_FAILED, Scenario};
use serde::Serialize;
use std::fmt::Write as _;

/// Width used when standard output is not a terminal and `COLUMNS` is not set.
pub const DEFAULT_WIDTH: usize = 100;
/// Narrower than this, wrapping stops helping; lines are simply long.
const MIN_WIDTH: usize = 60;
/// Where a scenario's detail lines start.
const INDENT: &str = "    ";

/// One scenario's saga, as `saga scenarios --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioRun {
    /// The row of the design's table, 1 to 7.
    pub row: usize,
    /// The scenario's short name, e.g. `payment fails`.
    pub scenario: &'static str,
    pub order_id: String,
    pub workflow_id: String,
    pub run_id: String,
    /// How the workflow closed: `Completed`, `Failed`, `Cancelled`, `Terminated`, `TimedOut`
    /// or `Running`.
    pub status: &'static str,
    /// The application failure type of a failed workflow (`SagaFailed`), else `null`.
    pub failure_type: Option<String>,
    /// The activity types the history shows, in the order they were scheduled.
    pub path: Vec<String>,
    /// What the design's table says: its path and how it ends.
    pub expected_path: Vec<&'static str>,
    pub expected_status: &'static str,
    pub expected_failure_type: Option<&'static str>,
    /// Whether path, status and failure type are the design's.
    pub matches_design: bool,
    /// The saga's page in the Temporal Web UI.
    pub web_ui: String,
}

impl ScenarioRun {
    pub fn new(
        row: usize,
        scenario: &'static Scenario,
        order_id: String,
        started: &launch::Started,
        history: &SagaHistory,
        web_ui: String,
    ) -> Self {
        let (status, failure_type) = match &history.closed {
            Closed::Completed => ("Completed", None),
            Closed::Failed { failure_type, .. } => ("Failed", Some(failure_type.clone())),
            Closed::Cancelled => ("Cancelled", None),
            Closed::Terminated => ("Terminated", None),
            Closed::TimedOut => ("TimedOut", None),
            Closed::Running => ("Running", None),
        };
        Self {
            row,
            scenario: scenario.name,
            matches_design: launch::matches_design(&order_id, history),
            order_id,
            workflow_id: started.workflow_id.clone(),
            run_id: started.run_id.clone(),
            status,
            failure_type,
            path: history.path.clone(),
            expected_path: scenario.path.to_vec(),
            expected_status: if scenario.completes {
                "Completed"
            } else {
                "Failed"
            },
            expected_failure_type: (!scenario.completes).then_some(SAGA_FAILED),
            web_ui,
        }
    }

    /// `Completed`, or `Failed (SagaFailed)` with the failure type.
    fn status_label(&self) -> String {
        match &self.failure_type {
            Some(t) if !t.is_empty() => format!("{} ({t})", self.status),
            _ => self.status.to_owned(),
        }
    }
}

/// Everything `saga scenarios` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// True when every scenario took the design's path (the command then exits 0).
    pub all_match: bool,
    pub scenarios: Vec<ScenarioRun>,
}

impl Report {
    pub fn new(scenarios: Vec<ScenarioRun>) -> Self {
        Self {
            all_match: scenarios.iter().all(|s| s.matches_design),
            scenarios,
        }
    }

    /// The table for people, for a screen `width` columns wide.
    pub fn render(&self, width: usize) -> String {
        let width = width.max(MIN_WIDTH);
        let header = ["#", "scenario", "order id", "status"];
        let rows: Vec<[String; 4]> = self
            .scenarios
            .iter()
            .map(|s| {
                [
                    format!("{}{}", s.row, if s.matches_design { "" } else { " ✗" }),
                    s.scenario.to_owned(),
                    s.order_id.clone(),
                    s.status_label(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        push_columns(&mut out, &widths, &header.map(str::to_owned));
        push_columns(&mut out, &widths, &widths.map(|w| "─".repeat(w)));
        for (run, row) in self.scenarios.iter().zip(&rows) {
            push_columns(&mut out, &widths, row);
            push_wrapped(&mut out, "path   ", &run.path, width);
            if !run.matches_design {
                let expected = format!(
                    "{}{}",
                    run.expected_status,
                    run.expected_failure_type
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                );
                push_wrapped(&mut out, "design ", &run.expected_path, width);
                let _ = writeln!(out, "{INDENT}design ends {expected}");
            }
            let _ = writeln!(out, "{INDENT}{}", run.web_ui);
        }
        out
    }
}

/// Left-aligned columns as wide as their widest cell, two spaces apart (counted in characters).
fn push_columns(out: &mut String, widths: &[usize; 4], cells: &[String; 4]) {
    let mut line = String::new();
    for (cell, w) in cells.iter().zip(widths) {
        let pad = w.saturating_sub(cell.chars().count());
        let _ = write!(line, "{cell}{:pad$}  ", "");
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

/// `label` and the steps joined by arrows, wrapped between steps so no line passes `width`
/// (a single step longer than the line still gets a line of its own).
fn push_wrapped<S: AsRef<str>>(out: &mut String, label: &str, steps: &[S], width: usize) {
    let lead = format!("{INDENT}{label}");
    let lead_width = lead.chars().count();
    let mut line = lead.clone();
    let mut line_width = lead_width;
    if steps.is_empty() {
        line.push_str("(no step ran)");
    }
    for (i, step) in steps.iter().enumerate() {
        let step = step.as_ref();
        let piece = if i == 0 {
            step.to_owned()
        } else {
            format!(" → {step}")
        };
        let piece_width = piece.chars().count();
        if i > 0 && line_width + piece_width > width {
            let _ = writeln!(out, "{line}");
            line = format!("{:lead_width$}→ {step}", "");
            line_width = lead_width + 2 + step.chars().count();
        } else {
            line.push_str(&piece);
            line_width += piece_width;
        }
    }
    let _ = writeln!(out, "{line}");
}

/// The width to render for: `COLUMNS` when set, else the terminal's when standard output is
/// one, else [`DEFAULT_WIDTH`].
pub fn output_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return columns;
    }
    terminal_width().unwrap_or(DEFAULT_WIDTH)
}

fn terminal_width() -> Option<usize> {
    use std::os::fd::AsRawFd as _;
    let stdout = std::io::stdout();
    if !std::io::IsTerminal::is_terminal(&stdout) {
        return None;
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which is valid for it.
    let ok = unsafe { libc::ioctl(stdout.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use saga_protos::scenario::SCENARIOS;

    /// The report of a run where every saga took its design path, with realistic ids and links.
    fn report(mismatch_row: Option<usize>) -> Report {
        let runs = SCENARIOS
            .iter()
            .enumerate()
            .map(|(i, scenario)| {
                let order_id = scenario.fresh_order_id();
                let workflow_id = launch::workflow_id(&order_id);
                let run_id = "019a4c1e-5b6d-7e8f-9a0b-1c2d3e4f5a6b".to_owned();
                let mut path: Vec<String> = scenario.path.iter().map(|s| s.to_string()).collect();
                if mismatch_row == Some(i + 1) {
                    path.pop();
                }
                let history = SagaHistory {
                    path,
                    closed: if scenario.completes {
                        Closed::Completed
                    } else {
                        Closed::Failed {
                            failure_type: SAGA_FAILED.into(),
                            message: "compensated".into(),
                        }
                    },
                };
                let web_ui = format!(
                    "http://localhost:8233/namespaces/default/workflows/{workflow_id}/{run_id}/history"
                );
                let started = launch::Started {
                    workflow_id,
                    run_id,
                };
                ScenarioRun::new(i + 1, scenario, order_id, &started, &history, web_ui)
            })
            .collect();
        Report::new(runs)
    }

    #[test]
    fn every_line_but_the_links_fits_in_100_columns() {
        let report = report(None);
        let text = report.render(100);
        for line in text.lines() {
            if line.trim_start().starts_with("http") {
                assert_eq!(line, format!("{INDENT}{}", line.trim_start()));
                continue;
            }
            assert!(
                line.chars().count() <= 100,
                "{} columns: {line}",
                line.len()
            );
        }
        // Each scenario's row, its whole path (possibly wrapped) and its link are there.
        for run in &report.scenarios {
            assert!(text.contains(&run.order_id), "{text}");
            assert!(
                text.lines().any(|l| l.trim() == run.web_ui),
                "the link of row {} on its own line:\n{text}",
                run.row
            );
        }
        let steps: String = text
            .lines()
            .filter(|l| l.starts_with(INDENT) && !l.trim_start().starts_with("http"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(steps.contains("ProcessRefund"), "{text}");
        assert!(!text.contains('✗'), "{text}");
    }

    #[test]
    fn the_longest_path_wraps_between_steps_on_narrow_screens() {
        let text = report(None).render(80);
        let row5: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("5 "))
            .take_while(|l| !l.starts_with("6 "))
            .collect();
        assert!(row5.len() >= 4, "{text}");
        // The path lines (the row itself needs 93 columns).
        assert!(
            row5.iter()
                .filter(|l| l.starts_with(INDENT) && !l.contains("http"))
                .all(|l| l.chars().count() <= 80),
            "{text}"
        );
        let continued = row5
            .iter()
            .filter(|l| l.trim_start().starts_with("→ "))
            .count();
        assert!(continued >= 1, "{text}");
        // Unwrapped, the steps are the design's, in order.
        let path: Vec<&str> = row5
            .iter()
            .filter(|l| !l.contains("http") && l.starts_with(INDENT))
            .flat_map(|l| l.split_whitespace())
            .filter(|w| *w != "→" && *w != "path")
            .collect();
        assert_eq!(path, SCENARIOS[4].path);
        // Wide screens keep it on one line.
        let wide = report(None).render(200);
        assert!(
            wide.lines()
                .any(|l| l.contains("ReleaseInventory → ProcessRefund → Update"))
        );
    }

    #[test]
    fn a_path_that_differs_is_marked_and_shows_the_design() {
        let report = report(Some(3));
        assert!(!report.all_match);
        let text = report.render(100);
        assert!(text.lines().any(|l| l.starts_with("3 ✗")), "{text}");
        assert!(
            text.contains("design ProcessOrder → ProcessPayment"),
            "{text}"
        );
        assert!(text.contains("ends Failed (SagaFailed)"), "{text}");
    }

    #[test]
    fn json_names_every_field_a_script_needs() {
        let report = report(None);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["all_match"], true);
        let first = &json["scenarios"][0];
        for key in [
            "row",
            "scenario",
            "order_id",
            "workflow_id",
            "run_id",
            "status",
            "failure_type",
            "path",
            "expected_path",
            "expected_status",
            "expected_failure_type",
            "matches_design",
            "web_ui",
        ] {
            assert!(first.get(key).is_some(), "{key} in {first}");
        }
        assert_eq!(first["status"], "Failed");
        assert_eq!(first["failure_type"], "SagaFailed");
        assert_eq!(
            json["scenarios"][6]["failure_type"],
            serde_json::Value::Null
        );
        assert_eq!(
            json["scenarios"][6]["path"],
            serde_json::json!([
                "ProcessOrder",
                "ProcessPayment",
                "ReserveInventory",
                "Notify"
            ])
        );
    }
}
