#!/usr/bin/env python3
"""Checks the container files as far as a machine without a Docker engine or cluster can.

- k8s/forgecast.yaml and the ConfigMap that k8s/scripts-configmap.sh makes are valid Kubernetes objects
  (kubernetes-validate, strict, against the schemas it ships);
- every file under scripts/ is in the ConfigMap and mapped back to its path by the Deployment's volume items;
- a directory laid out the way kubelet mounts that ConfigMap (timestamped folder, `..data` link, one link per
  top-level entry) passes `forgecast check`, so the pod's runtime loads the scripts;
- compose/Dockerfile and compose/Dockerfile.spark parse, every path they copy from the repository exists, each ends
  as a non-root user, and both compile the binary with the same build stage.

usage: tools/check-k8s.py FORGECAST_BINARY
"""
import os
import re
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUBERNETES = "1.30.0"
# The images: the runtime's, and the Spark jobs' (same binary, on the Apache Spark image).
DOCKERFILES = ["compose/Dockerfile", "compose/Dockerfile.spark"]


def fail(message):
    print(f"check-k8s: {message}", file=sys.stderr)
    sys.exit(1)


def check_dockerfile(name):
    """Checks one of the Dockerfiles; returns its build stage's instructions."""
    # A file object: given a path, the parser takes any name but `Dockerfile` for a directory.
    with open(os.path.join(ROOT, name), "rb") as f:
        structure = DockerfileParser(fileobj=f).structure
    instructions = [i for i in structure if i["instruction"] != "COMMENT"]
    stages = [n for n, i in enumerate(instructions) if i["instruction"] == "FROM"]
    if len(stages) != 2:
        fail(f"{name} should have a build stage and a runtime stage")
    for instruction in instructions:
        if instruction["instruction"] == "COPY" and "--from=" not in instruction["value"]:
            for source in instruction["value"].split()[:-1]:
                if not os.path.exists(os.path.join(ROOT, source)):
                    fail(f"{name} copies {source}, which the repository does not have")
    users = [i["value"] for i in instructions if i["instruction"] == "USER"]
    if not users or users[-1] in ("root", "0"):
        fail(f"{name} should run as a non-root user")
    return [(i["instruction"], i["value"]) for i in instructions[: stages[1]]]


def validate(doc, where):
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as e:
        fail(f"{where}: {doc.get('kind')} {doc['metadata'].get('name')}: {e.message} at {list(e.path)}")


def main():
    binary = sys.argv[1]
    with open(os.path.join(ROOT, "k8s/forgecast.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        validate(doc, "k8s/forgecast.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "scripts")
    items = {i["key"]: i["path"] for i in volume["configMap"]["items"]}

    with open(os.path.join(ROOT, "k8s/scripts-configmap.sh")) as f:
        pairs = re.findall(r"--from-file=([^=\s]+)=(\S+)", f.read())
    keys = dict(pairs)
    files = sorted(
        os.path.relpath(os.path.join(d, n), os.path.join(ROOT, "scripts"))
        for d, _, names in os.walk(os.path.join(ROOT, "scripts"))
        for n in names
    )
    for path in files:
        key = path.replace("/", ".")
        if keys.get(key) != f"scripts/{path}":
            fail(f"scripts/{path} is not in k8s/scripts-configmap.sh as {key}")
        if items.get(key) != path:
            fail(f"scripts/{path} is not mapped back by the Deployment's volume items (key {key})")
    if len(keys) != len(files) or len(items) != len(files):
        fail("k8s/scripts-configmap.sh or the Deployment names scripts that scripts/ does not have")

    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "forgecast-scripts"}, "data": {}}
    for key, source in keys.items():
        with open(os.path.join(ROOT, source)) as f:
            configmap["data"][key] = f.read()
    validate(configmap, "the scripts ConfigMap")

    # The layout kubelet writes for a ConfigMap volume with items.
    with tempfile.TemporaryDirectory() as mount:
        stamp = os.path.join(mount, "..2026_01_01_00_00_00.000000001")
        for key, path in items.items():
            os.makedirs(os.path.dirname(os.path.join(stamp, path)), exist_ok=True)
            with open(os.path.join(stamp, path), "w") as f:
                f.write(configmap["data"][key])
        os.symlink(os.path.basename(stamp), os.path.join(mount, "..data"))
        for entry in sorted({p.split("/")[0] for p in items.values()}):
            os.symlink(os.path.join("..data", entry), os.path.join(mount, entry))
        checked = subprocess.run([binary, "check", mount], capture_output=True, text=True)
        if checked.returncode != 0:
            fail(f"forgecast check fails on the ConfigMap layout:\n{checked.stdout}{checked.stderr}")
        print(f"check-k8s: {checked.stdout.strip()} (ConfigMap layout)")

    build_stages = {}
    for name in DOCKERFILES:
        build_stages[name] = check_dockerfile(name)
    if len(set(map(tuple, build_stages.values()))) != 1:
        fail(f"the build stages of {' and '.join(DOCKERFILES)} differ: keep them the same, instruction for instruction")
    print(f"check-k8s: {len(docs)} Kubernetes objects and the scripts ConfigMap valid for {KUBERNETES}; "
          f"{', '.join(DOCKERFILES)} OK")


if __name__ == "__main__":
    main()
