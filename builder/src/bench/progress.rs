//! Which step the benchmark is on: a spinner on a terminal, nothing otherwise (CI logs get
//! only the final table).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Steps {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
}

impl Steps {
    pub fn new(total: usize) -> Steps {
        let tty = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Steps {
            bar,
            total,
            done: 0,
        }
    }

    /// Start the next step; the elapsed time restarts.
    pub fn step(&mut self, what: &str) {
        self.done += 1;
        self.total = self.total.max(self.done);
        if let Some(bar) = &self.bar {
            bar.reset_elapsed();
            bar.set_message(format!("[{}/{}] {what}", self.done, self.total));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Steps {
    /// An error ends the run early: leave no spinner above the message.
    fn drop(&mut self) {
        self.finish();
    }
}
