//! `conveyor validate FILE…`: every error, located; a summary line per product on success.
//! Reading and checking files together is shared with `run`, `up` and `bench`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use conveyor_core::check::{self, Source};
use conveyor_core::compile::{self, Compiled};
use conveyor_core::diag::{self, Diagnostic, Severity};
use conveyor_core::model::Product;

// `conveyor validate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The outcome of validating a set of files.
pub struct Report {
    /// `(file, product)` for every file that compiled.
    pub products: Vec<(String, Product)>,
    /// Every diagnostic, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// Compiles the texts and checks them across products.
pub fn validate_texts(files: &[(String, String)]) -> Report {
    let mut diagnostics = Vec::new();
    let mut products = Vec::new();
    let mut partials = Vec::new();
    for (file, text) in files {
        let Compiled {
            product,
            partial,
            diagnostics: d,
        } = compile::compile(file, text);
        diagnostics.extend(d);
        if let Some(p) = product {
            products.push((file.clone(), p));
        } else if let Some(p) = partial {
            partials.push((file.clone(), p));
        }
    }
    let sources: Vec<Source> = products
        .iter()
        .chain(&partials)
        .map(|(file, product)| Source { file, product })
        .collect();
    diagnostics.extend(check::check(&sources, &[]));
    diag::sort(&mut diagnostics);
    Report {
        products,
        diagnostics,
    }
}

/// Reads the files; an unreadable file is itself a diagnostic.
pub fn read_files(paths: &[PathBuf]) -> (Vec<(String, String)>, Vec<Diagnostic>) {
    let mut texts = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match read(path) {
            Ok(text) => texts.push((name, text)),
            Err(message) => problems.push(Diagnostic {
                file: name,
                pos: conveyor_core::diag::Pos::new(1, 1),
                severity: Severity::Error,
                message,
            }),
        }
    }
    (texts, problems)
}

fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if meta.len() > conveyor_core::yaml::MAX_FILE_BYTES as u64 {
        return Err(format!(
            "file is {} bytes; the limit is {} bytes",
            meta.len(),
            conveyor_core::yaml::MAX_FILE_BYTES
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// One summary line: `FILE: PRODUCT: 2 belts, 3 jobs, 1 edge`.
pub fn summary(file: &str, p: &Product) -> String {
    let jobs: usize = p.belts.iter().map(|b| b.jobs.len()).sum();
    let edges: usize = p.belts.iter().map(|b| b.edges.len()).sum();
    format!(
        "{file}: {}: {}, {}, {}",
        p.name,
        plural(p.belts.len(), "belt"),
        plural(jobs, "job"),
        plural(edges, "edge")
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub fn run(paths: &[PathBuf]) -> ExitCode {
    let (texts, unreadable) = read_files(paths);
    let mut report = validate_texts(&texts);
    report.diagnostics.extend(unreadable);
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    let errors = report.errors();
    if errors > 0 {
        let warnings = report.diagnostics.len() - errors;
        eprintln!(
            "validation failed: {}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        );
        return ExitCode::FAILURE;
    }
    for (file, p) in &report.products {
        println!("{}", summary(file, p));
    }
    ExitCode::SUCCESS
}
