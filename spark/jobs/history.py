"""Batch history job: counts per month, quarter and year from a lake of GH Archive hour files.

The definitions are the runtime's own (`runtime/core/src/history.rs`); the parity test runs both on the same
lake and compares every row:

- each event id counts once, whatever the files repeat; lines that are not events are left out;
- `all` (`*`), `type` (event type) and `type_language` (`PushEvent/Rust`: the language pull request payloads
  carry, or else the repository's from the `--repos` file) count events, and `topic` counts each event once
  under each of its repository's topics (from the same file);
- `bot` counts events of automation accounts (logins ending in `[bot]`, `-bot` or `_bot`) per event type;
  they are left out of the next two;
- `active_repos` and `actors` (key `*`) count distinct repositories and people with events in the bucket.

Output: JSON lines `{"granularity", "bucket" (Unix seconds), "dimension", "key", "count"}`, sorted, written
to a temporary file and renamed, so that running the job twice on the same lake changes nothing.

Input: every hour file under `--lake`, or, with `--files`, the files a JSON list names: `forgecast aggregate` gives
the store's own lake that way, each file, plain or gzipped (several gzip members, read as one stream), cut at the
store's last commit (Spark reads files whole).

usage: history.py --lake DIR --out FILE [--files FILE] [--repos FILE] [--master local[2]]
"""
import argparse
import json
import os
import sys
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

GRANULARITIES = ["month", "quarter", "year"]

SCHEMA = T.StructType([
    T.StructField("id", T.StringType()),
    T.StructField("type", T.StringType()),
    T.StructField("actor", T.StructType([T.StructField("login", T.StringType())])),
    T.StructField("repo", T.StructType([T.StructField("name", T.StringType())])),
    T.StructField("created_at", T.StringType()),
    T.StructField("payload", T.StructType([
        T.StructField("pull_request", T.StructType([
            T.StructField("base", T.StructType([
                T.StructField("repo", T.StructType([T.StructField("language", T.StringType())])),
            ])),
        ])),
    ])),
])


def session(master: str = "local[2]") -> SparkSession:
    """A local session in UTC, quiet."""
    spark = (
        SparkSession.builder.master(master)
        .appName("forgecast-history")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def events(spark: SparkSession, lake: str, repos: str | None, files: list[str] | None = None) -> DataFrame:
    """The lake's events (or those of `files`), one row per id, with the columns the counts need."""
    if files is None:
        # GH Archive's *.json.gz, and a lake of the runtime's (*.json for an hour going on, *.json.gz once over).
        raw = (
            spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.{json,json.gz}")
            .schema(SCHEMA).json(lake)
        )
    elif files:
        raw = spark.read.schema(SCHEMA).json(files)
    else:
        raw = spark.createDataFrame([], SCHEMA)
    login = F.col("actor.login")
    payload_language = F.when(F.col("type").startswith("PullRequest"), F.col("payload.pull_request.base.repo.language"))
    df = (
        raw.select(
            F.col("id"),
            F.col("type"),
            login.alias("actor"),
            F.col("repo.name").alias("repo"),
            F.to_timestamp("created_at").alias("ts"),
            F.when(payload_language != "", payload_language).alias("event_language"),
        )
        .where(F.col("id").isNotNull() & (F.col("id") != "") & (F.col("type") != "") & F.col("repo").isNotNull()
               & (F.col("repo") != "") & F.col("ts").isNotNull() & F.col("actor").isNotNull())
        .dropDuplicates(["id"])
        .withColumn("bot", login_is_bot(F.col("actor")))
    )
    if repos:
        known = (
            spark.read.schema("name string, language string, topics array<string>").json(repos)
            .where(F.col("name").isNotNull())
            .select(
                F.col("name").alias("repo"),
                F.when(F.col("language") != "", F.col("language")).alias("repo_language"),
                F.coalesce(F.col("topics"), F.array().cast("array<string>")).alias("topics"),
            )
            .dropDuplicates(["repo"])
        )
        df = df.join(F.broadcast(known), "repo", "left")
    else:
        df = df.withColumn("repo_language", F.lit(None).cast("string")).withColumn(
            "topics", F.array().cast("array<string>"))
    return df.withColumn("language", F.coalesce("event_language", "repo_language"))


def login_is_bot(login):
    return login.endswith("[bot]") | login.endswith("-bot") | login.endswith("_bot")


def counts(df: DataFrame) -> DataFrame:
    """Every counter, as (granularity, bucket, dimension, key, count)."""
    parts = []
    for granularity in GRANULARITIES:
        g = df.withColumn("granularity", F.lit(granularity)).withColumn(
            "bucket", F.unix_timestamp(F.date_trunc(granularity, "ts")).cast("long"))
        keys = ["granularity", "bucket"]
        parts.append(g.groupBy(*keys).count().withColumn("dimension", F.lit("all")).withColumn("key", F.lit("*")))
        parts.append(g.groupBy(*keys, F.col("type").alias("key")).count().withColumn("dimension", F.lit("type")))
        parts.append(
            g.where(F.col("language").isNotNull())
            .groupBy(*keys, F.concat_ws("/", "type", "language").alias("key")).count()
            .withColumn("dimension", F.lit("type_language")))
        parts.append(
            g.where("bot").groupBy(*keys, F.col("type").alias("key")).count().withColumn("dimension", F.lit("bot")))
        parts.append(
            g.select(*keys, F.explode_outer("topics").alias("key")).where(F.col("key").isNotNull())
            .groupBy(*keys, "key").count().withColumn("dimension", F.lit("topic")))
        people = g.where(~F.col("bot"))
        for dimension, column in [("active_repos", "repo"), ("actors", "actor")]:
            parts.append(
                people.groupBy(*keys).agg(F.countDistinct(column).alias("count"))
                .withColumn("dimension", F.lit(dimension)).withColumn("key", F.lit("*")))
    columns = ["granularity", "bucket", "dimension", "key", "count"]
    result = parts[0].select(*columns)
    for part in parts[1:]:
        result = result.unionByName(part.select(*columns))
    return result


def run(spark: SparkSession, lake: str, out: str, repos: str | None = None, files: list[str] | None = None) -> int:
    """Computes the counters of `lake` (or of `files`) into `out`; returns how many rows were written."""
    started = time.time()
    df = events(spark, lake, repos, files).cache()
    total = df.count()
    rows = sorted(
        (r["granularity"], r["bucket"], r["dimension"], r["key"], r["count"]) for r in counts(df).collect()
    )
    df.unpersist()
    temporary = f"{out}.tmp"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(temporary, "w", encoding="utf-8") as f:
        for granularity, bucket, dimension, key, count in rows:
            f.write(json.dumps({"granularity": granularity, "bucket": bucket, "dimension": dimension,
                                "key": key, "count": count}, ensure_ascii=False) + "\n")
    os.replace(temporary, out)
    print(f"history: {total} events, {len(rows)} rows written to {out} in {time.time() - started:.1f} s", flush=True)
    return len(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="directory of GH Archive hour files (searched recursively)")
    parser.add_argument("--out", required=True, help="JSON lines file of the counters")
    parser.add_argument("--files", help="JSON list of the hour files to read instead of every file under --lake")
    parser.add_argument("--repos", help="JSON lines of {name, language}: the repository metadata cache")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.lake):
        print(f"history: --lake {args.lake} is not a directory", file=sys.stderr)
        return 2
    files = None
    if args.files:
        with open(args.files, encoding="utf-8") as f:
            files = json.load(f)
    scope = args.lake if files is None else f"{len(files)} files of {args.lake}"
    print(f"history: starting Spark ({args.master}) on {scope}", flush=True)
    spark = session(args.master)
    try:
        run(spark, args.lake, args.out, args.repos, files)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
