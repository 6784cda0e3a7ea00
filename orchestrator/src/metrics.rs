//! Prometheus metrics: histograms kept in process (dispatch latency, job duration), and the
//! text format's gauges (the values are read by `services::gauges`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cumulative histogram over fixed bucket bounds, in seconds.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe_ms(&self, ms: i64) {
        let secs = ms.max(0) as f64 / 1000.0;
        for (bound, c) in self.bounds.iter().zip(&self.counts) {
            if secs <= *bound {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(ms.max(0) as u64 * 1000, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

const DISPATCH_BOUNDS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];
const DURATION_BOUNDS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

pub struct Metrics {
    /// From a job run becoming ready to a runner claiming it.
    pub dispatch: Histogram,
    /// From claim to completion.
    pub duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            dispatch: Histogram::new(DISPATCH_BOUNDS),
            duration: Histogram::new(DURATION_BOUNDS),
        }
    }
}

/// A gauge family with one labelled sample per row.
pub fn gauge(out: &mut String, name: &str, help: &str, rows: &[(Vec<(&str, String)>, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in rows {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, val)| format!("{k}=\"{}\"", val.replace('"', "'")))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{}}} {v}", labels.join(","));
        }
    }
}
