//! Configuration: `config/default.toml` (embedded) overlaid by an optional file, then by
//! `LECTERN_<SECTION>_<KEY>` environment variables, then validated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The documented defaults, compiled in so `lectern` runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("unknown setting `{0}` (see config/default.toml for every key)")]
    UnknownKey(String),
    #[error("environment variable {var}: expected {expected}, got {value:?}")]
    EnvType {
        var: String,
        expected: &'static str,
        value: String,
    },
    #[error("`{key}` must be {expected}, not {got}")]
    Type {
        key: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub cluster: crate::cluster::ClusterConfig,
    pub auth: AuthConfig,
    pub room: RoomSettings,
    pub limits: Limits,
    pub websocket: WebSocketConfig,
    pub media: MediaConfig,
    pub recording: RecordingConfig,
    pub turn: TurnConfig,
    pub demo: DemoConfig,
    pub log: LogConfig,
    /// What loading noticed but did not refuse (an unknown `LECTERN_*` variable, which may be
    /// meant for another tool): logged by the caller once logging is set up.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub shutdown_timeout_secs: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://...`, `sqlite::memory:` or `postgres://...`; may hold a password.
    pub url: String,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = lectern_store::redact_url(&self.url);
        f.debug_struct("StoreConfig").field("url", &url).finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub hs256_secret: String,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
    pub max_token_lifetime_secs: u64,
    pub public_keys: Vec<PublicKeyConfig>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("hs256_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("max_token_lifetime_secs", &self.max_token_lifetime_secs)
            .field("public_keys", &self.public_keys)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    #[serde(default)]
    pub kid: Option<String>,
    pub algorithm: String,
    #[serde(default)]
    pub pem: Option<String>,
    #[serde(default)]
    pub pem_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    pub auto_start: bool,
    pub grace_secs: u64,
    pub snapshot_chat: usize,
    pub replay_events: usize,
    pub max_participants: usize,
    pub idle_close_secs: u64,
    /// `attendance`: late after this long past the class start.
    pub late_after_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_chat_chars: usize,
    pub chat_per_second: u32,
    pub chat_burst: u32,
    pub frames_per_second: u32,
    pub frames_burst: u32,
    pub abuse_strikes: u32,
    pub abuse_window_secs: u64,
    pub outbound_queue: usize,
    pub hello_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    pub ping_interval_secs: u64,
    pub idle_timeout_secs: u64,
    pub write_timeout_secs: u64,
    /// Send a message longer than this as fragments of this many bytes (0: always one frame).
    pub send_fragment_bytes: usize,
    /// Each connection's read buffer (frames longer than it are still read whole).
    pub read_buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub enabled: bool,
    pub bind: String,
    pub public_ips: Vec<String>,
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    pub enabled: bool,
    pub dir: PathBuf,
    pub min_free_bytes: u64,
    pub retention_days: u64,
    pub queue_frames: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub secret: String,
    pub ttl_secs: u64,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    pub enabled: bool,
    /// The demo course's id; its sessions' rooms are `{course}.{session_key}`.
    pub course: String,
    pub title: String,
    pub link_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
}

impl Config {
    /// The embedded defaults.
    pub fn defaults() -> Config {
        Self::from_layers(None, std::iter::empty()).expect("config/default.toml is valid")
    }

    /// Defaults, then the file at `path` (if any), then `LECTERN_*` variables from the process
    /// environment. `LECTERN_CONFIG` is the file path when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let from_env = std::env::var_os("LECTERN_CONFIG").map(PathBuf::from);
        let path = path.map(Path::to_path_buf).or(from_env);
        let file = match &path {
            Some(p) => Some((
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?,
            )),
            None => None,
        };
        let vars =
            std::env::vars().filter(|(k, _)| k.starts_with("LECTERN_") && k != "LECTERN_CONFIG");
        Self::from_layers(file.as_ref().map(|(p, t)| (p.as_str(), t.as_str())), vars)
    }

    /// Build from an optional file `(name, text)` and `(VAR, value)` overrides.
    pub fn from_layers(
        file: Option<(&str, &str)>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged = parse_table("config/default.toml", DEFAULT_TOML)?;
        let defaults = merged.clone();
        if let Some((name, text)) = file {
            let overlay = parse_table(name, text)?;
            merge(&mut merged, overlay, &defaults, "")?;
        }
        let mut warnings = Vec::new();
        for (var, value) in vars {
            match apply_env(&mut merged, &defaults, &var, &value) {
                // The environment is shared with scripts and other tools: a variable that names
                // no setting is worth a warning (it may be a typo), not a refusal to start.
                Err(ConfigError::UnknownKey(var)) => warnings.push(format!(
                    "ignoring the environment variable {var}: it names no setting (see config/default.toml)"
                )),
                other => other?,
            }
        }
        let mut config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        config.warnings = warnings;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "server.listen = {:?} is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return bad("server.public_url must start with http:// or https://".into());
        }
        if !self.auth.hs256_secret.is_empty() && self.auth.hs256_secret.len() < 32 {
            return bad(
                "auth.hs256_secret must be at least 32 characters (or empty to generate one)"
                    .into(),
            );
        }
        for (i, key) in self.auth.public_keys.iter().enumerate() {
            if !matches!(key.algorithm.as_str(), "RS256" | "EdDSA") {
                return bad(format!(
                    "auth.public_keys[{i}].algorithm must be \"RS256\" or \"EdDSA\", not {:?}",
                    key.algorithm
                ));
            }
            if key.pem.is_some() == key.pem_file.is_some() {
                return bad(format!(
                    "auth.public_keys[{i}] needs exactly one of pem or pem_file"
                ));
            }
        }
        let positive = [
            ("room.max_participants", self.room.max_participants as u64),
            ("room.replay_events", self.room.replay_events as u64),
            ("limits.max_frame_bytes", self.limits.max_frame_bytes as u64),
            ("limits.max_chat_chars", self.limits.max_chat_chars as u64),
            ("limits.chat_per_second", self.limits.chat_per_second.into()),
            ("limits.chat_burst", self.limits.chat_burst.into()),
            (
                "limits.frames_per_second",
                self.limits.frames_per_second.into(),
            ),
            ("limits.frames_burst", self.limits.frames_burst.into()),
            ("limits.abuse_strikes", self.limits.abuse_strikes.into()),
            ("limits.abuse_window_secs", self.limits.abuse_window_secs),
            ("limits.outbound_queue", self.limits.outbound_queue as u64),
            ("limits.hello_timeout_secs", self.limits.hello_timeout_secs),
            (
                "websocket.ping_interval_secs",
                self.websocket.ping_interval_secs,
            ),
            (
                "websocket.idle_timeout_secs",
                self.websocket.idle_timeout_secs,
            ),
            (
                "auth.max_token_lifetime_secs",
                self.auth.max_token_lifetime_secs,
            ),
            (
                "websocket.write_timeout_secs",
                self.websocket.write_timeout_secs,
            ),
            ("recording.queue_frames", self.recording.queue_frames as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return bad(format!("{name} must be greater than 0"));
            }
        }
        let fragment = self.websocket.send_fragment_bytes;
        if fragment != 0 && !(1024..=1 << 20).contains(&fragment) {
            return bad(
                "websocket.send_fragment_bytes must be 0 (off) or from 1024 to 1048576".into(),
            );
        }
        if !(256..=1 << 20).contains(&self.websocket.read_buffer_bytes) {
            return bad("websocket.read_buffer_bytes must be from 256 to 1048576".into());
        }
        if self.websocket.idle_timeout_secs <= self.websocket.ping_interval_secs {
            return bad(
                "websocket.idle_timeout_secs must be greater than ping_interval_secs".into(),
            );
        }
        if self.limits.max_frame_bytes < 1024 {
            return bad("limits.max_frame_bytes must be at least 1024".into());
        }
        let Ok(media_bind) = self.media.bind.parse::<SocketAddr>() else {
            return bad(format!(
                "media.bind = {:?} is not an address like 127.0.0.1:40000",
                self.media.bind
            ));
        };
        if self.media.workers > 256 {
            return bad(format!(
                "media.workers = {} is too many (0 means one per core)",
                self.media.workers
            ));
        }
        if media_bind.port() != 0
            && usize::from(media_bind.port()) + self.media.workers.max(1) - 1 > 65535
        {
            return bad(format!(
                "media.bind port {} + media.workers runs past port 65535",
                media_bind.port()
            ));
        }
        for ip in &self.media.public_ips {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return bad(format!("media.public_ips: {ip:?} is not an IP address"));
            }
        }
        if self.media.enabled
            && media_bind.ip().is_unspecified()
            && self.media.public_ips.is_empty()
        {
            return bad(
                "media.bind listens on every address; set media.public_ips to the address(es) \
                 browsers should send media to"
                    .into(),
            );
        }
        for url in &self.turn.urls {
            if !(url.starts_with("turn:") || url.starts_with("turns:") || url.starts_with("stun:"))
            {
                return bad(format!(
                    "turn.urls: {url:?} must start with turn:, turns: or stun:"
                ));
            }
        }
        if !self.turn.urls.is_empty() && self.turn.secret.len() < 16 {
            return bad("turn.secret must be at least 16 characters when turn.urls is set".into());
        }
        if self.turn.ttl_secs == 0 {
            return bad("turn.ttl_secs must be greater than 0".into());
        }
        if self.demo.enabled
            && let Err(reason) = crate::room_name::check_course_id(&self.demo.course)
        {
            return bad(format!("demo.course {:?}: {reason}", self.demo.course));
        }
        if self.demo.enabled && self.demo.title.trim().is_empty() {
            return bad("demo.title must not be empty when the demo is enabled".into());
        }
        let url = &self.store.url;
        if !url.is_empty()
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            // The URL is not repeated: it may hold a password.
            return bad(
                "store.url must start with sqlite: (a file, or sqlite::memory:) or postgres:// \
                 (e.g. postgres://lectern:PASSWORD@db.example:5432/lectern)"
                    .into(),
            );
        }
        self.cluster
            .validate(&self.store_url())
            .map_err(ConfigError::Invalid)
    }

    /// The media socket's address (checked in validate()).
    pub fn media_bind(&self) -> SocketAddr {
        self.media
            .bind
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The addresses advertised for media (checked in validate()).
    pub fn media_public_ips(&self) -> Vec<std::net::IpAddr> {
        self.media
            .public_ips
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // Checked in validate().
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// Where recordings are kept: `recording.dir`, else `recordings` in the data directory.
    pub fn recordings_dir(&self) -> PathBuf {
        if self.recording.dir.as_os_str().is_empty() {
            self.server.data_dir.join("recordings")
        } else {
            self.recording.dir.clone()
        }
    }

    /// The store URL, defaulting to a SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("lectern.db").display()
            )
        } else {
            self.store.url.clone()
        }
    }
}

fn parse_table(name: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        path: name.to_owned(),
        message: e.message().to_owned(),
    })
}

/// Overlay `src` on `dst`, refusing keys that the defaults do not have.
fn merge(
    dst: &mut toml::Table,
    src: toml::Table,
    defaults: &toml::Table,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (key, value) in src {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(default) = defaults.get(&key) else {
            return Err(ConfigError::UnknownKey(path));
        };
        match (dst.get_mut(&key), value, default) {
            (Some(toml::Value::Table(d)), toml::Value::Table(s), toml::Value::Table(def)) => {
                merge(d, s, def, &path)?;
            }
            (_, value, default) => {
                if kind(&value) != kind(default) {
                    return Err(ConfigError::Type {
                        key: path,
                        expected: kind(default),
                        got: kind(&value),
                    });
                }
                dst.insert(key, value);
            }
        }
    }
    Ok(())
}

/// A TOML value's kind, in words for error messages.
fn kind(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

fn apply_env(
    merged: &mut toml::Table,
    defaults: &toml::Table,
    var: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let rest = var.trim_start_matches("LECTERN_").to_ascii_lowercase();
    let Some((section, key)) = defaults.iter().find_map(|(section, v)| {
        let key = rest.strip_prefix(section.as_str())?.strip_prefix('_')?;
        v.as_table().map(|_| (section.clone(), key.to_owned()))
    }) else {
        return Err(ConfigError::UnknownKey(var.to_owned()));
    };
    let Some(default) = defaults[&section].get(&key) else {
        return Err(ConfigError::UnknownKey(var.to_owned()));
    };
    let type_err = |expected| ConfigError::EnvType {
        var: var.to_owned(),
        expected,
        value: value.to_owned(),
    };
    let parsed = match default {
        toml::Value::String(_) => toml::Value::String(value.to_owned()),
        toml::Value::Boolean(_) => match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(type_err("true or false")),
        },
        toml::Value::Integer(_) => toml::Value::Integer(
            value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| type_err("a non-negative integer"))?,
        ),
        toml::Value::Float(_) => {
            toml::Value::Float(value.trim().parse().map_err(|_| type_err("a number"))?)
        }
        _ => {
            // Arrays and tables (e.g. auth.public_keys) are written as TOML.
            let wrapped = format!("v = {value}");
            let table = wrapped
                .parse::<toml::Table>()
                .map_err(|_| type_err("a TOML value"))?;
            table
                .get("v")
                .cloned()
                .ok_or_else(|| type_err("a TOML value"))?
        }
    };
    if let Some(toml::Value::Table(t)) = merged.get_mut(&section) {
        t.insert(key, parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
