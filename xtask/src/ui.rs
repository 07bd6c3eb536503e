//! Progress output: indicatif spinners on a terminal, plain timestamped lines elsewhere.
//! Decided once, up front; children never write to the terminal directly.

use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub enum Ui {
    Bars(MultiProgress),
    Plain,
}

/// The display of one running step.
pub struct StepLine {
    title: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Ui {
    pub fn detect() -> Ui {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if std::io::stderr().is_terminal() && !dumb && std::env::var_os("NO_COLOR").is_none() {
            Ui::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Ui::Plain
        }
    }

    pub fn start(&self, title: &str) -> StepLine {
        let bar = match self {
            Ui::Bars(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed:>4}] {prefix} {wide_msg:.dim}",
                    )
                    .expect("static template"),
                );
                bar.set_prefix(title.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Ui::Plain => {
                eprintln!("[{}] start {title}", timestamp());
                None
            }
        };
        StepLine {
            title: title.to_string(),
            started: Instant::now(),
            bar,
        }
    }

    /// A line that is not tied to a step (warnings, summaries).
    pub fn note(&self, text: &str) {
        match self {
            Ui::Bars(multi) => {
                let _ = multi.println(text);
            }
            Ui::Plain => eprintln!("{text}"),
        }
    }
}

impl StepLine {
    /// Shows the child's latest output line next to the spinner.
    pub fn progress(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(line.trim().chars().take(200).collect::<String>());
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the step with a status word (`done`, `FAILED`, `skipped`, `up to date`).
    pub fn finish(self, status: &str, detail: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let text = format!("{status:<8} {} ({secs:.1}s){detail}", self.title);
        match self.bar {
            Some(bar) => {
                bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
                bar.finish_with_message(text);
            }
            None => eprintln!("[{}] {text}", timestamp()),
        }
    }
}

fn timestamp() -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // Keep the time of day only: lines of one run share a date.
    now.get(11..19).unwrap_or(&now).to_string()
}
