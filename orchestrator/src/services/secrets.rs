//! Secrets: set, listed by name and removed, per product or globally; values are sealed
//! with the node's key before they reach the store and are never given back to anyone but
//! the job that names them. A claimed job gets each secret it names as an environment
//! variable, listed in `JobSpec::secrets` so its runner masks the value in logs and refuses
//! it in outputs.

use conveyor_core::names;
use conveyor_core::protocol::{JobSpec, MIN_MASKED_CHARS};

use super::{Result, ServiceError, Services};
use crate::clock::now_ms;
use crate::store::{Claim, SecretInfo};
use crate::vault::Vault;

/// The longest value a secret may hold.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Where a secret lives: a product's own, or global (every product may name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Global,
    Product(String),
}

impl Scope {
    fn key(&self) -> &str {
        match self {
            Scope::Global => "",
            Scope::Product(p) => p,
        }
    }
}

fn vault(s: &Services) -> Result<&Vault> {
    s.vault.as_ref().ok_or_else(|| {
        ServiceError::Conflict(
            "this orchestrator keeps no secrets: start it with --secret-key-file".into(),
        )
    })
}

async fn check_scope(s: &Services, scope: &Scope) -> Result<()> {
    if let Scope::Product(p) = scope
        && s.store.product(p).await?.is_none()
    {
        return Err(ServiceError::NotFound(format!("no product `{p}`")));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if !names::is_var_name(name) || name.starts_with("CONVEYOR_") {
        return Err(ServiceError::Invalid(format!(
            "invalid secret name `{}`: use letters, digits and `_`, not starting with a digit \
             or `CONVEYOR_`",
            name.chars().take(100).collect::<String>()
        )));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<()> {
    if value.chars().count() < MIN_MASKED_CHARS {
        return Err(ServiceError::Invalid(format!(
            "a secret needs at least {MIN_MASKED_CHARS} characters: a shorter one could not be \
             masked in logs"
        )));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(ServiceError::Invalid(format!(
            "a secret holds at most {} KiB",
            MAX_SECRET_BYTES / 1024
        )));
    }
    if value.contains('\0') {
        return Err(ServiceError::Invalid(
            "a secret cannot hold a NUL byte: jobs get it as an environment variable".into(),
        ));
    }
    Ok(())
}

/// Sets (or replaces) a secret.
pub async fn set(s: &Services, scope: &Scope, name: &str, value: &str) -> Result<()> {
    check_name(name)?;
    check_value(value)?;
    check_scope(s, scope).await?;
    let sealed = vault(s)?
        .seal(scope.key(), name, value)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    s.store
        .put_secret(scope.key(), name, &sealed, now_ms())
        .await?;
    Ok(())
}

/// The secrets of a scope, by name, without values.
pub async fn list(s: &Services, scope: &Scope) -> Result<Vec<SecretInfo>> {
    check_scope(s, scope).await?;
    Ok(s.store.secrets(scope.key()).await?)
}

/// Removes a secret.
pub async fn remove(s: &Services, scope: &Scope, name: &str) -> Result<()> {
    check_name(name)?;
    if s.store.delete_secret(scope.key(), name).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("no secret `{name}` here")))
    }
}

/// Whether builds of the product's pull requests get the secrets their jobs name.
pub async fn allow_pull_requests(s: &Services, product: &str, allowed: bool) -> Result<()> {
    if s.store.set_pr_secrets(product, allowed).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("no product `{product}`")))
    }
}

/// Puts the claimed job's secrets into its spec: each value in `env` under its name, each
/// name in `secrets`. An error names what the job cannot get; the job then fails with it.
pub fn open_into(
    s: &Services,
    claim: &Claim,
    spec: &mut JobSpec,
) -> std::result::Result<(), String> {
    let product = &spec.product;
    if let Some(name) = claim.missing_secrets.first() {
        return Err(format!(
            "secret `{name}` is set neither for product `{product}` nor globally: set it with \
             `conveyor secret set --product {product} {name}` (the value on stdin)"
        ));
    }
    if claim.secrets.is_empty() {
        return Ok(());
    }
    let Some(vault) = &s.vault else {
        return Err(
            "the job names secrets, but this orchestrator keeps none: start it with \
                    --secret-key-file"
                .into(),
        );
    };
    for (name, sealed) in &claim.secrets {
        let value = vault
            .open(product, name, sealed)
            .or_else(|_| vault.open("", name, sealed))
            .map_err(|_| {
                format!(
                    "secret `{name}` cannot be opened with this orchestrator's key: was \
                     --secret-key-file changed? Set the secret again"
                )
            })?;
        spec.env.push((name.clone(), value));
        spec.secrets.push(name.clone());
    }
    Ok(())
}
