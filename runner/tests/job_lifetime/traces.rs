//! A job that scatters processes every way a script can — its own group, a new session, a
//! double fork, `nohup`, a cleared environment — each appending its clock to a file every
//! ~10 ms; and the checks that all of them are gone.
//!
//! Each such process carries the test's marker in its command line (`$0` of `bash -c`), so
//! the checks find them through `/proc/*/cmdline`, independently of how the runner finds them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Appends `$EPOCHREALTIME` in microseconds to `$1` every ~10 ms, forever.
const BEAT: &str = r#"while :; do echo "${EPOCHREALTIME/./}" >> "$1"; sleep 0.01; done"#;

/// How long after a kill a heartbeat may still be written: the ~50 ms promise with room for
/// a loaded 2-core machine. A poll once a second (the old guard) cannot meet it.
pub const AFTER_KILL: Duration = Duration::from_millis(250);

/// The heartbeating processes of one job, by the way each one left the job's script.
pub struct Scatter {
    pub marker: String,
    pub dir: PathBuf,
    /// The names of the heartbeat files, one per way.
    pub ways: Vec<&'static str>,
}

impl Scatter {
    /// `cleared_env` adds a process started with `env -i` in a new session: only a cgroup
    /// can find it.
    pub fn new(dir: &Path, cleared_env: bool) -> Self {
        let nanos = now_us();
        let marker = format!("conveyor-test-beat-{}-{nanos}", std::process::id());
        let mut ways = vec!["group", "session", "double", "nohup"];
        if cleared_env {
            ways.push("bare");
        }
        std::fs::create_dir_all(dir).expect("trace dir");
        Scatter {
            marker,
            dir: dir.to_path_buf(),
            ways,
        }
    }

    /// The script lines that start them all and wait until each has beaten once.
    pub fn script(&self) -> String {
        let (m, d) = (&self.marker, self.dir.display());
        let mut s = format!("beat='{BEAT}'\n");
        s += &format!("bash -c \"$beat\" {m}-group {d}/group &\n");
        s += &format!("setsid bash -c \"$beat\" {m}-session {d}/session &\n");
        s += &format!("( setsid bash -c \"$beat\" {m}-double {d}/double & )\n");
        s += &format!("nohup setsid bash -c \"$beat\" {m}-nohup {d}/nohup >/dev/null 2>&1 &\n");
        if self.ways.contains(&"bare") {
            s += &format!(
                "( env -i PATH=\"$PATH\" setsid bash -c \"$beat\" {m}-bare {d}/bare & )\n"
            );
        }
        for way in &self.ways {
            s += &format!("until test -s {d}/{way}; do sleep 0.01; done\n");
        }
        s + "echo scattered\n"
    }

    /// Whether every process has beaten at least once.
    pub fn all_beating(&self) -> bool {
        self.ways.iter().all(|w| self.dir.join(w).exists())
    }

    /// Waits until every process has beaten, or panics after `within`.
    pub async fn wait_beating(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.all_beating() {
            assert!(
                Instant::now() < deadline,
                "the job never scattered: {:?}",
                self.ways
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Asserts that no heartbeat was written later than `AFTER_KILL` after `killed_us`, and
    /// that no marked process is alive, once the processes had time to show they live on.
    pub async fn assert_all_gone_since(&self, killed_us: u64, context: &str) {
        // Long enough for a survivor to beat again many times over.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let limit = killed_us + AFTER_KILL.as_micros() as u64;
        let mut late = Vec::new();
        let mut last_beats = Vec::new();
        for way in &self.ways {
            let Some(last) = last_beat(&self.dir.join(way)) else {
                continue;
            };
            let after = last as i64 - killed_us as i64;
            last_beats.push(format!("{way} {:+} ms", after / 1000));
            if last > limit {
                late.push(format!("{way}: +{} ms", after / 1000));
            }
        }
        // Visible with --nocapture: which processes had started, and how their beats ended.
        eprintln!("{context}: last beats relative to the kill: {last_beats:?}");
        let alive = self.alive();
        self.kill_survivors();
        assert!(
            late.is_empty() && alive.is_empty(),
            "{context}: processes outlived the kill; beats after it: {late:?}; alive: {alive:?}"
        );
    }

    /// The marked processes still alive (zombies count as gone), as `pid way`.
    pub fn alive(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                let way = cmdline.split(' ').find(|a| a.starts_with(&self.marker))?;
                (!is_zombie(pid)).then(|| format!("{pid} {way}"))
            })
            .collect()
    }

    /// Whether every way's process is alive (a beat loop's child between fork and exec
    /// shows the marker too, so processes are counted by way, not one by one).
    pub fn all_alive(&self) -> bool {
        let alive = self.alive();
        self.ways.iter().all(|way| {
            let name = format!("{}-{way}", self.marker);
            alive.iter().any(|p| p.ends_with(&format!(" {name}")))
        })
    }

    /// So a failing test leaves nothing running behind it.
    pub fn kill_survivors(&self) {
        for p in self.alive() {
            if let Some(pid) = p.split(' ').next() {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid])
                    .status();
            }
        }
    }
}

impl Drop for Scatter {
    fn drop(&mut self) {
        self.kill_survivors();
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X']))
    })
}

fn last_beat(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().filter_map(|l| l.trim().parse().ok()).max()
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// A pseudo-random number in `0..n` (xorshift, seeded from the clock once per call site
/// run); printed by the tests so a failing moment can be told apart.
pub fn random_below(n: u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = now_us() | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x % n.max(1)
}
