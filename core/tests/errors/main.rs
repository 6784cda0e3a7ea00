//! Every error and warning the compiler gives, with its exact text and location: the file's
//! own structure (`structure.rs`), jobs and their extensions (`jobs.rs`), secrets
//! (`secrets.rs`) and checks across products (`across.rs`).

mod across;
mod gating;
mod jobs;
mod matrix;
mod schedules;
mod secrets;
mod structure;

use conveyor_core::compile::compile;

/// Compiles `yaml` as `t.yml` and renders its diagnostics.
pub fn diags(yaml: &str) -> Vec<String> {
    compile("t.yml", yaml)
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A product wrapper: one belt `b` holding the given jobs (indented as list items).
pub fn belt(jobs: &str) -> String {
    format!("product: p\nbelts:\n  - name: b\n    jobs:\n{jobs}")
}

#[macro_export]
macro_rules! case {
    ($name:ident, $yaml:expr, [$($line:expr),* $(,)?]) => {
        #[test]
        fn $name() {
            let expected: Vec<&str> = vec![$($line),*];
            assert_eq!($crate::diags(&$yaml), expected);
        }
    };
}
