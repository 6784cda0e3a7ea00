//! The in-process queue: a deque per fleet and a notification that wakes waiting runners.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use conveyor_core::protocol::QueueMessage;
use tokio::sync::Notify;

use super::{Delivery, Queue, QueueError};

#[derive(Default)]
pub struct LocalQueue {
    fleets: Mutex<HashMap<String, VecDeque<QueueMessage>>>,
    ready: Notify,
}

impl LocalQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn take(&self, fleets: &[String]) -> Option<Delivery> {
        let mut map = self.fleets.lock().unwrap_or_else(|p| p.into_inner());
        fleets.iter().find_map(|f| {
            let msg = map.get_mut(f)?.pop_front()?;
            Some(Delivery {
                fleet: f.clone(),
                id: String::new(),
                msg,
            })
        })
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn push(&self, fleet: &str, msg: &QueueMessage) -> Result<(), QueueError> {
        self.fleets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(fleet.to_string())
            .or_default()
            .push_back(msg.clone());
        self.ready.notify_waiters();
        Ok(())
    }

    async fn pop(&self, fleets: &[String], _consumer: &str) -> Result<Delivery, QueueError> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Register before looking, so a push between the look and the wait still wakes us.
            notified.as_mut().enable();
            if let Some(d) = self.take(fleets) {
                return Ok(d);
            }
            notified.await;
        }
    }

    async fn ack(&self, _delivery: &Delivery) -> Result<(), QueueError> {
        Ok(())
    }

    async fn depth(&self, fleet: &str) -> Result<u64, QueueError> {
        let map = self.fleets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(fleet).map_or(0, |q| q.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn msg(id: &str) -> QueueMessage {
        QueueMessage {
            job_run_id: id.into(),
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn a_waiting_runner_is_woken_by_a_push_to_its_fleet_only() {
        let q = Arc::new(LocalQueue::new());
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.pop(&["gpu".into()], "r").await })
        };
        tokio::task::yield_now().await;
        q.push("default", &msg("a")).await.unwrap();
        q.push("gpu", &msg("b")).await.unwrap();
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(
            (got.fleet.as_str(), got.msg.job_run_id.as_str()),
            ("gpu", "b")
        );
        assert_eq!(q.depth("default").await.unwrap(), 1);
        assert_eq!(q.depth("gpu").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn messages_come_out_in_order() {
        let q = LocalQueue::new();
        for id in ["1", "2", "3"] {
            q.push("default", &msg(id)).await.unwrap();
        }
        let fleets = ["default".to_string()];
        for id in ["1", "2", "3"] {
            assert_eq!(q.pop(&fleets, "r").await.unwrap().msg.job_run_id, id);
        }
    }
}
