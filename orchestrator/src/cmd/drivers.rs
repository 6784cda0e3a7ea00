//! Local driver processes: `conveyor run --driver NAME=COMMAND` and the example drivers of
//! `conveyor up`. Each runs `sh -c COMMAND` in its own process group with `CONVEYOR_SERVER`
//! and `CONVEYOR_TOKEN` set for the embedded orchestrator, and is stopped (SIGTERM, then
//! SIGKILL) when the command ends; `CONVEYOR_PARENT_PID` lets the SDK exit on its own if
//! this process dies without stopping it. Also what `run` says of a driver job nothing will take.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::services::{Services, builds, drivers};

/// How long a driver may take to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long `run` gives a started driver to connect before a job waiting for it fails.
pub const CONNECT_GRACE_MS: i64 = 20_000;

/// `--driver NAME=COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverCommand {
    pub name: String,
    pub command: String,
}

impl std::str::FromStr for DriverCommand {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected NAME=COMMAND, e.g. `greeter=python3 greeter.py`";
        let (name, command) = s.split_once('=').ok_or_else(|| usage.to_string())?;
        let name = name.trim();
        if !conveyor_core::names::is_fleet_name(name) {
            return Err(format!("invalid driver name `{name}`: {usage}"));
        }
        if command.trim().is_empty() {
            return Err(format!("driver `{name}` has no command: {usage}"));
        }
        Ok(DriverCommand {
            name: name.to_string(),
            command: command.to_string(),
        })
    }
}

/// Running driver processes.
#[derive(Default)]
pub struct LocalDrivers {
    children: Vec<(String, Child)>,
    /// Drivers whose exit was reported.
    exited: Vec<String>,
}

impl LocalDrivers {
    /// Starts each command against the orchestrator at `url`, registering with `token`;
    /// `env` is added to their environment.
    pub fn start(
        commands: &[DriverCommand],
        url: &str,
        token: &str,
        env: &[(String, String)],
    ) -> Result<LocalDrivers, String> {
        let mut out = LocalDrivers::default();
        for c in commands {
            let child = Command::new("sh")
                .args(["-c", &c.command])
                .env("CONVEYOR_SERVER", url)
                .env("CONVEYOR_TOKEN", token)
                // The SDKs exit when this process is gone, even killed with SIGKILL.
                .env("CONVEYOR_PARENT_PID", std::process::id().to_string())
                .envs(env.iter().map(|(k, v)| (k, v)))
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("error: cannot start driver `{}`: {e}", c.name))?;
            out.children.push((c.name.clone(), child));
        }
        Ok(out)
    }

    /// The names of the drivers still running; says once of each that has exited.
    pub fn running(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, child) in &mut self.children {
            match child.try_wait() {
                Ok(None) => out.push(name.clone()),
                Ok(Some(status)) if !self.exited.contains(name) => {
                    eprintln!("error: driver `{name}` exited ({status})");
                    self.exited.push(name.clone());
                }
                _ => {}
            }
        }
        out
    }

    /// SIGTERM to each driver's process group, then SIGKILL to those still running after
    /// [`STOP_GRACE`].
    pub async fn stop(mut self) {
        for (_, child) in &self.children {
            signal(child, Signal::SIGTERM);
        }
        for (name, child) in &mut self.children {
            if tokio::time::timeout(STOP_GRACE, child.wait())
                .await
                .is_err()
            {
                tracing::warn!("driver `{name}` did not stop in time: killed");
                signal(child, Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
    }
}

fn signal(child: &Child, sig: Signal) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// The example drivers `up` starts: `DIR/drivers/*.py` run with `python3` (the SDK from
/// `sdk/python` beside `DIR` on `PYTHONPATH`), each named after its file. None, with a
/// warning, when `python3` is missing.
pub fn examples(dir: &Path) -> Vec<DriverCommand> {
    let Ok(entries) = std::fs::read_dir(dir.join("drivers")) else {
        return Vec::new();
    };
    let mut scripts: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        return Vec::new();
    }
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("  warning: python3 not found: the example drivers are not started");
        return Vec::new();
    }
    scripts
        .iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.replace('_', "-");
            let quoted = p.display().to_string().replace('\'', r"'\''");
            Some(DriverCommand {
                name,
                command: format!("exec python3 '{quoted}'"),
            })
        })
        .collect()
}

/// `PYTHONPATH` with the repository's SDK first, when `examples` sits beside `sdk/python`.
pub fn sdk_path(examples: &Path) -> Vec<(String, String)> {
    let sdk = examples
        .parent()
        .unwrap_or(Path::new("."))
        .join("sdk/python");
    if !sdk.is_dir() {
        return Vec::new();
    }
    let sdk = std::fs::canonicalize(&sdk).unwrap_or(sdk);
    let mut path = sdk.display().to_string();
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        path = format!("{path}:{}", old.to_string_lossy());
    }
    vec![("PYTHONPATH".into(), path)]
}

/// Fails the open builds' queued driver jobs that nothing will take: a driver not running
/// (not given with `--driver`, or exited) at once, a running one not connected
/// [`CONNECT_GRACE_MS`] after the job was queued. Says why on stderr, once per job.
pub async fn fail_stalled(
    services: &Services,
    open: &HashSet<String>,
    given: &[String],
    told: &mut HashSet<String>,
) {
    let now = crate::clock::now_ms();
    for id in open {
        let Ok(Some(mut build)) = services.store.build(id).await else {
            continue;
        };
        if drivers::note_waiting(services, std::slice::from_mut(&mut build))
            .await
            .is_err()
        {
            continue;
        }
        for job in &build.jobs {
            let (Some(why), Some(driver)) = (&job.waiting, &job.driver) else {
                continue;
            };
            let queued_for = now - job.queued_at.unwrap_or(now);
            let hopeless = !given.contains(driver) || queued_for > CONNECT_GRACE_MS;
            if hopeless && told.insert(job.id.clone()) {
                eprintln!(
                    "error: job `{}` of {} {} #{} is waiting: {why} (start one with --driver {driver}=COMMAND); cancelling the build",
                    job.name, build.product, build.belt, build.number
                );
                let _ = builds::cancel(services, id).await;
            }
        }
    }
}
