//! Progress output: indicatif spinners and byte bars on a terminal, plain timestamped
//! lines elsewhere, nothing but warnings and errors when quiet. Decided once, up front;
//! children never write to the terminal directly.

pub mod problems;
pub mod suggest;

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Ui {
    output: Output,
    /// Show each step's command line as it starts (`-v`).
    verbose: bool,
}

#[derive(Clone)]
enum Output {
    Bars(MultiProgress),
    Plain,
    Quiet,
}

/// How progress is shown, as `--progress` and `-q` choose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// Bars on a terminal, plain lines elsewhere.
    #[default]
    Auto,
    /// Bars.
    Tty,
    /// Plain timestamped lines.
    Plain,
}

impl Ui {
    /// Bars on a terminal (not `TERM=dumb`), plain lines elsewhere; `NO_COLOR` only
    /// removes colour, which the bars do not use.
    #[must_use]
    pub fn new(progress: Progress, quiet: bool, verbose: bool) -> Ui {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var("TERM").is_ok_and(|t| t != "dumb");
        let bars = || Output::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let output = match (quiet, progress) {
            (true, _) => Output::Quiet,
            (false, Progress::Tty) => bars(),
            (false, Progress::Auto) if terminal => bars(),
            (false, _) => Output::Plain,
        };
        Ui { output, verbose }
    }

    /// Plain lines, whatever the terminal (for tests).
    #[must_use]
    pub fn plain() -> Ui {
        Ui {
            output: Output::Plain,
            verbose: false,
        }
    }

    /// A line for a starting step: a spinner with the child's latest output line.
    #[must_use]
    pub fn start(&self, title: &str) -> StepLine {
        let line = self.line(title, ProgressBar::new_spinner(), || {
            ProgressStyle::with_template("{spinner} [{elapsed:>4}] {prefix} {wide_msg}")
        });
        StepLine {
            line,
            ui: self.verbose.then(|| self.clone()),
        }
    }

    /// Progress through a byte stream of `total` bytes (when known): a bar with bytes,
    /// rate and time left on a terminal, a plain line every few seconds elsewhere.
    pub fn bytes(&self, title: &str, total: Option<u64>) -> ByteProgress {
        let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
        let line = self.line(title, bar, || {
            let template = if total.is_some() {
                "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            } else {
                "{spinner} {prefix} {bytes} {bytes_per_sec} [{elapsed}]"
            };
            ProgressStyle::with_template(template).map(|s| s.progress_chars("=> "))
        });
        ByteProgress {
            line,
            total,
            plain: Mutex::new((0, Instant::now())),
        }
    }

    fn line(
        &self,
        title: &str,
        bar: ProgressBar,
        style: impl Fn() -> Result<ProgressStyle, indicatif::style::TemplateError>,
    ) -> Line {
        let display = match &self.output {
            Output::Bars(multi) => {
                let bar = multi.add(bar);
                bar.set_style(style().expect("static template"));
                bar.set_prefix(title.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                Display::Bar(bar)
            }
            Output::Plain => {
                eprintln!("[{}] start {title}", timestamp());
                Display::Plain
            }
            Output::Quiet => Display::Hidden,
        };
        Line {
            title: title.to_string(),
            started: Instant::now(),
            display,
        }
    }

    /// A line that is not tied to a step (warnings, summaries); shown even when quiet.
    /// `-q`: only warnings, errors and results.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        matches!(self.output, Output::Quiet)
    }

    pub fn note(&self, text: &str) {
        match &self.output {
            Output::Bars(multi) => {
                let _ = multi.println(text);
            }
            Output::Plain | Output::Quiet => eprintln!("{text}"),
        }
    }
}

enum Display {
    Bar(ProgressBar),
    Plain,
    Hidden,
}

struct Line {
    title: String,
    started: Instant,
    display: Display,
}

impl Line {
    fn finish(self, status: &str, detail: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let text = format!("{status:<8} {} ({secs:.1}s){detail}", self.title);
        match self.display {
            Display::Bar(bar) => {
                bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
                bar.finish_with_message(text);
            }
            Display::Plain => eprintln!("[{}] {text}", timestamp()),
            Display::Hidden => {}
        }
    }
}

/// The display of one running step.
pub struct StepLine {
    line: Line,
    /// Where to show command lines, when verbose.
    ui: Option<Ui>,
}

impl StepLine {
    /// Shows the child's latest output line next to the spinner.
    pub fn progress(&self, line: &str) {
        if let Display::Bar(bar) = &self.line.display {
            bar.set_message(line.trim().chars().take(200).collect::<String>());
        }
    }

    /// Shows the command line a step runs (with `-v`).
    pub fn command(&self, command: &str) {
        if let Some(ui) = &self.ui {
            ui.note(&format!("  $ {command}"));
        }
    }

    /// Ends the step with a status word (`done`, `FAILED`, `fresh`).
    pub fn finish(self, status: &str, detail: &str) {
        self.line.finish(status, detail);
    }
}

/// The display of a byte stream's progress.
pub struct ByteProgress {
    line: Line,
    total: Option<u64>,
    /// Bytes so far and when the last plain line was printed.
    plain: Mutex<(u64, Instant)>,
}

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl ByteProgress {
    pub fn add(&self, n: u64) {
        match &self.line.display {
            Display::Bar(bar) => bar.inc(n),
            Display::Hidden => {}
            Display::Plain => {
                if let Some(line) = self.plain_line(n, PLAIN_EVERY) {
                    eprintln!("[{}]   {line}", timestamp());
                }
            }
        }
    }

    /// Counts `n` more bytes; once `every` has passed since the last line, the next line
    /// to print: bytes so far, and the percentage when the total is known.
    fn plain_line(&self, n: u64, every: Duration) -> Option<String> {
        let mut state = self.plain.lock().ok()?;
        state.0 += n;
        if state.1.elapsed() < every {
            return None;
        }
        state.1 = Instant::now();
        let done = state.0;
        let percent = self
            .total
            .filter(|t| *t > 0)
            .map(|t| format!(" ({}%)", (done.saturating_mul(100) / t).min(100)))
            .unwrap_or_default();
        Some(format!(
            "{}: {}{percent}",
            self.line.title,
            human_size(done)
        ))
    }

    /// Ends the stream with a status word and a detail.
    pub fn finish(self, status: &str, detail: &str) {
        self.line.finish(status, detail);
    }
}

fn timestamp() -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // Keep the time of day only: lines of one run share a date.
    now.get(11..19).unwrap_or(&now).to_string()
}

/// Sizes as Docker prints them: decimal units, up to four significant digits.
#[must_use]
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss, reason = "a display value")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::{Ui, human_size};
    use std::time::Duration;

    #[test]
    fn plain_progress_says_bytes_and_percent_every_few_seconds() {
        let ui = Ui::plain();
        let progress = ui.bytes("save fate.images.tar.gz", Some(4_000_000));
        let every = Duration::from_millis(50);
        assert_eq!(progress.plain_line(1_000_000, every), None, "too soon");
        std::thread::sleep(every);
        assert_eq!(
            progress.plain_line(1_000_000, every).as_deref(),
            Some("save fate.images.tar.gz: 2MB (50%)")
        );
        assert_eq!(
            progress.plain_line(1, every),
            None,
            "a line was just printed"
        );
        let unknown = ui.bytes("load x", None);
        std::thread::sleep(every);
        assert_eq!(
            unknown.plain_line(72_800_000, every).as_deref(),
            Some("load x: 72.8MB")
        );
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_096), "4.096kB");
        assert_eq!(human_size(72_800_000), "72.8MB");
        assert_eq!(human_size(1_234_000_000), "1.234GB");
        assert_eq!(human_size(590_000_000), "590MB");
    }
}
