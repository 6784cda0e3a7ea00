//! Fleet queues: where ready job runs wait for a runner. A message is only a hint — the
//! database decides who runs what — so a lost or doubled message never loses or doubles a
//! job. The in-process queue serves `conveyor up` and `conveyor run`.

mod local;
mod redis;

use async_trait::async_trait;
use conveyor_core::protocol::QueueMessage;

pub use local::LocalQueue;
pub use redis::RedisQueue;

#[derive(Debug, thiserror::Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// A message taken from a fleet's queue; acknowledge it once handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub fleet: String,
    pub msg: QueueMessage,
    /// The queue's own id for the message (a stream entry id for Redis).
    pub id: String,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Puts a message on a fleet's queue.
    async fn push(&self, fleet: &str, msg: &QueueMessage) -> Result<(), QueueError>;
    /// Waits, without polling, for the next message on any of `fleets`.
    async fn pop(&self, fleets: &[String], consumer: &str) -> Result<Delivery, QueueError>;
    /// Marks a delivery handled.
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Whether the queue's server answers (always, in process).
    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
    /// Messages waiting on a fleet.
    async fn depth(&self, fleet: &str) -> Result<u64, QueueError>;
}
