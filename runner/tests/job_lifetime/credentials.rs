//! A job cannot read its runner's credentials: `conveyor-runner` against the fake
//! orchestrator and a private Redis with a password, with its token and Redis URL in its
//! environment or in files; its job reads `/proc/$PPID/{cmdline,environ,maps}`, the files
//! and its own environment, and none of the secrets reaches the log or the outputs. Run as
//! a job user, a job is still killed with its runner.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conveyor_core::protocol::Outcome;
use nix::sys::signal::Signal;

use crate::TestDir;
use crate::binary::{Launch, Runner, cgroups, claimed};
use crate::common::{JOB_USER, job_user, open_to_all};
use crate::fake::{Fake, Seen};
use crate::traces::{Scatter, now_us, random_below};

/// A Redis of the test's own that wants a password; its configuration comes on stdin, so
/// the password is not in its command line either.
struct PrivateRedis {
    child: Child,
    url: String,
    password: String,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let password = format!("redis-pw-{}", now_us());
        let mut child = Command::new("redis-server")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let config = format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\nrequirepass {password}\n"
        );
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(config.as_bytes()).expect("config written");
        drop(stdin);
        let url = format!("redis://:{password}@127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let ping = || -> redis::RedisResult<String> {
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            redis::cmd("PING").query(&mut conn)
        };
        while ping().is_err() {
            assert!(
                Instant::now() < deadline,
                "the private Redis never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        PrivateRedis {
            child,
            url,
            password,
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the job tries: its runner's command line (public), environment and memory map
/// (not), the files named, and its own environment, whole and by name.
fn prying_script(files: &[&std::path::Path]) -> String {
    let mut s = String::from(
        r#"id -u
echo "cmdline: $(tr '\0' ' ' < /proc/$PPID/cmdline)"
for f in environ maps; do
  if out=$(tr '\0' '\n' < /proc/$PPID/$f 2>/dev/null); then echo "$f: $out"; else echo "$f: denied"; fi
done
"#,
    );
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy();
        s += &format!(
            "if cat '{}' 2>/dev/null; then echo; else echo 'denied: {name}'; fi\n",
            f.display()
        );
    }
    s + "echo \"names: $(compgen -e | tr '\\n' ' ')\"\nenv\n"
}

/// The runner's environment: the variables a service manager might give it, platform
/// secrets among them.
fn service_env(secrets: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("LANG", "C.UTF-8"),
        ("TMPDIR", "/tmp"),
        ("USER", "runner-service"),
        (
            "DATABASE_URL",
            "postgres://conveyor:db-pw-5f3a@127.0.0.1/conveyor",
        ),
    ];
    env.extend_from_slice(secrets);
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs the prying job on `runner`; what it saw, once it completed.
async fn pry(fake: &Fake, runner: &Runner, script: &str) -> Seen {
    runner.push(fake, "pry", script).await;
    // The runner ships a job's logs before it completes it.
    let done = |s: &Seen| !s.completions.is_empty();
    let seen = fake
        .until("the job completed", Duration::from_secs(30), done)
        .await;
    assert_eq!(
        seen.completions[0].outcome,
        Outcome::Succeeded,
        "{seen:?}\n{}",
        runner.log()
    );
    seen
}

/// Asserts that nothing the job logged or output holds any of `secrets`, and that it saw
/// exactly the variables `names` (with `LANG`, `PWD`, `SHELL`, `SHLVL` and conveyor's own).
fn assert_kept_from(seen: &Seen, secrets: &[&str], names: &[&str]) {
    let outputs = seen.completions[0].outputs.values();
    for text in seen.log_lines.iter().chain(outputs) {
        for secret in secrets {
            assert!(!text.contains(secret), "the job read {secret:?}: {text}");
        }
    }
    let line = |prefix: &str| {
        let found = seen.log_lines.iter().find(|l| l.starts_with(prefix));
        found.unwrap_or_else(|| panic!("no line {prefix:?}: {:?}", seen.log_lines))
    };
    // It could read what is public, so the rest was denied, not missed.
    assert!(line("cmdline: ").contains("conveyor-runner --server"));
    assert_eq!(line("environ: "), "environ: denied");
    assert_eq!(line("maps: "), "maps: denied");
    let mut seen_names: Vec<&str> = line("names: ")["names: ".len()..]
        .split_whitespace()
        .collect();
    seen_names.sort();
    let mut expected = vec![
        "CONVEYOR_JOB_COOKIE",
        "CONVEYOR_OUTPUT",
        "CONVEYOR_WORKSPACE",
        "HOME",
        "LANG",
        "PATH",
        "PWD",
        "SHELL",
        "SHLVL",
    ];
    expected.extend_from_slice(names);
    expected.sort();
    assert_eq!(seen_names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_the_runners_own_user_reads_neither_its_environment_nor_its_memory() {
    let user = job_user();
    let dir = TestDir::new("creds-same-user");
    // The runner runs as an ordinary user here, and its job as that same user.
    std::fs::create_dir_all(dir.path("work")).unwrap();
    std::os::unix::fs::chown(dir.path("work"), Some(user.uid), Some(user.gid)).unwrap();
    let redis = PrivateRedis::start().await;
    let token = format!("fleet-token-{}", now_us());
    let fake = Fake::start().await;
    let launch = Launch {
        env: service_env(&[
            ("CONVEYOR_TOKEN", &token),
            ("CONVEYOR_REDIS_URL", &redis.url),
        ]),
        redis: Some(redis.url.clone()),
        credentials: Some(Vec::new()),
        user: Some((user.uid, user.gid)),
        ..Launch::default()
    };
    let runner = Runner::launch(&fake, &dir, launch).await;
    let seen = pry(&fake, &runner, &prying_script(&[])).await;
    assert!(seen.log_lines.contains(&user.uid.to_string()), "{seen:?}");
    let secrets = [token.as_str(), &redis.password, &redis.url, "db-pw-5f3a"];
    assert_kept_from(&seen, &secrets, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_run_as_the_job_user_reads_none_of_the_runners_credentials_or_files() {
    let user = job_user();
    let dir = TestDir::new("creds-job-user");
    let redis = PrivateRedis::start().await;
    let token = format!("fleet-token-{}", now_us());
    let (token_file, url_file) = (dir.path("token"), dir.path("redis-url"));
    for (file, text) in [(&token_file, &token), (&url_file, &redis.url)] {
        std::fs::write(file, format!("{text}\n")).unwrap();
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let fake = Fake::start().await;
    let files = [token_file.to_str().unwrap(), url_file.to_str().unwrap()];
    let launch = Launch {
        args: vec!["--job-user".into(), JOB_USER.into()],
        env: service_env(&[("CONVEYOR_ADMIN_TOKEN", "admin-token-9d1e")]),
        redis: Some(redis.url.clone()),
        credentials: Some(
            ["--token-file", files[0], "--redis-url-file", files[1]]
                .map(String::from)
                .to_vec(),
        ),
        ..Launch::default()
    };
    let runner = Runner::launch(&fake, &dir, launch).await;
    let script = prying_script(&[&token_file, &url_file]);
    let guard = "if ls /dev/shm/conveyor-jobs-$PPID >/dev/null 2>&1; then echo 'guard listed'; \
                 else echo 'denied: guard'; fi\n";
    let seen = pry(&fake, &runner, &format!("{guard}{script}")).await;
    assert!(seen.log_lines.contains(&user.uid.to_string()), "{seen:?}");
    for file in ["guard", "token", "redis-url"] {
        let denied = format!("denied: {file}");
        assert!(seen.log_lines.contains(&denied), "{seen:?}");
    }
    let secrets = [
        token.as_str(),
        &redis.password,
        &redis.url,
        "db-pw-5f3a",
        "admin-token-9d1e",
    ];
    assert_kept_from(&seen, &secrets, &["LOGNAME", "USER"]);
    let user_line = format!("USER={JOB_USER}");
    assert!(seen.log_lines.contains(&user_line), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_outright_leaves_no_process_of_its_job_users_job() {
    job_user();
    for round in 0..6 {
        let with_cgroups = cgroups() && round % 2 == 0;
        let mut args = vec!["--job-user".to_string(), JOB_USER.to_string()];
        if !with_cgroups {
            args.push("--no-job-cgroups".into());
        }
        let dir = TestDir::new("sigkill-job-user");
        let fake = Fake::start().await;
        let launch = Launch {
            args,
            ..Launch::default()
        };
        let mut runner = Runner::launch(&fake, &dir, launch).await;
        let scatter = Scatter::new(&dir.path("trace"), with_cgroups);
        open_to_all(&scatter.dir);
        runner
            .push(&fake, "j1", &format!("{}sleep 30", scatter.script()))
            .await;
        fake.until("j1 claimed", Duration::from_secs(20), claimed("j1"))
            .await;
        let delay = random_below(300);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let killed = now_us();
        runner.signal(Signal::SIGKILL);
        runner.exited(Duration::from_secs(5)).await;
        let context = format!(
            "job user, round {round} (cgroups: {with_cgroups}): SIGKILL {delay} ms after the claim"
        );
        scatter.assert_all_gone_since(killed, &context).await;
    }
}
