//! After a transaction: the downstream builds it fires, its commit, and the follow-ups
//! that must each run in a transaction of their own.

use super::groups::FollowUp;
use super::{Backend, SqlStore, Work, actions, builds, groups};
use crate::error::Result;
use crate::types::Effects;

impl<B: Backend> SqlStore<B> {
    /// Fires the downstream builds of builds that succeeded, commits, then carries out
    /// the follow-ups, each in a transaction of its own (they take other builds' locks,
    /// which this transaction must not wait for): superseded builds and job runs are
    /// cancelled, promoted group members started.
    pub(super) async fn finish(&self, mut tx: B::Tx, mut work: Work, now: i64) -> Result<Effects> {
        builds::fire_all(&mut *tx, now, &mut work).await?;
        B::commit(tx).await?;
        let mut effects = work.effects;
        let mut follow: std::collections::VecDeque<FollowUp> = work.follow.into();
        while let Some(next) = follow.pop_front() {
            let mut tx = self.backend.begin().await?;
            let mut w = Work::default();
            match &next {
                FollowUp::CancelBuild(id) => {
                    if actions::cancel_build(&mut *tx, id, now, &mut w).await? {
                        w.effects.superseded.push(id.clone());
                    }
                }
                FollowUp::CancelJobRun(id) => {
                    actions::cancel_run(&mut *tx, id, now, &mut w).await?;
                }
                FollowUp::Start(member) => groups::start(&mut *tx, member, now, &mut w).await?,
            }
            builds::fire_all(&mut *tx, now, &mut w).await?;
            B::commit(tx).await?;
            effects.absorb(w.effects);
            follow.extend(w.follow);
        }
        Ok(effects)
    }
}
