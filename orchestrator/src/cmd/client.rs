//! `conveyor product add`, `conveyor trigger`, `conveyor builds`, `conveyor logs`,
//! `conveyor artifacts`: clients of
//! a running orchestrator's API (`--server`, `--token`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::api::local_user;
pub use super::api::{Api, ApiArgs};
use super::follow::follow;

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Register a product from its repository's `.conveyor.yml`, or from a file.
    Add(ProductAddArgs),
}

// `conveyor product add`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ProductAddArgs {
    /// The repository (its `.conveyor.yml` is read at the branch head).
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub repo: Option<String>,
    #[arg(long, requires = "repo")]
    pub branch: Option<String>,
    /// The secret the forge signs webhooks with.
    #[arg(long, requires = "repo")]
    pub webhook_secret: Option<String>,
    /// A `.conveyor.yml` to register as it is.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
}

// `conveyor trigger`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    pub product: String,
    pub belt: String,
    /// The git ref the build is for.
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// The commit the build is for.
    #[arg(long)]
    pub sha: Option<String>,
    /// A variable every job of the build gets in its environment (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = variable)]
    pub vars: Vec<(String, String)>,
    /// Follow the build's logs and exit 0 only if it succeeds.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

// `conveyor builds`' arguments.
#[derive(Debug, clap::Args)]
pub struct BuildsArgs {
    #[arg(long)]
    pub product: Option<String>,
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

// `conveyor logs`' arguments.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The build id.
    pub build: String,
    /// Keep printing until the build finishes.
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

// `conveyor artifacts`' arguments.
#[derive(Debug, clap::Args)]
pub struct ArtifactsArgs {
    /// The build id.
    pub build: String,
    /// Where to put them: DIR/JOB/PATH.
    #[arg(short = 'o', long = "output", default_value = ".")]
    pub output: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `conveyor artifacts BUILD [-o DIR]`: every artifact of the build, as DIR/JOB/PATH, each
/// checked against its SHA-256.
pub async fn artifacts(args: ArtifactsArgs) -> ExitCode {
    done(
        async {
            let api = args.api.client()?;
            let list = api
                .get(&format!("/api/v1/builds/{}/artifacts", args.build))
                .await?;
            let items = list["artifacts"].as_array().cloned().unwrap_or_default();
            for a in &items {
                let text = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                let (job, path, sha) = (text("job"), text("path"), text("sha256"));
                let safe = |p: &str| {
                    !p.is_empty() && p.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
                };
                if !safe(&job) || !safe(&path) {
                    return Err(format!("the server named an unsafe path `{job}/{path}`"));
                }
                let dest = args.output.join(&job).join(&path);
                let got = api
                    .download(&format!("/api/v1/artifacts/{}", text("id")), &dest)
                    .await?;
                if got.1 != sha {
                    return Err(format!(
                        "{}: arrived with SHA-256 {}, not {sha}",
                        dest.display(),
                        got.1
                    ));
                }
                println!("{}  {} bytes", dest.display(), got.0);
            }
            if items.is_empty() {
                eprintln!("build {} has no artifacts", args.build);
            }
            Ok(true)
        }
        .await,
    )
}

pub(super) fn done(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn variable(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

/// `conveyor trigger PRODUCT BELT [--ref R] [--sha S] [--var K=V]… [--wait]`
pub async fn trigger(args: TriggerArgs) -> ExitCode {
    let TriggerArgs {
        product,
        belt,
        git_ref,
        sha,
        vars,
        wait,
        api,
    } = args;
    let variables: serde_json::Map<String, serde_json::Value> =
        vars.into_iter().map(|(k, v)| (k, v.into())).collect();
    done(
        async {
            let api = api.client()?;
            let path = format!("/api/v1/products/{product}/belts/{belt}/builds");
            let build = api
                .post(
                    &path,
                    json!({ "ref": git_ref, "sha": sha, "variables": variables, "by": local_user() }),
                )
                .await?;
            let id = build["id"].as_str().unwrap_or_default().to_string();
            println!(
                "started {product} {belt} #{}: {}/api/v1/builds/{id}",
                build["number"], api.server
            );
            if !wait {
                return Ok(true);
            }
            let build = follow(&api, &id, true).await?;
            println!(
                "{product} {belt} #{}: {}",
                build["number"],
                build["status"].as_str().unwrap_or("?")
            );
            Ok(build["status"] == "succeeded")
        }
        .await,
    )
}

/// `conveyor builds [--product P] [--status S] [--limit N] [--json]`
pub async fn builds(args: BuildsArgs) -> ExitCode {
    let BuildsArgs {
        product,
        status,
        limit,
        json: as_json,
        api,
    } = args;
    done(
        async {
            let api = api.client()?;
            let mut query = format!("/api/v1/builds?limit={limit}");
            for (k, v) in [("product", &product), ("status", &status)] {
                if let Some(v) = v {
                    query.push_str(&format!("&{k}={v}"));
                }
            }
            let body = api.get(&query).await?;
            if as_json {
                println!("{body}");
                return Ok(true);
            }
            for b in body["builds"].as_array().into_iter().flatten() {
                let jobs = b["jobs"].as_array().map_or(0, Vec::len);
                println!(
                    "{}  {} {} #{}  {}  ({jobs} jobs)",
                    b["id"].as_str().unwrap_or_default(),
                    b["product"].as_str().unwrap_or_default(),
                    b["belt"].as_str().unwrap_or_default(),
                    b["number"],
                    b["status"].as_str().unwrap_or_default()
                );
            }
            Ok(true)
        }
        .await,
    )
}

/// `conveyor logs BUILD [--follow]`
pub async fn logs(args: LogsArgs) -> ExitCode {
    done(
        async {
            let api = args.api.client()?;
            let b = follow(&api, &args.build, args.follow).await?;
            Ok(b["status"] != "failed")
        }
        .await,
    )
}

/// `conveyor product add --repo URL [--branch B] [--webhook-secret S]` or `--file F`.
pub async fn product_add(args: ProductAddArgs) -> ExitCode {
    let ProductAddArgs {
        repo,
        branch,
        webhook_secret,
        file,
        api,
    } = args;
    done(
        async {
            let api = api.client()?;
            let body = match (repo, file) {
                (Some(repo), _) => {
                    json!({ "repo": repo, "branch": branch, "webhook_secret": webhook_secret })
                }
                (None, Some(f)) => {
                    let yaml = std::fs::read_to_string(&f)
                        .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
                    json!({ "yaml": yaml })
                }
                (None, None) => return Err("give --repo or --file".to_string()),
            };
            let reply = api.post("/api/v1/products", body).await?;
            let p = &reply["product"];
            let at = match (p["branch"].as_str(), reply["sha"].as_str()) {
                (Some(b), Some(sha)) => format!(" ({b} at {sha})"),
                _ => String::new(),
            };
            println!("registered {}{at}", p["name"].as_str().unwrap_or_default());
            for other in reply["others"].as_array().into_iter().flatten() {
                let file = other["config_path"].as_str().unwrap_or_default();
                println!(
                    "registered {} (from {file})",
                    other["name"].as_str().unwrap_or_default()
                );
            }
            for w in reply["warnings"].as_array().into_iter().flatten() {
                eprintln!("{}", w.as_str().unwrap_or_default());
            }
            Ok(true)
        }
        .await,
    )
}
