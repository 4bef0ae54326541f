//! Download progress: bars on a terminal, nothing at all in CI or when output is piped.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress bars go. Cheap to clone; bars from clones share one display.
#[derive(Debug, Clone)]
pub struct Progress {
    multi: MultiProgress,
}

impl Progress {
    /// Bars on stderr when it is a terminal, hidden otherwise.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
            Progress {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            }
        } else {
            Self::hidden()
        }
    }

    /// Never draws anything.
    pub fn hidden() -> Self {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
        }
    }

    /// A byte-count bar for one download (`total` from Content-Length when known).
    pub fn download(&self, label: &str, total: Option<u64>) -> ProgressBar {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg:30!} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let bar = self.multi.add(bar);
        bar.set_message(label.to_string());
        bar
    }

    /// A counter over `total` steps (packages fetched, unpacked).
    pub fn steps(&self, label: &str, total: u64) -> ProgressBar {
        let bar = self.multi.add(
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{msg:30!} [{bar:30}] {pos}/{len}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            ),
        );
        bar.set_message(label.to_string());
        bar
    }
}
