//! Artifacts in a run: the dependencies' files put at their paths in the workspace before
//! `pre-run` (checked against their SHA-256), and the job's own files — the paths and globs
//! of `artifacts:` — uploaded when it ends. Only plain files are handed on: a symbolic link
//! is left out (it could point anywhere on the runner), and a path that matches nothing is
//! the job's error.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use conveyor_core::protocol::JobSpec;
use sha2::{Digest, Sha256};

use super::workspace::Workspace;
use super::{ExecError, Log};
use crate::client::{Client, Reply, Sent, hex};

/// Puts the dependencies' artifacts into the workspace.
pub(crate) async fn receive(
    spec: &JobSpec,
    ws: &Workspace,
    client: &Client,
    log: &Log,
) -> Result<(), ExecError> {
    let mut bytes = 0;
    for a in &spec.input_artifacts {
        let fail = |reason: String| ExecError::Artifact {
            path: a.path.clone(),
            reason,
        };
        let dest =
            inside(&ws.ws, &a.path).ok_or_else(|| fail("it is not a relative path".into()))?;
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        match client.download_artifact(&spec.lease, &a.id, &dest).await {
            Ok(Reply::Ok((_, sha))) if sha == a.sha256 => bytes += a.size,
            Ok(Reply::Ok((_, sha))) => {
                return Err(fail(format!(
                    "it arrived with SHA-256 {sha}, not {}",
                    a.sha256
                )));
            }
            Ok(Reply::Fenced) => return Err(fail("the job's lease is gone".into())),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    if !spec.input_artifacts.is_empty() {
        log.system(format!(
            "received {} artifact file(s), {}",
            spec.input_artifacts.len(),
            size_text(bytes)
        ));
    }
    Ok(())
}

/// `rel` under `root`, if it is a plain relative path.
pub(crate) fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    ok.then(|| root.join(rel))
}

/// Uploads the files the job's `artifacts:` name. `Err` when one cannot be handed on: a
/// pattern that matches nothing, an upload the orchestrator refuses or cannot take.
pub(crate) async fn send(
    spec: &JobSpec,
    ws: &Workspace,
    client: &Client,
    log: &Log,
) -> Result<(), ExecError> {
    let root = ws.ws.clone();
    let patterns = spec.artifact_paths.clone();
    let found = tokio::task::spawn_blocking(move || expand(&root, &patterns))
        .await
        .map_err(|e| ExecError::Io {
            what: "listing the artifacts",
            source: io::Error::other(e.to_string()),
        })??;
    for skipped in &found.links {
        log.system(format!("artifact `{skipped}` is a symbolic link: left out"));
    }
    let mut bytes = 0;
    for rel in &found.files {
        bytes += upload(spec, &ws.ws, rel, client).await?;
    }
    log.system(format!(
        "sent {} artifact file(s), {}",
        found.files.len(),
        size_text(bytes)
    ));
    Ok(())
}

async fn upload(spec: &JobSpec, root: &Path, rel: &str, client: &Client) -> Result<u64, ExecError> {
    let fail = |reason: String| ExecError::Artifact {
        path: rel.to_string(),
        reason,
    };
    let file = root.join(rel);
    let path = file.clone();
    let (size, sha) = tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))?;
    // A transport failure or a 5xx may pass: two more tries before the job fails.
    let mut tries = 0;
    loop {
        tries += 1;
        return match client.upload_artifact(&spec.lease, rel, &file, &sha).await {
            Ok(Reply::Ok(Sent::Stored | Sent::Had)) => Ok(size),
            Ok(Reply::Ok(Sent::Refused(why))) => Err(fail(why)),
            Ok(Reply::Fenced) => Err(fail("the job's lease is gone".into())),
            Err(e) if tries < 3 && !e.is_refusal() => {
                tokio::time::sleep(std::time::Duration::from_millis(500 * tries)).await;
                continue;
            }
            Err(e) => Err(fail(e.to_string())),
        };
    }
}

/// The size and SHA-256 of a plain file, opened without following a link.
pub(crate) fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex(&hasher.finalize())))
}

/// What the patterns name: plain files (relative, sorted, each once) and links left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub files: Vec<String>,
    pub links: Vec<String>,
}

/// Expands each pattern under `root`; directories count with every file beneath them.
pub(crate) fn expand(root: &Path, patterns: &[String]) -> Result<Found, ExecError> {
    let mut found = Found::default();
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let base = glob::Pattern::escape(&root.to_string_lossy());
    for pattern in patterns {
        let full = format!("{base}/{pattern}");
        let matches = glob::glob_with(&full, options).map_err(|e| ExecError::Artifact {
            path: pattern.clone(),
            reason: format!("it is not a valid pattern: {e}"),
        })?;
        let before = found.files.len() + found.links.len();
        for m in matches.flatten() {
            walk(root, &m, &mut found);
        }
        if found.files.len() + found.links.len() == before && !matched_dir(root, pattern) {
            return Err(ExecError::ArtifactMissing {
                pattern: pattern.clone(),
            });
        }
    }
    found.files.sort();
    found.files.dedup();
    Ok(found)
}

/// An empty directory named outright counts as found (it holds no file to send).
fn matched_dir(root: &Path, pattern: &str) -> bool {
    fs::symlink_metadata(root.join(pattern)).is_ok_and(|m| m.is_dir())
}

fn walk(root: &Path, path: &Path, found: &mut Found) {
    let rel = || {
        path.strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    };
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        found.links.push(rel());
    } else if meta.is_file() {
        found.files.push(rel());
    } else if meta.is_dir()
        && let Ok(entries) = fs::read_dir(path)
    {
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            walk(root, &child, found);
        }
    }
}

pub(crate) fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_expand_to_plain_files_and_a_pattern_matching_nothing_is_an_error() {
        let root = std::env::temp_dir().join(format!("conveyor-expand-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("dist/sub")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("dist/a.tgz"), "a").unwrap();
        fs::write(root.join("dist/sub/b.txt"), "b").unwrap();
        fs::write(root.join("top.log"), "t").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("dist/link")).unwrap();
        let pats = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let found = expand(&root, &pats(&["dist", "*.log", "dist/*.tgz", "empty"])).unwrap();
        assert_eq!(found.files, ["dist/a.tgz", "dist/sub/b.txt", "top.log"]);
        assert_eq!(found.links, ["dist/link"]);
        let missing = expand(&root, &pats(&["dist/*.zip"])).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "artifact path `dist/*.zip` matched no file: the job did not write it (check the path, relative to the workspace)"
        );
        let _ = fs::remove_dir_all(&root);
    }
}
