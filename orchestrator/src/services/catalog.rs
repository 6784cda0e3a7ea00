//! Resource definitions (Conveyor CI's model): a definition's JSON Schema is compiled when it
//! is saved (an invalid one is refused with the reason); and the name rules of definitions,
//! pipelines and resources.

use conveyor_core::names;
use serde_json::Value;

use super::{Result, ServiceError, Services, input};
use crate::clock::now_ms;
use crate::store::{DefinitionRecord, Write};

/// The longest description or version text a definition or pipeline may carry.
pub const MAX_TEXT_LEN: usize = 4096;

/// A resource type's fan-out product is named `TYPE` followed by this.
pub const FANOUT_SUFFIX: &str = ".drivers";

/// A resource type's name leaves room for its fan-out product's suffix.
const MAX_TYPE_LEN: usize = names::MAX_NAME_LEN - FANOUT_SUFFIX.len();

/// A definition as a request gives it.
pub struct DefinitionInput {
    pub name: String,
    pub description: String,
    pub version: String,
    pub schema: Value,
}

/// A name of a definition (a resource type) or a pipeline: `[a-z0-9][a-z0-9_-]*`, since a
/// pipeline's name is its product's and its belt's, and a type's names its fan-out product.
pub fn kind_name(field: &str, value: &str, max: usize) -> Result<()> {
    input::name(field, value)?;
    if names::is_fleet_name(value) && value.len() <= max {
        return Ok(());
    }
    Err(ServiceError::InvalidField {
        field: field.into(),
        message: format!(
            "`{field}` `{value}` is not a valid name: use at most {max} lowercase letters, \
             digits, `_` and `-`, starting with a letter or a digit"
        ),
    })
}

/// A resource's name: `[a-z0-9][a-z0-9._-]*`.
pub fn resource_name(field: &str, value: &str) -> Result<()> {
    input::name(field, value)?;
    if names::is_product_name(value) {
        return Ok(());
    }
    Err(ServiceError::InvalidField {
        field: field.into(),
        message: format!(
            "`{field}` `{value}` is not a valid name: use lowercase letters, digits, `.`, `_` \
             and `-`, starting with a letter or a digit"
        ),
    })
}

/// Compiles a schema; an invalid one is refused naming the field `schema`.
pub(super) fn compile(schema: &Value) -> Result<jsonschema::Validator> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(ServiceError::InvalidField {
            field: "schema".into(),
            message: "`schema` must be a JSON Schema: an object (or true/false)".into(),
        });
    }
    jsonschema::validator_for(schema).map_err(|e| ServiceError::InvalidField {
        field: "schema".into(),
        message: format!("`schema` is not a valid JSON Schema: {e}"),
    })
}

/// Saves a definition after compiling its schema.
pub async fn save_definition(
    s: &Services,
    def: DefinitionInput,
    mode: Write,
) -> Result<DefinitionRecord> {
    kind_name("name", &def.name, MAX_TYPE_LEN)?;
    input::text("description", &def.description, MAX_TEXT_LEN)?;
    input::text("version", &def.version, MAX_TEXT_LEN)?;
    compile(&def.schema)?;
    let record = DefinitionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: def.name,
        description: def.description,
        version: def.version,
        schema: def.schema,
        created_at: 0,
        updated_at: 0,
    };
    Ok(s.store.put_definition(&record, mode, now_ms()).await?)
}

/// Removes a definition no resource or pipeline uses.
pub async fn delete_definition(s: &Services, name: &str) -> Result<()> {
    input::name("name", name)?;
    if s.store.delete_definition(name).await? {
        return Ok(());
    }
    Err(ServiceError::NotFound(format!(
        "no resource definition `{name}`"
    )))
}

/// The definition of a resource type, or not found.
pub async fn definition(s: &Services, name: &str) -> Result<DefinitionRecord> {
    input::name("type", name)?;
    s.store.definition(name).await?.ok_or_else(|| {
        ServiceError::NotFound(format!(
            "no resource definition `{name}`: create it with POST /resource-definitions"
        ))
    })
}
