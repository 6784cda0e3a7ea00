//! The log channel, which masks the job's secrets in every line it sends and stamps each with
//! the time it was produced; a closed receiver is not the job's problem, so send errors are
//! ignored.
//!
//! Command lines (see [`super::commands`]) are held back while the job is young and has said
//! nothing else: a job that succeeds within [`HOLD`] without a word ships no log batch — one
//! per job would cost a fan-out of tiny jobs an HTTP call and a transaction each (see
//! `docs/decisions.md`); its command lines travel with its completion instead
//! ([`Log::take_held`]). Any other line, or the end of the hold, sends them, in order and
//! with their own times.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor_core::protocol::{LogLine, Outcome, Stream};
use tokio::sync::mpsc;

use super::masking::Secrets;
use super::{ExecError, ExecResult};

/// How long a silent job's command lines wait for a reason to be shipped.
pub(crate) const HOLD: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub(crate) struct Log {
    tx: mpsc::UnboundedSender<LogLine>,
    secrets: Arc<Secrets>,
    held: Arc<Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    lines: Vec<LogLine>,
    /// Something else was logged, or the hold ended: lines go out as they come.
    open: bool,
}

impl Log {
    pub(crate) fn new(tx: mpsc::UnboundedSender<LogLine>, secrets: Secrets) -> Self {
        Self {
            tx,
            secrets: Arc::new(secrets),
            held: Arc::default(),
        }
    }

    /// Sends a piece of the job's output (a line, or part of a very long one, cut where no
    /// secret spans the cut); the masked bytes, for the stdout tail.
    pub(crate) fn output<'a>(&self, stream: Stream, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let masked = self.secrets.mask(bytes);
        let text = String::from_utf8_lossy(&masked).into_owned();
        self.send(LogLine {
            stream,
            text,
            labels: Default::default(),
            at: Some(now_ms()),
        });
        masked
    }

    pub(crate) fn system(&self, text: String) {
        self.labelled(text, BTreeMap::new(), None);
    }

    /// A system line with labels (see [`super::commands`]); `at` defaults to now.
    pub(crate) fn labelled(&self, text: String, labels: BTreeMap<String, String>, at: Option<i64>) {
        self.send(self.system_line(text, labels, at));
    }

    /// A command's line: held back while the job is young and silent.
    pub(crate) fn command(&self, text: String, labels: BTreeMap<String, String>, at: Option<i64>) {
        let line = self.system_line(text, labels, at);
        let mut held = self.lock();
        if held.open {
            let _ = self.tx.send(line);
        } else {
            held.lines.push(line);
        }
    }

    /// Sends the held command lines, and every later one as it comes.
    pub(crate) fn open(&self) {
        let mut held = self.lock();
        held.open = true;
        for line in held.lines.drain(..) {
            let _ = self.tx.send(line);
        }
    }

    /// The lines still held when the job ends (for its completion); later lines go out as
    /// they come.
    pub(crate) fn take_held(&self) -> Vec<LogLine> {
        let mut held = self.lock();
        held.open = true;
        std::mem::take(&mut held.lines)
    }

    fn system_line(
        &self,
        text: String,
        labels: BTreeMap<String, String>,
        at: Option<i64>,
    ) -> LogLine {
        LogLine {
            stream: Stream::System,
            text: self.secrets.mask_text(text),
            labels,
            at: Some(at.unwrap_or_else(now_ms)),
        }
    }

    fn send(&self, line: LogLine) {
        let mut held = self.lock();
        if !held.open {
            held.open = true;
            for line in held.lines.drain(..) {
                let _ = self.tx.send(line);
            }
        }
        let _ = self.tx.send(line);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub(super) fn failed(&self, e: ExecError) -> ExecResult {
        // Masked here too: it is reported as the job's error, apart from the log.
        let error = self.secrets.mask_text(e.to_string());
        self.system(error.clone());
        ExecResult {
            error: Some(error),
            ..ExecResult::ended(Outcome::Failed, None)
        }
    }

    pub(super) fn cancelled(&self) -> ExecResult {
        self.system("cancelled".to_string());
        ExecResult::ended(Outcome::Cancelled, None)
    }
}

/// Milliseconds since the Unix epoch, the time every log line carries.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
