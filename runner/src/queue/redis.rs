//! The production queue: one Redis stream per fleet, read through one consumer group, so a
//! message goes to one runner and a dead runner's messages are reclaimed by another.
//!
//! Delivery is at-least-once: a message can be delivered twice (a duplicate push, a reclaim
//! from a runner that was only slow). That is fine because the database fences the claim.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use conveyor_core::protocol::QueueMessage;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};

use super::{Delivery, Queue, QueueError};
use crate::tls::{Trust, explain};

/// The consumer group every runner reads through.
const GROUP: &str = "runners";
/// How long an ordinary (non-blocking) command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many `XAUTOCLAIM` calls per fleet and `pop`, to bound the scan of a long
/// pending list.
const RECLAIM_SCANS: usize = 16;

/// Fleet queues on Redis streams, keyed `<prefix>:{fleet:<name>}:stream`.
///
/// Non-blocking commands share one [`ConnectionManager`]. `XREADGROUP ... BLOCK` holds its
/// connection for the whole wait, so every `pop` borrows a dedicated connection of its own.
pub struct RedisQueue {
    client: Client,
    conn: ConnectionManager,
    /// Idle dedicated connections for blocking reads. A `pop` takes one and puts it back only
    /// once its read has answered, so a cancelled `pop` never returns a connection that still
    /// has a blocked read in flight.
    readers: Mutex<Vec<MultiplexedConnection>>,
    prefix: String,
    reclaim_idle: Duration,
    block: Duration,
    /// When pending entries were last looked for, so an idle runner does not look on every
    /// wake-up: it issues its blocking read, and a reclaim scan only every half idle time.
    last_reclaim: Mutex<Option<std::time::Instant>>,
}

/// `url` with the password in its user part (`redis://user:PASSWORD@host`, or a user part
/// without a colon, which Redis may take as a password) replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user = match rest[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{scheme}://{user}{}", &rest[at..])
}

impl RedisQueue {
    /// Connects to Redis at `url`; keys start with `prefix` (`conveyor` in production). A
    /// `rediss://` URL trusts the system's roots.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, QueueError> {
        Self::connect_trusting(url, prefix, &Trust::system()).await
    }

    /// Connects to Redis at `url`; over `rediss://`, trusting `trust`'s roots.
    pub async fn connect_trusting(
        url: &str,
        prefix: &str,
        trust: &Trust,
    ) -> Result<Self, QueueError> {
        // Errors name the URL without its password: they end up in logs.
        let shown = redacted(url);
        let client = trust
            .redis(url)
            .map_err(|e| QueueError(format!("the Redis URL {shown:?} is not valid: {e}")))?;
        // Few reconnect attempts: with Redis down a command should fail within a second and
        // leave retrying to the caller (the runner loop retries `pop` every second).
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1))
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| {
                QueueError(format!(
                    "could not connect to Redis at {shown}: {}",
                    explain(&e)
                ))
            })?;
        Ok(Self {
            client,
            conn,
            readers: Mutex::new(Vec::new()),
            prefix: prefix.to_string(),
            reclaim_idle: Duration::from_secs(60),
            block: Duration::from_secs(30),
            last_reclaim: Mutex::new(None),
        })
    }

    /// How long a delivery may stay unacknowledged before another consumer takes it over
    /// (default 60 s). Longer than a claim takes, or slow runners see their messages stolen.
    pub fn with_reclaim_idle(mut self, idle: Duration) -> Self {
        self.reclaim_idle = idle;
        self
    }

    /// How long one blocking read waits before `pop` looks for reclaimable messages again
    /// (default 5 s).
    pub fn with_block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    fn key(&self, fleet: &str) -> String {
        // The hash tag keeps each fleet's keys in one Redis Cluster slot.
        format!("{}:{{fleet:{fleet}}}:stream", self.prefix)
    }

    /// Runs a command on the shared connection, once more if the connection had dropped:
    /// the manager reconnects only after a command has failed on the dead connection.
    async fn shared<T, F, Fut>(&self, command: F) -> RedisResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match command(self.conn.clone()).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                command(self.conn.clone()).await
            }
            other => other,
        }
    }

    /// Creates the group if missing. It starts at `0`, not `$`, so messages pushed before
    /// the group existed (e.g. after Redis restarted empty) are still delivered.
    async fn ensure_group(&self, key: &str) -> Result<(), QueueError> {
        let created = self
            .shared(|mut c| async move {
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(key)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(failed("XGROUP CREATE", key, &e)),
            _ => Ok(()),
        }
    }

    /// Takes over the oldest message of `fleet` left unacknowledged for `reclaim_idle`.
    async fn reclaim(&self, fleet: &str, consumer: &str) -> Result<Option<Delivery>, QueueError> {
        let key = self.key(fleet);
        let idle = self.reclaim_idle.as_millis() as u64;
        let mut start = "0-0".to_string();
        for _ in 0..RECLAIM_SCANS {
            let reply = self
                .shared(|mut c| {
                    let (key, start) = (key.clone(), start.clone());
                    async move {
                        redis::cmd("XAUTOCLAIM")
                            .arg(key)
                            .arg(GROUP)
                            .arg(consumer)
                            .arg(idle)
                            .arg(start)
                            .arg("COUNT")
                            .arg(1)
                            .query_async::<StreamAutoClaimReply>(&mut c)
                            .await
                    }
                })
                .await;
            let reply = match reply {
                Ok(r) => r,
                // No stream or group yet: nothing can be pending.
                Err(e) if e.code() == Some("NOGROUP") => return Ok(None),
                Err(e) => return Err(failed("XAUTOCLAIM", &key, &e)),
            };
            for entry in reply.claimed {
                if let Some(d) = self.accept(fleet, entry).await? {
                    tracing::info!(fleet, id = d.id, consumer, "reclaimed an idle delivery");
                    return Ok(Some(d));
                }
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            start = reply.next_stream_id;
        }
        Ok(None)
    }

    /// One blocking read over all `fleets` on a dedicated connection; `None` on timeout.
    async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        fleets: &[String],
        consumer: &str,
    ) -> RedisResult<Option<StreamReadReply>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(self.block.as_millis() as u64)
            .arg("STREAMS");
        for fleet in fleets {
            cmd.arg(self.key(fleet));
        }
        for _ in fleets {
            cmd.arg(">");
        }
        cmd.query_async(conn).await
    }

    async fn reader(&self) -> Result<MultiplexedConnection, QueueError> {
        if let Some(conn) = self.lock_readers().pop() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(self.block + COMMAND_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| {
                QueueError(format!(
                    "could not connect to Redis for a blocking read: {e}"
                ))
            })?;
        // Named so `CLIENT LIST` tells which blocked connections are this queue's readers.
        let name: String = format!("{}:reader", self.prefix)
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&name)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| failed("CLIENT SETNAME", &name, &e))?;
        Ok(conn)
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Vec<MultiplexedConnection>> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on the dedicated connection until a well-formed message arrives.
    /// True at most once per half `reclaim_idle` (and on the first call).
    fn reclaim_due(&self) -> bool {
        let mut last = self.last_reclaim.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= self.reclaim_idle / 2);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    async fn wait(
        &self,
        conn: &mut MultiplexedConnection,
        fleets: &[String],
        consumer: &str,
    ) -> Result<Delivery, QueueError> {
        loop {
            if self.reclaim_due() {
                for fleet in fleets {
                    if let Some(d) = self.reclaim(fleet, consumer).await? {
                        return Ok(d);
                    }
                }
            }
            let reply = match self.read(conn, fleets, consumer).await {
                Ok(reply) => reply,
                // The stream or group is gone (Redis restarted empty, or never had it), or
                // it was deleted while we were blocked on it.
                Err(e) if matches!(e.code(), Some("NOGROUP" | "UNBLOCKED")) => {
                    for fleet in fleets {
                        self.ensure_group(&self.key(fleet)).await?;
                    }
                    continue;
                }
                Err(e) => {
                    let streams = format!("the streams of {}", fleets.join(", "));
                    return Err(failed("XREADGROUP", &streams, &e));
                }
            };
            for stream in reply.map(|r| r.keys).unwrap_or_default() {
                let Some(fleet) = fleets.iter().find(|f| self.key(f) == stream.key) else {
                    continue;
                };
                for entry in stream.ids {
                    if let Some(d) = self.accept(fleet, entry).await? {
                        return Ok(d);
                    }
                }
            }
        }
    }

    /// Turns an entry into a delivery; a malformed entry is logged, acked and deleted.
    async fn accept(&self, fleet: &str, entry: StreamId) -> Result<Option<Delivery>, QueueError> {
        let fields = entry
            .get::<String>("job_run_id")
            .zip(entry.get::<u32>("attempt"));
        if let Some((job_run_id, attempt)) = fields {
            let msg = QueueMessage {
                job_run_id,
                attempt,
            };
            let (fleet, id) = (fleet.to_string(), entry.id);
            return Ok(Some(Delivery { fleet, msg, id }));
        }
        tracing::warn!(
            fleet,
            id = entry.id,
            "dropping a malformed queue entry: it needs the fields job_run_id and attempt"
        );
        self.remove(&self.key(fleet), &entry.id).await?;
        Ok(None)
    }

    /// Acknowledges and deletes an entry in one transaction.
    async fn remove(&self, key: &str, id: &str) -> Result<(), QueueError> {
        self.shared(|mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("XACK")
                .arg(key)
                .arg(GROUP)
                .arg(id)
                .ignore()
                .cmd("XDEL")
                .arg(key)
                .arg(id)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
        .map_err(|e| failed("XACK/XDEL", key, &e))
    }
}

fn failed(command: &str, key: &str, e: &RedisError) -> QueueError {
    QueueError(format!("Redis {command} on {key} failed: {e}"))
}

#[async_trait]
impl Queue for RedisQueue {
    async fn push(&self, fleet: &str, msg: &QueueMessage) -> Result<(), QueueError> {
        let key = self.key(fleet);
        self.shared(|mut c| {
            let key = key.clone();
            async move {
                redis::cmd("XADD")
                    .arg(key)
                    .arg("*")
                    .arg("job_run_id")
                    .arg(&msg.job_run_id)
                    .arg("attempt")
                    .arg(msg.attempt)
                    .query_async::<String>(&mut c)
                    .await
            }
        })
        .await
        .map_err(|e| failed("XADD", &key, &e))?;
        Ok(())
    }

    /// Reclaims idle deliveries first, then blocks (`with_block`, 5 s at a time) for new
    /// ones. A `pop` cancelled during its read may leave a message delivered to `consumer`
    /// but never returned; it is reclaimed after `reclaim_idle`.
    async fn pop(&self, fleets: &[String], consumer: &str) -> Result<Delivery, QueueError> {
        if fleets.is_empty() {
            return Err(QueueError(format!(
                "runner {consumer} serves no fleet: give it at least one fleet to take jobs from"
            )));
        }
        let mut conn = self.reader().await?;
        let delivery = self.wait(&mut conn, fleets, consumer).await;
        // After an error the connection may be dead or still blocked: drop it.
        if delivery.is_ok() {
            self.lock_readers().push(conn);
        }
        delivery
    }

    /// Acknowledges and deletes the entry, so a stream holds only waiting and in-flight
    /// messages.
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.remove(&self.key(&delivery.fleet), &delivery.id).await
    }

    /// `XLEN`: since acknowledged entries are deleted, this counts messages waiting plus
    /// those delivered but not yet acknowledged (in flight, or held by a dead runner).
    async fn ping(&self) -> Result<(), QueueError> {
        self.shared(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
            .map_err(|e| failed("PING", "", &e))
    }

    async fn depth(&self, fleet: &str) -> Result<u64, QueueError> {
        let key = self.key(fleet);
        self.shared(|mut c| {
            let key = key.clone();
            async move { redis::cmd("XLEN").arg(key).query_async::<u64>(&mut c).await }
        })
        .await
        .map_err(|e| failed("XLEN", &key, &e))
    }
}
