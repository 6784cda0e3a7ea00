//! Retention flags, shared by `serve` and `up`: how long builds are kept and how many of
//! each belt, both off by default (keep everything).

use crate::store::Retention;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Keep {
    /// Delete finished builds (their logs and artifacts too) older than this many days;
    /// 0 keeps them whatever their age. A belt's latest build in each state always stays.
    #[arg(
        long,
        env = "CONVEYOR_KEEP_DAYS",
        value_name = "DAYS",
        default_value_t = 0
    )]
    pub keep_days: u32,
    /// Keep at least the last N builds of each belt; with --keep-days, a build goes only
    /// when it is past both; 0 keeps every build.
    #[arg(
        long,
        env = "CONVEYOR_KEEP_BUILDS",
        value_name = "N",
        default_value_t = 0
    )]
    pub keep_builds: u32,
}

impl Keep {
    pub fn retention(&self) -> Retention {
        Retention {
            max_age_ms: (self.keep_days > 0).then(|| i64::from(self.keep_days) * 86_400_000),
            keep_last: (self.keep_builds > 0).then_some(self.keep_builds),
        }
    }
}
