//! Artifacts and caches: what a runner uploads under its lease (streamed into object storage,
//! checked against the SHA-256 it sent, recorded only while the lease lives), what it
//! downloads for the job it holds, and what anyone who may read builds downloads. Caches are
//! found by key, then by name, in the build's branch and then the default branch; a pull
//! request's build never writes one; a product's caches are kept under a size limit, least
//! recently used evicted first.

use bytes::Bytes;
use conveyor_core::protocol::{CacheHit, CacheLookup, Lease};
use conveyor_core::rules::cache_scopes;
use futures_util::stream::{BoxStream, Stream};

use super::{Result, ServiceError, Services};
use crate::blobs::BlobError;
use crate::clock::now_ms;
use crate::store::{ArtifactView, LeaseInfo, Owner, StoredFile};

/// The default for `--max-artifact-mb`.
pub const DEFAULT_MAX_ARTIFACT_MB: u64 = 1024;
/// The default for `--cache-limit-mb`.
pub const DEFAULT_CACHE_LIMIT_MB: u64 = 5 * 1024;

/// Bytes on their way out.
pub type Download = BoxStream<'static, std::result::Result<Bytes, std::io::Error>>;

fn fenced() -> ServiceError {
    ServiceError::Conflict("this job run is not yours: it was taken, or your lease is gone".into())
}

fn blob_error(e: BlobError, limit_flag: &str) -> ServiceError {
    match e {
        BlobError::TooLarge { limit } => ServiceError::Invalid(format!(
            "the file is over the {} MiB limit ({limit_flag})",
            limit >> 20
        )),
        BlobError::Body(e) => ServiceError::Invalid(format!("the upload broke off: {e}")),
        BlobError::Storage(e) => {
            tracing::warn!("object storage: {e}");
            ServiceError::Unavailable("object storage cannot be reached; try again".into())
        }
    }
}

async fn live(s: &Services, lease: &Lease, owner: &Owner) -> Result<LeaseInfo> {
    s.store
        .lease_info(lease, &owner.name)
        .await?
        .ok_or_else(fenced)
}

/// A path a job may hand on: relative, inside the workspace, printable.
fn check_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.len() > 1024
        || path.starts_with('/')
        || path.chars().any(char::is_control)
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(ServiceError::Invalid(format!(
            "invalid artifact path `{path}`: give a relative path inside the workspace"
        )));
    }
    Ok(())
}

/// Streams an artifact file of the job run `owner` holds into storage and records it;
/// nothing is kept if the lease is gone, the file is too large, or it arrived with another
/// SHA-256 than `sha256`.
pub async fn upload_artifact(
    s: &Services,
    lease: &Lease,
    owner: &Owner,
    path: &str,
    sha256: &str,
    body: impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send,
) -> Result<ArtifactView> {
    check_path(path)?;
    let info = live(s, lease, owner).await?;
    let object = format!(
        "artifacts/{}/{}/{}/{path}",
        info.build_id, lease.job_run_id, lease.attempt
    );
    let file = store_checked(
        s,
        &object,
        sha256,
        body,
        s.max_artifact_bytes,
        "--max-artifact-mb",
    )
    .await?;
    let file = StoredFile {
        name: path.to_string(),
        ..file
    };
    match s
        .store
        .add_artifact(lease, &owner.name, &file, now_ms())
        .await?
    {
        Some(view) => Ok(view),
        None => {
            let _ = s.blobs.delete(&object).await;
            Err(fenced())
        }
    }
}

/// Writes `body` to `object`, keeping it only if it is within `limit` and its SHA-256 is
/// the one sent.
async fn store_checked(
    s: &Services,
    object: &str,
    sha256: &str,
    body: impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send,
    limit: u64,
    flag: &str,
) -> Result<StoredFile> {
    let written = s
        .blobs
        .put(object, body, limit)
        .await
        .map_err(|e| blob_error(e, flag))?;
    if !written.sha256.eq_ignore_ascii_case(sha256) {
        let _ = s.blobs.delete(object).await;
        return Err(ServiceError::Invalid(format!(
            "the file arrived with SHA-256 {}, not the {sha256} sent: it changed on the way; send it again",
            written.sha256
        )));
    }
    Ok(StoredFile {
        name: String::new(),
        size: written.size,
        sha256: written.sha256,
        object: object.to_string(),
    })
}

/// An artifact and its bytes, for anyone who may read builds.
pub async fn artifact(s: &Services, id: &str) -> Result<(ArtifactView, Download)> {
    let view = s
        .store
        .artifact(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no artifact `{id}`")))?;
    let body = s
        .blobs
        .get(&view.object)
        .await
        .map_err(|e| blob_error(e, ""))?;
    Ok((view, body))
}

/// An artifact for the job run `owner` holds.
pub async fn artifact_for_job(
    s: &Services,
    lease: &Lease,
    owner: &Owner,
    id: &str,
) -> Result<(ArtifactView, Download)> {
    live(s, lease, owner).await?;
    artifact(s, id).await
}

/// The cache the job run should restore, if there is one.
pub async fn find_cache(s: &Services, q: &CacheLookup, owner: &Owner) -> Result<Option<CacheHit>> {
    let info = live(s, &q.lease, owner).await?;
    let (scopes, _) = cache_scopes(info.git_ref.as_deref(), info.default_branch.as_deref());
    let found = s
        .store
        .find_cache(&info.product, &scopes, &q.name, &q.key, now_ms())
        .await?;
    Ok(found.map(|c| CacheHit {
        id: c.id,
        key: c.key,
        size: c.size,
        sha256: c.sha256,
    }))
}

/// A cache's archive with its size and SHA-256, for a job run of its product.
pub async fn cache_for_job(
    s: &Services,
    lease: &Lease,
    owner: &Owner,
    id: &str,
) -> Result<(u64, String, Download)> {
    let info = live(s, lease, owner).await?;
    let cache = s
        .store
        .cache(id)
        .await?
        .filter(|c| c.product == info.product)
        .ok_or_else(|| ServiceError::NotFound(format!("no cache `{id}` of this product")))?;
    let body = s
        .blobs
        .get(&cache.object)
        .await
        .map_err(|e| blob_error(e, ""))?;
    Ok((cache.size, cache.sha256, body))
}

/// Saves a cache archive for the build's branch; false when the key was saved already.
/// Then forgets the product's least recently used caches beyond the limit.
pub async fn save_cache(
    s: &Services,
    lease: &Lease,
    owner: &Owner,
    (name, key, sha256): (&str, &str, &str),
    body: impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send,
) -> Result<bool> {
    let valid_key = key.len() <= 200
        && key
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('-'))
        && conveyor_core::names::is_node_name(key);
    if !conveyor_core::names::is_node_name(name) || !valid_key {
        return Err(ServiceError::Invalid(format!(
            "invalid cache `{name}` / key `{key}`: the key is the name, `-` and a hash"
        )));
    }
    let info = live(s, lease, owner).await?;
    let (_, scope) = cache_scopes(info.git_ref.as_deref(), info.default_branch.as_deref());
    let Some(scope) = scope else {
        return Err(ServiceError::Forbidden(
            "a pull request's build reads caches but never writes them".into(),
        ));
    };
    let object = format!(
        "caches/{}/{}.tar",
        info.product,
        uuid::Uuid::now_v7().simple()
    );
    let limit = s.cache_limit_bytes;
    let file = store_checked(s, &object, sha256, body, limit, "--cache-limit-mb").await?;
    let file = StoredFile {
        name: key.to_string(),
        ..file
    };
    let saved = s
        .store
        .put_cache(&info.product, &scope, name, &file, now_ms())
        .await?;
    if saved.is_none() {
        let _ = s.blobs.delete(&object).await;
        return Ok(false);
    }
    for gone in s.store.evict_caches(&info.product, limit).await? {
        if let Err(e) = s.blobs.delete(&gone.object).await {
            tracing::warn!(cache = %gone.id, "evicted cache not deleted from storage: {e}");
        }
    }
    Ok(true)
}
