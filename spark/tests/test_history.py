"""The history job in Spark local mode: one session for the whole run (it starts slowly)."""
import gzip
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "jobs"))
import history  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    session = history.session("local[2]")
    yield session
    session.stop()


def event(id_, kind, actor, repo, at, language=None):
    e = {"id": id_, "type": kind, "actor": {"login": actor}, "repo": {"name": repo}, "created_at": at, "payload": {}}
    if language:
        e["payload"] = {"pull_request": {"base": {"repo": {"language": language}}}}
    return json.dumps(e)


def write_hour(lake, path, lines):
    full = os.path.join(lake, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with gzip.open(full, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def rows(path):
    with open(path, encoding="utf-8") as f:
        return {(r["granularity"], r["bucket"], r["dimension"], r["key"]): r["count"] for r in map(json.loads, f)}


@pytest.fixture()
def lake(tmp_path):
    root = tmp_path / "lake"
    write_hour(root, "2024/02/10/10.json.gz", [
        event("1", "PullRequestEvent", "ana", "o/a", "2024-02-10T10:00:00Z", "Go"),
        event("1", "PullRequestEvent", "ana", "o/a", "2024-02-10T10:00:00Z", "Go"),  # repeated id
        "{\"id\": broken",
    ])
    write_hour(root, "2024/03/01/00.json.gz", [
        event("2", "PushEvent", "ana", "o/b", "2024-03-01T00:00:00Z"),
        event("3", "PushEvent", "dependabot[bot]", "o/c", "2024-03-01T00:30:00Z"),
    ])
    repos = tmp_path / "repos.jsonl"
    repos.write_text(json.dumps({"name": "o/b", "language": "Rust", "topics": ["cli", "tools"]}) + "\n")
    return str(root), str(repos)


FEB, MAR, Q1, Y2024 = 1706745600, 1709251200, 1704067200, 1704067200


def test_counts_follow_the_runtime_definitions(spark, lake, tmp_path):
    root, repos = lake
    out = str(tmp_path / "out" / "history.jsonl")
    history.run(spark, root, out, repos)
    got = rows(out)
    assert got[("quarter", Q1, "all", "*")] == 3, "the repeated id and the broken line are left out"
    assert got[("month", FEB, "type_language", "PullRequestEvent/Go")] == 1, "language from the payload"
    assert got[("month", MAR, "type_language", "PushEvent/Rust")] == 1, "language from the repository cache"
    assert got[("year", Y2024, "bot", "PushEvent")] == 1
    assert got[("year", Y2024, "actors", "*")] == 1, "ana once, the bot left out"
    assert got[("year", Y2024, "active_repos", "*")] == 2
    assert ("month", MAR, "type_language", "PushEvent/Go") not in got
    assert got[("quarter", Q1, "topic", "cli")] == 1, "one event of o/b, once per topic"
    assert got[("quarter", Q1, "topic", "tools")] == 1


def test_running_twice_changes_nothing(spark, lake, tmp_path):
    root, repos = lake
    out = str(tmp_path / "history.jsonl")
    history.run(spark, root, out, repos)
    first = open(out, "rb").read()
    history.run(spark, root, out, repos)
    assert open(out, "rb").read() == first
    assert not os.path.exists(out + ".tmp")


def test_a_missing_lake_is_refused(tmp_path, capsys):
    assert history.main(["--lake", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "is not a directory" in capsys.readouterr().err
