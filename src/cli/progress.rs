//! Progress on stderr for commands that take long on big rings (reading a
//! million nodes, a maintenance round, writing the file back): a spinner
//! naming the current phase and the time spent. indicatif draws it only
//! when stderr is a terminal; it is cleared when the phase ends or the
//! command fails, before anything else is printed.

use indicatif::{ProgressBar, ProgressStyle};
use std::borrow::Cow;
use std::time::Duration;

/// The phase a command is in, shown until it is dropped.
pub struct Phase {
    bar: ProgressBar,
}

impl Phase {
    /// Starts showing `message`.
    pub fn start(message: impl Into<Cow<'static, str>>) -> Phase {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        Phase { bar }
    }

    /// Moves on to the next phase.
    pub fn set(&self, message: impl Into<Cow<'static, str>>) {
        self.bar.set_message(message);
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
