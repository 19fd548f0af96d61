//! Settings from flags, environment and config file, merged and validated into a plan before anything starts:
//! one path for every command ([`up`], [`backfill`], [`aggregate`], [`archive`]), the argument groups they share
//! turned into plans by the same functions ([`storage`], [`bus`]), every default written once ([`defaults`]).
//! Every mistake is reported here, by name, rather than as a failure later. Backends are opened from these plans
//! only ([`crate::backends`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use forgecast_gharchive::replay::ReplayConfig;
use forgecast_github::{ClientConfig, Token};
use forgecast_kafka::KafkaConfig;
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;
use serde::Deserialize;

use forgecast_gharchive::{Hour, HourSource, hours};

use crate::cli::{
    AggregateArgs, ArchiveArgs, BackfillArgs, BrokerArgs, BusArgs, BusKind, ConfigArgs, Engine,
    EvalArgs, ModelName, ModelsAction, ModelsArgs, ModelsVerb, ScriptArgs, SourceKind, StoreArgs,
    StoreKind, TapArgs, TrainArgs, UpArgs, VersionArgs,
};

/// The config file: the settings of the flags, in TOML (each command takes those it has).
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
    /// Whether the model stage scores events (default true; a first start then trains the default champion).
    pub models: Option<bool>,
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
    /// Flags that do not go together, said in a sentence that names them.
    #[error("{0}")]
    Usage(String),
    /// A flag of one command (not a config-file setting) has a value that cannot work.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag, as typed (`--from`).
        flag: &'static str,
        /// What is wrong.
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

/// Every default of every setting, written once.
pub mod defaults {
    /// Directory of the Rhai scripts.
    pub const SCRIPTS: &str = "scripts";
    /// Directory for the store and other state.
    pub const DATA_DIR: &str = ".forgecast";
    /// The embedded store's file in the data directory.
    pub const STORE_FILE: &str = "forgecast.sqlite";
    /// Address of the HTTP server.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// Kafka bootstrap servers.
    pub const KAFKA_BROKERS: &str = "127.0.0.1:9092";
    /// Consumer group of the store writers.
    pub const KAFKA_GROUP: &str = "forgecast-store-writer";
    /// Consumer group of `forgecast archive`.
    pub const ARCHIVE_GROUP: &str = "forgecast-lake";
    /// MongoDB connection string.
    pub const MONGO_URI: &str = "mongodb://127.0.0.1:27017/?replicaSet=rs0";
    /// MongoDB database.
    pub const MONGO_DB: &str = "forgecast";
    /// GitHub's API root.
    pub const GITHUB_API_URL: &str = "https://api.github.com";
    /// Share of the GitHub rate limit repository enrichment may use.
    pub const ENRICH_SHARE: f64 = 0.2;
}

/// Where state lives and which store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePlan {
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
    /// The store.
    pub store: StorePlan,
}

impl StoragePlan {
    /// Where the embedded store's file is (and its lake beside it).
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(defaults::STORE_FILE)
    }
}

/// A validated pipeline: what `up` runs, and `backfill` with a feed as its source.
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// Scripts directory (exists).
    pub scripts: PathBuf,
    /// Data directory and store.
    pub storage: StoragePlan,
    /// The bus.
    pub bus: BusPlan,
    /// Event source.
    pub source: SourcePlan,
    /// Script engine limits.
    pub limits: Limits,
    /// Script watching.
    pub watch: WatchConfig,
    /// Share of the GitHub rate limit repository enrichment may use, 0 to 1.
    pub enrich_share: f64,
    /// Bounds on what scripts and clients can make the process hold.
    pub bounds: Bounds,
    /// Whether the model stage scores events (and a first start trains the default sentiment champion).
    pub models: bool,
}

/// A validated `forgecast up`.
#[derive(Debug, Clone)]
pub struct UpPlan {
    /// The pipeline.
    pub pipeline: PipelinePlan,
    /// HTTP address.
    pub listen: SocketAddr,
    /// Who may reach what over HTTP.
    pub http: HttpPlan,
}

/// A validated `forgecast backfill`.
#[derive(Debug, Clone)]
pub struct BackfillPlan {
    /// The pipeline the hours are fed into.
    pub pipeline: PipelinePlan,
    /// The hours, in order.
    pub hours: Vec<Hour>,
    /// Where their files come from.
    pub source: HourSource,
    /// Longest line read from an hour file.
    pub max_line_bytes: usize,
    /// Hours without a file are expected (a converted history), not missing.
    pub sparse: bool,
}

/// How the Spark job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkPlan {
    /// Python with PySpark.
    pub python: String,
    /// `local[N]` or a cluster's URL.
    pub master: String,
    /// The job's file.
    pub job: PathBuf,
}

/// A validated `forgecast aggregate`.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    /// The store the counts go to (and whose lake is read unless `lake` is given).
    pub storage: StoragePlan,
    /// The lake (exists).
    pub lake: PathBuf,
    /// Which engine computes the history.
    pub engine: Engine,
    /// Where the counts are written as JSON lines.
    pub out: PathBuf,
    /// The Spark job, for `Engine::Spark`.
    pub spark: SparkPlan,
    /// Whether the counts are loaded into the store.
    pub import: bool,
    /// Run again on this period until stopped.
    pub every: Option<Duration>,
}

impl AggregatePlan {
    /// Where a run keeps its files: the repository metadata for the Spark job, the counts by default.
    pub fn history_dir(&self) -> PathBuf {
        self.storage.data_dir.join("history")
    }
}

/// A validated `forgecast archive`.
#[derive(Debug, Clone)]
pub struct ArchivePlan {
    /// The lake.
    pub lake: PathBuf,
    /// The brokers.
    pub kafka: KafkaConfig,
    /// The archive's consumer group.
    pub group: String,
    /// Stop once no event has come for this long.
    pub idle_exit: Option<Duration>,
    /// Compress an hour file once its hour has been over for this long.
    pub compress_after: Duration,
}

/// A validated `forgecast tap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapPlan {
    /// Base URL of the running instance, without a trailing `/`.
    pub url: String,
    /// Topic, or a prefix ending in `*`.
    pub topic: String,
    /// Stop after this many events.
    pub limit: Option<u64>,
    /// Print whole events.
    pub raw: bool,
    /// `FORGECAST_ADMIN_TOKEN`, sent to the instance.
    pub admin_token: Option<String>,
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

/// The config file named by `args`, or an empty one.
fn file(args: &ConfigArgs) -> Result<FileConfig, ConfigError> {
    match &args.config {
        Some(path) => read_file(path),
        None => Ok(FileConfig::default()),
    }
}

fn bad_flag(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        reason: reason.into(),
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The data directory (created) and the store, from flags (with their variables) over the file over the defaults.
pub fn storage(args: StoreArgs, file: &FileConfig) -> Result<StoragePlan, ConfigError> {
    let data_dir = args
        .data_dir
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR));
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        invalid(
            "data_dir",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let store = match args.store.or(file.store).unwrap_or(StoreKind::Embedded) {
        StoreKind::Embedded => StorePlan::Embedded,
        StoreKind::Mongo => {
            let uri = args
                .mongo_uri
                .or(file.mongo_uri.clone())
                .unwrap_or_else(|| defaults::MONGO_URI.into());
            if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
                return Err(invalid(
                    "mongo_uri",
                    "must start with mongodb:// or mongodb+srv://",
                ));
            }
            let database = args
                .mongo_db
                .or(file.mongo_db.clone())
                .unwrap_or_else(|| defaults::MONGO_DB.into());
            if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
                return Err(invalid(
                    "mongo_db",
                    format!("{database:?} is not a MongoDB database name"),
                ));
            }
            StorePlan::Mongo { uri, database }
        }
    };
    Ok(StoragePlan { data_dir, store })
}

/// The Kafka brokers, checked.
fn brokers(args: BrokerArgs, file: &FileConfig) -> Result<String, ConfigError> {
    let brokers = args
        .kafka_brokers
        .or(file.kafka_brokers.clone())
        .unwrap_or_else(|| defaults::KAFKA_BROKERS.into());
    if brokers.trim().is_empty() || brokers.contains("://") {
        return Err(invalid(
            "kafka_brokers",
            format!("{brokers:?} is not a list of host:port"),
        ));
    }
    Ok(brokers)
}

/// The bus, from flags (with their variables) over the file over the defaults.
pub fn bus(args: BusArgs, file: &FileConfig) -> Result<BusPlan, ConfigError> {
    Ok(match args.bus.or(file.bus).unwrap_or(BusKind::Embedded) {
        BusKind::Embedded => BusPlan::Embedded,
        BusKind::Kafka => {
            let mut config = KafkaConfig::local(brokers(args.brokers, file)?);
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
                .unwrap_or_else(|| defaults::KAFKA_GROUP.into());
            BusPlan::Kafka { config, group }
        }
    })
}

/// The scripts directory, which must exist.
fn scripts(args: ScriptArgs, file: &FileConfig) -> Result<PathBuf, ConfigError> {
    let scripts = args
        .scripts
        .or(file.scripts.clone())
        .unwrap_or_else(|| PathBuf::from(defaults::SCRIPTS));
    if !scripts.is_dir() {
        return Err(invalid(
            "scripts",
            format!("{} is not a directory", scripts.display()),
        ));
    }
    Ok(scripts)
}

/// The script engine's limits and watching, from the file.
fn engine(file: &FileConfig) -> Result<(Limits, WatchConfig), ConfigError> {
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
    Ok((limits, watch))
}

/// The bounds, from the file, each at least 1.
fn bounds(file: &FileConfig) -> Result<Bounds, ConfigError> {
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
    Ok(bounds)
}

/// `forgecast up`: flags (with their environment variables) over the config file over the defaults, validated.
pub fn up(args: UpArgs) -> Result<UpPlan, ConfigError> {
    let file = file(&args.config)?;
    let storage = storage(args.store, &file)?;
    let bus = bus(args.bus, &file)?;
    let scripts = scripts(args.scripts, &file)?;
    let listen = match (args.listen, &file.listen) {
        (Some(addr), _) => addr,
        (None, Some(text)) => text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{text:?} is not an address like 127.0.0.1:8080"),
            )
        })?,
        (None, None) => defaults::LISTEN
            .parse()
            .expect("the default address parses"),
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
                .github
                .github_api_url
                .or(file.github_api_url.clone())
                .unwrap_or_else(|| defaults::GITHUB_API_URL.into());
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
    let enrich_share = args
        .github
        .enrich_share
        .or(file.enrich_share)
        .unwrap_or(defaults::ENRICH_SHARE);
    if !(0.0..=1.0).contains(&enrich_share) {
        return Err(invalid(
            "enrich_share",
            format!("{enrich_share} is not a share between 0 and 1"),
        ));
    }
    let (limits, watch) = engine(&file)?;
    let bounds = bounds(&file)?;
    let allowed_hosts: Vec<String> = match args.allowed_hosts {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => file.allowed_hosts.clone().unwrap_or_default(),
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
    let admin_token = admin_token();
    if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(invalid(
            "FORGECAST_ADMIN_TOKEN",
            "is shorter than 16 characters; use a long random value",
        ));
    }
    Ok(UpPlan {
        pipeline: PipelinePlan {
            scripts,
            storage,
            bus,
            source,
            limits,
            watch,
            enrich_share,
            bounds,
            models: args.models.models.or(file.models).unwrap_or(true),
        },
        listen,
        http: HttpPlan {
            admin_token,
            allowed_hosts,
        },
    })
}

/// `forgecast backfill`, validated: the hours, where their files come from, and the pipeline they are fed into
/// (the scripts, store and bus as `up` takes them; no source of its own, no enrichment).
pub fn backfill(args: BackfillArgs) -> Result<BackfillPlan, ConfigError> {
    let file = file(&args.config)?;
    let from = Hour::parse(&args.from).map_err(|e| bad_flag("--from", e))?;
    let to = Hour::parse(&args.to).map_err(|e| bad_flag("--to", e))?;
    let hours = hours(from, to, args.every_nth_hour).map_err(ConfigError::Usage)?;
    let scripts = scripts(args.scripts, &file)?;
    let source = match args.source_dir {
        Some(dir) if !dir.is_dir() => {
            return Err(bad_flag(
                "--source-dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        Some(dir) => HourSource::Dir(dir),
        None => HourSource::Url(args.source_url),
    };
    let storage = storage(args.store, &file)?;
    let bus = bus(args.bus, &file)?;
    let (limits, watch) = engine(&file)?;
    Ok(BackfillPlan {
        pipeline: PipelinePlan {
            scripts,
            storage,
            bus,
            source: SourcePlan::Feed,
            limits,
            watch,
            enrich_share: 0.0,
            bounds: bounds(&file)?,
            models: args.models.models.or(file.models).unwrap_or(true),
        },
        hours,
        source,
        max_line_bytes: args.max_line_bytes,
        sparse: args.sparse,
    })
}

/// `forgecast aggregate`, validated: the lake (the embedded store's own unless given), the engine, where the
/// counts go.
pub fn aggregate(args: AggregateArgs) -> Result<AggregatePlan, ConfigError> {
    let file = file(&args.config)?;
    let storage = storage(args.store, &file)?;
    let lake = match (args.lake, &storage.store) {
        (Some(lake), _) => lake,
        (None, StorePlan::Embedded) => {
            forgecast_embedded::SqliteStore::lake_path(&storage.sqlite_path())
        }
        (None, StorePlan::Mongo { .. }) => {
            return Err(ConfigError::Usage(
                "--lake is needed with --store mongo: only the embedded store keeps a lake".into(),
            ));
        }
    };
    if !lake.is_dir() {
        return Err(bad_flag(
            "--lake",
            format!("{} is not a directory", lake.display()),
        ));
    }
    let name = match args.engine {
        Engine::Embedded => "embedded",
        Engine::Spark => "spark",
    };
    let out = args.out.unwrap_or_else(|| {
        storage
            .data_dir
            .join("history")
            .join(format!("{name}.jsonl"))
    });
    Ok(AggregatePlan {
        storage,
        lake,
        engine: args.engine,
        out,
        spark: SparkPlan {
            python: args.spark_python,
            master: args.spark_master,
            job: args.spark_job,
        },
        import: !args.no_import,
        every: args.every,
    })
}

/// `forgecast tap`, validated: the topic pattern uses a topic's characters (and `*`), the admin token is taken
/// from the environment as the server takes it.
pub fn tap(args: TapArgs) -> Result<TapPlan, ConfigError> {
    if let Some(bad) = args
        .topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*')))
    {
        return Err(bad_flag(
            "TOPIC",
            format!(
                "topic pattern {:?} contains {bad:?}; topics use letters, digits, '.', '_' and '-'",
                args.topic
            ),
        ));
    }
    Ok(TapPlan {
        url: args.url.trim_end_matches('/').to_string(),
        topic: args.topic,
        limit: args.limit,
        raw: args.raw,
        admin_token: admin_token(),
    })
}

/// `FORGECAST_ADMIN_TOKEN`, if set to something.
fn admin_token() -> Option<String> {
    std::env::var("FORGECAST_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A validated `forgecast train`, `eval` or `predict`: which model, which data and version, which store.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    /// The model.
    pub model: ModelName,
    /// Labelled data (train, eval).
    pub data: Option<PathBuf>,
    /// A version, or the champion.
    pub version: Option<u32>,
    /// Make the trained version the champion (train).
    pub promote: bool,
    /// The store that keeps the registry.
    pub storage: StoragePlan,
}

/// Where the sentiment model's bundled training data is.
pub const SENTIMENT_DATA: &str = "data/se-sentiment/github.csv";

fn model_data(data: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    let data = data.unwrap_or_else(|| PathBuf::from(SENTIMENT_DATA));
    if !data.is_file() {
        return Err(bad_flag(
            "--data",
            format!("{} is not a file", data.display()),
        ));
    }
    Ok(data)
}

/// `forgecast train`, validated.
pub fn train(args: TrainArgs) -> Result<ModelPlan, ConfigError> {
    let file = file(&args.config)?;
    Ok(ModelPlan {
        model: args.model,
        data: Some(model_data(args.data)?),
        version: None,
        promote: args.promote,
        storage: storage(args.store, &file)?,
    })
}

/// The version a command uses, and the data it reads.
fn version(args: VersionArgs, data: Option<PathBuf>) -> Result<ModelPlan, ConfigError> {
    let file = file(&args.config)?;
    Ok(ModelPlan {
        model: args.model,
        data,
        version: args.model_version,
        promote: false,
        storage: storage(args.store, &file)?,
    })
}

/// `forgecast eval`, validated.
pub fn eval(args: EvalArgs) -> Result<ModelPlan, ConfigError> {
    let data = model_data(Some(args.data))?;
    version(args.version, Some(data))
}

/// `forgecast predict`, validated.
pub fn predict(args: VersionArgs) -> Result<ModelPlan, ConfigError> {
    version(args, None)
}

/// `forgecast models`, validated: the action and the store.
pub fn models(args: ModelsArgs) -> Result<(ModelsAction, StoragePlan), ConfigError> {
    let file = file(&args.config)?;
    let promote = args.promote;
    let action = match (args.verb, args.name, args.number, args.file) {
        (ModelsVerb::List, None, None, None) if !promote => ModelsAction::List,
        (ModelsVerb::Show, Some(name), None, None) if !promote => ModelsAction::Show { name },
        (ModelsVerb::Promote, Some(name), Some(version), None) if !promote => {
            ModelsAction::Promote { name, version }
        }
        (ModelsVerb::Export, Some(name), Some(version), Some(file)) if !promote => {
            ModelsAction::Export {
                name,
                version,
                file,
            }
        }
        (ModelsVerb::Import, None, None, Some(file)) => {
            if !file.is_file() {
                return Err(bad_flag(
                    "--file",
                    format!("{} is not a file", file.display()),
                ));
            }
            ModelsAction::Import { file, promote }
        }
        (verb, ..) => {
            let usage = match verb {
                ModelsVerb::List => "forgecast models list",
                ModelsVerb::Show => "forgecast models show NAME",
                ModelsVerb::Promote => "forgecast models promote NAME VERSION",
                ModelsVerb::Export => "forgecast models export NAME VERSION --file FILE",
                ModelsVerb::Import => "forgecast models import --file FILE [--promote]",
            };
            return Err(ConfigError::Usage(format!("usage: {usage}")));
        }
    };
    Ok((action, storage(args.store, &file)?))
}

/// What `forgecast forecast` does, checked.
#[derive(Debug, Clone)]
pub enum ForecastAction {
    /// Every method over the last `origins` origins.
    Backtest {
        /// Forecast origins.
        origins: usize,
    },
    /// Forecasts, as tables or JSON.
    Trends {
        /// JSON instead of tables.
        json: bool,
    },
    /// Repository stars ahead.
    Repos {
        /// One repository, or the fastest growing.
        repo: Option<String>,
        /// Repositories listed without `repo`.
        limit: usize,
        /// JSON instead of tables.
        json: bool,
    },
}

/// A validated `forgecast forecast`.
#[derive(Debug, Clone)]
pub struct ForecastPlan {
    /// What to do.
    pub action: ForecastAction,
    /// The series.
    pub query: crate::forecasts::ShareQuery,
    /// Periods ahead.
    pub horizon: usize,
    /// The store: the trends' counters, and the star counts a repository's forecast reads beside the bundled
    /// snapshots.
    pub storage: StoragePlan,
}

/// `forgecast forecast`, validated.
pub fn forecast(args: crate::cli::ForecastArgs) -> Result<ForecastPlan, ConfigError> {
    use crate::cli::ForecastWhat;
    use crate::forecasts::{MAX_HORIZON, MAX_SERIES, ShareQuery};
    let repos = |a: crate::cli::RepoForecastArgs| -> Result<ForecastPlan, ConfigError> {
        use crate::repo_growth::MAX_HALF_YEARS;
        if !(1..=MAX_HALF_YEARS).contains(&a.horizon) {
            return Err(bad_flag(
                "--horizon",
                format!("use 1 to {MAX_HALF_YEARS} half-years"),
            ));
        }
        if !(1..=MAX_SERIES).contains(&a.limit) {
            return Err(bad_flag("--limit", format!("use 1 to {MAX_SERIES}")));
        }
        Ok(ForecastPlan {
            action: ForecastAction::Repos {
                repo: a.repo,
                limit: a.limit,
                json: a.json,
            },
            query: ShareQuery::default(),
            horizon: a.horizon,
            storage: storage(a.store, &file(&a.config)?)?,
        })
    };
    let (series, action, top, keys, as_of) = match args.what {
        ForecastWhat::Repos(a) => return repos(a),
        ForecastWhat::Backtest(a) => {
            if a.origins == 0 {
                return Err(bad_flag("--origins", "must be at least 1"));
            }
            (
                a.series,
                ForecastAction::Backtest { origins: a.origins },
                a.top,
                None,
                None,
            )
        }
        ForecastWhat::Trends(a) => (
            a.series,
            ForecastAction::Trends { json: a.json },
            a.top,
            a.keys,
            a.as_of,
        ),
    };
    if !(1..=MAX_HORIZON).contains(&series.horizon) {
        return Err(bad_flag("--horizon", format!("use 1 to {MAX_HORIZON}")));
    }
    if !(1..=MAX_SERIES).contains(&top) {
        return Err(bad_flag("--top", format!("use 1 to {MAX_SERIES}")));
    }
    let file = file(&series.config)?;
    Ok(ForecastPlan {
        action,
        query: ShareQuery {
            dimension: Some(series.dimension),
            metric: series.metric,
            granularity: Some(series.granularity),
            keys,
            as_of,
            top,
        },
        horizon: series.horizon,
        storage: storage(series.store, &file)?,
    })
}

/// `forgecast archive`, validated.
pub fn archive(args: ArchiveArgs) -> Result<ArchivePlan, ConfigError> {
    let file = file(&args.config)?;
    Ok(ArchivePlan {
        lake: args.lake,
        kafka: KafkaConfig::local(brokers(args.brokers, &file)?),
        group: args.group.unwrap_or_else(|| defaults::ARCHIVE_GROUP.into()),
        idle_exit: args.idle_exit.map(Duration::from_secs),
        compress_after: args.compress_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_in(dir: &Path) -> UpArgs {
        UpArgs {
            scripts: ScriptArgs {
                scripts: Some(dir.to_path_buf()),
            },
            store: StoreArgs {
                data_dir: Some(dir.join("data")),
                ..StoreArgs::default()
            },
            ..UpArgs::default()
        }
    }

    #[test]
    fn defaults_are_the_embedded_replay_on_localhost() {
        let dir = tempfile::tempdir().unwrap();
        let plan = up(args_in(dir.path())).unwrap();
        assert_eq!(plan.listen.to_string(), "127.0.0.1:8080");
        assert!(
            matches!(plan.pipeline.source, SourcePlan::Replay(c) if c == ReplayConfig::default())
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forgecast.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nreplay_speed = 5.0\n").unwrap();
        let mut args = args_in(dir.path());
        args.config.config = Some(file);
        args.replay_speed = Some(2.0);
        let plan = up(args).unwrap();
        assert_eq!(plan.listen.port(), 9000);
        assert!(matches!(
            plan.pipeline.source,
            SourcePlan::Replay(ReplayConfig { speed: 2.0, .. })
        ));
    }

    #[test]
    fn the_model_stages_follow_the_flag_over_the_file() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forgecast.toml");
        std::fs::write(&file, "models = false\n").unwrap();
        let with_file = |models: Option<bool>| {
            let mut args = args_in(dir.path());
            args.config.config = Some(file.clone());
            args.models.models = models;
            up(args).unwrap().pipeline.models
        };
        assert!(!with_file(None));
        assert!(with_file(Some(true)));
        assert!(up(args_in(dir.path())).unwrap().pipeline.models);
        for (given, models) in [("off", false), ("on", true), ("false", false)] {
            let cli = crate::cli::Cli::try_parse_from([
                "forgecast",
                "backfill",
                "--from",
                "2024-01-01T00",
                "--to",
                "2024-01-01T00",
                "--models",
                given,
            ])
            .unwrap();
            let crate::cli::Command::Backfill(args) = cli.command else {
                panic!("not a backfill");
            };
            assert_eq!(args.models.models, Some(models), "{given}");
        }
        assert!(crate::cli::Cli::try_parse_from(["forgecast", "up", "--models", "maybe"]).is_err());
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
        args.config.config = Some(file.clone());
        args.store.mongo_db = Some("analytics".into());
        let planned = up(args).unwrap();
        match &planned.pipeline.bus {
            BusPlan::Kafka { config, group } => {
                assert_eq!(config.brokers, "k1:9092,k2:9092");
                assert_eq!(config.partitions, 12);
                assert_eq!(group, "forgecast-store-writer");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            planned.pipeline.storage.store,
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
            args.config.config = Some(file.clone());
            match flag {
                "partitions" => args.bus.kafka_partitions = Some(0),
                "uri" => args.store.mongo_uri = Some("http://db:27017".into()),
                _ => args.store.mongo_db = Some("a.b".into()),
            }
            let err = up(args).unwrap_err().to_string();
            assert!(err.contains(setting), "{err}");
        }
    }

    #[test]
    fn unknown_settings_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forgecast.toml");
        std::fs::write(&file, "replay_sped = 5.0\n").unwrap();
        let mut args = args_in(dir.path());
        args.config.config = Some(file);
        let err = up(args).unwrap_err().to_string();
        assert!(err.contains("replay_sped"), "{err}");

        let mut args = args_in(dir.path());
        args.replay_speed = Some(-1.0);
        assert!(up(args).unwrap_err().to_string().contains("replay_speed"));

        let mut args = args_in(dir.path());
        args.scripts.scripts = Some(dir.path().join("nowhere"));
        assert!(
            up(args)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
    }
}
