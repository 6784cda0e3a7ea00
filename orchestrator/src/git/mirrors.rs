//! The orchestrator's view of product repositories: a bare mirror per repository, fetched
//! before reading `.conveyor.yml` at a commit. Uses the real `git`, each command with a
//! deadline, and never hands git a name it could read as an option.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conveyor_core::names;
use sha2::Digest;

/// Where mirrors live, one directory per repository URL.
#[derive(Debug, Clone)]
pub struct Repos {
    dir: PathBuf,
    /// How long one git command may take before it is killed.
    timeout: Duration,
}

/// How long a git command may take by default: a fetch of a large repository, not a hang.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why git could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    /// The repository could not be reached or read now (a network error, a timeout, a
    /// commit not fetched yet): worth trying again later.
    #[error("{0}")]
    Unreachable(String),
    /// The answer is no, and will stay no (no such file at that commit, an invalid name).
    #[error("{0}")]
    Refused(String),
}

/// Runs git with a deadline; a command still running then is killed. Its output, trimmed.
pub(super) fn git(
    args: &[&str],
    dir: Option<&Path>,
    timeout: Duration,
) -> Result<String, GitError> {
    let out = git_bytes(args, dir, timeout, None)?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Runs git with a deadline, `input` on its standard input; its output as it is.
pub(super) fn git_bytes(
    args: &[&str],
    dir: Option<&Path>,
    timeout: Duration,
    input: Option<Vec<u8>>,
) -> Result<Vec<u8>, GitError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("--git-dir").arg(d);
    }
    let mut child = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| GitError::Unreachable(format!("cannot run git: {e}")))?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Its own thread: git may answer before it has read everything.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (closed, eof) = std::sync::mpsc::channel();
    let out = std::thread::spawn(move || {
        let bytes = read_all(stdout);
        let _ = closed.send(());
        bytes
    });
    let err = std::thread::spawn(move || read_all(stderr));
    let deadline = Instant::now() + timeout;
    // Woken when git closes its output, which it does as it exits: a webhook runs several
    // git commands before its build exists, and polling on a coarse tick would add up.
    let _ = eof.recv_timeout(timeout);
    let status = reap(&mut child, deadline).ok_or_else(|| {
        GitError::Unreachable(format!(
            "git {} took longer than {} s",
            args.first().unwrap_or(&""),
            timeout.as_secs()
        ))
    })?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty());
    Err(GitError::Refused(
        first.unwrap_or("git failed").trim().to_string(),
    ))
}

/// The exit status of `child`, which has closed its output; `None` (and killed) if it is
/// still running at `deadline`.
fn reap(child: &mut std::process::Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn read_all(pipe: Option<impl Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut bytes);
    }
    bytes
}

impl Repos {
    pub fn new(dir: PathBuf) -> Repos {
        Repos {
            dir,
            timeout: GIT_TIMEOUT,
        }
    }

    /// How long one git command may take.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same mirrors with another deadline per git command.
    pub fn with_timeout(self, timeout: Duration) -> Repos {
        Repos { timeout, ..self }
    }

    /// Clones the repository's mirror, or fetches what is new; returns the mirror. A
    /// failure is [`GitError::Unreachable`]: the repository may be back in a moment.
    pub fn sync(&self, url: &str) -> Result<PathBuf, GitError> {
        let mirror = self.mirror_path(url);
        let unreachable =
            |what: &str, e: GitError| GitError::Unreachable(format!("{what} {url} failed: {e}"));
        if mirror.join("HEAD").exists() {
            let fetch = ["fetch", "--quiet", "--prune", "origin", "+refs/*:refs/*"];
            git(&fetch, Some(&mirror), self.timeout).map_err(|e| unreachable("fetching", e))?;
        } else {
            std::fs::create_dir_all(&self.dir).map_err(|e| {
                GitError::Unreachable(format!("cannot create {}: {e}", self.dir.display()))
            })?;
            let target = mirror.to_string_lossy().into_owned();
            let clone = ["clone", "--quiet", "--mirror", "--", url, &target];
            git(&clone, None, self.timeout).map_err(|e| unreachable("cloning", e))?;
        }
        Ok(mirror)
    }

    /// The repository's mirror as it is, without fetching; `None` before its first clone.
    pub fn mirror(&self, url: &str) -> Option<PathBuf> {
        Some(self.mirror_path(url)).filter(|m| m.join("HEAD").exists())
    }

    fn mirror_path(&self, url: &str) -> PathBuf {
        let hash: String = sha2::Sha256::digest(url.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("{hash}.git"))
    }

    /// The repository's default branch (what its HEAD names).
    pub fn default_branch(&self, mirror: &Path) -> Result<String, GitError> {
        git(
            &["symbolic-ref", "--short", "HEAD"],
            Some(mirror),
            self.timeout,
        )
    }

    /// The commit a branch, tag or commit id names; names git could read as options, or
    /// that break git's ref rules, are refused before git sees them.
    pub fn commit(&self, mirror: &Path, rev: &str) -> Result<String, GitError> {
        if !names::is_ref_name(rev) && !names::is_commit_sha(rev) {
            return Err(GitError::Refused(format!(
                "`{rev}` is not a branch, tag or commit"
            )));
        }
        let rev_commit = format!("{rev}^{{commit}}");
        let args = [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &rev_commit,
        ];
        git(&args, Some(mirror), self.timeout)
            .map_err(|_| GitError::Refused(format!("the repository has no commit `{rev}`")))
    }

    /// A product's config (`path`: `.conveyor.yml` or `.conveyor/NAME.yml`) at a commit. A
    /// commit the mirror does not have is [`GitError::Unreachable`] (the forge may not have
    /// it fetchable yet); a commit without the file is [`GitError::Refused`].
    pub fn config_at(&self, mirror: &Path, sha: &str, path: &str) -> Result<String, GitError> {
        self.read_at(mirror, sha, path).map(|(text, _)| text)
    }

    /// The product configs at a commit: `.conveyor.yml`, then `.conveyor/*.yml` and
    /// `.conveyor/*.yaml` by name.
    pub fn configs_at(&self, mirror: &Path, sha: &str) -> Result<Vec<String>, GitError> {
        self.has_commit(mirror, sha)?;
        let args = [
            "ls-tree",
            "--name-only",
            "--end-of-options",
            sha,
            "--",
            ".conveyor.yml",
            ".conveyor/",
        ];
        let listed = git(&args, Some(mirror), self.timeout)
            .map_err(|e| GitError::Refused(format!("listing the configs at {sha}: {e}")))?;
        let mut found: Vec<String> = listed
            .lines()
            .filter(|p| is_config_path(p))
            .map(str::to_string)
            .collect();
        found.sort_by_key(|p| (p != DEFAULT_CONFIG, p.clone()));
        Ok(found)
    }

    fn has_commit(&self, mirror: &Path, sha: &str) -> Result<(), GitError> {
        if !names::is_commit_sha(sha) {
            return Err(GitError::Refused(format!("`{sha}` is not a commit id")));
        }
        let commit = format!("{sha}^{{commit}}");
        let has = ["cat-file", "-e", "--end-of-options", &commit];
        git(&has, Some(mirror), self.timeout).map_err(|_| {
            GitError::Unreachable(format!("commit {sha} is not in the repository (yet)"))
        })?;
        Ok(())
    }
}

/// Where a repository's product config is when nothing else is said.
pub const DEFAULT_CONFIG: &str = ".conveyor.yml";

/// `.conveyor.yml`, or a `.yml`/`.yaml` file directly in `.conveyor/`.
fn is_config_path(path: &str) -> bool {
    path == DEFAULT_CONFIG
        || path.strip_prefix(".conveyor/").is_some_and(|name| {
            !name.contains('/')
                && !name.starts_with('.')
                && (name.ends_with(".yml") || name.ends_with(".yaml"))
        })
}

/// A repository URL compared loosely: no trailing `/` or `.git`, lowercase scheme and host.
pub fn same_repo(a: &str, b: &str) -> bool {
    !a.trim().is_empty() && repo_key(a) == repo_key(b)
}

/// A repository URL as products are looked up by it: trimmed, without a trailing `/` or
/// `.git`, lower case (the store's `repo_key` column, migration 0014).
pub fn repo_key(u: &str) -> String {
    let u = u.trim().trim_end_matches('/');
    let u = u.strip_suffix(".git").unwrap_or(u);
    u.to_lowercase()
}
