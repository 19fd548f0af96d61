//! Settings from flags, environment and config file, merged and validated into an [`UpPlan`] before anything
//! starts. Every mistake is reported here, by name, rather than as a failure later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use forgecast_connect::github::{ClientConfig, Token};
use forgecast_connect::kafka::KafkaConfig;
use forgecast_connect::replay::ReplayConfig;
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;
use serde::Deserialize;

use crate::cli::{BackendArgs, BusKind, SourceKind, StoreKind, UpArgs};

/// The config file: the same settings as the flags of `forgecast up`, in TOML.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Scripts directory.
    pub scripts: Option<PathBuf>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// HTTP address.
    pub listen: Option<String>,
    /// Event source.
    pub source: Option<SourceKind>,
    /// Replay speed.
    pub replay_speed: Option<f64>,
    /// GitHub API root.
    pub github_api_url: Option<String>,
    /// Share of the GitHub rate limit repository enrichment may use.
    pub enrich_share: Option<f64>,
    /// One pass only.
    pub replay_once: Option<bool>,
    /// Bus backend.
    pub bus: Option<BusKind>,
    /// Store backend.
    pub store: Option<StoreKind>,
    /// Kafka bootstrap servers.
    pub kafka_brokers: Option<String>,
    /// Partitions of a created topic.
    pub kafka_partitions: Option<i32>,
    /// Replication factor of a created topic.
    pub kafka_replication: Option<i32>,
    /// Consumer group of the store writer.
    pub kafka_group: Option<String>,
    /// MongoDB connection string.
    pub mongo_uri: Option<String>,
    /// MongoDB database.
    pub mongo_db: Option<String>,
    /// Script engine limits.
    pub limits: Option<Limits>,
    /// Rescan the scripts at least this often, in milliseconds.
    pub script_poll_ms: Option<u64>,
    /// Host names the HTTP server answers to, besides `localhost` and IP addresses (`*`: any).
    pub allowed_hosts: Option<Vec<String>>,
    /// Bounds on what scripts and clients can make the process hold.
    pub bounds: Option<Bounds>,
}

/// Bounds on what scripts and HTTP clients can make a running pipeline hold, whatever they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bounds {
    /// Distinct topics routing may publish to (the dead-letter topic not counted); an event routed to a new
    /// topic past this is dead-lettered. On Kafka each topic is created, so this also bounds the topics made.
    pub max_topics: usize,
    /// Series per metric label that scripts or clients choose (topic, script, query); past it they count as `other`.
    pub max_metric_series: usize,
    /// `forgecast tap` clients connected at once; more get 503.
    pub max_tap_clients: usize,
    /// Names in one `keys` parameter of `/api/trends`.
    pub max_trend_keys: usize,
    /// Bytes of one JSON answer of the costly routes (`/api/trends`).
    pub max_response_bytes: usize,
    /// Costly requests (`/api/trends`) computed at once; more wait up to ten seconds, then get 503.
    pub max_heavy_requests: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_topics: 64,
            max_metric_series: 256,
            max_tap_clients: 8,
            max_trend_keys: 100,
            max_response_bytes: 2 << 20,
            max_heavy_requests: 4,
        }
    }
}

/// Who may reach what over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpPlan {
    /// `FORGECAST_ADMIN_TOKEN`: without it, admin routes (`/api/tap`) answer loopback clients only.
    pub admin_token: Option<String>,
    /// Host names answered besides `localhost` and IP addresses; `*` answers any (no DNS-rebinding check).
    pub allowed_hosts: Vec<String>,
}

/// A setting that cannot work, named.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The config file is not valid.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        reason: String,
    },
    /// One setting has a value that cannot work.
    #[error("setting `{setting}`: {reason}")]
    Invalid {
        /// The setting, as spelled in the config file.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Where events come from, ready to start.
#[derive(Debug, Clone)]
pub enum SourcePlan {
    /// Replay of the bundled samples.
    Replay(ReplayConfig),
    /// No source.
    None,
    /// GitHub's REST API.
    Github(ClientConfig),
    /// Events fed by the caller through [`crate::pipeline::Pipeline::take_feed`] (backfill).
    Feed,
}

/// Which bus, ready to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusPlan {
    /// In-process queues.
    Embedded,
    /// Kafka, and the store writer's consumer group.
    Kafka {
        /// Brokers and topic settings.
        config: KafkaConfig,
        /// Consumer group of the store writer.
        group: String,
    },
}

/// Which store, ready to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePlan {
    /// SQLite under the data directory.
    Embedded,
    /// MongoDB.
    Mongo {
        /// Connection string.
        uri: String,
        /// Database.
        database: String,
    },
}

/// A validated `forgecast up`.
#[derive(Debug, Clone)]
pub struct UpPlan {
    /// Scripts directory (exists).
    pub scripts: PathBuf,
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
    /// HTTP address.
    pub listen: SocketAddr,
    /// Event source.
    pub source: SourcePlan,
    /// Script engine limits.
    pub limits: Limits,
    /// Script watching.
    pub watch: WatchConfig,
    /// Share of the GitHub rate limit repository enrichment may use, 0 to 1.
    pub enrich_share: f64,
    /// The bus.
    pub bus: BusPlan,
    /// The store.
    pub store: StorePlan,
    /// Bounds on what scripts and clients can make the process hold.
    pub bounds: Bounds,
    /// Who may reach what over HTTP.
    pub http: HttpPlan,
}

impl UpPlan {
    /// Where the embedded store lives.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("forgecast.sqlite")
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The bus and store from flags (with their environment variables) over the config file over the defaults.
pub fn backends(args: BackendArgs, file: &FileConfig) -> Result<(BusPlan, StorePlan), ConfigError> {
    let bus = match args.bus.or(file.bus).unwrap_or(BusKind::Embedded) {
        BusKind::Embedded => BusPlan::Embedded,
        BusKind::Kafka => {
            let brokers = args
                .kafka_brokers
                .or(file.kafka_brokers.clone())
                .unwrap_or_else(|| "127.0.0.1:9092".into());
            if brokers.trim().is_empty() || brokers.contains("://") {
                return Err(invalid(
                    "kafka_brokers",
                    format!("{brokers:?} is not a list of host:port"),
                ));
            }
            let mut config = KafkaConfig::local(brokers);
            config.partitions = args
                .kafka_partitions
                .or(file.kafka_partitions)
                .unwrap_or(config.partitions);
            if config.partitions < 1 {
                return Err(invalid("kafka_partitions", "must be at least 1"));
            }
            config.replication = args
                .kafka_replication
                .or(file.kafka_replication)
                .unwrap_or(config.replication);
            if config.replication < 1 {
                return Err(invalid("kafka_replication", "must be at least 1"));
            }
            let group = args
                .kafka_group
                .or(file.kafka_group.clone())
                .unwrap_or_else(|| "forgecast-store-writer".into());
            BusPlan::Kafka { config, group }
        }
    };
    let store = match args.store.or(file.store).unwrap_or(StoreKind::Embedded) {
        StoreKind::Embedded => StorePlan::Embedded,
        StoreKind::Mongo => {
            let uri = args
                .mongo_uri
                .or(file.mongo_uri.clone())
                .unwrap_or_else(|| "mongodb://127.0.0.1:27017/?replicaSet=rs0".into());
            if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
                return Err(invalid(
                    "mongo_uri",
                    "must start with mongodb:// or mongodb+srv://",
                ));
            }
            let database = args
                .mongo_db
                .or(file.mongo_db.clone())
                .unwrap_or_else(|| "forgecast".into());
            if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
                return Err(invalid(
                    "mongo_db",
                    format!("{database:?} is not a MongoDB database name"),
                ));
            }
            StorePlan::Mongo { uri, database }
        }
    };
    Ok((bus, store))
}

/// Merges flags (with their environment variables) over the config file over the defaults, and validates.
pub fn plan(args: UpArgs) -> Result<UpPlan, ConfigError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let (bus, store) = backends(args.backend, &file)?;
    let scripts = args
        .scripts
        .or(file.scripts)
        .unwrap_or_else(|| PathBuf::from("scripts"));
    if !scripts.is_dir() {
        return Err(invalid(
            "scripts",
            format!("{} is not a directory", scripts.display()),
        ));
    }
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(".forgecast"));
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        invalid(
            "data_dir",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let listen = match (args.listen, file.listen) {
        (Some(addr), _) => addr,
        (None, Some(text)) => text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{text:?} is not an address like 127.0.0.1:8080"),
            )
        })?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let speed = args.replay_speed.or(file.replay_speed).unwrap_or(1.0);
    if !speed.is_finite() || speed < 0.0 {
        return Err(invalid(
            "replay_speed",
            format!("{speed} is not a speed; use 0 (as fast as possible) or more"),
        ));
    }
    let once = args.replay_once || file.replay_once.unwrap_or(false);
    let source = match args.source.or(file.source).unwrap_or(SourceKind::Replay) {
        SourceKind::Replay => SourcePlan::Replay(ReplayConfig {
            speed,
            once,
            ..ReplayConfig::default()
        }),
        SourceKind::Github => {
            let base_url = args
                .github_api_url
                .or(file.github_api_url)
                .unwrap_or_else(|| "https://api.github.com".into());
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(invalid(
                    "github_api_url",
                    format!("{base_url:?} is not an http(s) URL"),
                ));
            }
            let token = std::env::var("GITHUB_TOKEN").ok().and_then(Token::new);
            SourcePlan::Github(ClientConfig {
                base_url,
                token,
                ..ClientConfig::default()
            })
        }
        SourceKind::None => SourcePlan::None,
    };
    let enrich_share = args.enrich_share.or(file.enrich_share).unwrap_or(0.2);
    if !(0.0..=1.0).contains(&enrich_share) {
        return Err(invalid(
            "enrich_share",
            format!("{enrich_share} is not a share between 0 and 1"),
        ));
    }
    let limits = file.limits.unwrap_or_default();
    if limits.deadline_ms == 0 {
        return Err(invalid("limits.deadline_ms", "must be at least 1"));
    }
    let mut watch = WatchConfig::default();
    if let Some(ms) = file.script_poll_ms {
        if ms < 10 {
            return Err(invalid("script_poll_ms", "must be at least 10"));
        }
        watch.poll = Duration::from_millis(ms);
    }
    let bounds = file.bounds.unwrap_or_default();
    for (setting, value) in [
        ("bounds.max_topics", bounds.max_topics),
        ("bounds.max_metric_series", bounds.max_metric_series),
        ("bounds.max_tap_clients", bounds.max_tap_clients),
        ("bounds.max_trend_keys", bounds.max_trend_keys),
        ("bounds.max_response_bytes", bounds.max_response_bytes),
        ("bounds.max_heavy_requests", bounds.max_heavy_requests),
    ] {
        if value == 0 {
            return Err(invalid(setting, "must be at least 1"));
        }
    }
    let allowed_hosts: Vec<String> = match args.allowed_hosts {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => file.allowed_hosts.unwrap_or_default(),
    }
    .into_iter()
    .map(|h| h.trim().to_ascii_lowercase())
    .filter(|h| !h.is_empty())
    .collect();
    if let Some(bad) = allowed_hosts.iter().find(|h| {
        h.as_str() != "*"
            && !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    }) {
        return Err(invalid(
            "allowed_hosts",
            format!("{bad:?} is not a host name (no port, no scheme)"),
        ));
    }
    let admin_token = std::env::var("FORGECAST_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(invalid(
            "FORGECAST_ADMIN_TOKEN",
            "is shorter than 16 characters; use a long random value",
        ));
    }
    Ok(UpPlan {
        scripts,
        data_dir,
        listen,
        source,
        limits,
        watch,
        enrich_share,
        bus,
        store,
        bounds,
        http: HttpPlan {
            admin_token,
            allowed_hosts,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_in(dir: &Path) -> UpArgs {
        UpArgs {
            scripts: Some(dir.to_path_buf()),
            data_dir: Some(dir.join("data")),
            ..UpArgs::default()
        }
    }

    #[test]
    fn defaults_are_the_embedded_replay_on_localhost() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(args_in(dir.path())).unwrap();
        assert_eq!(plan.listen.to_string(), "127.0.0.1:8080");
        assert!(matches!(plan.source, SourcePlan::Replay(c) if c == ReplayConfig::default()));
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forgecast.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nreplay_speed = 5.0\n").unwrap();
        let mut args = args_in(dir.path());
        args.config = Some(file);
        args.replay_speed = Some(2.0);
        let plan = plan(args).unwrap();
        assert_eq!(plan.listen.port(), 9000);
        assert!(matches!(
            plan.source,
            SourcePlan::Replay(ReplayConfig { speed: 2.0, .. })
        ));
    }

    #[test]
    fn backends_come_from_flags_over_the_file_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forgecast.toml");
        std::fs::write(
            &file,
            "bus = \"kafka\"\nkafka_brokers = \"k1:9092,k2:9092\"\nkafka_partitions = 12\nstore = \"mongo\"\n",
        )
        .unwrap();
        let mut args = args_in(dir.path());
        args.config = Some(file.clone());
        args.backend.mongo_db = Some("analytics".into());
        let planned = plan(args).unwrap();
        match &planned.bus {
            BusPlan::Kafka { config, group } => {
                assert_eq!(config.brokers, "k1:9092,k2:9092");
                assert_eq!(config.partitions, 12);
                assert_eq!(group, "forgecast-store-writer");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            planned.store,
            StorePlan::Mongo {
                uri: "mongodb://127.0.0.1:27017/?replicaSet=rs0".into(),
                database: "analytics".into()
            }
        );

        for (flag, setting) in [
            ("partitions", "kafka_partitions"),
            ("uri", "mongo_uri"),
            ("db", "mongo_db"),
        ] {
            let mut args = args_in(dir.path());
            args.config = Some(file.clone());
            match flag {
                "partitions" => args.backend.kafka_partitions = Some(0),
                "uri" => args.backend.mongo_uri = Some("http://db:27017".into()),
                _ => args.backend.mongo_db = Some("a.b".into()),
            }
            let err = plan(args).unwrap_err().to_string();
            assert!(err.contains(setting), "{err}");
        }
    }

    #[test]
    fn unknown_settings_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forgecast.toml");
        std::fs::write(&file, "replay_sped = 5.0\n").unwrap();
        let mut args = args_in(dir.path());
        args.config = Some(file);
        let err = plan(args).unwrap_err().to_string();
        assert!(err.contains("replay_sped"), "{err}");

        let mut args = args_in(dir.path());
        args.replay_speed = Some(-1.0);
        assert!(plan(args).unwrap_err().to_string().contains("replay_speed"));

        let mut args = args_in(dir.path());
        args.scripts = Some(dir.path().join("nowhere"));
        assert!(
            plan(args)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
    }
}
