#!/usr/bin/env python3
"""Checks the container files as far as a machine without a Docker engine or cluster can.

- every object of every rendered overlay (RENDERED_DIR/<overlay>.yaml, written by tools/kustomize-check) is a valid
  Kubernetes object (kubernetes-validate, strict, against the schemas it ships);
- in each overlay, a directory laid out the way kubelet mounts the scripts ConfigMap with a pipeline pod's volume
  `items` (timestamped folder, `..data` link, one link per top-level entry) passes `forgecast check`, so the pod's
  runtime loads the scripts;
- the JavaScript the manifests run (k8s/**/*.js, e.g. the replica set's initiation) parses (`node --check`);
- compose/Dockerfile and compose/Dockerfile.spark parse, every path they copy from the repository exists, each ends
  as a non-root user, and both compile the binary with the same build stage.

tools/kustomize-check checks how the objects fit together (and with compose); this checks each object alone.

usage: tools/check-k8s.py FORGECAST_BINARY RENDERED_DIR
"""
import glob
import os
import shutil
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
SCRIPTS_CONFIGMAP = "forgecast-scripts"


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


def pod_specs(doc):
    """The pod specs of a workload (Deployment, StatefulSet, Job, CronJob, ...)."""
    spec = doc.get("spec", {})
    if "template" in spec:
        yield spec["template"]["spec"]
    elif "jobTemplate" in spec:
        yield spec["jobTemplate"]["spec"]["template"]["spec"]


def check_scripts_layout(binary, overlay, docs):
    """Lays the scripts ConfigMap out as kubelet mounts it with the first pipeline pod's items; runs forgecast check."""
    configmap = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == SCRIPTS_CONFIGMAP), None)
    volume = next((v for d in docs for spec in pod_specs(d) for v in spec.get("volumes", [])
                   if v.get("configMap", {}).get("name") == SCRIPTS_CONFIGMAP), None)
    if configmap is None or volume is None:
        fail(f"{overlay}: no ConfigMap {SCRIPTS_CONFIGMAP}, or no pod mounts it")
    items = {i["key"]: i["path"] for i in volume["configMap"]["items"]}
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
            fail(f"{overlay}: forgecast check fails on the ConfigMap layout:\n{checked.stdout}{checked.stderr}")
        return checked.stdout.strip()


def check_javascript():
    """Every JavaScript file of the manifests parses."""
    node = shutil.which("node")
    if node is None:
        fail("Node.js (`node`) is needed to check the JavaScript under k8s/")
    files = sorted(glob.glob(os.path.join(ROOT, "k8s", "**", "*.js"), recursive=True))
    for path in files:
        checked = subprocess.run([node, "--check", path], capture_output=True, text=True)
        if checked.returncode != 0:
            fail(f"{os.path.relpath(path, ROOT)} does not parse:\n{checked.stderr}")
    return len(files)


def main():
    if len(sys.argv) != 3:
        fail("usage: tools/check-k8s.py FORGECAST_BINARY RENDERED_DIR")
    binary, rendered = sys.argv[1], sys.argv[2]
    overlays = sorted(glob.glob(os.path.join(rendered, "*.yaml")))
    if not overlays:
        fail(f"no rendered overlays in {rendered} (tools/kustomize-check writes them)")
    total = 0
    for path in overlays:
        overlay = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            validate(doc, overlay)
        total += len(docs)
        print(f"check-k8s: {overlay}: {check_scripts_layout(binary, overlay, docs)} (the ConfigMap as kubelet mounts it)")
    scripts = check_javascript()

    build_stages = {}
    for name in DOCKERFILES:
        build_stages[name] = check_dockerfile(name)
    if len(set(map(tuple, build_stages.values()))) != 1:
        fail(f"the build stages of {' and '.join(DOCKERFILES)} differ: keep them the same, instruction for instruction")
    print(f"check-k8s: {total} Kubernetes objects in {len(overlays)} overlays valid for {KUBERNETES}; "
          f"{scripts} JavaScript file(s) parse; {', '.join(DOCKERFILES)} OK")


if __name__ == "__main__":
    main()
