//! `conveyor secret set|list|rm`: a running orchestrator's secrets, per product
//! (`--product`) or global. A value is read from standard input, never from the command
//! line (where every process on the machine could read it), and is never printed.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{ApiArgs, done};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret; its value is read from standard input (one trailing newline dropped).
    Set {
        /// The secret's name: the environment variable jobs that name it receive.
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// List the secrets by name (values are never shown).
    List {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Remove a secret.
    Rm {
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    /// The product the secret belongs to; without it, a global secret every product may name.
    #[arg(long)]
    product: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

impl ScopeArgs {
    fn path(&self, name: Option<&str>) -> String {
        let base = match &self.product {
            Some(p) => format!("/api/v1/products/{p}/secrets"),
            None => "/api/v1/secrets".to_string(),
        };
        match name {
            Some(n) => format!("{base}/{n}"),
            None => base,
        }
    }
}

pub async fn run(cmd: SecretCommand) -> ExitCode {
    done(
        async {
            match cmd {
                SecretCommand::Set { name, scope } => set(&name, scope).await,
                SecretCommand::List { scope } => list(scope).await,
                SecretCommand::Rm { name, scope } => {
                    let path = scope.path(Some(&name));
                    let api = scope.api.client()?;
                    api.send(api.request(Method::DELETE, &path)).await?;
                    println!("removed {name}");
                    Ok(true)
                }
            }
        }
        .await,
    )
}

async fn set(name: &str, scope: ScopeArgs) -> Result<bool, String> {
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| format!("cannot read the value from standard input: {e}"))?;
    let value = value.strip_suffix('\n').unwrap_or(&value);
    let value = value.strip_suffix('\r').unwrap_or(value);
    let path = scope.path(Some(name));
    let api = scope.api.client()?;
    api.send(
        api.request(Method::PUT, &path)
            .json(&json!({ "value": value })),
    )
    .await?;
    println!("set {name}");
    Ok(true)
}

async fn list(scope: ScopeArgs) -> Result<bool, String> {
    let path = scope.path(None);
    let api = scope.api.client()?;
    let reply = api.get(&path).await?;
    for s in reply["secrets"].as_array().into_iter().flatten() {
        println!("{}", s["name"].as_str().unwrap_or_default());
    }
    Ok(true)
}
