//! The user the `--job-user` tests run jobs as, `conveyor-job-test`: created when missing.
//! Switching users needs root, so these tests fail — loudly, never skip — without it.
#![allow(dead_code)]

use std::process::Command;

use conveyor_runner::executor::JobUser;

pub const JOB_USER: &str = "conveyor-job-test";

/// The test job user, created on first use (`useradd --system --no-create-home`).
pub fn job_user() -> JobUser {
    // Once per process: useradd run by several tests at once can write a half-made user.
    static USER: std::sync::OnceLock<JobUser> = std::sync::OnceLock::new();
    USER.get_or_init(make_job_user).clone()
}

fn make_job_user() -> JobUser {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the --job-user tests run jobs as the user {JOB_USER}, which needs root: run them as \
         root (they create {JOB_USER} if it is missing). They fail instead of skipping, so a \
         run that could not check --job-user never looks green."
    );
    if JobUser::resolve(JOB_USER).is_err() {
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", JOB_USER])
            .output()
            .expect("useradd runs");
        // 9: it exists, made meanwhile by a test running beside this one.
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "useradd {JOB_USER} failed: {out:?}"
        );
    }
    JobUser::resolve(JOB_USER).expect("the test job user exists")
}

/// Lets the job user write into `dir` (a test's trace directory, say).
pub fn open_to_all(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("directory");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod 777");
}
