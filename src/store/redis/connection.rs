//! The one connection all clones of a store share, made on first use.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, FromRedisValue, RedisError, Script};
use tokio::sync::OnceCell;

use crate::error::{ConfigError, StoreConfigError, StoreError};

/// A single node (or a primary behind a proxy) or a Redis Cluster.
pub(super) enum Backend {
    Single {
        client: Client,
        manager: OnceCell<ConnectionManager>,
    },
    Cluster {
        client: Box<ClusterClient>,
        connection: OnceCell<ClusterConnection>,
    },
}

/// The scheme prefixes that ask for the cluster client.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// A refused setting; names the error's kind only, never the URL (which
/// may carry a password).
fn refused(what: &'static str, error: &RedisError) -> ConfigError {
    ConfigError::Store(StoreConfigError::Url {
        what,
        kind: format!("{:?}", error.kind()),
    })
}

impl Backend {
    /// Reads the URL: `redis://`, `rediss://`, `unix://` for one node;
    /// `redis+cluster://[user:password@]host:port,host:port,...` for a
    /// cluster, given by some of its nodes.
    pub(super) fn open(url: &str, timeout: Duration) -> Result<Self, ConfigError> {
        for (scheme, plain) in CLUSTER_SCHEMES {
            let Some(rest) = strip_prefix_ignore_case(url, scheme) else {
                continue;
            };
            let rest = rest.trim_end_matches('/');
            let (credentials, hosts) = match rest.rfind('@') {
                Some(at) => (&rest[..=at], &rest[at + 1..]),
                None => ("", rest),
            };
            let nodes: Vec<String> = hosts
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| format!("{plain}{credentials}{h}"))
                .collect();
            if nodes.is_empty() {
                return Err(ConfigError::Store(StoreConfigError::NoClusterNode));
            }
            let client = ClusterClient::builder(nodes)
                .connection_timeout(timeout.max(Duration::from_secs(1)))
                .response_timeout(timeout.max(Duration::from_secs(1)))
                .build()
                .map_err(|e| refused("invalid cluster URL", &e))?;
            return Ok(Backend::Cluster {
                client: Box::new(client),
                connection: OnceCell::new(),
            });
        }
        let client = Client::open(url).map_err(|e| refused("invalid Redis URL", &e))?;
        Ok(Backend::Single {
            client,
            manager: OnceCell::new(),
        })
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster { .. })
    }

    /// Runs `invocation` (EVALSHA, loading the script on NOSCRIPT) within
    /// `timeout`, connecting first if this is the first call.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<String>,
        timeout: Duration,
    ) -> Result<T, StoreError> {
        let call = async {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in args {
                invocation.arg(arg);
            }
            match self {
                Backend::Single { client, manager } => {
                    let manager = manager
                        .get_or_try_init(|| async {
                            ConnectionManager::new_lazy_with_config(client.clone(), config())
                        })
                        .await
                        .map_err(unavailable)?;
                    invocation
                        .invoke_async(&mut manager.clone())
                        .await
                        .map_err(unavailable)
                }
                Backend::Cluster { client, connection } => {
                    // Connects in the background: a check that times out
                    // does not throw away the connection under way.
                    let connection = connection
                        .get_or_init(|| async {
                            client.get_pending_async_connection_with_config(ClusterConfig::new())
                        })
                        .await;
                    invocation
                        .invoke_async(&mut connection.clone())
                        .await
                        .map_err(unavailable)
                }
            }
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }
}

/// Reconnects in the background after a lost connection: first after 10 ms,
/// then doubling up to 200 ms (so a restarted Redis is found again within
/// about 200 ms), six times; after that the next call starts over.
fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(200))
        .set_number_of_retries(6)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
}

fn unavailable(error: RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}
