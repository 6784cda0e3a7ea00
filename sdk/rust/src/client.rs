//! A client for Conveyor CI's resource API on a conveyor orchestrator: resource
//! definitions, resources (each change starts runs), pipelines, and run logs.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::{Error, Http, Result};

/// A resource at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    pub name: String,
    /// Its type: the resource definition's name.
    #[serde(rename = "resource")]
    pub resource_type: String,
    #[serde(default)]
    pub pipeline: Option<String>,
    pub version: u64,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub spec: Value,
}

/// What a resource's create, update or delete answers: its version and the runs it
/// started (`runid` is the first; none when nothing takes its type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub name: String,
    pub runid: Option<String>,
    #[serde(default)]
    pub runs: Vec<String>,
    pub message: String,
    pub version: u64,
}

/// The resource API of one orchestrator, with the admin token.
#[derive(Clone, Debug)]
pub struct Client {
    http: Http,
}

/// A path segment, percent-encoded outside `[A-Za-z0-9._-]`.
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    pub fn new(server: &str, token: &str) -> Result<Client> {
        Ok(Client {
            http: Http::new(server, token)?,
        })
    }

    /// From `CONVEYOR_SERVER` and `CONVEYOR_TOKEN`.
    pub fn from_env() -> Result<Client> {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{k} is not set")))
        };
        Client::new(&env("CONVEYOR_SERVER")?, &env("CONVEYOR_TOKEN")?)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        self.http.call(method, path, body).await
    }

    /// Creates or replaces a resource definition with this JSON Schema.
    pub async fn apply_definition(&self, name: &str, schema: Value) -> Result<Value> {
        let body = json!({ "name": name, "schema": schema });
        self.call(Method::POST, "/resource-definitions/apply", Some(&body))
            .await
    }

    pub async fn definition(&self, name: &str) -> Result<Value> {
        let path = format!("/resource-definitions/{}", seg(name));
        self.call(Method::GET, &path, None).await
    }

    /// Creates a resource (version 1) and starts its runs.
    pub async fn create_resource(
        &self,
        resource_type: &str,
        name: &str,
        spec: Value,
    ) -> Result<ResourceChange> {
        let body = json!({ "resource": resource_type, "name": name, "spec": spec });
        self.call(Method::POST, "/resources", Some(&body)).await
    }

    /// Updates a resource (a new version) and starts its runs.
    pub async fn update_resource(
        &self,
        resource_type: &str,
        name: &str,
        spec: Value,
    ) -> Result<ResourceChange> {
        let path = format!("/resources/{}/{}", seg(resource_type), seg(name));
        let body = json!({ "spec": spec });
        self.call(Method::PUT, &path, Some(&body)).await
    }

    /// Deletes a resource and starts its runs (event `delete`).
    pub async fn delete_resource(&self, resource_type: &str, name: &str) -> Result<ResourceChange> {
        let path = format!("/resources/{}/{}", seg(resource_type), seg(name));
        self.call(Method::DELETE, &path, None).await
    }

    /// A resource's latest version.
    pub async fn resource(&self, resource_type: &str, name: &str) -> Result<Resource> {
        let path = format!("/resources/{}/{}", seg(resource_type), seg(name));
        self.call(Method::GET, &path, None).await
    }

    /// One version of a resource.
    pub async fn resource_version(
        &self,
        resource_type: &str,
        name: &str,
        version: u64,
    ) -> Result<Resource> {
        let path = format!("/resources/{}/{}/{version}", seg(resource_type), seg(name));
        self.call(Method::GET, &path, None).await
    }

    /// Every resource of a type, at its latest version.
    pub async fn resources(&self, resource_type: &str) -> Result<Vec<Resource>> {
        let path = format!("/resources/{}", seg(resource_type));
        self.call(Method::GET, &path, None).await
    }

    /// Creates a pipeline: `{"name", "resource", "steps": [{"driver", "name"?}]}`.
    pub async fn create_pipeline(&self, pipeline: &Value) -> Result<Value> {
        self.call(Method::POST, "/pipelines", Some(pipeline)).await
    }

    pub async fn pipeline(&self, name: &str) -> Result<Value> {
        let path = format!("/pipelines/{}", seg(name));
        self.call(Method::GET, &path, None).await
    }

    /// A run's stored log lines (`/logs`), for one driver and pipeline when named.
    pub async fn logs(
        &self,
        runid: &str,
        driver: Option<&str>,
        pipeline: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut path = format!("/logs?runid={}", seg(runid));
        for (k, v) in [("driver", driver), ("pipeline", pipeline)] {
            if let Some(v) = v {
                path.push_str(&format!("&{k}={}", seg(v)));
            }
        }
        let body: Value = self.call(Method::GET, &path, None).await?;
        Ok(body["logs"].as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::seg;

    #[test]
    fn a_path_segment_cannot_leave_its_place() {
        assert_eq!(seg("web.v2"), "web.v2");
        assert_eq!(seg("a/b?c"), "a%2Fb%3Fc");
    }
}
