//! `responder plan`: the playbook, the reasons and the steps for each finding.
//!
//! Input and output stream: each input is decoded one finding at a time
//! ([`responder_core::Findings`]: an array of any length, newline-delimited findings,
//! an event, a get-findings answer), each finding is planned and written out, then
//! dropped, so memory does not grow with the number of findings.
//!
//! - `--format json` writes the one document it always wrote, `{"plans": [...]}`,
//!   pretty-printed, plan by plan as they are made.
//! - `--format text` writes pages of [`PAGE`] findings: a table of the page, then each
//!   finding's details. Up to [`PAGE`] findings this is one table and the details, as
//!   before streaming.
//!
//! - Text starts with the console's header, the findings counted by severity, when the
//!   input fits in one page; a longer stream cannot know its counts before its end, so
//!   it ends with them instead (`total by severity: ...`). `--details` adds each
//!   finding's details panel (escaped) before its plan.
//!
//! [`Report`] is where each outcome goes ([`Report::outcome`]) and where the end of the
//! output is written ([`Report::finish`]).

use std::path::{Path, PathBuf};

use responder_core::console::{SeverityCounts, details_panel};
use responder_core::plan::{Plan, SequencePlan};
use responder_core::severity::SeverityLevel;
use responder_core::steps::Settings;
use responder_core::steps::{OnFailure, PlannedStep};
use responder_core::text::escape;
use responder_core::{Engine, Findings};
use serde_json::{Value, json};

use crate::Format;
use crate::input;
use crate::output::{Stream, errln};
use crate::table;

/// Findings per page of text output (one table, then the details of its findings).
pub const PAGE: usize = 1000;

/// One finding's outcome: a plan, or why there is none.
pub struct Outcome {
    /// Where the finding came from: `file#index`, or the file for an input-level error.
    pub source: String,
    /// The plan, or why there is none.
    pub result: Result<Plan, Failure>,
    /// The finding's details panel (text, `--details`).
    pub details: Option<String>,
}

/// Why a finding (or a whole input) has no plan.
pub struct Failure {
    /// The finding's id, when it was decoded.
    pub finding_id: Option<String>,
    /// The finding's type, when it was decoded.
    pub finding_type: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// Exit 0 when every finding was planned, 1 on invalid playbooks, 2 when any input or
/// finding could not be read or planned (the others are still planned and written).
pub fn run(
    dir: &Path,
    settings: Settings,
    format: Format,
    why_not: bool,
    details: bool,
    files: &[PathBuf],
) -> u8 {
    let Some(engine) = input::engine_with(dir, settings) else {
        return 1;
    };
    let details = details && matches!(format, Format::Text);
    let mut report = Report::new(format);
    for path in files {
        let label = input::label(path);
        let reader = match input::open(path) {
            Ok(reader) => reader,
            Err(message) => {
                report.input_failed(label, message);
                continue;
            }
        };
        let mut count = 0usize;
        let mut fatal = false;
        for item in Findings::new(reader) {
            match item {
                Err(e) => {
                    fatal = true;
                    report.input_failed(label.clone(), format!("{label}: {e}"));
                }
                Ok(f) => {
                    let source = format!("{label}#{count}");
                    count += 1;
                    let (result, panel) = match f {
                        Err(e) => (
                            Err(Failure {
                                finding_id: None,
                                finding_type: None,
                                message: e.to_string(),
                            }),
                            None,
                        ),
                        Ok(f) => (
                            plan_one(&engine, &f, why_not),
                            details.then(|| details_panel(&f)),
                        ),
                    };
                    report.outcome(Outcome {
                        source,
                        result,
                        details: panel,
                    });
                }
            }
        }
        if count == 0 && !fatal {
            errln!("{label}: no findings");
        }
    }
    report.finish()
}

/// Where outcomes go, as they are made.
pub struct Report {
    format: Format,
    out: Stream,
    /// Outcomes so far (JSON: to place the commas).
    written: usize,
    /// The text page being filled.
    page: Vec<Outcome>,
    /// Text pages written so far.
    pages: usize,
    /// The planned findings by severity (the console's header).
    counts: SeverityCounts,
    failed: bool,
}

impl Report {
    fn new(format: Format) -> Report {
        let mut out = Stream::default();
        if matches!(format, Format::Json) {
            out.json("{\n  \"plans\": [");
        }
        Report {
            format,
            out,
            written: 0,
            page: Vec::new(),
            pages: 0,
            counts: SeverityCounts::default(),
            failed: false,
        }
    }

    /// A whole input could not be read or decoded (`message` names it).
    fn input_failed(&mut self, source: String, message: String) {
        self.outcome(Outcome {
            source,
            result: Err(Failure {
                finding_id: None,
                finding_type: None,
                message,
            }),
            details: None,
        });
    }

    /// One finding's outcome: reported on standard error when it failed, then written.
    pub fn outcome(&mut self, outcome: Outcome) {
        if let Err(e) = &outcome.result {
            self.failed = true;
            if e.message.starts_with(&outcome.source) {
                errln!("{}", e.message);
            } else {
                errln!("{}: {}", outcome.source, e.message);
            }
        }
        match self.format {
            Format::Json => {
                let text = serde_json::to_string_pretty(&to_json(&outcome)).unwrap_or_default();
                self.out.json(if self.written == 0 { "\n" } else { ",\n" });
                self.out.json(&indent(&text, "    "));
                self.written += 1;
            }
            Format::Text => {
                self.written += 1;
                if let Ok(p) = &outcome.result {
                    self.counts.add(p.severity.map(SeverityLevel::of));
                }
                self.page.push(outcome);
                if self.page.len() >= PAGE {
                    self.flush_page(false);
                }
            }
        }
    }

    /// Writes the page; the first of a stream that ends within it starts with the
    /// severity header (`last`: no finding follows).
    fn flush_page(&mut self, last: bool) {
        if self.page.is_empty() {
            return;
        }
        if self.pages == 0 && last {
            self.out.text(&format!("{}\n\n", self.counts));
        }
        self.out.text(&to_text(&self.page));
        self.page.clear();
        self.pages += 1;
    }

    /// Ends the output; the exit code (0, or 2 when anything failed).
    pub fn finish(mut self) -> u8 {
        match self.format {
            Format::Json => {
                self.out.json(if self.written == 0 {
                    "]\n}\n"
                } else {
                    "\n  ]\n}\n"
                });
            }
            Format::Text => {
                if self.written == 0 {
                    // As before streaming: an empty table, under empty counts.
                    self.out.text(&format!("{}\n\n", self.counts));
                    self.out.text(&to_text(&[]));
                }
                let streamed = self.pages > 0;
                self.flush_page(true);
                if streamed {
                    self.out
                        .text(&format!("\ntotal by severity: {}\n", self.counts));
                }
            }
        }
        let failed = self.failed;
        std::mem::take(&mut self.out).finish();
        if failed { 2 } else { 0 }
    }
}

/// Every line of `text` after `prefix`.
fn indent(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(prefix);
        out.push_str(line);
    }
    out
}

fn plan_one(engine: &Engine, f: &responder_core::Finding, why_not: bool) -> Result<Plan, Failure> {
    engine.plan(f, why_not).map_err(|e| Failure {
        finding_id: Some(f.id.clone()),
        finding_type: Some(f.finding_type.name.clone()),
        message: e.to_string(),
    })
}

fn to_json(o: &Outcome) -> Value {
    match &o.result {
        Ok(plan) => {
            let mut v = serde_json::to_value(plan).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut v {
                map.insert("source".to_owned(), json!(o.source));
            }
            v
        }
        Err(e) => json!({
            "source": o.source,
            "finding_id": e.finding_id,
            "finding_type": e.finding_type,
            "error": e.message,
        }),
    }
}

fn to_text(outcomes: &[Outcome]) -> String {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(p) => vec![
                short(&p.finding_id),
                p.finding_type.clone(),
                match (p.severity, p.severity_level) {
                    (Some(s), Some(l)) => format!("{s} {l}"),
                    _ => "-".to_owned(),
                },
                p.playbook.clone().unwrap_or_else(|| "(none)".to_owned()),
                p.mode.map_or("-", |m| m.as_str()).to_owned(),
                step_column(p),
            ],
            Err(e) => vec![
                e.finding_id
                    .as_deref()
                    .map_or_else(|| o.source.clone(), short),
                e.finding_type.clone().unwrap_or_else(|| "-".to_owned()),
                "-".to_owned(),
                "ERROR".to_owned(),
                "-".to_owned(),
                e.message.clone(),
            ],
        })
        .collect();
    let mut out = table::render(
        &["FINDING", "TYPE", "SEVERITY", "PLAYBOOK", "MODE", "STEPS"],
        &rows,
    );
    // Every value below can come from the finding: each is escaped on its own, so
    // that a newline in one cannot forge a line of this report.
    for o in outcomes {
        let Ok(p) = &o.result else { continue };
        out.push_str(&format!(
            "\n{} ({}): {}\n",
            escape(&p.finding_id),
            escape(&o.source),
            escape(&p.finding_type)
        ));
        if let Some(panel) = &o.details {
            // Escaped by `details_panel`, field by field.
            out.push_str(&indent(panel.trim_end(), "  | "));
            out.push('\n');
        }
        let decision = escape(&p.decision);
        match &p.playbook {
            Some(name) => out.push_str(&format!("  playbook: {} ({decision})\n", escape(name))),
            None => out.push_str(&format!("  playbook: none ({decision})\n")),
        }
        for r in &p.matched_because {
            out.push_str(&format!("  because: {}\n", escape(r)));
        }
        for n in p.not_chosen.iter().flatten() {
            out.push_str(&format!(
                "  not {}: {}\n",
                escape(&n.playbook),
                escape(&n.reason)
            ));
        }
        if let Some(q) = &p.sequence {
            sequence_text(q, &mut out);
            if !p.steps.is_empty() {
                out.push_str("  once for the sequence, after the instances:\n");
            }
        }
        for (i, s) in p.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, escape(&describe(s))));
        }
        if let Some(o) = &p.observed {
            out.push_str("  as the finding saw the instance (live state wins when it runs):\n");
            for e in &o.network_interfaces {
                out.push_str(&format!(
                    "    {} in {} [{}]\n",
                    escape(&e.network_interface_id),
                    escape(e.vpc_id.as_deref().unwrap_or("?")),
                    escape(&e.security_groups.join(" "))
                ));
            }
            if let Some(arn) = &o.instance_profile_arn {
                out.push_str(&format!("    instance profile {}\n", escape(arn)));
            }
            if let Some(g) = &o.auto_scaling_group {
                out.push_str(&format!("    Auto Scaling group {}\n", escape(g)));
            }
        }
    }
    out
}

/// The STEPS column: the steps, or for an attack sequence the instance steps times
/// the instances, then the steps run once.
fn step_column(p: &Plan) -> String {
    let names = |steps: &[PlannedStep]| {
        steps
            .iter()
            .map(|s| s.action.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if let Some(q) = &p.sequence {
        let per = q
            .sections
            .first()
            .map(|s| names(&s.steps))
            .unwrap_or_default();
        parts.push(format!("{} instance(s): {per}", q.sections.len()));
    }
    if !p.steps.is_empty() {
        parts.push(names(&p.steps));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join("; ")
    }
}

/// An attack sequence's fan-out: every instance with its steps, the instances not
/// answered, the shared cause and the dropped ids. Every value is escaped: the uids
/// come from the finding.
fn sequence_text(q: &SequencePlan, out: &mut String) {
    out.push_str(&format!(
        "  attack sequence {}: {} instance(s) answered (max_instances {})\n",
        escape(q.uid.as_deref().unwrap_or("-")),
        q.sections.len(),
        q.max_instances
    ));
    for section in &q.sections {
        out.push_str(&format!("  instance {}:\n", escape(&section.instance_id)));
        for (i, s) in section.steps.iter().enumerate() {
            out.push_str(&format!("    {}. {}\n", i + 1, escape(&describe(s))));
        }
    }
    for n in &q.not_answered {
        out.push_str(&format!(
            "  instance {}: not answered ({})\n",
            escape(&n.instance_id),
            escape(&n.reason)
        ));
    }
    if q.shared.is_empty() {
        out.push_str("  shared cause: none named by the sequence\n");
    }
    for r in &q.shared {
        out.push_str(&format!(
            "  shared cause: {} {}{}\n",
            r.kind.label(),
            escape(&r.uid),
            if r.instances.is_empty() {
                String::new()
            } else {
                format!(" (instances {})", escape(&r.instances.join(" ")))
            }
        ));
    }
    for d in &q.dropped {
        out.push_str(&format!(
            "  dropped: {:?} at {} is not an instance id: never acted on\n",
            escape(&d.value),
            escape(&d.source)
        ));
    }
}

fn short(id: &str) -> String {
    if id.chars().count() > 12 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_owned()
    }
}

/// One line per step: the step's own summary of what it will do.
fn describe(step: &PlannedStep) -> String {
    format!(
        "{} {} (on failure: {})",
        step.action.name(),
        step.action.summary(),
        match step.on_failure {
            OnFailure::Abort => "abort",
            OnFailure::Continue => "continue",
        }
    )
}
