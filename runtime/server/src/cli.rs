//! The command line as the user types it; [`crate::config`] turns it into a plan.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Real-time GitHub analytics with analyst-editable Rhai scripts.
#[derive(Debug, Parser)]
#[command(name = "forgecast", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: source, routing script, bus, store, aggregates and the HTTP server.
    Up(UpArgs),
    /// Compile every script, check its entry point and run its cases; exit non-zero on any problem.
    Check(CheckArgs),
    /// Print events passing a topic of a running instance.
    Tap(TapArgs),
    /// Send GH Archive hours through the routing script into the store; resumable.
    Backfill(BackfillArgs),
    /// Compute the history of a lake per month, quarter and year (embedded or Spark) and load it into the store.
    Aggregate(AggregateArgs),
    /// Append every event on the Kafka topics to a lake of GH Archive hour files (the Spark jobs' input).
    Archive(ArchiveArgs),
    /// Cross-validate a model on labelled data, train it on all of it and register the version.
    Train(TrainArgs),
    /// Score a registered version (the champion by default) on labelled data.
    Eval(EvalArgs),
    /// Predict with a registered version: JSON lines in (`{"text": "…"}`), JSON lines out.
    Predict(VersionArgs),
    /// The registered models: list them, show one's versions, promote a version (also to roll back).
    Models(ModelsArgs),
    /// Where the trends are heading: forecast shares, or backtest the forecasting methods.
    Forecast(ForecastArgs),
    /// Convert other issue histories into GH Archive hour files that `backfill --source-dir DIR --sparse` replays.
    Convert(ConvertArgs),
}

/// `forgecast convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The format read: `jira`, the Apache Jira bug-fix CSV files (`<project>-jira-bug-fix-dataset.csv`).
    #[arg(value_enum)]
    pub format: ConvertFormat,
    /// Directory of the files read.
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Directory the hour files are written to (created if missing), `YYYY-MM-DD-H.json.gz` as GH Archive
    /// publishes them.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

/// The formats `forgecast convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertFormat {
    /// Apache Jira bug-fix histories: an `IssuesEvent` opened at each issue's creation (with only what is known
    /// then) and closed at its resolution.
    Jira,
}

/// `forgecast forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: ForecastWhat,
}

/// The verbs of `forgecast forecast`.
#[derive(Debug, Subcommand)]
pub enum ForecastWhat {
    /// Every method over rolling origins on the trends' share series: MASE (mean, median, per step ahead) and the
    /// 80 % / 95 % intervals' coverage, with the naive baseline in the same run.
    Backtest(BacktestArgs),
    /// Forecast the trends' shares, with 80 % and 95 % intervals, as tables (or JSON).
    Trends(TrendForecastArgs),
    /// Forecast repositories' stars: one repository (from the bundled snapshots and the star counts the enricher
    /// fetched into the store), or the fastest growing of the snapshots.
    Repos(RepoForecastArgs),
}

/// `forgecast forecast repos`.
#[derive(Debug, Args)]
pub struct RepoForecastArgs {
    /// One repository, `owner/name` [default: the repositories expected to grow most]
    #[arg(long)]
    pub repo: Option<String>,
    /// Half-years ahead, 1 to 4.
    #[arg(long, default_value_t = 2)]
    pub horizon: usize,
    /// Repositories listed without --repo.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// JSON, as `GET /api/forecast/repos` answers (without the registered version).
    #[arg(long)]
    pub json: bool,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The store whose star counts (a point per enricher fetch) a repository's forecast also reads.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Which share series (as `/api/trends` serves them).
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// `language`, `type` or `topic`.
    #[arg(long, default_value = "language")]
    pub dimension: String,
    /// For languages, the event type counted [default: PullRequestEvent]
    #[arg(long)]
    pub metric: Option<String>,
    /// `quarter`, `month` or `year`.
    #[arg(long, default_value = "quarter")]
    pub granularity: String,
    /// Periods ahead.
    #[arg(long, default_value_t = 4)]
    pub horizon: usize,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The store whose counters are read.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `forgecast forecast backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The series.
    #[command(flatten)]
    pub series: ShareArgs,
    /// The largest keys over the history.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Forecast origins, the last ones of the history.
    #[arg(long, default_value_t = 9)]
    pub origins: usize,
}

/// `forgecast forecast trends`.
#[derive(Debug, Args)]
pub struct TrendForecastArgs {
    /// The series.
    #[command(flatten)]
    pub series: ShareArgs,
    /// Comma-separated keys [default: the --top largest]
    #[arg(long, value_delimiter = ',')]
    pub keys: Option<Vec<String>>,
    /// The largest keys over the history, when none are named.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// The last period the forecast sees (`2021Q4`, `2021-03`, `2021`) [default: the last complete one]
    #[arg(long, value_name = "PERIOD")]
    pub as_of: Option<String>,
    /// JSON, as `GET /api/forecast` answers.
    #[arg(long)]
    pub json: bool,
}

/// The models that can be trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    /// Sentiment (negative, neutral, positive) of issue, review and comment text.
    Sentiment,
}

impl ModelName {
    /// As registered.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Sentiment => "sentiment",
        }
    }
}

/// `forgecast train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model.
    #[arg(value_enum)]
    pub model: ModelName,
    /// Labelled data: CSV `id,dataset,text,oracle` (oracle -1, 0, 1; `dataset` names each row's test fold)
    /// [default: data/se-sentiment/github.csv]
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Make the new version the champion (the one that serves).
    #[arg(long)]
    pub promote: bool,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The store that keeps the registry.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A registered version of a model (`eval`, `predict`): which model, which version, which store.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// The model.
    #[arg(value_enum)]
    pub model: ModelName,
    /// The version to use [default: the champion]
    #[arg(long, value_name = "N")]
    pub model_version: Option<u32>,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The store that keeps the registry.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `forgecast eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The version.
    #[command(flatten)]
    pub version: VersionArgs,
    /// Labelled data: CSV `id,dataset,text,oracle`, or JSON lines `{"text": "…", "label": "negative"}`.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
}

/// `forgecast models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// `list` every model with its champion; `show NAME` its versions with their figures and roles; `promote NAME
    /// VERSION` makes that version the champion (the champion before it is retired; also how to roll back);
    /// `export NAME VERSION --file F` writes a version (figures and artifact) to a file; `import --file F` registers
    /// it as a new version of another registry
    #[arg(value_enum, default_value_t = ModelsVerb::List)]
    pub verb: ModelsVerb,
    /// The model, for `show`, `promote` and `export`.
    pub name: Option<String>,
    /// The version, for `promote` and `export`.
    #[arg(value_name = "VERSION")]
    pub number: Option<u32>,
    /// The file `export` writes and `import` reads.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Make the imported version the champion (otherwise it is a challenger).
    #[arg(long)]
    pub promote: bool,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The store that keeps the registry.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The verbs of `forgecast models`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelsVerb {
    /// Every model, its champion and its number of versions.
    List,
    /// Every version of one model.
    Show,
    /// Make a version the champion.
    Promote,
    /// Write a version to a file.
    Export,
    /// Register a version from a file.
    Import,
}

/// What `forgecast models` does, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelsAction {
    /// Every model, its champion and its number of versions.
    List,
    /// Every version of one model, with its figures and role.
    Show {
        /// The model.
        name: String,
    },
    /// Make a version the champion; the champion before it is retired.
    Promote {
        /// The model.
        name: String,
        /// The version.
        version: u32,
    },
    /// Write a version, its figures and its artifact to a file.
    Export {
        /// The model.
        name: String,
        /// The version.
        version: u32,
        /// The file written.
        file: PathBuf,
    },
    /// Register the version a file holds as the next version of its model.
    Import {
        /// The file read.
        file: PathBuf,
        /// Whether it becomes the champion.
        promote: bool,
    },
}

/// `forgecast archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The lake: hour files are appended under DIR/YYYY/MM/DD/HH.json (one archive per lake).
    #[arg(long, env = "FORGECAST_LAKE", value_name = "DIR")]
    pub lake: PathBuf,
    /// The brokers.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// The archive's own consumer group (not the store writers': a group splits the events between its members)
    /// [default: forgecast-lake]
    #[arg(long, env = "FORGECAST_ARCHIVE_GROUP", value_name = "NAME")]
    pub group: Option<String>,
    /// Stop once no event has come for this many seconds (for one-off runs); by default it runs until stopped.
    #[arg(long, value_name = "SECONDS")]
    pub idle_exit: Option<u64>,
    /// Compress an hour file (HH.json → HH.json.gz) once its hour has been over for this long.
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_duration)]
    pub compress_after: std::time::Duration,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Which engine computes the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The runtime's own aggregator, in this process.
    Embedded,
    /// The PySpark job `spark/jobs/history.py`, in local mode.
    Spark,
}

/// Where events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The bundled real GH Archive events, replayed as if happening now.
    Replay,
    /// GitHub's REST API, polled as `scripts/queries/*.rhai` say (token from `GITHUB_TOKEN`).
    Github,
    /// No source: serve what the store holds.
    None,
}

/// Which bus carries the topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process queues.
    Embedded,
    /// Apache Kafka (`--kafka-brokers`).
    Kafka,
}

/// Which store holds events and aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One SQLite file under the data directory.
    Embedded,
    /// MongoDB, a replica set (`--mongo-uri`).
    Mongo,
}

/// The config file, for every command that reads one.
#[derive(Debug, Default, Clone, Args)]
pub struct ConfigArgs {
    /// Config file (TOML) with any of the settings of the flags; flags and `FORGECAST_*` variables win over it.
    #[arg(long, env = "FORGECAST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where state lives and which store holds it (`up`, `backfill`, `aggregate`).
#[derive(Debug, Default, Clone, Args)]
pub struct StoreArgs {
    /// Directory for the store and other state [default: .forgecast]
    #[arg(long, env = "FORGECAST_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store for events and aggregates [default: embedded]
    #[arg(long, env = "FORGECAST_STORE", value_enum)]
    pub store: Option<StoreKind>,
    /// MongoDB connection string, for `--store mongo` [default: mongodb://127.0.0.1:27017/?replicaSet=rs0]
    #[arg(long, env = "FORGECAST_MONGO_URI", value_name = "URI")]
    pub mongo_uri: Option<String>,
    /// MongoDB database [default: forgecast]
    #[arg(long, env = "FORGECAST_MONGO_DB", value_name = "NAME")]
    pub mongo_db: Option<String>,
}

/// The Kafka brokers (`up` and `backfill` on `--bus kafka`, `archive`).
#[derive(Debug, Default, Clone, Args)]
pub struct BrokerArgs {
    /// Kafka bootstrap servers [default: 127.0.0.1:9092]
    #[arg(long, env = "FORGECAST_KAFKA_BROKERS", value_name = "HOST:PORT,...")]
    pub kafka_brokers: Option<String>,
}

/// Which bus carries the topics (`up`, `backfill`).
#[derive(Debug, Default, Clone, Args)]
pub struct BusArgs {
    /// Bus between routing and the processors [default: embedded]
    #[arg(long, env = "FORGECAST_BUS", value_enum)]
    pub bus: Option<BusKind>,
    /// The brokers, for `--bus kafka`.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// Partitions of each topic the bus creates [default: 6]
    #[arg(long, env = "FORGECAST_KAFKA_PARTITIONS", value_name = "N")]
    pub kafka_partitions: Option<i32>,
    /// Replication factor of each topic the bus creates [default: 1]
    #[arg(long, env = "FORGECAST_KAFKA_REPLICATION", value_name = "N")]
    pub kafka_replication: Option<i32>,
    /// Kafka consumer group of the store writer; processes in one group split the partitions [default: forgecast-store-writer]
    #[arg(long, env = "FORGECAST_KAFKA_GROUP", value_name = "NAME")]
    pub kafka_group: Option<String>,
}

/// The scripts (`up`, `backfill`).
#[derive(Debug, Default, Clone, Args)]
pub struct ScriptArgs {
    /// Directory of the Rhai scripts [default: scripts]
    #[arg(long, env = "FORGECAST_SCRIPTS", value_name = "DIR")]
    pub scripts: Option<PathBuf>,
}

/// The model stages (`up`, `backfill`).
#[derive(Debug, Default, Clone, Args)]
pub struct ModelArgs {
    /// Score events with the sentiment champion and learn the issue-outcome model from the stream, `on` or
    /// `off` (off: a backfill of history runs faster, and a first start trains no default model) [default: on]
    #[arg(
        long,
        env = "FORGECAST_MODELS",
        value_name = "on|off",
        value_parser = clap::builder::BoolishValueParser::new(),
        hide_possible_values = true
    )]
    pub models: Option<bool>,
}

/// GitHub's API (`up`).
#[derive(Debug, Default, Clone, Args)]
pub struct GithubArgs {
    /// GitHub API root, for GitHub Enterprise or a test server [default: https://api.github.com]
    #[arg(long, env = "GITHUB_API_URL", value_name = "URL")]
    pub github_api_url: Option<String>,
    /// Share of the GitHub rate limit that repository enrichment may use, 0 to 1 [default: 0.2]
    #[arg(long, env = "FORGECAST_ENRICH_SHARE", value_name = "SHARE")]
    pub enrich_share: Option<f64>,
}

/// `forgecast up`. Every flag can also be set by a `FORGECAST_*` environment variable or in the config file;
/// flags win over the environment, which wins over the file.
#[derive(Debug, Default, Args)]
pub struct UpArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The scripts.
    #[command(flatten)]
    pub scripts: ScriptArgs,
    /// The model stages.
    #[command(flatten)]
    pub models: ModelArgs,
    /// Address of the HTTP server [default: 127.0.0.1:8080]
    #[arg(long, env = "FORGECAST_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where events come from [default: replay]
    #[arg(long, env = "FORGECAST_SOURCE", value_enum)]
    pub source: Option<SourceKind>,
    /// Replay at this multiple of real time; 0 replays as fast as possible [default: 1]
    #[arg(long, env = "FORGECAST_REPLAY_SPEED", value_name = "X")]
    pub replay_speed: Option<f64>,
    /// Stop after one pass over the bundled events, once everything is stored.
    #[arg(long, env = "FORGECAST_REPLAY_ONCE")]
    pub replay_once: bool,
    /// GitHub.
    #[command(flatten)]
    pub github: GithubArgs,
    /// Host names the HTTP server answers to besides localhost and IP addresses, comma-separated; `*` for any
    #[arg(long, env = "FORGECAST_ALLOWED_HOSTS", value_name = "NAMES")]
    pub allowed_hosts: Option<String>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The bus.
    #[command(flatten)]
    pub bus: BusArgs,
}

/// `forgecast check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scripts directory.
    #[arg(default_value = "scripts")]
    pub dir: PathBuf,
}

/// `forgecast tap`.
#[derive(Debug, Args)]
pub struct TapArgs {
    /// Topic to watch, such as `gh.raw.push`; a trailing `*` matches a prefix (`gh.raw.*`, or `*` for all).
    pub topic: String,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Base URL of the running instance.
    #[arg(long, env = "FORGECAST_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print each event's full JSON instead of a one-line summary.
    #[arg(long)]
    pub raw: bool,
}

/// `forgecast backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First hour, such as 2024-01-01T00 (UTC).
    #[arg(long, value_name = "HOUR")]
    pub from: String,
    /// Last hour, included.
    #[arg(long, value_name = "HOUR")]
    pub to: String,
    /// Take every N-th hour only (a sample of a long range).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub every_nth_hour: u32,
    /// Read hour files from this directory instead of downloading them.
    #[arg(long, value_name = "DIR", conflicts_with = "source_url")]
    pub source_dir: Option<PathBuf>,
    /// Base URL of the archive.
    #[arg(
        long,
        value_name = "URL",
        env = "FORGECAST_GHARCHIVE_URL",
        default_value = "https://data.gharchive.org"
    )]
    pub source_url: String,
    /// Hours without a file in --source-dir are expected (a converted history has files only for the hours with
    /// events): counted as empty, not as missing.
    #[arg(long, requires = "source_dir")]
    pub sparse: bool,
    /// Longest line read from an hour file; a longer one goes to the dead letters (its first KB) unread.
    #[arg(
        long,
        env = "FORGECAST_MAX_LINE_BYTES",
        value_name = "BYTES",
        default_value_t = forgecast_gharchive::MAX_LINE_BYTES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_line_bytes: usize,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The scripts.
    #[command(flatten)]
    pub scripts: ScriptArgs,
    /// The model stages.
    #[command(flatten)]
    pub models: ModelArgs,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The bus.
    #[command(flatten)]
    pub bus: BusArgs,
}

/// `forgecast aggregate`.
#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// Run again every DURATION (`30m`, `6h`, `1d`) until stopped, as a scheduler would; a failed run is
    /// logged and the next one comes on time. Once, by default.
    #[arg(long, env = "FORGECAST_AGGREGATE_EVERY", value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<std::time::Duration>,
    /// Directory of GH Archive hour files (`*.json.gz` or `*.json`, searched recursively) [default: the
    /// store's own lake, <data-dir>/lake]
    #[arg(long, env = "FORGECAST_LAKE", value_name = "DIR")]
    pub lake: Option<PathBuf>,
    /// Which engine computes the counts.
    #[arg(long, value_enum, default_value_t = Engine::Embedded)]
    pub engine: Engine,
    /// Where the counts are written as JSON lines [default: <data-dir>/history/<engine>.jsonl]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Python with PySpark, for `--engine spark`.
    #[arg(
        long,
        env = "FORGECAST_SPARK_PYTHON",
        value_name = "PATH",
        default_value = "python3"
    )]
    pub spark_python: String,
    /// Spark master for `--engine spark`: `local[N]`, or a cluster such as `spark://host:7077`.
    #[arg(
        long,
        env = "FORGECAST_SPARK_MASTER",
        value_name = "URL",
        default_value = "local[2]"
    )]
    pub spark_master: String,
    /// The Spark job.
    #[arg(
        long,
        env = "FORGECAST_SPARK_JOB",
        value_name = "FILE",
        default_value = "spark/jobs/history.py"
    )]
    pub spark_job: PathBuf,
    /// Write the counts without loading them into the store.
    #[arg(long)]
    pub no_import: bool,
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The store the counts are loaded into (with `--store mongo`, give `--lake`: the lake is the embedded
    /// store's).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A duration such as `90s`, `30m`, `6h` or `1d`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 90s, 30m, 6h or 1d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match number.checked_mul(seconds) {
        Some(0) => Err(format!("{text:?}: the duration must be more than zero")),
        Some(total) => Ok(std::time::Duration::from_secs(total)),
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_one_unit_and_refuse_the_rest() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "h",
            "6",
            "6x",
            "1h30m",
            "-1h",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
