#!/usr/bin/env python3
"""Offline test of scripts/k8s/recover-pod on the rendered k8s/ StatefulSet
(`kubectl kustomize k8s/`): the one-off Pod keeps the survivor's name and
volumes and runs recover once, with nothing that would route traffic to it
or restart it. Exits non-zero on any failure."""

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load():
    loader = importlib.machinery.SourceFileLoader("recover_pod", os.path.join(HERE, "recover-pod"))
    spec = importlib.util.spec_from_loader("recover_pod", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def statefulset():
    rendered = subprocess.run(
        [os.environ.get("KUBECTL", "kubectl"), "kustomize", os.path.join(ROOT, "k8s")],
        check=True, capture_output=True, text=True,
    ).stdout
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys, yaml, json; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d and d['kind'] == 'StatefulSet'][0]))"],
        input=rendered, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def main():
    module = load()
    sts = statefulset()
    pod = module.recover_pod(sts, "taskraft-2")
    failures = []
    passed = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        (passed if cond else failures).append(what)

    spec = pod["spec"]
    check(pod["kind"] == "Pod" and pod["metadata"]["name"] == "taskraft-2", "named as the survivor")
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec["volumes"]}
    check(claims.get("raft") == "raft-taskraft-2", "the survivor's raft claim")
    check(claims.get("mysql") == "mysql-taskraft-2", "the survivor's mysql claim")
    check(spec["restartPolicy"] == "Never", "runs once")
    taskraft = [c for c in spec["containers"] if c["name"] == "taskraft"][0]
    check(taskraft["args"] == ["recover", "--force-new-cluster"], "runs recover")
    check(not any(k in taskraft for k in ("livenessProbe", "readinessProbe", "lifecycle")), "no probes, no preStop")
    mounts = {m["name"] for m in taskraft.get("volumeMounts", [])}
    check({"raft"} <= mounts and all(m in claims for m in mounts), "every mount has a volume")
    check(any(c["name"] == "mysql" for c in spec.get("initContainers", [])), "its MySQL sidecar runs")
    selector = sts["spec"]["selector"]["matchLabels"]
    check(not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()),
          "no StatefulSet or Service selects it")
    restore = module.recover_pod(sts, "taskraft-0", ["--in", "/backups/b.backup", "--until-seq", "9"])
    rspec = restore["spec"]
    rclaims = {v["name"]: v.get("persistentVolumeClaim", {}) for v in rspec["volumes"]}
    check(rclaims.get("raft", {}).get("claimName") == "raft-taskraft-0", "restore: the pod's own raft claim")
    check(rclaims.get("backups") == {"claimName": "taskraft-backups", "readOnly": True},
          "restore: the backups' claim, read-only")
    rtaskraft = [c for c in rspec["containers"] if c["name"] == "taskraft"][0]
    check(rtaskraft["args"] == ["restore", "--in", "/backups/b.backup", "--until-seq", "9"], "runs restore")
    check({"mountPath": "/backups", "name": "backups", "readOnly": True} in rtaskraft["volumeMounts"],
          "restore: the backups mounted at /backups")
    check(taskraft["args"] == ["recover", "--force-new-cluster"] and "backups" not in claims,
          "recover mounts no backups")
    try:
        module.recover_pod(sts, "other-0")
        check(False, "refuses a pod of another set")
    except ValueError:
        check(True, "refuses a pod of another set")
    print(f"{len(passed)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
