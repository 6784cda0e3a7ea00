//! Puts the job's source and `git:` inputs into the workspace, with the real git binary.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use conveyor_core::protocol::{JobSpec, SourceSpec};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::watch;

use super::workspace::{Workspace, copy_source};
use super::{ExecError, Log, cancelled};

/// Why the script will not run.
pub(crate) enum Stop {
    Cancelled,
    Failed(ExecError),
}

impl From<ExecError> for Stop {
    fn from(e: ExecError) -> Self {
        Stop::Failed(e)
    }
}

pub(crate) async fn prepare(
    spec: &JobSpec,
    ws: &Workspace,
    log: &Log,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), Stop> {
    if *cancel.borrow() {
        return Err(Stop::Cancelled);
    }
    match &spec.source {
        None => {}
        Some(SourceSpec::Local { path }) => {
            log.system(format!("copying source from {path}"));
            copy_source(path, &ws.ws).await?;
        }
        Some(SourceSpec::Git { url, sha }) => {
            log.system(format!("checking out {url} at {sha}"));
            let mirrors = ws.root.parent().unwrap_or(&ws.root).join("mirrors");
            clone_at(url, sha, &ws.ws, &mirrors, cancel).await?;
        }
    }
    for input in &spec.git_inputs {
        let url = input.strip_prefix("git:").unwrap_or(input);
        let name = repo_name(url).ok_or_else(|| ExecError::Checkout {
            url: url.to_string(),
            reason: "its url does not end in a repository name".to_string(),
        })?;
        log.system(format!("cloning {url} into {name}"));
        git(url, [clone_args(url, &ws.ws.join(name))], cancel).await?;
    }
    Ok(())
}

/// Checks `url` out at `sha` through a mirror kept per repository under `mirrors`: the
/// first build clones it, later builds fetch only what is new (nothing when the commit is
/// already there), and the workspace shares the mirror's objects instead of copying them.
async fn clone_at(
    url: &str,
    sha: &str,
    dir: &Path,
    mirrors: &Path,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), Stop> {
    // Only a commit id, and after `--end-of-options`: nothing git could read as an option.
    if !conveyor_core::names::is_commit_sha(sha) {
        return Err(Stop::Failed(ExecError::Checkout {
            url: url.to_string(),
            reason: format!("`{sha}` is not a commit id (40 or 64 hex digits)"),
        }));
    }
    let checkout: Vec<OsString> = vec![
        "-C".into(),
        dir.into(),
        "checkout".into(),
        "--quiet".into(),
        "--detach".into(),
        "--end-of-options".into(),
        sha.into(),
    ];
    let mirror = mirrors.join(format!("{}.git", crate::executor::mirror_key(url)));
    let lock = mirror_lock(&mirror).await;
    let _held = lock.lock().await;
    let m: OsString = mirror.clone().into();
    if !mirror.join("HEAD").exists() {
        let _ = tokio::fs::create_dir_all(mirrors).await;
        git(
            url,
            [vec![
                "clone".into(),
                "--quiet".into(),
                "--mirror".into(),
                "--".into(),
                url.into(),
                m.clone(),
            ]],
            cancel,
        )
        .await?;
    } else if !has_commit(&mirror, sha).await {
        let fetch: Vec<OsString> = vec![
            "--git-dir".into(),
            m.clone(),
            "fetch".into(),
            "--quiet".into(),
            "--prune".into(),
            "origin".into(),
            "+refs/*:refs/*".into(),
        ];
        git(url, [fetch], cancel).await?;
    }
    let shared: Vec<OsString> = vec![
        "clone".into(),
        "--quiet".into(),
        "--shared".into(),
        "--no-checkout".into(),
        "--".into(),
        m,
        dir.into(),
    ];
    let origin: Vec<OsString> = vec![
        "-C".into(),
        dir.into(),
        "remote".into(),
        "set-url".into(),
        "origin".into(),
        url.into(),
    ];
    git(url, [shared, checkout, origin], cancel).await
}

/// One lock per mirror, so concurrent jobs of one repository do not fetch into it at once.
async fn mirror_lock(mirror: &Path) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<
        tokio::sync::Mutex<
            std::collections::HashMap<std::path::PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>>,
        >,
    > = std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    locks
        .lock()
        .await
        .entry(mirror.to_path_buf())
        .or_default()
        .clone()
}

async fn has_commit(mirror: &Path, sha: &str) -> bool {
    git_command()
        .arg("--git-dir")
        .arg(mirror)
        .args([
            "cat-file",
            "-e",
            "--end-of-options",
            &format!("{sha}^{{commit}}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

fn clone_args(url: &str, dir: &Path) -> Vec<OsString> {
    vec![
        "clone".into(),
        "--quiet".into(),
        "--".into(),
        url.into(),
        dir.into(),
    ]
}

/// git with the runner's environment — its credential helpers, `HOME`, SSH agent and
/// proxies are for git — less the runner's own settings (`CONVEYOR_*`: its token, its Redis
/// URL): git is not made non-dumpable, so a job of the same user could read them in
/// `/proc/<git>/environ` while another job checks out.
fn git_command() -> Command {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONVEYOR_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The directory a `git:` input is cloned into: the url's last segment without `.git`.
pub(crate) fn repo_name(url: &str) -> Option<&str> {
    let trimmed = url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty() && name != "." && name != ".." && !name.contains('\\')).then_some(name)
}

/// How long one git command of a checkout may take: a large clone, not a hang.
const GIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs git invocations in turn; the first failure names `url` and git's first stderr line.
async fn git<const N: usize>(
    url: &str,
    invocations: [Vec<OsString>; N],
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), Stop> {
    let failed = |reason: String| {
        Stop::Failed(ExecError::Checkout {
            url: url.to_string(),
            reason,
        })
    };
    for args in invocations {
        let mut cmd = git_command();
        cmd.args(&args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if std::env::var_os("GIT_SSH_COMMAND").is_none() {
            // Nobody is there to answer a host-key or passphrase prompt.
            cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        let child = cmd
            .spawn()
            .map_err(|e| failed(format!("could not start git: {e}")))?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let kill = || {
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGKILL);
            }
        };
        let output = tokio::select! {
            output = child.wait_with_output() => output,
            () = cancelled(cancel) => {
                kill();
                return Err(Stop::Cancelled);
            }
            () = tokio::time::sleep(GIT_TIMEOUT) => {
                kill();
                return Err(failed(format!("git took longer than {} s", GIT_TIMEOUT.as_secs())));
            }
        };
        let output = output.map_err(|e| failed(format!("could not wait for git: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
            let reason = match first {
                Some(line) => line.to_string(),
                None => format!("git ended with {}", output.status),
            };
            return Err(failed(reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::repo_name;

    #[test]
    fn repo_names_drop_the_path_and_the_git_suffix() {
        assert_eq!(
            repo_name("https://example.com/org/tools.git"),
            Some("tools")
        );
        assert_eq!(repo_name("git@example.com:org/tools.git/"), Some("tools"));
        assert_eq!(repo_name("git@example.com:tools"), Some("tools"));
        assert_eq!(repo_name("file:///srv/repos/lib"), Some("lib"));
        assert_eq!(repo_name("https://example.com/.."), None);
        assert_eq!(repo_name("https://example.com/.git"), None);
    }
}
