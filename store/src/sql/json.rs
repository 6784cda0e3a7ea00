//! Values kept as JSON text in both backends, and fresh tokens.

use std::collections::BTreeMap;

use crate::error::{Result, corrupt};

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(corrupt)
}

pub(crate) fn outputs_of(json: Option<String>) -> Result<BTreeMap<String, String>> {
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
