//! The production queue: one Redis stream per fleet, read through one consumer group, so a
//! message goes to one runner and a dead runner's messages are reclaimed by another.
//!
//! It runs on one server, a Redis Cluster or a Sentinel-managed master (see [`link`] for the
//! URL forms): a fleet's keys share one hash slot, so every command names keys of one slot.
//!
//! Delivery is at-least-once: a message can be delivered twice (a duplicate push, a reclaim
//! from a runner that was only slow). That is fine because the database fences the claim.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use conveyor_core::protocol::QueueMessage;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{RedisError, RedisResult};

use super::{Delivery, Queue, QueueError};
use crate::tls::{Trust, explain};

mod link;
use link::{Conn, Link};

/// The consumer group every runner reads through.
const GROUP: &str = "runners";
/// How long an ordinary (non-blocking) command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many `XAUTOCLAIM` calls per fleet and `pop`, to bound the scan of a long
/// pending list.
const RECLAIM_SCANS: usize = 16;
/// `XACK` and `XDEL` of one entry (`KEYS[1]` the stream, `ARGV` the group and the id).
const ACK_AND_DELETE: &str =
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) return redis.call('XDEL', KEYS[1], ARGV[2])";
/// After a failed read, entries pending this long are taken over at once: a delivery is
/// acknowledged right after its claim, so one idle this long has most likely lost its reader.
/// Taking over one that was only slow is harmless: the second claim is refused.
const ORPHAN_IDLE: Duration = Duration::from_secs(2);
/// On a cluster, a runner of several fleets reads them one at a time (their slots may be on
/// different nodes), each for at most this long, so a message waits at most this long per
/// other fleet.
const CLUSTER_SLICE: Duration = Duration::from_secs(1);

/// Fleet queues on Redis streams, keyed `<prefix>:{fleet:<name>}:stream`.
///
/// Non-blocking commands share one connection (a manager, or a cluster connection).
/// `XREADGROUP ... BLOCK` holds its connection for the whole wait, so every `pop` borrows a
/// dedicated connection of its own.
pub struct RedisQueue {
    link: Link,
    /// Idle dedicated connections for blocking reads. A `pop` takes one and puts it back only
    /// once its read has answered, so a cancelled `pop` never returns a connection that still
    /// has a blocked read in flight.
    readers: Mutex<Vec<Conn>>,
    prefix: String,
    reclaim_idle: Duration,
    block: Duration,
    /// When pending entries were last looked for, so an idle runner does not look on every
    /// wake-up: it issues its blocking read, and a reclaim scan only every half idle time.
    last_reclaim: Mutex<Option<std::time::Instant>>,
    /// Set when a read failed: the server may have delivered a message whose reply was lost
    /// (a master that died, a failover), so the next `pop` takes over entries idle for
    /// [`ORPHAN_IDLE`] instead of waiting `reclaim_idle` for them.
    lost_read: std::sync::atomic::AtomicBool,
}

/// `url` with the password in its user part (`redis://user:PASSWORD@host`, or a user part
/// without a colon, which Redis may take as a password) replaced by `***`; in each URL of a
/// cluster's comma-separated list.
fn redacted(url: &str) -> String {
    url.split(',')
        .map(redacted_one)
        .collect::<Vec<_>>()
        .join(",")
}

fn redacted_one(url: &str) -> String {
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
        let link = Link::connect(url, trust, COMMAND_TIMEOUT)
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::InvalidClientConfig => {
                    QueueError(format!("the Redis URL {shown:?} is not valid: {e}"))
                }
                _ => QueueError(format!(
                    "could not connect to Redis at {shown}: {}",
                    explain(&e)
                )),
            })?;
        Ok(Self {
            link,
            readers: Mutex::new(Vec::new()),
            prefix: prefix.to_string(),
            reclaim_idle: Duration::from_secs(60),
            block: Duration::from_secs(30),
            last_reclaim: Mutex::new(None),
            lost_read: Default::default(),
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

    /// Runs a command on the shared connection, once more if the connection had dropped
    /// (the manager reconnects only after a command has failed on the dead connection) or
    /// the server is no longer the master (behind Sentinel the link asks for the new one).
    async fn shared<T, F, Fut>(&self, command: F) -> RedisResult<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match command(self.link.shared()).await {
            Err(e) if retryable(&e) => {
                if let Err(again) = self.link.refresh().await {
                    tracing::warn!("reconnecting to Redis: {again}");
                    return Err(e);
                }
                command(self.link.shared()).await
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
    async fn reclaim(
        &self,
        fleet: &str,
        consumer: &str,
        idle: Duration,
    ) -> Result<Option<Delivery>, QueueError> {
        let key = self.key(fleet);
        let idle = idle.as_millis() as u64;
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
        conn: &mut Conn,
        fleets: &[String],
        consumer: &str,
        block: Duration,
    ) -> RedisResult<Option<StreamReadReply>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS");
        for fleet in fleets {
            cmd.arg(self.key(fleet));
        }
        for _ in fleets {
            cmd.arg(">");
        }
        cmd.query_async(conn).await
    }

    async fn reader(&self) -> Result<Conn, QueueError> {
        if let Some(conn) = self.lock_readers().pop() {
            return Ok(conn);
        }
        let mut conn = self.link.dedicated(self.block).await.map_err(|e| {
            QueueError(format!(
                "could not connect to Redis for a blocking read: {e}"
            ))
        })?;
        if self.link.is_cluster() {
            // A cluster connection reaches several nodes; a name would land on one.
            return Ok(conn);
        }
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

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
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

    /// The reads `wait` takes turns over: all fleets at once, or on a cluster (where their
    /// slots may be on different nodes) one fleet at a time, briefly when there are several.
    fn batches<'a>(&self, fleets: &'a [String]) -> (Vec<&'a [String]>, Duration) {
        if !self.link.is_cluster() {
            return (vec![fleets], self.block);
        }
        let block = match fleets.len() {
            1 => self.block,
            _ => self.block.min(CLUSTER_SLICE),
        };
        (fleets.chunks(1).collect(), block)
    }

    async fn wait(
        &self,
        conn: &mut Conn,
        fleets: &[String],
        consumer: &str,
    ) -> Result<Delivery, QueueError> {
        let (batches, block) = self.batches(fleets);
        let mut turns = batches.iter().cycle();
        loop {
            let Some(&batch) = turns.next() else {
                return Err(QueueError("no fleet to read".into()));
            };
            let orphans = self.lost_read.swap(false, Ordering::Relaxed);
            if orphans || self.reclaim_due() {
                let idle = if orphans {
                    ORPHAN_IDLE
                } else {
                    self.reclaim_idle
                };
                for fleet in fleets {
                    if let Some(d) = self.reclaim(fleet, consumer, idle).await? {
                        // There may be more orphans: look again on the next `pop`.
                        self.lost_read.fetch_or(orphans, Ordering::Relaxed);
                        return Ok(d);
                    }
                }
            }
            let reply = match self.read(conn, batch, consumer, block).await {
                Ok(reply) => reply,
                // The stream or group is gone (Redis restarted empty, or never had it), or
                // it was deleted while we were blocked on it.
                Err(e) if matches!(e.code(), Some("NOGROUP" | "UNBLOCKED")) => {
                    for fleet in batch {
                        self.ensure_group(&self.key(fleet)).await?;
                    }
                    continue;
                }
                Err(e) => {
                    let streams = format!("the streams of {}", batch.join(", "));
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

    /// Acknowledges and deletes an entry in one script: atomic, and (unlike `MULTI`, which a
    /// cluster client cannot route by key) sent to the node owning the key on a cluster.
    async fn remove(&self, key: &str, id: &str) -> Result<(), QueueError> {
        self.shared(|mut c| async move {
            redis::cmd("EVAL")
                .arg(ACK_AND_DELETE)
                .arg(1)
                .arg(key)
                .arg(GROUP)
                .arg(id)
                .query_async::<()>(&mut c)
                .await
        })
        .await
        .map_err(|e| failed("XACK/XDEL", key, &e))
    }
}

/// Whether a command may succeed on a fresh connection: the old one dropped or hung, or the
/// server it reached is a replica now (a failover demoted it).
fn retryable(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_timeout() || e.code() == Some("READONLY")
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
        match delivery {
            Ok(_) => self.lock_readers().push(conn),
            Err(_) => self.lost_read.store(true, Ordering::Relaxed),
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
