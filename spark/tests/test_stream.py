"""The streaming job against a real Kafka broker and a real MongoDB-wire server, both started here on free ports.

Events from the GH Archive sample are produced with controlled `created_at` times; the job runs as a subprocess
(trigger availableNow) three times on one checkpoint: on the on-time events; after late and new events; and
once more on the checkpoint cut back to before the second run's commit, so that Spark replays that micro-batch.
"""
import collections
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
JOB = os.path.join(ROOT, "spark", "jobs", "stream.py")
SAMPLE = os.path.join(ROOT, "data", "gharchive-samples", "2015-01-01-15.sample.json")
SPARK_PYTHON = os.environ.get("FORGECAST_SPARK_PYTHON", sys.executable)

sys.path.insert(0, os.path.join(HERE, "..", "jobs"))
import stream  # noqa: E402

T0 = int(datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc).timestamp())
DB = "forgecast_stream_test"
TOPICS = {"gh.raw.push": 3, "gh.raw.issues": 2, "gh.raw.other": 1, "gh.bots": 1}


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(pair: bool = False) -> int:
    """A free loopback port; with `pair`, one whose next port is free too (Kafka's controller)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and (not pair or port_is_free(port + 1)):
            return port
    raise RuntimeError("no free port pair")


def stop(proc: subprocess.Popen) -> None:
    """Stops a server by its PID (the scripts exec the server), SIGTERM then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    d = tmp_path_factory.mktemp("kafka")
    port = free_port(pair=True)
    log_path = d / "stdout.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", os.path.join(ROOT, "tools", "kafka-server.sh"), str(d / "data"), str(port), str(port + 1)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while b"Kafka Server started" not in log_path.read_bytes():
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"Kafka did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    import pymongo

    d = tmp_path_factory.mktemp("mongo")
    port = free_port()
    log_path = d / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", os.path.join(ROOT, "tools", "mongo-server.sh"), str(d / "data"), str(port)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"SecantusDB did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        uri = f"mongodb://127.0.0.1:{port}/"
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20_000)
        client.admin.command("ping")
        yield uri, client
        client.close()
    finally:
        stop(proc)


def create_topics(brokers: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t, n in TOPICS.items()])
    for future in futures.values():
        future.result(timeout=30)


def topic_of(event: dict) -> str:
    """The routing script's families (scripts/routing.rhai), the ones this test created."""
    if event["type"] == "PushEvent":
        return "gh.raw.push"
    if event["type"] in ("IssuesEvent", "IssueCommentEvent"):
        return "gh.raw.issues"
    return "gh.raw.other"


def produce(brokers: str, events: list[dict], topic: str | None = None, raw: list[str] = ()) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "acks": "all"})
    for e in events:
        producer.produce(topic or topic_of(e), key=e["repo"]["name"].encode(), value=json.dumps(e).encode())
    for line in raw:
        producer.produce("gh.raw.other", key=b"broken", value=line.encode())
    assert producer.flush(30) == 0, "every message acknowledged"


def at(events: list[dict], start: int, step: int) -> list[dict]:
    """The events with `created_at` rewritten to start, start + step, ..."""
    out = []
    for i, e in enumerate(events):
        e = dict(e)
        e["created_at"] = datetime.datetime.fromtimestamp(start + i * step, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        out.append(e)
    return out


def expected(events: list[dict]) -> dict:
    """Counts per (bucket, dimension, key), computed here from the events themselves."""
    got = collections.Counter()
    for e in events:
        t = datetime.datetime.strptime(e["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        bucket = int(t.timestamp()) // 60 * 60
        got[(bucket, "type", e["type"])] += 1
        got[(bucket, "all", "*")] += 1
    return dict(got)


def stored(client) -> dict:
    from bson.int64 import Int64

    rows = {}
    for doc in client[DB]["stream_aggregates"].find({}, {"_id": 0}):
        assert doc["granularity"] == "minute"
        assert isinstance(doc["bucket"], Int64) and isinstance(doc["count"], Int64), doc
        key = (doc["bucket"], doc["dimension"], doc["key"])
        assert key not in rows, f"one document per key: {doc}"
        rows[key] = doc["count"]
    return rows


def run_job(brokers: str, mongo_uri: str, checkpoint: str) -> str:
    started = time.time()
    env = dict(os.environ, PYSPARK_PYTHON=SPARK_PYTHON)
    done = subprocess.run(
        [SPARK_PYTHON, JOB, "--brokers", brokers, "--mongo-uri", mongo_uri, "--mongo-db", DB,
         "--checkpoint", checkpoint, "--starting-offsets", "earliest", "--available-now", "--master", "local[2]"],
        capture_output=True, text=True, timeout=900, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"stream.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    print(f"stream.py ran in {time.time() - started:.1f} s", file=sys.stderr)
    return done.stdout


def watermark_ms(checkpoint: str) -> int:
    """The watermark the checkpoint's latest micro-batch ran with."""
    offsets = os.path.join(checkpoint, "offsets")
    latest = max((f for f in os.listdir(offsets) if f.isdigit()), key=int)
    with open(os.path.join(offsets, latest), encoding="utf-8") as f:
        lines = f.read().splitlines()
    return json.loads(lines[1])["batchWatermarkMs"]


def test_counts_per_minute_and_type_drop_late_events_and_replay_idempotently(kafka, mongo, tmp_path):
    mongo_uri, client = mongo
    with open(SAMPLE, encoding="utf-8") as f:
        sample = [json.loads(line) for line in f if line.strip()]
    create_topics(kafka)
    checkpoint = str(tmp_path / "checkpoint")

    # Run 1: 240 events over minutes 0..19, in order; the watermark becomes 19:55 - 10 min = 9:55.
    first = at(sample[0:240], T0, 5)
    produce(kafka, first)
    produce(kafka, at(sample[400:420], T0 + 60, 1), topic="gh.bots")  # a topic outside the pattern
    run_job(kafka, mongo_uri, checkpoint)
    assert stored(client) == expected(first)
    assert watermark_ms(checkpoint) == (T0 + 19 * 60 + 55 - 600) * 1000, "the watermark moved forward"

    # Run 2: 60 events of minutes 0..4 (windows closed before the watermark: dropped), 40 out of order but within
    # the watermark (minutes 12..15: counted), 60 new ones (minutes 20..24) and a line that is not an event.
    late = at(sample[240:300], T0, 5)
    within = at(sample[300:340], T0 + 12 * 60, 6)
    new = at(sample[340:400], T0 + 20 * 60, 5)
    produce(kafka, late + within + new, raw=["{\"id\": broken"])
    out = run_job(kafka, mongo_uri, checkpoint)
    on_time = first + within + new
    got = stored(client)
    assert got == expected(on_time)
    assert sum(n for (_, dimension, _), n in got.items() if dimension == "all") == len(on_time) == 340
    for minute in range(5):
        assert got[(T0 + minute * 60, "all", "*")] == 12, "the late events of this minute are not counted"

    # Run 3: as after a crash between the write and the commit of run 2's data batch, the checkpoint ends before
    # that batch's commit: Spark replays it, writing the same counts again.
    written = dict(re.findall(r"^stream: batch (\d+): ([1-9]\d*) rows written", out, re.M))
    replayed = max(written, key=int)
    for log, first_removed in (("offsets", int(replayed) + 1), ("commits", int(replayed))):
        for name in os.listdir(os.path.join(checkpoint, log)):
            batch = name.lstrip(".").split(".")[0]  # "7", and its checksum ".7.crc"
            if batch.isdigit() and int(batch) >= first_removed:
                os.remove(os.path.join(checkpoint, log, name))
    again = run_job(kafka, mongo_uri, checkpoint)
    assert f"stream: batch {replayed}: {written[replayed]} rows written" in again, again
    assert stored(client) == got


def test_the_jsonl_sink_keeps_one_line_per_key(tmp_path):
    path = str(tmp_path / "out" / "stream.jsonl")
    sink = stream.JsonlSink(path)
    row = {"granularity": "minute", "dimension": "type", "bucket": T0, "key": "PushEvent", "count": 2}
    sink.write([row, dict(row, dimension="all", key="*", count=3)])
    sink.write([dict(row, count=5)])
    sink.write([dict(row, count=5)])
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert lines == [dict(row, dimension="all", key="*", count=3), dict(row, count=5)]
    assert not os.path.exists(path + ".tmp")


@pytest.mark.parametrize("argv, message", [
    (["--sink", "jsonl"], "expected 'mongo' or 'jsonl PATH'"),
    (["--sink", "csv", "x"], "expected 'mongo' or 'jsonl PATH'"),
    (["--watermark", "ten minutes"], "is not a duration"),
    (["--window", "5 minutes"], "give --granularity"),
    (["--starting-offsets", "middle"], "invalid choice"),
    (["--topics-pattern", "gh.raw.("], "is not a regular expression"),
])
def test_bad_arguments_are_refused(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        stream.parse(["--checkpoint", str(tmp_path)] + argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_durations_are_normalised():
    assert stream.duration("10 minutes") == "10 minutes"
    assert stream.duration(" 1 minutes ") == "1 minute"
    assert stream.parse(["--checkpoint", "c", "--window", "1 hour"]).granularity == "hour"
