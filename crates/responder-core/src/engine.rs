//! The engine: validated playbooks in priority order, and the one call that turns a
//! finding into a plan.

use std::path::Path;

use crate::diagnostic::{Diagnostic, Level};
use crate::finding::Finding;
use crate::plan::{self, Observed, Plan};
use crate::playbook::validate::validate;
use crate::playbook::{LoadedPlaybook, load_dir};
use crate::select::{Selection, select};
use crate::sequence::SequenceView;
use crate::steps::{PlanError, Settings};

/// Validated playbooks, ready to plan findings. Cheap to share across threads.
#[derive(Debug, Clone)]
pub struct Engine {
    playbooks: Vec<LoadedPlaybook>,
    warnings: Vec<Diagnostic>,
    settings: Settings,
}

impl Engine {
    /// Loads and validates every playbook in `dir`. Any error refuses the whole set:
    /// half a policy is never used.
    pub fn load(dir: &Path) -> Result<Engine, Vec<Diagnostic>> {
        let (loaded, mut diagnostics) = load_dir(dir).map_err(|d| vec![d])?;
        if loaded.is_empty() && diagnostics.is_empty() {
            diagnostics.push(Diagnostic::error(
                dir,
                "no playbooks (*.yaml) in this folder",
            ));
        }
        diagnostics.extend(validate(&loaded));
        Engine::from_parts(loaded, diagnostics)
    }

    /// [`Engine::load`] for command lines: the engine (none when any playbook is an
    /// error) and the lines to print on standard error (warnings, or every
    /// diagnostic and the count of errors).
    pub fn load_reported(dir: &Path) -> (Option<Engine>, Vec<String>) {
        match Engine::load(dir) {
            Ok(engine) => {
                let lines = engine.warnings().iter().map(ToString::to_string).collect();
                (Some(engine), lines)
            }
            Err(diagnostics) => {
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.level == Level::Error)
                    .count();
                let mut lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                lines.push(format!(
                    "{errors} error(s) in {}: no playbook is used",
                    dir.display()
                ));
                (None, lines)
            }
        }
    }

    /// Builds an engine from already-loaded playbooks, validating them.
    pub fn from_playbooks(loaded: Vec<LoadedPlaybook>) -> Result<Engine, Vec<Diagnostic>> {
        let diagnostics = validate(&loaded);
        Engine::from_parts(loaded, diagnostics)
    }

    fn from_parts(
        mut loaded: Vec<LoadedPlaybook>,
        mut diagnostics: Vec<Diagnostic>,
    ) -> Result<Engine, Vec<Diagnostic>> {
        diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        if diagnostics.iter().any(|d| d.level == Level::Error) {
            return Err(diagnostics);
        }
        loaded.sort_by(|a, b| {
            b.playbook
                .priority
                .cmp(&a.playbook.priority)
                .then_with(|| a.playbook.name().cmp(b.playbook.name()))
        });
        Ok(Engine {
            playbooks: loaded,
            warnings: diagnostics,
            settings: Settings::default(),
        })
    }

    /// The same playbooks planned under these deployment settings.
    pub fn with_settings(mut self, settings: Settings) -> Engine {
        self.settings = settings;
        self
    }

    /// Why the deployment settings cannot be used with these playbooks, one message
    /// each; empty when they can. A quarantine group override is held to the checks a
    /// playbook's own `quarantine_group` gets (not `default`, not `sg-...`), and must
    /// differ from every isolate step's untrack group, which is opened to all traffic.
    /// Callers refuse to plan or start when this is not empty.
    pub fn settings_problems(&self) -> Vec<String> {
        let Some(q) = &self.settings.quarantine_group else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(why) = crate::steps::isolate::group_name_problem(q) {
            out.push(format!("quarantine group setting {q:?}: {why}"));
        }
        for lp in &self.playbooks {
            for step in &lp.playbook.steps.value {
                if let crate::steps::Step::Isolate(p) = &step.value
                    && p.cut_connections
                    && p.untrack_group.eq_ignore_ascii_case(q)
                {
                    out.push(format!(
                        "quarantine group setting {q:?} is the untrack group of playbook {} ({}): that group is opened to all traffic",
                        lp.playbook.name(),
                        lp.file.display()
                    ));
                }
            }
        }
        out
    }

    /// The deployment settings plans are made under.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The playbooks, in the order they are tried.
    pub fn playbooks(&self) -> &[LoadedPlaybook] {
        &self.playbooks
    }

    /// Warnings found while validating.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Which playbook answers the finding, and why.
    pub fn select(&self, finding: &Finding, explain_all: bool) -> Selection {
        select(&self.playbooks, finding, explain_all)
    }

    /// The plan for one finding. With `explain_all`, the plan also says why every
    /// other playbook did not answer.
    ///
    /// An attack sequence (a finding about no instance whose
    /// `service.detection.sequence` is present) fans out: one section per instance
    /// ([`plan::fan_out`]).
    pub fn plan(&self, finding: &Finding, explain_all: bool) -> Result<Plan, PlanError> {
        self.plan_as(finding, explain_all, true)
    }

    /// The plan for one member of an attack sequence
    /// ([`crate::sequence::member_finding`]): the finding as if it were about that
    /// instance alone, never fanned out again. The executor runs this per member,
    /// after matching the member's live tags.
    pub fn plan_member(&self, member: &Finding) -> Result<Plan, PlanError> {
        self.plan_as(member, false, false)
    }

    fn plan_as(
        &self,
        finding: &Finding,
        explain_all: bool,
        fan_out: bool,
    ) -> Result<Plan, PlanError> {
        let selection = self.select(finding, explain_all);
        let chosen = selection.winner.map(|i| &self.playbooks[i]);
        let view = chosen
            .filter(|_| fan_out && finding.instance.is_none())
            .and_then(|_| SequenceView::of(finding));
        let (steps, sequence) = match (chosen, view) {
            (Some(p), Some(view)) => {
                let (steps, sequence) = plan::fan_out(finding, &p.playbook, &self.settings, view)?;
                (steps, Some(sequence))
            }
            (Some(p), None) => (plan::steps(finding, &p.playbook, &self.settings)?, None),
            (None, _) => (Vec::new(), None),
        };
        Ok(Plan {
            finding_id: finding.id.clone(),
            finding_type: finding.finding_type.name.clone(),
            severity: finding.severity,
            severity_level: finding.severity_level().map(|l| l.as_str()),
            account_id: finding.account_id.clone(),
            region: finding.region.clone(),
            instance_id: finding.instance_id().map(str::to_owned),
            playbook: chosen.map(|p| p.playbook.name().to_owned()),
            playbook_file: chosen.map(|p| p.file.display().to_string()),
            mode: chosen.map(|p| p.playbook.mode),
            matched_because: selection.reasons,
            decision: selection.decision,
            not_chosen: selection.not_chosen,
            observed: chosen.and(finding.instance.as_ref()).map(Observed::of),
            max_per_hour: chosen.and_then(|p| p.playbook.limits.max_per_hour),
            steps,
            sequence,
        })
    }
}
