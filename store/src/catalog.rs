//! Conveyor CI's objects, as the store keeps them: resource definitions (a JSON Schema per
//! resource type), resources with every version, and pipelines (ordered driver steps over a
//! resource type, each pipeline also a product). The [`Catalog`] use cases are part of the
//! [`crate::Store`] boundary (a supertrait, so that they live in files of their own).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::types::{Effects, NewBuild, ProductRecord};

/// How a write treats an existing row: `Create` refuses one (a conflict), `Replace` needs
/// one (else not found), `Apply` takes either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    Replace,
    Apply,
}

/// A resource definition: the JSON Schema every resource of its type is checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefinitionRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub schema: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub id: String,
    pub name: String,
    /// Its type: the resource definition's name.
    #[serde(rename = "resource")]
    pub resource_type: String,
    /// The pipeline it names, if any (else the pipelines of its type run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    pub version: u64,
    pub metadata: Map<String, Value>,
    pub spec: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A resource as a request gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInput {
    pub resource_type: String,
    pub name: String,
    pub pipeline: Option<String>,
    pub metadata: Map<String, Value>,
    pub spec: Value,
}

/// What happens to a resource; each starts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceVerb {
    Create,
    Update,
    Delete,
}

impl ResourceVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceVerb::Create => "create",
            ResourceVerb::Update => "update",
            ResourceVerb::Delete => "delete",
        }
    }
}

/// A pipeline: driver steps run in order over a resource of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    pub name: String,
    pub description: String,
    pub version: String,
    /// The resource type it runs over.
    pub resource: String,
    pub steps: Vec<StepRecord>,
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One step of a pipeline: a job of its product, run by a driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
}

/// Who owns a product that was not registered from a config: a pipeline, or a resource
/// type's fan-out to its drivers.
pub const MANAGED_BY_PIPELINE: &str = "pipeline";
pub const MANAGED_BY_RESOURCE_TYPE: &str = "resource-type";

/// The builds a resource change starts, planned once the change has its version.
pub type PlanRuns<'a> = &'a (dyn Fn(&ResourceRecord) -> Vec<NewBuild> + Sync);

/// A resource change with the builds it started.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChanged {
    pub record: ResourceRecord,
    pub builds: Vec<String>,
    pub effects: Effects,
}

/// Resource definitions, resources and pipelines.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Saves a definition; a `Create` over an existing one is a conflict, a `Replace` of a
    /// missing one not found.
    async fn put_definition(
        &self,
        def: &DefinitionRecord,
        mode: Write,
        now: i64,
    ) -> Result<DefinitionRecord>;
    async fn definition(&self, name: &str) -> Result<Option<DefinitionRecord>>;
    async fn definitions(&self) -> Result<Vec<DefinitionRecord>>;
    /// Removes a definition; a conflict while resources or pipelines use it, false if there
    /// was none.
    async fn delete_definition(&self, name: &str) -> Result<bool>;

    /// Creates, updates (a new version) or deletes a resource, and in the same transaction
    /// the builds `plan` makes of the result (for a delete: of its last version). A create
    /// over an existing resource is a conflict; an update or delete of a missing one is not
    /// found.
    async fn change_resource(
        &self,
        event: ResourceVerb,
        input: &ResourceInput,
        plan: PlanRuns<'_>,
        now: i64,
    ) -> Result<ResourceChanged>;
    /// The resource's latest version.
    async fn resource(&self, resource_type: &str, name: &str) -> Result<Option<ResourceRecord>>;
    async fn resource_version(
        &self,
        resource_type: &str,
        name: &str,
        version: u64,
    ) -> Result<Option<ResourceRecord>>;
    /// The latest version of every resource of a type, by name.
    async fn resources(&self, resource_type: &str) -> Result<Vec<ResourceRecord>>;

    /// Saves a pipeline and its product (`product`, managed by the pipeline) in one
    /// transaction; a conflict when a product of that name exists that no pipeline owns.
    async fn put_pipeline(
        &self,
        pipeline: &PipelineRecord,
        product: &ProductRecord,
        mode: Write,
        now: i64,
    ) -> Result<PipelineRecord>;
    async fn pipeline(&self, name: &str) -> Result<Option<PipelineRecord>>;
    async fn pipelines(&self) -> Result<Vec<PipelineRecord>>;
    /// The pipelines over a resource type, by name.
    async fn pipelines_of(&self, resource_type: &str) -> Result<Vec<PipelineRecord>>;
    /// Removes a pipeline (its product and builds stay, for their history); false if there
    /// was none.
    async fn delete_pipeline(&self, name: &str) -> Result<bool>;

    /// Registers (or replaces) a product that `owner` manages; a conflict when a product of
    /// that name exists that another owner, or no owner, has.
    async fn put_managed_product(&self, p: &ProductRecord, owner: &str, now: i64) -> Result<()>;
    /// Who manages a product (`None`: no such product; `Some(None)`: registered from a
    /// config).
    async fn product_owner(&self, name: &str) -> Result<Option<Option<String>>>;
}
