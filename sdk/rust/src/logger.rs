//! The driver's logger: lines with labels, buffered and shipped by the manager as the job's
//! log (live on the dashboard and through Conveyor CI's `/logs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use conveyor_core::driver::DriverLogLine;

/// A reconcile's log. Cheap to clone; every clone writes to the same job's log.
#[derive(Clone, Debug, Default)]
pub struct Logger {
    lines: Arc<Mutex<Vec<DriverLogLine>>>,
}

impl Logger {
    /// A logger whose lines nobody ships (for testing a reconcile function alone).
    pub fn detached() -> Logger {
        Logger::default()
    }

    /// Logs a line.
    pub fn log(&self, message: impl Into<String>) {
        self.log_with(&[], message);
    }

    /// Logs a line with labels (`/logs` returns them with it).
    pub fn log_with(&self, labels: &[(&str, &str)], message: impl Into<String>) {
        let line = DriverLogLine {
            message: message.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        tracing::info!(target: "conveyor_driver", "{}", line.message);
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// The lines logged since the last call.
    pub fn take(&self) -> Vec<DriverLogLine> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
