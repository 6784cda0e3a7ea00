//! The SQL both backends share. SQLite and Postgres accept the same statements here
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so the queries are written once and a
//! macro instantiates them for each backend's concrete types; what differs (connecting,
//! opening a write transaction) lives in `sqlite.rs` and `postgres.rs`.

use std::collections::BTreeMap;

use super::{Result, StoreError};

pub fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

pub fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(corrupt)
}

pub fn outputs_of(json: Option<String>) -> Result<BTreeMap<String, String>> {
    json.map_or(Ok(BTreeMap::new()), |s| from_json(&s))
}

/// A fresh random token: 128 bits from two UUIDv4s' random parts.
pub fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
