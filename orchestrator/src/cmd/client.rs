//! `conveyor product add`, `conveyor trigger`, `conveyor builds`, `conveyor logs`,
//! `conveyor artifacts`: clients of
//! a running orchestrator's API (`--server`, `--token`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use conveyor_runner::tls::{Trust, explain};
use serde_json::{Value, json};

/// How often `--wait` and `--follow` ask again.
const POLL: Duration = Duration::from_millis(500);

/// Where the API client commands send their requests.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The orchestrator's URL.
    #[arg(long, env = "CONVEYOR_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin token (needed to start builds, and to read from a server without
    /// `--public-ui`).
    #[arg(long, env = "CONVEYOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (SSL_CERT_FILE and
    /// SSL_CERT_DIR, when set, name the system's), for an `https://` server.
    #[arg(long, env = "CONVEYOR_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl ApiArgs {
    pub(super) fn client(self) -> Result<Api, String> {
        let trust = Trust::with_ca_file(self.ca_cert.as_deref()).map_err(|e| e.to_string())?;
        let http = trust
            .http()
            .map_err(|e| e.to_string())?
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| explain(&e))?;
        Ok(Api::with_http(self.server, self.token, http))
    }
}

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

pub struct Api {
    server: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// A client of `server` whose requests go through `http`.
    pub fn with_http(server: String, token: Option<String>, http: reqwest::Client) -> Api {
        Api {
            server: server.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    pub(super) async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.server, explain(&e)))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error = body["error"].as_str().unwrap_or("request failed");
        let mut msg = format!("{error} ({status})");
        for e in body["errors"].as_array().into_iter().flatten() {
            msg.push_str(&format!("\n{}", e.as_str().unwrap_or_default()));
        }
        Err(msg)
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value, String> {
        self.send(self.http.get(format!("{}{path}", self.server)))
            .await
    }

    /// Streams `path`'s body into `dest` (its directories made); its size and SHA-256.
    async fn download(&self, path: &str, dest: &std::path::Path) -> Result<(u64, String), String> {
        use futures_util::StreamExt;
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let mut req = self
            .http
            .get(format!("{}{path}", self.server))
            .timeout(Duration::from_secs(3600));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.server, explain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("{path}: {}", resp.status()));
        }
        let shown = dest.display().to_string();
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        let (mut size, mut hasher) = (0u64, sha2::Sha256::new());
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("{path}: {}", explain(&e)))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        out.flush().await.map_err(|e| format!("{shown}: {e}"))?;
        Ok((size, conveyor_runner::client::hex(&hasher.finalize())))
    }

    pub(super) async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send(self.http.post(format!("{}{path}", self.server)).json(&body))
            .await
    }

    /// A request to `path` of the server, for the commands that need other methods.
    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.server))
    }
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

fn finished(build: &Value) -> bool {
    !matches!(build["status"].as_str(), Some("running" | "pending"))
}

/// `conveyor trigger PRODUCT BELT [--ref R] [--sha S] [--wait]`
pub async fn trigger(args: TriggerArgs) -> ExitCode {
    let TriggerArgs {
        product,
        belt,
        git_ref,
        sha,
        wait,
        api,
    } = args;
    done(
        async {
            let api = api.client()?;
            let path = format!("/api/v1/products/{product}/belts/{belt}/builds");
            let build = api
                .post(&path, json!({ "ref": git_ref, "sha": sha }))
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

/// Prints the build's log lines as they come, until it finishes (or once, unless `keep`).
pub(super) async fn follow(api: &Api, id: &str, keep: bool) -> Result<Value, String> {
    let mut after: HashMap<String, i64> = HashMap::new();
    loop {
        let build = api.get(&format!("/api/v1/builds/{id}")).await?;
        for job in build["jobs"].as_array().into_iter().flatten() {
            let (run, name) = (
                job["id"].as_str().unwrap_or_default(),
                job["name"].as_str().unwrap_or_default(),
            );
            let cursor = after.entry(run.to_string()).or_insert(0);
            let lines = api
                .get(&format!("/api/v1/job-runs/{run}/logs?after={cursor}"))
                .await?;
            for l in lines["lines"].as_array().into_iter().flatten() {
                println!("[{name}] {}", l["text"].as_str().unwrap_or_default());
                *cursor = l["id"].as_i64().unwrap_or(*cursor);
            }
        }
        if !keep || finished(&build) {
            return Ok(build);
        }
        tokio::time::sleep(POLL).await;
    }
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
