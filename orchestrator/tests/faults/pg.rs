//! A private Postgres server for a test that restarts it: its own data directory (owned by
//! the `postgres` user, as initdb requires when the tests run as root), its own port, trust
//! auth, stopped when dropped. The shared server is never restarted.

use std::path::PathBuf;
use std::process::Command;

use crate::common;

pub struct PrivatePg {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
}

/// Runs a Postgres program as the `postgres` user when we are root (initdb and the server
/// refuse to run as root), else as ourselves.
fn as_postgres(program: &PathBuf, args: &[String]) -> Command {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args);
    cmd
}

impl PrivatePg {
    /// Creates and starts a fresh cluster on a free port.
    pub fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server programs in /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("initdb is installed");
        let data = common::temp_dir("pg").join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(data.parent().expect("parent"))
            .status();
        let pg = PrivatePg {
            bin,
            data,
            port: common::free_port(),
        };
        let init = [
            "-D".to_string(),
            pg.data.display().to_string(),
            "-A".into(),
            "trust".into(),
            "-U".into(),
            "postgres".into(),
        ];
        let status = as_postgres(&pg.bin.join("initdb"), &init)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        pg.ctl("start");
        pg
    }

    /// `pg_ctl start|restart|stop`, waiting until it is done.
    pub fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.display()
        );
        let log = self.data.with_file_name("pg.log").display().to_string();
        let args = [
            "-D".to_string(),
            self.data.display().to_string(),
            "-o".into(),
            opts,
            "-l".into(),
            log,
            "-w".into(),
            action.into(),
        ];
        let status = as_postgres(&self.bin.join("pg_ctl"), &args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {action} failed");
    }

    /// A URL of a fresh database on this server.
    pub async fn fresh_db(&self) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        conveyor_store::testing::fresh_pg_url_on(&admin).await
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let args = [
            "-D".to_string(),
            self.data.display().to_string(),
            "-m".into(),
            "immediate".into(),
            "stop".into(),
        ];
        let _ = as_postgres(&self.bin.join("pg_ctl"), &args)
            .stdout(std::process::Stdio::null())
            .status();
    }
}
