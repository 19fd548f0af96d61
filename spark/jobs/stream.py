"""Streaming job: events per minute and event type, from the `gh.raw.*` Kafka topics into MongoDB.

Spark Structured Streaming reads the topics matching `--topics-pattern` (GH Archive JSON lines, one event per
message) with Spark's Kafka source, parses each value's `type`, `created_at`, `actor.login` and `repo.name`, and
counts events in tumbling windows of `--window` on the event time `created_at`, per event type (dimension `type`,
key the type) and in total (dimension `all`, key `*`). Messages that are not JSON events, or lack a type or a
time, are left out.

Output (update mode, in `foreachBatch`): each micro-batch upserts the windows it changed, with their whole count,
into the MongoDB collection `--collection` (`stream_aggregates` by default), one document per counter
`{granularity: "minute", dimension: "type" | "all", bucket: <window start, Unix seconds, int64>, key, count: int64}`,
unique on (granularity, dimension, bucket, key), by `UpdateOne(..., {"$set": {"count": n}}, upsert=True)`. The
count is set, never incremented, so a micro-batch that Spark replays after a crash, or a second run on the same
checkpoint, changes nothing. `--sink jsonl PATH` writes the same rows to a JSON lines file instead (one row per
key, the file rewritten through a rename), for runs without MongoDB. The runtime keeps its own counters apart
(`counter_deltas` and `counters`), so nothing this job writes touches them.

Late events: the watermark is the latest `created_at` seen so far minus `--watermark` (10 minutes by default). Spark
moves it between micro-batches, and drops, without any trace, every later event whose window ended at or before
it: such an event is never counted and the counts already written for its window are left as they are. Events up
to `--watermark` out of order are counted. The watermark, the windows' state and the Kafka offsets are kept in
the `--checkpoint` directory, so a restart resumes where the last run stopped (`--starting-offsets` applies only
to the first run on a checkpoint).

usage: stream.py --checkpoint DIR [--brokers HOST:PORT] [--topics-pattern REGEX] [--sink mongo | --sink jsonl PATH]
                 [--mongo-uri URI] [--mongo-db NAME] [--collection NAME] [--watermark "10 minutes"] [--window "1 minute"]
                 [--starting-offsets earliest|latest] [--available-now] [--master local[2]]
"""
import argparse
import json
import os
import re
import sys
import time

# Spark's Kafka source for PySpark 4.3.0. Maven Central serves no spark-sql-kafka-0-10 4.3.0 yet; 4.2.0, the
# nearest version it serves, runs on Spark 4.3.0 (checked by spark/tests/test_stream.py against a real broker).
KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"
IVY_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "forgecast", "ivy")

GRANULARITIES = {"1 minute": "minute", "1 hour": "hour", "1 day": "day"}
DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day)s?\s*$")


def duration(text: str) -> str:
    """`10 minutes`, `1 minute`, `30 seconds`, `2 hours`, `1 day`, normalised; anything else is refused."""
    match = DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration such as '10 minutes' (a positive whole number of seconds, minutes, hours "
            "or days)")
    n, unit = int(match.group(1)), match.group(2)
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def session(master: str = "local[2]", kafka_package: str = KAFKA_PACKAGE, ivy: str = IVY_CACHE):
    """A local session in UTC, quiet, with Spark's Kafka source fetched once into the Ivy cache."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName("forgecast-stream")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.jars.packages", kafka_package)
        .config("spark.jars.ivy", ivy)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def counts(spark, brokers: str, pattern: str, starting_offsets: str, watermark: str, window: str, granularity: str):
    """The streaming DataFrame of (granularity, dimension, bucket, key, count), one row per window and key."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType([
        T.StructField("type", T.StringType()),
        T.StructField("created_at", T.StringType()),
        T.StructField("actor", T.StructType([T.StructField("login", T.StringType())])),
        T.StructField("repo", T.StructType([T.StructField("name", T.StringType())])),
    ])
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", brokers)
        .option("subscribePattern", pattern)
        .option("startingOffsets", starting_offsets)
        .load()
    )
    event = F.from_json(F.col("value").cast("string"), schema)
    events = (
        raw.select(event.alias("e"))
        .select(
            F.col("e.type").alias("type"),
            F.to_timestamp("e.created_at").alias("ts"),
            F.col("e.actor.login").alias("actor"),
            F.col("e.repo.name").alias("repo"),
        )
        .where(F.col("type").isNotNull() & (F.col("type") != "") & F.col("ts").isNotNull())
        .withWatermark("ts", watermark)
    )
    # Each event counts once under its type and once in the total: one aggregation, so one state store.
    keyed = events.select(
        "ts",
        F.explode(F.array(
            F.struct(F.lit("type").alias("dimension"), F.col("type").alias("key")),
            F.struct(F.lit("all").alias("dimension"), F.lit("*").alias("key")),
        )).alias("k"),
    )
    return (
        keyed.groupBy(F.window("ts", window).alias("window"), F.col("k.dimension").alias("dimension"),
                      F.col("k.key").alias("key"))
        .count()
        .select(
            F.lit(granularity).alias("granularity"),
            "dimension",
            F.unix_timestamp(F.col("window.start")).cast("long").alias("bucket"),
            "key",
            F.col("count").cast("long").alias("count"),
        )
    )


class MongoSink:
    """Upserts rows into a collection, setting the count: replaying a batch writes the same values again."""

    def __init__(self, uri: str, db: str, collection: str):
        import pymongo

        self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000)
        self.collection = self.client[db][collection]
        # The runtime's own index (runtime/connect/src/mongo.rs): creating it again is a no-op.
        self.collection.create_index(
            [("granularity", 1), ("dimension", 1), ("bucket", 1), ("key", 1)], unique=True)

    def write(self, rows: list[dict]) -> None:
        from bson.int64 import Int64
        from pymongo import UpdateOne

        if not rows:
            return
        self.collection.bulk_write([
            UpdateOne(
                {"granularity": r["granularity"], "dimension": r["dimension"], "bucket": Int64(r["bucket"]),
                 "key": r["key"]},
                {"$set": {"count": Int64(r["count"])}},
                upsert=True,
            )
            for r in rows
        ], ordered=False)

    def close(self) -> None:
        self.client.close()


class JsonlSink:
    """Keeps one JSON line per (granularity, dimension, bucket, key), the file rewritten through a rename."""

    def __init__(self, path: str):
        self.path = path

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        current = {}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        current[(r["granularity"], r["dimension"], r["bucket"], r["key"])] = r["count"]
        for r in rows:
            current[(r["granularity"], r["dimension"], r["bucket"], r["key"])] = r["count"]
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            for (granularity, dimension, bucket, key), count in sorted(current.items()):
                f.write(json.dumps({"granularity": granularity, "dimension": dimension, "bucket": bucket,
                                    "key": key, "count": count}, ensure_ascii=False) + "\n")
        os.replace(temporary, self.path)

    def close(self) -> None:
        pass


def run(spark, args, sink) -> None:
    """Runs the query until it stops (availableNow) or is interrupted."""
    df = counts(spark, args.brokers, args.topics_pattern, args.starting_offsets, args.watermark, args.window,
                args.granularity)

    def write_batch(batch, batch_id):
        started = time.time()
        rows = [r.asDict() for r in batch.collect()]
        sink.write(rows)
        print(f"stream: batch {batch_id}: {len(rows)} rows written in {time.time() - started:.1f} s", flush=True)

    writer = (
        df.writeStream.outputMode("update")
        .option("checkpointLocation", args.checkpoint)
        .foreachBatch(write_batch)
        .queryName("forgecast-stream")
    )
    if args.available_now:
        writer = writer.trigger(availableNow=True)
    query = writer.start()
    query.awaitTermination()


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="127.0.0.1:9092", help="Kafka bootstrap servers, HOST:PORT[,...]")
    parser.add_argument("--topics-pattern", default=r"gh\.raw\..*", help="Java regex of the topics to read")
    parser.add_argument("--sink", nargs="+", default=["mongo"], metavar="KIND",
                        help="'mongo' (the default) or 'jsonl PATH'")
    parser.add_argument("--mongo-uri", default="mongodb://127.0.0.1:27017/")
    parser.add_argument("--mongo-db", default="forgecast")
    parser.add_argument("--collection", default="stream_aggregates",
                        help="MongoDB collection of the windowed counts (default: stream_aggregates)")
    parser.add_argument("--watermark", type=duration, default="10 minutes",
                        help="how late an event may come and still be counted (default: 10 minutes)")
    parser.add_argument("--window", type=duration, default="1 minute", help="tumbling window (default: 1 minute)")
    parser.add_argument("--granularity",
                        help="the documents' granularity; by default minute, hour or day from --window")
    parser.add_argument("--checkpoint", required=True, help="directory of the query's offsets, state and watermark")
    parser.add_argument("--starting-offsets", choices=["earliest", "latest"], default="latest",
                        help="where a new checkpoint starts in each partition (default: latest)")
    parser.add_argument("--available-now", action="store_true",
                        help="process what the topics hold now, then stop (trigger availableNow)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--kafka-package", default=KAFKA_PACKAGE, help=f"Maven coordinate (default: {KAFKA_PACKAGE})")
    args = parser.parse_args(argv)
    kind = args.sink[0]
    if kind == "mongo" and len(args.sink) == 1:
        args.jsonl = None
    elif kind == "jsonl" and len(args.sink) == 2:
        args.jsonl = args.sink[1]
    else:
        parser.error(f"--sink {' '.join(args.sink)}: expected 'mongo' or 'jsonl PATH'")
    if args.granularity is None:
        args.granularity = GRANULARITIES.get(args.window)
        if args.granularity is None:
            parser.error(f"--window {args.window} has no granularity of its own: give --granularity NAME")
    try:
        re.compile(args.topics_pattern)
    except re.error as e:
        parser.error(f"--topics-pattern {args.topics_pattern!r} is not a regular expression: {e}")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.jsonl:
        sink = JsonlSink(args.jsonl)
        target = args.jsonl
    else:
        import pymongo.errors

        try:
            sink = MongoSink(args.mongo_uri, args.mongo_db, args.collection)
        except pymongo.errors.PyMongoError as e:
            print(f"stream: cannot reach MongoDB at {args.mongo_uri}: {e}", file=sys.stderr)
            return 1
        target = f"{args.mongo_db}.{args.collection}"
    print(f"stream: starting Spark ({args.master}); {args.topics_pattern} on {args.brokers} -> {target}, "
          f"{args.window} windows, watermark {args.watermark}", flush=True)
    spark = session(args.master, args.kafka_package)
    try:
        run(spark, args, sink)
    finally:
        spark.stop()
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
