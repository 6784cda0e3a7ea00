//! `ExecConfig::job_user`: the job runs as that user — its uid, its primary group only, its
//! `HOME` and `USER` — in a workspace (checkout included) it owns, inside its cgroup, and
//! cannot read what only the runner's user can.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use conveyor_core::protocol::{Outcome, SourceSpec, Stream};
use conveyor_runner::executor::{ExecConfig, Isolation};

use crate::common::job_user;
use crate::{TestDir, env, git, output, run, spec, texts};

fn as_job_user(dir: &TestDir) -> ExecConfig {
    ExecConfig {
        job_user: Some(job_user()),
        ..dir.config()
    }
}

#[tokio::test]
async fn a_job_runs_as_the_job_user_with_its_home_in_a_workspace_it_owns() {
    let dir = TestDir::new("job-user");
    let user = job_user();
    let src = dir.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/copied.txt"), "copied").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", src.join("link")).unwrap();
    let private = dir.path("private");
    std::fs::write(&private, "runner only").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut s = spec(
        r#"id -u; id -g; id -G
echo "home=$HOME user=$USER logname=$LOGNAME"
stat -c '%U %a' . sub sub/copied.txt
stat -c %U link /etc/hostname
echo more >> sub/copied.txt && mkdir build && echo "writable"
if cat "$PRIVATE" 2>/dev/null; then echo "read the runner's file"; else echo "private"; fi
if ls .. >/dev/null 2>&1; then echo "listed the slot"; else echo "slot unlisted"; fi
VALUE=declared
echo "FROM_FILE=written" >> "$CONVEYOR_OUTPUT""#,
    );
    s.env = env(&[("PRIVATE", &private.to_string_lossy())]);
    s.outputs = vec![output("VALUE", None)];
    s.source = Some(SourceSpec::Local {
        path: src.to_string_lossy().into_owned(),
    });
    let (result, lines) = run(&s, &as_job_user(&dir)).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    let (uid, gid, name) = (user.uid, user.gid, &user.name);
    let home = user.home.display();
    let expected = [
        uid.to_string(),
        gid.to_string(),
        // The runner's (root's) supplementary groups are gone.
        gid.to_string(),
        format!("home={home} user={name} logname={name}"),
        format!("{name} 700"),
        format!("{name} 755"),
        format!("{name} 644"),
        // The link is the job user's; what it points to is not handed over.
        name.to_string(),
        "root".to_string(),
        "writable".to_string(),
        "private".to_string(),
        "slot unlisted".to_string(),
    ];
    assert_eq!(texts(&lines, Stream::Stdout), expected);
    let outputs: BTreeMap<&str, &str> = result
        .outputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(outputs["VALUE"], "declared");
    assert_eq!(outputs["FROM_FILE"], "written");
    assert_eq!(std::fs::read_to_string(&private).unwrap(), "runner only");
}

#[tokio::test]
async fn a_job_users_git_checkout_is_its_own_and_git_works_in_it() {
    let dir = TestDir::new("job-user-git");
    let repo = dir.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("version.txt"), "first").unwrap();
    git(&repo, &["add", "version.txt"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let mut s = spec(
        "stat -c %U .git/config\necho changed > version.txt\ngit status --porcelain\ngit log --format=%s",
    );
    s.source = Some(SourceSpec::Git {
        url: format!("file://{}", repo.display()),
        sha,
    });
    let (result, lines) = run(&s, &as_job_user(&dir)).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(
        texts(&lines, Stream::Stdout),
        [job_user().name.as_str(), " M version.txt", "first"]
    );
}

#[tokio::test]
async fn a_job_users_job_is_in_its_cgroup_and_cannot_list_the_runners_guard() {
    let dir = TestDir::new("job-user-cgroup");
    let cfg = as_job_user(&dir);
    let s = spec(
        r#"if ls "/dev/shm/conveyor-jobs-$PPID" >/dev/null 2>&1; then echo "listed the guard's jobs"; else echo "guard unlisted"; fi
cat /proc/self/cgroup"#,
    );
    let (result, lines) = run(&s, &cfg).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    let stdout = texts(&lines, Stream::Stdout);
    assert_eq!(stdout[0], "guard unlisted");
    if cfg.isolation() == Isolation::Cgroup {
        let v2 = stdout.iter().find(|l| l.starts_with("0::")).unwrap();
        assert!(v2.contains("/job-"), "not in a job cgroup: {stdout:?}");
    }
}
