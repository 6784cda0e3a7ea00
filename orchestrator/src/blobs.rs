//! Object storage for artifacts and caches, behind one small interface over `object_store`:
//! the filesystem (under the data directory by default, or a volume several orchestrators
//! share) or an S3-compatible bucket. Bytes stream through in both directions, hashed and
//! counted on the way in; nothing holds a whole file in memory.
//!
//! Layout: `artifacts/BUILD/JOB_RUN/ATTEMPT/PATH` and `caches/PRODUCT/CACHE_ID.tar`, so a
//! build's artifacts can be deleted by prefix.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

/// Where artifacts and caches are kept.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Where, in words, for the log.
    pub location: String,
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is over the {limit}-byte limit")]
    TooLarge { limit: u64 },
    /// The body being received broke off.
    #[error("the upload broke off: {0}")]
    Body(std::io::Error),
    #[error("object storage: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> BlobError {
    BlobError::Storage(e.to_string())
}

/// What a stored body came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub sha256: String,
}

impl Blobs {
    /// In this process's memory: for tests, and until a node is given a real store.
    pub fn memory() -> Blobs {
        Blobs {
            store: Arc::new(object_store::memory::InMemory::new()),
            location: "memory".into(),
        }
    }

    /// Files under `dir` (created if missing).
    pub fn filesystem(dir: &Path) -> Result<Blobs, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("cannot use {}: {e}", dir.display()))?;
        Ok(Blobs {
            store: Arc::new(fs),
            location: dir.display().to_string(),
        })
    }

    /// A bucket, `s3://BUCKET`, configured by `AWS_*` settings (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …) given
    /// as `(name, value)` pairs, as object_store reads them from the environment.
    pub fn s3(
        url: &str,
        settings: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Blobs, String> {
        let mut builder = AmazonS3Builder::new().with_url(url);
        for (name, value) in settings {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let s3 = builder
            .build()
            .map_err(|e| format!("cannot use the bucket {url}: {e}"))?;
        Ok(Blobs {
            store: Arc::new(s3),
            location: url.to_string(),
        })
    }

    /// `--artifact-store`: `s3://BUCKET`, a directory (`file://DIR` or a path), or, when
    /// empty, `DATA_DIR/objects`. S3 settings come from `AWS_*` in `env`.
    pub fn open(
        location: &str,
        data_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Blobs, String> {
        if location.starts_with("s3://") {
            let aws = env.into_iter().filter(|(k, _)| k.starts_with("AWS_"));
            return Blobs::s3(location, aws);
        }
        if location.is_empty() {
            return Blobs::filesystem(&data_dir.join("objects"));
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(format!(
                "unsupported artifact store `{location}`: use s3://BUCKET or a directory"
            ));
        }
        Blobs::filesystem(Path::new(location.trim_start_matches("file://")))
    }

    /// Streams `body` into `key`, refusing more than `limit` bytes (nothing is kept then).
    pub async fn put(
        &self,
        key: &str,
        body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send,
        limit: u64,
    ) -> Result<Written, BlobError> {
        let upload = self
            .store
            .put_multipart(&path(key))
            .await
            .map_err(storage)?;
        let mut writer = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let failed = match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    if size > limit {
                        Some(BlobError::TooLarge { limit })
                    } else {
                        hasher.update(&chunk);
                        writer
                            .wait_for_capacity(4)
                            .await
                            .err()
                            .map(storage)
                            .or_else(|| {
                                writer.put(chunk);
                                None
                            })
                    }
                }
                Err(e) => Some(BlobError::Body(e)),
            };
            if let Some(e) = failed {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
        writer.finish().await.map_err(storage)?;
        Ok(Written {
            size,
            sha256: hex(&hasher.finalize()),
        })
    }

    /// The bytes at `key`, streamed.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, BlobError> {
        let got = self.store.get(&path(key)).await.map_err(storage)?;
        Ok(got
            .into_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed())
    }

    /// Removes `key`; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage(e)),
        }
    }
}

/// A key's segments, each escaped as object_store requires.
fn path(key: &str) -> object_store::path::Path {
    object_store::path::Path::from_iter(key.split('/').filter(|s| !s.is_empty()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn a_file_goes_in_hashed_and_comes_out_whole_and_an_oversized_one_is_not_kept() {
        let dir = std::env::temp_dir().join(format!("conveyor-blobs-{}", uuid::Uuid::now_v7()));
        let blobs = Blobs::filesystem(&dir).unwrap();
        let written = blobs
            .put("a/b c/x.txt", chunks(&[b"hello ", b"world"]), 100)
            .await
            .unwrap();
        assert_eq!(written.size, 11);
        assert_eq!(written.sha256, hex(&Sha256::digest(b"hello world")));
        let mut back = Vec::new();
        let mut stream = blobs.get("a/b c/x.txt").await.unwrap();
        while let Some(c) = stream.next().await {
            back.extend_from_slice(&c.unwrap());
        }
        assert_eq!(back, b"hello world");
        let err = blobs
            .put("big", chunks(&[b"12345", b"67890"]), 8)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 8 }), "{err}");
        assert!(blobs.get("big").await.is_err(), "nothing kept");
        blobs.delete("a/b c/x.txt").await.unwrap();
        blobs.delete("a/b c/x.txt").await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
