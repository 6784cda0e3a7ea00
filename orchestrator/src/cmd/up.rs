//! `conveyor up`: the embedded orchestrator with local runners, the example products
//! registered and built, the dashboard and API on one port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use conveyor_core::diag::Diagnostic;
use conveyor_core::model::{ScmEventType, Trigger};
use conveyor_runner::credentials::{Credential, secret};
use conveyor_runner::executor::JobUser;

use super::tls::TlsArgs;
use super::validate::{self, Report};
use crate::services::{DEFAULT_MAX_LOG_MIB, Services, builds, products};
use crate::startup::{Embedded, Options, ServerTls, check_token, fleets_of};
use crate::store::{BuildTrigger, NewBuild};

// `conveyor up`'s arguments.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[arg(long, env = "CONVEYOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long, env = "CONVEYOR_DATA_DIR", default_value = ".conveyor")]
    pub data_dir: PathBuf,
    /// The bearer token for mutating API calls and signing in (at least 16 characters);
    /// generated and printed when absent. Prefer CONVEYOR_ADMIN_TOKEN or --admin-token-file:
    /// every process on the machine can read a command line.
    #[arg(long, env = "CONVEYOR_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the admin token (one trailing newline is ignored).
    #[arg(long, env = "CONVEYOR_ADMIN_TOKEN_FILE", value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// How many jobs the local runners run at once.
    #[arg(long, env = "CONVEYOR_RUNNERS", default_value_t = 4)]
    pub runners: usize,
    /// The directory of example products to register.
    #[arg(long, env = "CONVEYOR_EXAMPLES", default_value = "examples")]
    pub examples: PathBuf,
    /// Run jobs as this user, not as conveyor's own (conveyor must then run as root), so
    /// that they cannot read its database, keys and tokens; see docs/security.md.
    #[arg(long, env = "CONVEYOR_JOB_USER", value_name = "NAME")]
    pub job_user: Option<String>,
    /// How many MiB of log each attempt of a job keeps; past that, one marker line says the
    /// rest was dropped.
    #[arg(
        long,
        env = "CONVEYOR_MAX_LOG_MIB",
        value_name = "MIB",
        default_value_t = DEFAULT_MAX_LOG_MIB,
        value_parser = clap::value_parser!(u64).range(1..=1 << 20)
    )]
    pub max_log_mib: u64,
    #[command(flatten)]
    pub keep: crate::cmd::keep::Keep,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub storage: super::serve::FileArgs,
}

/// `up`'s one credential.
pub const ADMIN_TOKEN: Credential = Credential {
    id: "admin_token",
    what: "admin token",
    flag: "--admin-token",
    var: "CONVEYOR_ADMIN_TOKEN",
};

/// What `up` reads and checks before it starts anything.
struct Prepared {
    /// The admin token given, or a fresh one.
    admin_token: String,
    job_user: Option<JobUser>,
    /// The certificate to serve HTTPS with.
    tls: Option<ServerTls>,
    storage: crate::startup::FileConfig,
}

fn prepare(args: &UpArgs) -> Result<Prepared, String> {
    // A busy port is said before anything is created; the server binds it again.
    std::net::TcpListener::bind(args.listen).map_err(|source| {
        crate::startup::StartupError::Bind {
            addr: args.listen,
            source,
        }
        .to_string()
    })?;
    let admin_token = match secret(&args.admin_token, &args.admin_token_file, ADMIN_TOKEN)? {
        Some(token) => {
            check_token("admin token", &token).map_err(|e| e.to_string())?;
            token
        }
        None => kept_token(&args.data_dir)?,
    };
    let job_user = args.job_user.as_deref().map(JobUser::resolve).transpose();
    let job_user = job_user.map_err(|e| e.to_string())?;
    let tls = args.tls.load().map_err(|e| e.to_string())?;
    let storage = args
        .storage
        .config(&args.data_dir)
        .map_err(|e| e.to_string())?;
    Ok(Prepared {
        admin_token,
        job_user,
        tls,
        storage,
    })
}

/// The admin token `up` made on an earlier start (`DATA_DIR/admin.token`), or a new one,
/// kept there (mode 0600) so that a restart does not sign everyone out.
fn kept_token(data_dir: &Path) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("admin.token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim_end_matches('\n').to_string();
        check_token("admin token", &token).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(token);
    }
    let token = crate::store::token();
    std::fs::create_dir_all(data_dir)
        .and_then(|()| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            writeln!(f, "{token}")
        })
        .map_err(|e| format!("cannot keep the admin token in {}: {e}", path.display()))?;
    Ok(token)
}

pub async fn run(args: UpArgs) -> ExitCode {
    let Prepared {
        admin_token,
        job_user,
        tls,
        storage,
    } = match prepare(&args) {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = example_files(&args.examples);
    let (texts, unreadable) = validate::read_files(&files);
    let report = validate::validate_texts(&texts);
    let opts = Options {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        runners: args.runners,
        max_log_bytes: args.max_log_mib << 20,
        retention: args.keep.retention(),
        fleets: fleets_of(report.products.iter().map(|(_, p)| p)),
        admin_token: admin_token.clone(),
        statuses: Default::default(),
        job_user,
        tls,
        files: Some(storage),
        local_caches: None,
    };
    let engine = match Embedded::start(opts).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    banner(&engine.url, &admin_token, &args.data_dir);
    if let Err(code) = register(&engine.services, &texts, &unreadable, &report).await {
        return code;
    }
    let drivers = start_drivers(&args, &engine.url, &admin_token);
    if has_builds(&engine.services).await {
        println!("  (the builds of earlier runs are kept; no demo build started)");
    } else {
        build_pushed(&engine, &report).await;
    }
    println!("Press Ctrl-C to stop.");
    crate::startup::terminated().await;
    drivers.stop().await;
    // Running jobs are killed with everything they started and handed back: the next `up`
    // runs them again, as a new attempt.
    engine.shutdown().await;
    ExitCode::SUCCESS
}

/// Starts the example drivers (`EXAMPLES/drivers/*.py`), saying which; under HTTPS they
/// trust the server's certificate (`CONVEYOR_CA_CERT`).
fn start_drivers(args: &UpArgs, url: &str, token: &str) -> super::drivers::LocalDrivers {
    let commands = super::drivers::examples(&args.examples);
    let mut env = super::drivers::sdk_path(&args.examples);
    if let Some(cert) = &args.tls.tls_cert {
        env.push(("CONVEYOR_CA_CERT".into(), cert.display().to_string()));
    }
    for d in &commands {
        println!("  driver {}: {}", d.name, d.command);
    }
    super::drivers::LocalDrivers::start(&commands, url, token, &env).unwrap_or_else(|e| {
        eprintln!("{e}");
        Default::default()
    })
}

/// Registers every example that compiled; says which were skipped.
async fn register(
    services: &Services,
    texts: &[(String, String)],
    unreadable: &[Diagnostic],
    report: &Report,
) -> Result<(), ExitCode> {
    for d in unreadable
        .iter()
        .chain(report.diagnostics.iter().filter(|d| d.is_error()))
    {
        println!("  skipped {d}");
    }
    for (file, model) in &report.products {
        let source = Path::new(file).parent().map(|p| p.display().to_string());
        let yaml = texts
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        if let Err(e) = products::register_local(services, model.clone(), yaml, source).await {
            eprintln!("error: registering {}: {e}", model.name);
            return Err(ExitCode::FAILURE);
        }
        println!("  registered {} ({file})", model.name);
    }
    Ok(())
}

/// Whether the database holds a build already (an earlier `up`).
async fn has_builds(services: &Services) -> bool {
    let one = crate::store::BuildFilter {
        limit: Some(1),
        ..Default::default()
    };
    services
        .store
        .builds(&one)
        .await
        .is_ok_and(|b| !b.is_empty())
}

/// As if each example had just been pushed: builds the belts its `push` triggers name.
async fn build_pushed(engine: &Embedded, report: &Report) {
    for (_, model) in &report.products {
        for belt in push_belts(model) {
            let new = NewBuild {
                resource: None,
                product: model.name.clone(),
                belt: belt.clone(),
                trigger: BuildTrigger::Manual,
                git_ref: None,
                sha: None,
                model: None,
                context: None,
            };
            match builds::start(&engine.services, &new).await {
                Ok(b) => println!(
                    "  started {} {belt} #{}: {}/builds/{}",
                    b.product, b.number, engine.url, b.id
                ),
                Err(e) => eprintln!("error: starting {} {belt}: {e}", model.name),
            }
        }
    }
}

fn banner(url: &str, admin_token: &str, data_dir: &Path) {
    println!("conveyor is up at {url}");
    println!("  admin token: {admin_token}");
    println!(
        "  dashboard:   {url}/ (sign in at {url}/sign-in with the admin token to re-run, cancel and approve)"
    );
    println!("  database:    {}", data_dir.join("conveyor.db").display());
}

/// Every `.yml`/`.yaml` file under `dir`, sorted; none is a warning.
fn example_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        eprintln!(
            "warning: no example products (*.yml) under {}: nothing is registered. Run `conveyor up` in a conveyor checkout, or give --examples DIR",
            dir.display()
        );
    }
    out
}

fn push_belts(p: &conveyor_core::model::Product) -> Vec<String> {
    let mut out = Vec::new();
    for t in &p.triggers {
        if let Trigger::ScmEvent(s) = t
            && s.event == ScmEventType::Push
        {
            let belts = s
                .belts
                .clone()
                .unwrap_or_else(|| p.belts.iter().map(|b| b.name.clone()).collect());
            for b in belts {
                if !out.contains(&b) {
                    out.push(b);
                }
            }
        }
    }
    out
}
