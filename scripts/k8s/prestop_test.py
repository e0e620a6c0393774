#!/usr/bin/env python3
"""Offline tests of the preStop hook (scripts/k8s/taskraft-prestop).

One fake HTTP server on 127.0.0.1 plays both the Kubernetes API (GET of the
StatefulSet) and the taskraft members (GET /api/cluster, POST
/api/cluster/leader, DELETE /api/cluster/members/{id}). Members are named
http://taskraft-<i>.localhost:<port>, which curl resolves to the loopback by
itself. Needs only python3, sh, curl and jq. Prints one line per scenario
and a closing 'N passed, N failed'; exits non-zero on any failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "taskraft-prestop")
SA_TOKEN = "sa-token-123"
API_TOKEN = "api-token-456"


class Cluster:
    """The state the fake server answers from, one scenario at a time."""

    def __init__(self, replicas=3, api_status=200, size=5, me=1, leader=1,
                 unreachable=(), conflicts=0, never_accept=False, local_down=False):
        self.replicas = replicas
        self.api_status = api_status
        self.me = me  # the node behind 127.0.0.1 (the pod running the hook)
        self.leader = leader
        self.members = {i: {"id": i, "role": "voter", "reachable": i not in unreachable}
                        for i in range(1, size + 1)}
        self.conflicts = conflicts
        self.never_accept = never_accept
        self.local_down = local_down
        self.requests = []  # (method, host, path, authorization)
        self.lock = threading.Lock()
        self.port = 0

    def view(self):
        members = [dict(m, url="http://taskraft-%d.localhost:%d" % (i - 1, self.port),
                        raft_addr="taskraft-%d.localhost:9080" % (i - 1))
                   for i, m in sorted(self.members.items())]
        return {"node_id": self.me, "role": "leader" if self.leader == self.me else "follower",
                "leader_id": self.leader, "term": 3, "members": members}


def make_handler(cluster):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body=None):
            data = json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method):
            c = cluster
            host = self.headers.get("Host", "")
            with c.lock:
                c.requests.append((method, host, self.path, self.headers.get("Authorization")))
            if self.path.startswith("/apis/apps/v1/namespaces/"):
                if self.path != "/apis/apps/v1/namespaces/ns1/statefulsets/taskraft":
                    return self.reply(404)
                if c.api_status != 200:
                    return self.reply(c.api_status, {"kind": "Status"})
                spec = {"serviceName": "taskraft-peers"}
                if c.replicas is not None:
                    spec["replicas"] = c.replicas
                return self.reply(200, {"kind": "StatefulSet", "spec": spec,
                                        "status": {"replicas": 5}})
            if c.local_down and host.startswith("127.0.0.1"):
                return self.reply(503, {"error": {"code": "unavailable"}})
            with c.lock:
                if method == "GET" and self.path.startswith("/api/cluster"):
                    return self.reply(200, c.view())
                if method == "POST" and self.path == "/api/cluster/leader":
                    length = int(self.headers.get("Content-Length", "0"))
                    to = json.loads(self.rfile.read(length))["to"]
                    c.leader = to
                    return self.reply(202, {})
                if method == "DELETE" and self.path.startswith("/api/cluster/members/"):
                    victim = int(self.path.rsplit("/", 1)[1])
                    if c.never_accept or c.conflicts > 0:
                        c.conflicts -= 1
                        return self.reply(409, {"error": {"code": "membership_change_pending"}})
                    if victim not in c.members:
                        return self.reply(404, {"error": {"code": "not_found"}})
                    # Applied a little later, as a committed conf change is.
                    threading.Timer(0.5, lambda: c.members.pop(victim, None)).start()
                    return self.reply(202, {})
            return self.reply(404)

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_DELETE(self):
            self.handle_any("DELETE")

    return Handler


def run_hook(cluster, pod, budget=20, initial=3):
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(cluster))
    cluster.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as sa:
            with open(os.path.join(sa, "token"), "w") as f:
                f.write(SA_TOKEN)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "TASKRAFT_POD_NAME": pod,
                "POD_NAMESPACE": "ns1",
                "TASKRAFT_INITIAL_CLUSTER_SIZE": str(initial),
                "TASKRAFT_PEER_SERVICE": "localhost",
                "TASKRAFT_HTTP_ADDR": "0.0.0.0:%d" % cluster.port,
                "TASKRAFT_API_TOKEN": API_TOKEN,
                "PRESTOP_KUBE_API": "http://127.0.0.1:%d" % cluster.port,
                "PRESTOP_SA_DIR": sa,
                "PRESTOP_BUDGET_SECONDS": str(budget),
                "PRESTOP_SLEEP_SECONDS": "0",
                "PRESTOP_NO_PID1_LOG": "1",
            }
            start = time.monotonic()
            proc = subprocess.run(["sh", HOOK], env=env, capture_output=True, text=True,
                                  timeout=budget + 15)
            elapsed = time.monotonic() - start
    finally:
        server.shutdown()
        server.server_close()
    return proc.returncode, proc.stdout + proc.stderr, elapsed


def writes(cluster):
    return [(m, p) for (m, _, p, _) in cluster.requests if m != "GET"]


SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


@scenario
def rolling_restart_keeps_membership():
    c = Cluster(replicas=3, size=3, me=2)
    rc, out, _ = run_hook(c, "taskraft-1")
    assert rc == 0, out
    assert "restart" in out, out
    assert writes(c) == [], writes(c)
    kube = [r for r in c.requests if r[2].startswith("/apis/")]
    assert kube and kube[0][3] == "Bearer " + SA_TOKEN, kube


@scenario
def scale_to_zero_is_a_pause():
    c = Cluster(replicas=0, size=3, me=3)
    rc, out, _ = run_hook(c, "taskraft-2")
    assert rc == 0 and writes(c) == [], (rc, out, writes(c))


@scenario
def below_initial_size_keeps_initial_voters():
    # 5 -> 2: ordinal 2 is an initial voter (initial size 3): it stays a member.
    c = Cluster(replicas=2, size=5, me=3)
    rc, out, _ = run_hook(c, "taskraft-2")
    assert rc == 0 and writes(c) == [], (rc, out, writes(c))


@scenario
def api_forbidden_means_restart():
    c = Cluster(api_status=403, replicas=3, size=5, me=5)
    rc, out, _ = run_hook(c, "taskraft-4")
    assert rc == 0 and writes(c) == [], (rc, out, writes(c))
    assert "HTTP 403" in out, out


@scenario
def missing_statefulset_means_restart():
    c = Cluster(replicas=3, size=5, me=5)
    rc, out, _ = run_hook(c, "other-4")
    assert rc == 0 and writes(c) == [], (rc, out, writes(c))


@scenario
def scale_down_follower_removes_itself_after_conflict():
    c = Cluster(replicas=3, size=5, me=5, leader=1, conflicts=2)
    rc, out, _ = run_hook(c, "taskraft-4")
    assert rc == 0, out
    deletes = [r for r in c.requests if r[0] == "DELETE"]
    assert len(deletes) == 3, deletes
    assert all(r[2] == "/api/cluster/members/5" for r in deletes), deletes
    assert all(r[3] == "Bearer " + API_TOKEN for r in deletes), deletes
    assert 5 not in c.members, c.members
    assert not any(r[0] == "POST" for r in c.requests), c.requests
    assert "out of the cluster" in out, out


@scenario
def scale_down_leader_hands_over_to_a_staying_voter_first():
    # taskraft-3 (id 4) leads; ids 4 and 5 leave; id 1 is unreachable.
    c = Cluster(replicas=3, size=5, me=4, leader=4, unreachable=(1,))
    rc, out, _ = run_hook(c, "taskraft-3")
    assert rc == 0, out
    w = writes(c)
    assert w[0] == ("POST", "/api/cluster/leader"), w
    assert c.leader == 2, c.leader
    assert ("DELETE", "/api/cluster/members/4") in w, w
    assert w.index(("DELETE", "/api/cluster/members/4")) > 0, w
    assert 4 not in c.members


@scenario
def scale_down_with_the_local_node_down_goes_through_the_peers():
    c = Cluster(replicas=3, size=5, me=5, leader=1, local_down=True)
    rc, out, _ = run_hook(c, "taskraft-4")
    assert rc == 0, out
    deletes = [r for r in c.requests if r[0] == "DELETE"]
    assert deletes and deletes[-1][1].startswith("taskraft-0.localhost"), deletes
    assert deletes[-1][2] == "/api/cluster/members/5", deletes
    assert 5 not in c.members


@scenario
def never_blocks_past_its_budget():
    c = Cluster(replicas=3, size=5, me=5, never_accept=True)
    rc, out, elapsed = run_hook(c, "taskraft-4", budget=3)
    assert rc != 0, out
    assert elapsed < 3 + 6, elapsed
    assert "gave up" in out, out


def main():
    passed = failed = 0
    for fn in SCENARIOS:
        try:
            fn()
        except AssertionError as e:
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e))
        else:
            passed += 1
            print("ok   %s" % fn.__name__)
    print("prestop: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
