//! Progress display for slow work: an indicatif bar or spinner on a
//! terminal, plain lines otherwise (CI logs, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner for work of unknown length.
pub struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    pub fn start(message: &str) -> Spinner {
        if !on_terminal() {
            eprintln!("{message}…");
            return Spinner { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner { bar: Some(bar) }
    }

    pub fn message(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => eprintln!("{message}…"),
        }
    }

    pub fn finish(self, message: &str) {
        match self.bar {
            Some(bar) => bar.finish_with_message(message.to_string()),
            None => eprintln!("{message}"),
        }
    }

    pub fn fail(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.abandon_with_message(message.to_string()),
            None => eprintln!("{message}"),
        }
    }
}

/// A bar for `total` steps.
pub struct Steps {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
}

impl Steps {
    pub fn new(label: &str, total: u64) -> Steps {
        let bar = on_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        if bar.is_none() {
            eprintln!("{label}: {total} steps");
        }
        Steps {
            bar,
            label: label.to_string(),
            total,
        }
    }

    pub fn inc(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => {
                let tenth = (self.total / 10).max(1);
                if done.is_multiple_of(tenth) || done == self.total {
                    eprintln!("{}: {done}/{}", self.label, self.total);
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
