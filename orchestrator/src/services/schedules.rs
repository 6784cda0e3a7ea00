//! `schedule:` triggers: every orchestrator looks each second for schedules that are due
//! and fires the latest tick of each, once: the store moves the schedule's last tick
//! forward in the transaction that creates the build, so one tick makes one build however
//! many orchestrators see it, and a schedule that was down for several ticks catches up
//! with one build. A tick that cannot be built now (the repository unreachable) stays due
//! and is tried again on the next pass.

use conveyor_core::model::Trigger;
use conveyor_core::schedule;

use super::{Result, Services, builds};
use crate::store::{BuildTrigger, NewBuild};

/// Fires every schedule due at `now`; the ids of the builds created.
pub async fn fire_due(s: &Services, now: i64) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for product in s.store.scheduled_products().await? {
        let all_belts: Vec<String> = product.model.belts.iter().map(|b| b.name.clone()).collect();
        for t in &product.model.triggers {
            let Trigger::Schedule(t) = t else { continue };
            for belt in t.belts.as_ref().unwrap_or(&all_belts) {
                let key = format!("{}|{belt}", t.key());
                let last = s.store.schedule_last_tick(&product.name, &key, now).await?;
                let Some(tick) = schedule::due(&t.cron, last, now) else {
                    continue;
                };
                let new = NewBuild {
                    product: product.name.clone(),
                    belt: belt.clone(),
                    trigger: BuildTrigger::Schedule {
                        cron: t.cron.clone(),
                        tick,
                    },
                    git_ref: t.branch.as_ref().map(|b| format!("refs/heads/{b}")),
                    sha: None,
                    model: None,
                    resource: None,
                    context: None,
                };
                match fire(s, &key, tick, &new, now).await {
                    Ok(Some(id)) => created.push(id),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        "schedule `{}` of {} {belt}: {e}; trying again",
                        t.cron,
                        product.name
                    ),
                }
            }
        }
    }
    Ok(created)
}

async fn fire(
    s: &Services,
    key: &str,
    tick: i64,
    new: &NewBuild,
    now: i64,
) -> Result<Option<String>> {
    let new = builds::at_head(s, new).await?;
    let Some((id, effects)) = s.store.fire_schedule(key, tick, &new, now).await? else {
        return Ok(None);
    };
    s.apply(effects).await;
    Ok(Some(id))
}
