//! `conveyor bench`: performance measurements printed with the figures that matter.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A belt of `jobs` jobs, each reading an output of the one before and needing two
/// earlier ones: references, edges and outputs all exercised.
pub fn generated_belt(jobs: usize) -> String {
    let mut s = String::from(
        "product: bench\ntriggers:\n  - scm-event:\n    type: push\nbelts:\n  - name: big\n    jobs:\n",
    );
    for i in 0..jobs {
        s.push_str(&format!("      - name: job-{i}\n"));
        if i >= 2 {
            s.push_str(&format!("        needs: [job-{}, job-{}]\n", i / 2, i - 2));
        }
        s.push_str("        commands: |\n");
        if i > 0 {
            s.push_str(&format!(
                "          echo \"previous: ${{job-{}.OUT}}\"\n",
                i - 1
            ));
        }
        s.push_str(&format!("          OUT=value-{i}\n"));
        s.push_str("        outputs:\n          - String: OUT\n");
    }
    s
}

pub fn validate(jobs: usize, runs: usize, json: bool, write: Option<&Path>) -> ExitCode {
    let text = generated_belt(jobs);
    if let Some(path) = write
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let files = vec![("bench.yml".to_string(), text)];
    let mut times: Vec<Duration> = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let report = crate::validate::validate_texts(&files);
        times.push(start.elapsed());
        if report.errors() > 0 {
            eprintln!(
                "error: the generated belt did not validate: {}",
                report.diagnostics[0]
            );
            return ExitCode::FAILURE;
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (min, median, max) = (
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    if json {
        println!(
            "{}",
            serde_json::json!({"shape": "validate", "jobs": jobs, "runs": times.len(), "bytes": files[0].1.len(),
                "min_ms": min, "median_ms": median, "max_ms": max})
        );
    } else {
        println!(
            "validate: {jobs} jobs ({} bytes), {} runs: min {min:.1} ms, median {median:.1} ms, max {max:.1} ms",
            files[0].1.len(),
            times.len()
        );
    }
    ExitCode::SUCCESS
}
