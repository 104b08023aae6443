//! `[cluster]`: the settings of a node in a cluster (see config/default.toml).

use serde::Deserialize;

/// `[cluster]`. `redis_url` empty: one node, none of the rest is used.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://...` or `rediss://...`; may hold a password.
    pub redis_url: String,
    /// Empty: `{hostname}-{port}`.
    pub node_id: String,
    /// Empty: `server.public_url`, else `http://{listen address}`.
    pub advertise_url: String,
    pub key_prefix: String,
    pub lease_ttl_ms: u64,
    pub heartbeat_interval_ms: u64,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &lectern_store::redact_url(&self.redis_url))
            .field("node_id", &self.node_id)
            .field("advertise_url", &self.advertise_url)
            .field("key_prefix", &self.key_prefix)
            .field("lease_ttl_ms", &self.lease_ttl_ms)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .finish()
    }
}

impl ClusterConfig {
    /// Whether this node is one of a cluster (`redis_url` set).
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }

    /// Checks the settings; `store_url` is the store actually used (a cluster needs
    /// PostgreSQL). Messages never repeat a URL that may hold a password.
    pub fn validate(&self, store_url: &str) -> Result<(), String> {
        if !self.node_id.is_empty() && lectern_cluster::NodeId::new(&self.node_id).is_err() {
            return Err(format!(
                "cluster.node_id {:?} must be 1 to 64 characters from A-Z a-z 0-9 . _ -",
                self.node_id.chars().take(80).collect::<String>()
            ));
        }
        if !self.advertise_url.is_empty() {
            check_base_url(&self.advertise_url)
                .map_err(|why| format!("cluster.advertise_url {why}"))?;
        }
        let prefix = &self.key_prefix;
        if prefix.len() > 64 || prefix.chars().any(|c| c.is_control() || c == ' ') {
            return Err(
                "cluster.key_prefix must be at most 64 characters, without spaces or control \
                 characters"
                    .into(),
            );
        }
        if !(500..=60_000).contains(&self.lease_ttl_ms) {
            return Err("cluster.lease_ttl_ms must be from 500 to 60000".into());
        }
        if !(100..=10_000).contains(&self.heartbeat_interval_ms) {
            return Err("cluster.heartbeat_interval_ms must be from 100 to 10000".into());
        }
        if !self.enabled() {
            return Ok(());
        }
        if !(self.redis_url.starts_with("redis://") || self.redis_url.starts_with("rediss://")) {
            return Err(
                "cluster.redis_url must start with redis:// or rediss:// (or be empty for one \
                 node)"
                    .into(),
            );
        }
        if !(store_url.starts_with("postgres://") || store_url.starts_with("postgresql://")) {
            return Err(
                "cluster.redis_url is set but the store is SQLite: the nodes of a cluster share \
                 one PostgreSQL store (set store.url = \"postgres://...\")"
                    .into(),
            );
        }
        Ok(())
    }

    /// The lease timing: TTL, renewal every TTL/3, given up locally TTL/5 early.
    pub fn lease(&self) -> lectern_cluster::LeaseConfig {
        lectern_cluster::LeaseConfig::with_ttl(std::time::Duration::from_millis(self.lease_ttl_ms))
    }
}

/// An `http://` or `https://` URL with a host and no path, query or fragment (a trailing `/`
/// is allowed). The error says why, for "`key` ...".
pub fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty()
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "/?#@\\".contains(c))
    {
        return Err("must be a base URL like https://node-1.example.edu (no path)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClusterConfig {
        ClusterConfig {
            redis_url: "redis://127.0.0.1:6379".into(),
            node_id: "node-1".into(),
            advertise_url: "http://127.0.0.1:8081".into(),
            key_prefix: "lectern:".into(),
            lease_ttl_ms: 5000,
            heartbeat_interval_ms: 1000,
        }
    }

    #[test]
    fn a_cluster_needs_postgres_and_sane_values() {
        let pg = "postgres://db/lectern";
        assert_eq!(config().validate(pg), Ok(()));
        let err = config().validate("sqlite://x.db").unwrap_err();
        assert!(err.contains("PostgreSQL"), "{err}");
        let with = |f: fn(&mut ClusterConfig)| {
            let mut c = config();
            f(&mut c);
            c.validate(pg)
        };
        for bad in [
            with(|c| c.redis_url = "http://127.0.0.1:6379".into()),
            with(|c| c.node_id = "node 1".into()),
            with(|c| c.node_id = "x".repeat(65)),
            with(|c| c.advertise_url = "javascript:alert(1)".into()),
            with(|c| c.advertise_url = "http://a/b".into()),
            with(|c| c.advertise_url = "http://".into()),
            with(|c| c.key_prefix = "a b".into()),
            with(|c| c.lease_ttl_ms = 10),
            with(|c| c.lease_ttl_ms = 10_000_000),
            with(|c| c.heartbeat_interval_ms = 0),
        ] {
            assert!(bad.is_err());
        }
        // One node: the Redis-only settings are not checked against the store.
        let mut single = config();
        single.redis_url.clear();
        assert_eq!(single.validate("sqlite://x.db"), Ok(()));
        assert!(config().lease().validate().is_ok());
        assert!(
            ClusterConfig {
                lease_ttl_ms: 500,
                ..config()
            }
            .lease()
            .validate()
            .is_ok()
        );
    }
}
