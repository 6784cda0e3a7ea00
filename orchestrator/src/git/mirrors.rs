//! The orchestrator's view of product repositories: a bare mirror per repository, fetched
//! before reading `.conveyor.yml` at a commit. Uses the real `git`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

/// Where mirrors live, one directory per repository URL.
#[derive(Debug, Clone)]
pub struct Repos {
    dir: PathBuf,
}

fn git(args: &[&str], dir: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("--git-dir").arg(d);
    }
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("git failed")
            .trim()
            .to_string())
    }
}

impl Repos {
    pub fn new(dir: PathBuf) -> Repos {
        Repos { dir }
    }

    /// Clones the repository's mirror, or fetches what is new; returns the mirror.
    pub fn sync(&self, url: &str) -> Result<PathBuf, String> {
        let hash: String = sha2::Sha256::digest(url.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mirror = self.dir.join(format!("{hash}.git"));
        if mirror.join("HEAD").exists() {
            git(
                &["fetch", "--quiet", "--prune", "origin", "+refs/*:refs/*"],
                Some(&mirror),
            )
            .map_err(|e| format!("fetching {url} failed: {e}"))?;
        } else {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
            let target = mirror.to_string_lossy().into_owned();
            git(&["clone", "--quiet", "--mirror", "--", url, &target], None)
                .map_err(|e| format!("cloning {url} failed: {e}"))?;
        }
        Ok(mirror)
    }

    /// The repository's default branch (what its HEAD names).
    pub fn default_branch(&self, mirror: &Path) -> Result<String, String> {
        git(&["symbolic-ref", "--short", "HEAD"], Some(mirror))
    }

    /// The commit a revision names.
    pub fn commit(&self, mirror: &Path, rev: &str) -> Result<String, String> {
        if rev.starts_with('-') {
            return Err(format!("`{rev}` is not a revision"));
        }
        git(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
            Some(mirror),
        )
        .map_err(|_| format!("the repository has no commit `{rev}`"))
    }

    /// `.conveyor.yml` at a commit.
    pub fn config_at(&self, mirror: &Path, sha: &str) -> Result<String, String> {
        git(&["show", &format!("{sha}:.conveyor.yml")], Some(mirror))
            .map(|s| s + "\n")
            .map_err(|_| format!("there is no .conveyor.yml at commit {sha}"))
    }
}

/// A repository URL compared loosely: no trailing `/` or `.git`, lowercase scheme and host.
pub fn same_repo(a: &str, b: &str) -> bool {
    fn norm(u: &str) -> String {
        let u = u.trim().trim_end_matches('/');
        let u = u.strip_suffix(".git").unwrap_or(u);
        u.to_lowercase()
    }
    !a.trim().is_empty() && norm(a) == norm(b)
}
