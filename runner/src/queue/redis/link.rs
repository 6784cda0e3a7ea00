//! Where the queue's Redis is and how to reach it: one server, a Redis Cluster, or the
//! master a set of Sentinels names.
//!
//! `--redis-url` forms:
//! - `redis://host:port[/db]` (or `rediss://`): one server.
//! - `redis://a:7000,redis://b:7001` (a comma-separated list of node URLs) or
//!   `redis+cluster://a:7000,b:7001` (`rediss+cluster://` for TLS): a Redis Cluster, found
//!   from any of these seed nodes.
//! - `redis+sentinel://[user:password@]s1:26379[,s2:26379]/mymaster[/db]`: the master
//!   `mymaster` as the Sentinels name it; the credentials and database are the master's.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, Value,
};

use crate::tls::Trust;

/// How a `--redis-url` says to reach Redis.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Topology {
    Single(String),
    Cluster(Vec<String>),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        /// `redis://[credentials@]host[/db]`: the master's credentials and database.
        settings: String,
    },
}

impl Topology {
    pub(super) fn parse(url: &str) -> Result<Topology, String> {
        let url = url.trim();
        for (scheme, node) in [
            ("redis+cluster://", "redis"),
            ("rediss+cluster://", "rediss"),
        ] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let (auth, hosts) = split_auth(rest.trim_end_matches('/'));
                let nodes = hosts.split(',').filter(|h| !h.is_empty());
                let nodes: Vec<_> = nodes.map(|h| format!("{node}://{auth}{h}")).collect();
                return nonempty(nodes, "a cluster URL names no node");
            }
        }
        if url.starts_with("rediss+sentinel://") {
            return Err("TLS to Sentinels (rediss+sentinel://) is not supported".into());
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return sentinel(rest);
        }
        if url.contains(',') {
            let nodes: Vec<String> = url.split(',').map(|n| n.trim().to_string()).collect();
            if let Some(bad) = nodes.iter().find(|n| !n.contains("://")) {
                return Err(format!("cluster node {bad:?} is not a redis:// URL"));
            }
            return nonempty(nodes, "a cluster URL names no node");
        }
        Ok(Topology::Single(url.to_string()))
    }
}

fn nonempty(nodes: Vec<String>, what: &str) -> Result<Topology, String> {
    if nodes.is_empty() {
        return Err(what.to_string());
    }
    Ok(Topology::Cluster(nodes))
}

/// `user:pass@hosts` into (`user:pass@`, `hosts`).
fn split_auth(authority: &str) -> (&str, &str) {
    match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    }
}

fn sentinel(rest: &str) -> Result<Topology, String> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (auth, hosts) = split_auth(authority);
    let mut path = path.split('/').filter(|p| !p.is_empty());
    let Some(master) = path.next() else {
        return Err("a sentinel URL names its master: redis+sentinel://host:26379/mymaster".into());
    };
    let db = path.next().map(|d| format!("/{d}")).unwrap_or_default();
    let sentinels: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{h}"))
        .collect();
    let Some(first) = hosts.split(',').next().filter(|h| !h.is_empty()) else {
        return Err("a sentinel URL names no sentinel".into());
    };
    Ok(Topology::Sentinel {
        sentinels,
        master: master.to_string(),
        settings: format!("redis://{auth}{first}{db}"),
    })
}

/// A connection to one server, through a manager, or to a cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Managed(ConnectionManager),
    Direct(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Direct(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Direct(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(c) => c.get_db(),
            Conn::Direct(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

enum Target {
    Single(Client),
    Cluster(ClusterClient),
    /// Asked for the master's address on every new connection.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The queue's way to Redis: a shared connection for ordinary commands, and new
/// connections for blocking reads.
pub(super) struct Link {
    target: Target,
    shared: Mutex<Conn>,
    timeout: Duration,
}

impl Link {
    /// Connects per `url`; `timeout` bounds connecting and each ordinary command.
    pub(super) async fn connect(url: &str, trust: &Trust, timeout: Duration) -> RedisResult<Link> {
        let invalid = |e: String| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid Redis URL",
                e,
            ))
        };
        let target = match Topology::parse(url).map_err(invalid)? {
            Topology::Single(url) => Target::Single(trust.redis(&url)?),
            Topology::Cluster(nodes) => Target::Cluster(cluster(&nodes, trust, timeout)?),
            Topology::Sentinel {
                sentinels,
                master,
                settings,
            } => {
                let info = settings.into_connection_info()?.redis_settings().clone();
                let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
                let client = SentinelClient::build(
                    sentinels,
                    master,
                    Some(node),
                    SentinelServerType::Master,
                )?;
                Target::Sentinel(tokio::sync::Mutex::new(client))
            }
        };
        let shared = shared(&target, timeout).await?;
        Ok(Link {
            target,
            shared: Mutex::new(shared),
            timeout,
        })
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The shared connection for ordinary commands.
    pub(super) fn shared(&self) -> Conn {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// After a failed command: behind Sentinel, asks again where the master is (it may have
    /// failed over) and replaces the shared connection. Elsewhere the connections reconnect
    /// (or follow the cluster's slots) by themselves.
    pub(super) async fn refresh(&self) -> RedisResult<()> {
        if let Target::Sentinel(_) = self.target {
            let fresh = shared(&self.target, self.timeout).await?;
            *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
        Ok(())
    }

    /// A new connection of its own for blocking reads that wait up to `wait`.
    pub(super) async fn dedicated(&self, wait: Duration) -> RedisResult<Conn> {
        let response = wait + self.timeout;
        match &self.target {
            Target::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(response);
                Ok(Conn::Cluster(
                    client.get_async_connection_with_config(config).await?,
                ))
            }
            target => {
                let client = master(target, self.timeout).await?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(response));
                Ok(Conn::Direct(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ))
            }
        }
    }
}

fn cluster(nodes: &[String], trust: &Trust, timeout: Duration) -> RedisResult<ClusterClient> {
    let mut builder = ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(3);
    if nodes.iter().any(|n| n.starts_with("rediss://")) {
        builder = builder.certs(trust.redis_certificates());
    }
    builder.build()
}

/// The one server's client, or the client of the master the Sentinels name now.
async fn master(target: &Target, timeout: Duration) -> RedisResult<Client> {
    match target {
        Target::Single(client) => Ok(client.clone()),
        Target::Sentinel(sentinel) => {
            let ask = async { sentinel.lock().await.async_get_client().await };
            tokio::time::timeout(timeout, ask).await.map_err(|_| {
                RedisError::from((redis::ErrorKind::Io, "the Sentinels did not answer in time"))
            })?
        }
        Target::Cluster(_) => Err(RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "a cluster has no single master",
        ))),
    }
}

async fn shared(target: &Target, timeout: Duration) -> RedisResult<Conn> {
    if let Target::Cluster(client) = target {
        return Ok(Conn::Cluster(client.get_async_connection().await?));
    }
    let client = master(target, timeout).await?;
    // Few reconnect attempts: with Redis down a command should fail within a second and
    // leave retrying to the caller (the runner loop retries `pop` every second).
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1))
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    Ok(Conn::Managed(
        client.get_connection_manager_with_config(config).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::Topology;

    #[test]
    fn url_forms() {
        let one = Topology::parse("rediss://h:6380/2").unwrap();
        assert_eq!(one, Topology::Single("rediss://h:6380/2".into()));
        let list = Topology::parse("redis://a:7000, redis://b:7001").unwrap();
        let nodes = vec!["redis://a:7000".to_string(), "redis://b:7001".to_string()];
        assert_eq!(list, Topology::Cluster(nodes.clone()));
        let plus = Topology::parse("redis+cluster://a:7000,b:7001/").unwrap();
        assert_eq!(plus, Topology::Cluster(nodes));
        let auth = Topology::parse("rediss+cluster://:pw@a:1").unwrap();
        assert_eq!(auth, Topology::Cluster(vec!["rediss://:pw@a:1".into()]));
        let s = Topology::parse("redis+sentinel://u:p@s1:26379,s2:26380/mymaster/3").unwrap();
        let want = Topology::Sentinel {
            sentinels: vec!["redis://s1:26379".into(), "redis://s2:26380".into()],
            master: "mymaster".into(),
            settings: "redis://u:p@s1:26379/3".into(),
        };
        assert_eq!(s, want);
        assert!(Topology::parse("redis+sentinel://s1:26379").is_err());
        assert!(Topology::parse("redis://a:1,b:2").is_err());
    }
}
