//! Caches in a run: before `pre-run`, each cache's key is made from its `key` files and the
//! best archive the orchestrator has (the key, else the newest of its name) is unpacked
//! into the workspace — from the runner's own copy when it has that archive, so a warm
//! restore moves nothing; after a success, a key not restored exactly is packed, kept as the
//! runner's copy and saved. A cache that cannot be restored or saved is said in the log and
//! never fails the job. With `local_caches` (`conveyor run`) the runner's copies are the
//! only caches.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use conveyor_core::model::Cache;
use conveyor_core::protocol::{CacheLookup, JobSpec};
use sha2::{Digest, Sha256};

use super::artifacts::{inside, size_text};
use super::workspace::Workspace;
use super::{ExecConfig, Log};
use crate::client::{Client, Reply, Sent, hex};

/// What a cache came to before the job: its key, and whether that key was restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restored {
    pub name: String,
    pub key: String,
    pub exact: bool,
}

/// Where the caches are: the runner's copies of one product's archives.
struct Copies {
    dir: PathBuf,
}

impl Copies {
    fn of(cfg: &ExecConfig, spec: &JobSpec) -> Copies {
        let product: String = spec
            .product
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Copies {
            dir: cfg.cache_dir.join(product.trim_start_matches('.')),
        }
    }

    fn archive(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.tar"))
    }

    /// The SHA-256 the archive had when it was kept.
    fn sha(&self, key: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(format!("{key}.sha256"))).ok()
    }

    /// `key`'s archive, else the newest of `name`'s.
    fn best(&self, name: &str, key: &str) -> Option<(String, PathBuf)> {
        if self.archive(key).is_file() {
            return Some((key.to_string(), self.archive(key)));
        }
        let prefix = format!("{name}-");
        let entries = fs::read_dir(&self.dir).ok()?;
        entries
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().to_string_lossy().into_owned();
                let k = file
                    .strip_suffix(".tar")?
                    .strip_prefix(&prefix)?
                    .to_string();
                let at = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((at, format!("{prefix}{k}"), e.path()))
            })
            .max()
            .map(|(_, k, p)| (k, p))
    }

    /// Keeps `part` as `key`'s archive.
    fn keep(&self, part: &Path, key: &str, sha: &str) -> io::Result<PathBuf> {
        let to = self.archive(key);
        fs::rename(part, &to)?;
        fs::write(self.dir.join(format!("{key}.sha256")), sha)?;
        Ok(to)
    }

    fn part(&self) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.dir.join(format!(".part-{}-{n}", std::process::id())))
    }
}

/// The cache's key: its name and a hash of its `key` files' contents (a missing one counts
/// as empty, and is named in `missing`).
fn key_of(root: &Path, cache: &Cache, missing: &mut Vec<String>) -> String {
    let mut h = Sha256::new();
    for f in &cache.key_files {
        h.update(f.as_bytes());
        h.update([0]);
        match inside(root, f).map(fs::read) {
            Some(Ok(bytes)) => h.update(&bytes),
            _ => missing.push(f.clone()),
        }
        h.update([0]);
    }
    format!("{}-{}", cache.name, &hex(&h.finalize())[..20])
}

/// Restores every cache of the job; what each came to.
pub(crate) async fn restore(
    spec: &JobSpec,
    ws: &Workspace,
    client: Option<&Client>,
    cfg: &ExecConfig,
    log: &Log,
) -> Vec<Restored> {
    let copies = Copies::of(cfg, spec);
    let mut out = Vec::new();
    for cache in &spec.caches {
        let mut missing = Vec::new();
        let key = key_of(&ws.ws, cache, &mut missing);
        for m in missing {
            log.system(format!(
                "cache `{}`: key file `{m}` is missing; it counts as empty",
                cache.name
            ));
        }
        let remote = client.filter(|_| !cfg.local_caches);
        let found = match remote {
            Some(client) => fetch(spec, client, &copies, &cache.name, &key).await,
            None => Ok(copies.best(&cache.name, &key)),
        };
        let restored = match found {
            Ok(Some((k, archive))) => match unpack(&archive, &ws.ws).await {
                Ok(()) => {
                    touch(&archive);
                    log.system(format!("restored cache {k}"));
                    k == key
                }
                Err(e) => {
                    log.system(format!("cache {k} could not be restored: {e}"));
                    false
                }
            },
            Ok(None) => {
                log.system(format!("no cache `{}` yet (key {key})", cache.name));
                false
            }
            Err(e) => {
                log.system(format!("cache `{}` could not be restored: {e}", cache.name));
                false
            }
        };
        out.push(Restored {
            name: cache.name.clone(),
            key,
            exact: restored,
        });
    }
    out
}

/// The orchestrator's best archive, from the runner's copy when it is the same one.
async fn fetch(
    spec: &JobSpec,
    client: &Client,
    copies: &Copies,
    name: &str,
    key: &str,
) -> Result<Option<(String, PathBuf)>, String> {
    let q = CacheLookup {
        lease: spec.lease.clone(),
        name: name.to_string(),
        key: key.to_string(),
    };
    let hit = match client.find_cache(&q).await {
        Ok(Reply::Ok(Some(hit))) => hit,
        Ok(Reply::Ok(None)) => return Ok(None),
        Ok(Reply::Fenced) => return Err("the job's lease is gone".into()),
        Err(e) => return Err(e.to_string()),
    };
    if copies.sha(&hit.key).as_deref() == Some(hit.sha256.as_str())
        && copies.archive(&hit.key).is_file()
    {
        return Ok(Some((hit.key.clone(), copies.archive(&hit.key))));
    }
    let part = copies.part().map_err(|e| e.to_string())?;
    let got = client.download_cache(&spec.lease, &hit.id, &part).await;
    let kept = match got {
        Ok(Reply::Ok((_, sha))) if sha == hit.sha256 => copies.keep(&part, &hit.key, &sha),
        Ok(Reply::Ok((_, sha))) => Err(io::Error::other(format!(
            "it arrived with SHA-256 {sha}, not {}",
            hit.sha256
        ))),
        Ok(Reply::Fenced) => Err(io::Error::other("the job's lease is gone")),
        Err(e) => Err(io::Error::other(e.to_string())),
    };
    if kept.is_err() {
        let _ = fs::remove_file(&part);
    }
    kept.map(|p| Some((hit.key, p))).map_err(|e| e.to_string())
}

fn touch(path: &Path) {
    if let Ok(f) = fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

async fn unpack(archive: &Path, into: &Path) -> io::Result<()> {
    let (archive, into) = (archive.to_path_buf(), into.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut tar = tar::Archive::new(fs::File::open(&archive)?);
        tar.set_preserve_mtime(true);
        tar.set_preserve_permissions(true);
        tar.set_overwrite(true);
        tar.unpack(&into)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

/// Saves each cache whose key was not restored exactly (the job succeeded).
pub(crate) async fn save(
    spec: &JobSpec,
    ws: &Workspace,
    client: Option<&Client>,
    cfg: &ExecConfig,
    log: &Log,
    restored: &[Restored],
) {
    let copies = Copies::of(cfg, spec);
    let remote = client.filter(|_| !cfg.local_caches);
    for (cache, r) in spec.caches.iter().zip(restored) {
        if r.exact {
            continue;
        }
        if remote.is_some() && !spec.caches_writable {
            log.system(format!(
                "cache {} not saved: a pull request's build never writes caches",
                r.key
            ));
            continue;
        }
        let present = cache
            .paths
            .iter()
            .any(|p| inside(&ws.ws, p).is_some_and(|p| fs::symlink_metadata(p).is_ok()));
        if !present {
            log.system(format!(
                "cache {} not saved: none of its paths exist",
                r.key
            ));
            continue;
        }
        let packed = pack(&copies, &ws.ws, cache, &r.key).await;
        let (archive, size, sha) = match packed {
            Ok(p) => p,
            Err(e) => {
                log.system(format!("cache {} not saved: {e}", r.key));
                continue;
            }
        };
        let said = match remote {
            None => format!("saved cache {} ({})", r.key, size_text(size)),
            Some(client) => match client
                .upload_cache(&spec.lease, (&r.name, &r.key), &archive, &sha)
                .await
            {
                Ok(Reply::Ok(Sent::Stored)) => {
                    format!("saved cache {} ({})", r.key, size_text(size))
                }
                Ok(Reply::Ok(Sent::Had)) => format!("cache {} was saved already", r.key),
                Ok(Reply::Ok(Sent::Refused(why))) => format!("cache {} not saved: {why}", r.key),
                Ok(Reply::Fenced) => format!("cache {} not saved: the job's lease is gone", r.key),
                Err(e) => format!("cache {} not saved: {e}", r.key),
            },
        };
        log.system(said);
    }
    let (dir, limit) = (copies.dir.clone(), cfg.cache_dir_limit);
    let _ = tokio::task::spawn_blocking(move || evict(&dir, limit)).await;
}

/// Packs the cache's paths that exist into the runner's copy of `key`.
async fn pack(
    copies: &Copies,
    root: &Path,
    cache: &Cache,
    key: &str,
) -> io::Result<(PathBuf, u64, String)> {
    let part = copies.part()?;
    let (root, paths, p) = (root.to_path_buf(), cache.paths.clone(), part.clone());
    let packed = tokio::task::spawn_blocking(move || -> io::Result<(u64, String)> {
        let mut out = Hashing::new(fs::File::create(&p)?);
        {
            let mut tar = tar::Builder::new(&mut out);
            tar.follow_symlinks(false);
            for rel in &paths {
                let Some(src) = inside(&root, rel) else {
                    continue;
                };
                match fs::symlink_metadata(&src) {
                    Ok(m) if m.is_dir() => tar.append_dir_all(rel, &src)?,
                    Ok(_) => tar.append_path_with_name(&src, rel)?,
                    Err(_) => continue,
                }
            }
            tar.finish()?;
        }
        out.flush()?;
        Ok((out.size, hex(&out.hasher.finalize())))
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
    match packed {
        Ok((size, sha)) => Ok((copies.keep(&part, key, &sha)?, size, sha)),
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(e)
        }
    }
}

/// A file writer that hashes and counts what goes through it.
struct Hashing {
    inner: fs::File,
    hasher: Sha256,
    size: u64,
}

impl Hashing {
    fn new(inner: fs::File) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes the least recently used archives of `dir` until the rest fit in `limit` bytes.
fn evict(dir: &Path, limit: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut archives: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tar"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    archives.sort_by_key(|a| std::cmp::Reverse(a.0));
    let mut kept = 0;
    for (_, size, path) in archives {
        kept += size;
        if kept > limit {
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(path.with_extension("sha256"));
        }
    }
}
