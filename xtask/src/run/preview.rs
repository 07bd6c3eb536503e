//! The dry run: what each step of a plan would do, without doing it, each kind deciding
//! as its run would.

use crate::plan::Plan;
use crate::steps::decision::Status;
use crate::steps::kind::Preview;

/// For `--dry-run`: what each step would do, without doing it, each kind deciding as its
/// run would (see [`StepKind::preview`]).
#[must_use]
pub fn preview(plan: &Plan, preview: &Preview) -> Vec<Status> {
    let mut out: Vec<Status> = Vec::new();
    for step in &plan.steps {
        let status = {
            let after = step
                .deps
                .iter()
                .find(|d| !matches!(out[**d], Status::UpToDate))
                .map(|d| (plan.steps[*d].id.as_str(), &out[*d]));
            step.action.step_kind().preview(preview, after)
        };
        out.push(status);
    }
    out
}
