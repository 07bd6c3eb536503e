//! The plan as JSON (`images --dry-run --format json`), for programs: every step with
//! its dependencies, exact argv, staging operations and decision, as
//! `docker buildx bake --print` shows a build.

use serde::Serialize;

use crate::docker::argv::Builder;
use crate::facts::preflight::Facts;
use crate::plan::Plan;
use crate::steps::decision::Status;
use fate_bundle::process::Command;

#[derive(Serialize)]
struct PlanJson<'a> {
    images: &'a [String],
    builder: &'static str,
    /// The engine's version; `null` when it did not answer.
    engine: Option<&'a str>,
    steps: Vec<StepJson<'a>>,
}

#[derive(Serialize)]
struct StepJson<'a> {
    id: &'a str,
    kind: &'static str,
    title: &'a str,
    dependencies: Vec<&'a str>,
    /// Program and arguments, exactly as run; `null` for steps that run no process.
    argv: Option<Vec<&'a str>>,
    /// Program and arguments of the command `argv`'s output is piped into, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    piped_into: Option<Vec<&'a str>>,
    env: Vec<(&'a str, &'a str)>,
    cwd: Option<String>,
    /// The file the command reads as its stdin (a build's context tar), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin_file: Option<String>,
    /// What the step writes or stages, in order.
    operations: Vec<String>,
    /// `up-to-date`, `will-run` or `unknown`.
    decision: &'static str,
    reason: Option<String>,
}

/// A command's program and arguments.
fn argv(command: &Command) -> Vec<&str> {
    std::iter::once(command.program.as_str())
        .chain(command.args.iter().map(String::as_str))
        .collect()
}

/// The plan with each step's status, pretty-printed.
#[must_use]
pub fn render(plan: &Plan, status: &[Status], facts: &Facts) -> String {
    let steps = plan
        .steps
        .iter()
        .zip(status)
        .map(|(step, status)| {
            let command = step.action.command();
            let (decision, reason) = match status {
                Status::UpToDate => ("up-to-date", None),
                Status::WillRun(reason) => ("will-run", Some(reason.to_string())),
                Status::Unknown(why) => ("unknown", Some(why.clone())),
            };
            StepJson {
                id: &step.id,
                kind: step.action.kind_name(),
                title: &step.title,
                dependencies: step
                    .deps
                    .iter()
                    .map(|d| plan.steps[*d].id.as_str())
                    .collect(),
                argv: command.map(argv),
                piped_into: command.and_then(|c| c.piped_into.as_deref()).map(argv),
                env: command.map_or_else(Vec::new, |c| {
                    c.env
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect()
                }),
                cwd: command.and_then(|c| c.cwd.as_ref().map(|d| d.display().to_string())),
                stdin_file: command
                    .and_then(|c| c.stdin_file.as_ref().map(|f| f.display().to_string())),
                operations: step.action.operations(),
                decision,
                reason,
            }
        })
        .collect();
    let json = PlanJson {
        images: &plan.images,
        builder: match facts.builder {
            Builder::BuildKit => "buildkit",
            Builder::Legacy => "legacy",
        },
        engine: facts
            .engine_down
            .is_none()
            .then_some(facts.engine.version.as_str()),
        steps,
    };
    serde_json::to_string_pretty(&json).expect("the plan serializes") + "\n"
}
