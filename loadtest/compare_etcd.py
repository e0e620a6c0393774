#!/usr/bin/env python3
"""Helpers for loadtest/compare-etcd (standard library only).

  compare_etcd.py etcd-leader URL[,URL...]      client URL of etcd's leader
  compare_etcd.py tr-leader URL[,URL...]        taskraft's leader URL (GET /api/cluster)
  compare_etcd.py tr-state URL[,URL...]         {"leader_id", "term"} as JSON
  compare_etcd.py tr-seq URL                    the last event seq (linearizable list)
  compare_etcd.py etcd-count URL PREFIX         keys under PREFIX (linearizable)
  compare_etcd.py descendants PID               PIDs of PID's descendants (one per line)
  compare_etcd.py quiet PCT MAXWAIT PID...      wait until processes other than PIDs use < PCT% of a core
  compare_etcd.py snap OUT ETCD_URL TR_URL ETCD_PIDS TR_PIDS   CPU and cluster snapshot (PIDS comma-separated)
  compare_etcd.py record BEFORE AFTER RESULT TIME META CONTAM  one results.jsonl line
  compare_etcd.py summarize results.jsonl       the Markdown comparison table
  compare_etcd.py failover SYSTEM LEADER_PID LEADER_URL URLS [EVERY_MS]  kill -9 the leader, time the next acknowledged write
  compare_etcd.py rss LABEL PID...              VmRSS/VmHWM of PIDs as JSON
  compare_etcd.py rss-record SYSTEM N BEFORE AFTER NAME=PID...  one memory line for extras.jsonl
  compare_etcd.py extras extras.jsonl           Markdown for the failover and memory sections
"""
import base64
import json
import os
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

TCK = os.sysconf("SC_CLK_TCK")


def http(url, data=None, timeout=5, method=None):
    body = None if data is None else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"} if body else {}
    # taskraft's api needs a credential (the demo's service token); etcd's
    # gateway is sent none, as it would read one as an etcd auth token.
    token = os.environ.get("TASKRAFT_TOKEN")
    if token and "/api/" in url:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def b64(s):
    return base64.b64encode(s.encode()).decode()


# ---------------------------------------------------------------- clusters

def cmd_etcd_leader(urls):
    urls = urls.split(",")
    ids = {}
    leader = None
    for u in urls:
        try:
            st = json.loads(http(u + "/v3/maintenance/status", {})[2])
        except Exception:
            continue
        ids[st.get("header", {}).get("member_id")] = u
        leader = leader or st.get("leader")
    if leader in ids:
        print(ids[leader])
        return 0
    print("no etcd leader found", file=sys.stderr)
    return 1


def tr_cluster(urls):
    for u in urls.split(","):
        try:
            return json.loads(http(u + "/api/cluster", timeout=3)[2])
        except Exception:
            continue
    return None


def cmd_tr_leader(urls):
    c = tr_cluster(urls)
    if c and c.get("leader_url"):
        print(c["leader_url"])
        return 0
    print("no taskraft leader found", file=sys.stderr)
    return 1


def cmd_tr_state(urls):
    c = tr_cluster(urls) or {}
    print(json.dumps({"leader_id": c.get("leader_id"), "term": c.get("term")}))
    return 0


def tr_seq(url):
    status, headers, _ = http(url + "/api/tasks?limit=1", timeout=10)
    for k, v in headers.items():
        if k.lower() == "x-taskraft-seq":
            return int(v)
    return -1


def cmd_tr_seq(url):
    print(tr_seq(url))
    return 0


def cmd_etcd_count(url, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    r = json.loads(http(url + "/v3/kv/range", {"key": b64(prefix), "range_end": b64(end),
                                               "count_only": True}, timeout=30)[2])
    print(int(r.get("count", 0)))
    return 0


# ---------------------------------------------------------------- CPU

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def cmd_descendants(pid):
    kids, out, todo = children_map(), [], [int(pid)]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    print("\n".join(str(p) for p in out))
    return 0


def proc_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return {"busy": user + nice + system + irq + softirq + steal, "total": sum(v[:8]),
            "steal": steal, "iowait": iowait}


def pid_cpu(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0


def cmd_quiet(pct, maxwait, pids):
    """Wait (bounded) until processes other than ours use < pct% of one core over 3 s."""
    pct, maxwait = float(pct), float(maxwait)
    t0 = time.time()
    while True:
        a, pa = proc_stat(), sum(pid_cpu(p) for p in pids)
        time.sleep(3)
        b, pb = proc_stat(), sum(pid_cpu(p) for p in pids)
        secs = (b["total"] - a["total"]) / TCK / os.cpu_count()
        other = ((b["busy"] - a["busy"]) - (pb - pa)) / TCK / max(secs, 1e-9) * 100
        waited = time.time() - t0
        if other < pct or waited >= maxwait:
            print(json.dumps({"quiet_ok": other < pct, "quiet_wait_s": round(waited, 1),
                              "other_cpu_pct_before": round(other, 1)}))
            return 0


ETCD_METRICS = ("etcd_server_leader_changes_seen_total",
                "etcd_disk_wal_fsync_duration_seconds_count",
                "etcd_disk_wal_fsync_duration_seconds_sum")


def etcd_metrics(url):
    out = {}
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                name = line.split(" ")[0]
                if name in ETCD_METRICS:
                    out[name] = float(line.split(" ")[1])
    except Exception as e:
        out["error"] = str(e)
    return out


def pids_of(arg):
    return [p for p in arg.split(",") if p]


def cmd_snap(out, etcd_url, tr_url, etcd_pids, tr_pids):
    snap = {"t": time.time(), "stat": proc_stat(),
            "etcd": {p: pid_cpu(p) for p in pids_of(etcd_pids)},
            "taskraft": {p: pid_cpu(p) for p in pids_of(tr_pids)},
            "loadavg": open("/proc/loadavg").read().split()[:3]}
    if etcd_url != "-":
        snap["etcd_metrics"] = etcd_metrics(etcd_url)
    if tr_url != "-":
        c = tr_cluster(tr_url) or {}
        snap["tr_state"] = {"leader_id": c.get("leader_id"), "term": c.get("term")}
        try:
            snap["tr_seq"] = tr_seq(tr_url)
        except Exception:
            snap["tr_seq"] = None
    with open(out, "w") as f:
        json.dump(snap, f)
    return 0


# ---------------------------------------------------------------- records

def parse_wrk(path):
    res = {}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("RESULT "):
                for kv in line.split()[1:]:
                    k, v = kv.split("=")
                    res[k] = float(v)
            if "Non-2xx or 3xx responses" in line:
                res["non2xx"] = int(line.split(":")[1])
    if "rps" not in res:
        return {"parse_error": True}
    errors = sum(int(res.get(k, 0)) for k in
                 ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return {"rps": res["rps"], "p50_ms": res["p50_ms"], "p90_ms": res["p90_ms"],
            "p99_ms": res["p99_ms"], "max_ms": res["max_ms"], "ok": int(res["requests"]) - errors,
            "errors": errors, "non2xx": res.get("non2xx", 0), "requests": int(res["requests"])}


def parse_loadtest(path):
    try:
        d = json.load(open(path))
    except Exception:
        return {"parse_error": True}
    t = d["total"]
    lat = t["latency_ms"]
    return {"rps": t["ok_per_s"], "p50_ms": lat["p50"], "p90_ms": lat["p90"], "p99_ms": lat["p99"],
            "p999_ms": lat["p999"], "max_ms": lat["max"], "ok": t["ok"], "errors": t["errors"],
            "by_status": t["by_status"], "run_tag": d.get("run_tag"),
            "client_cpu_s": d.get("client_cpu_s"), "client_wall_s": d.get("wall_s")}


def cmd_record(before, after, result, time_out, meta, contam_pct="20"):
    a, b = json.load(open(before)), json.load(open(after))
    rec = json.loads(meta)
    rec.update(parse_loadtest(result) if rec["tool"] == "loadtest" else parse_wrk(result))
    wall = b["t"] - a["t"]
    busy = (b["stat"]["busy"] - a["stat"]["busy"]) / TCK

    def group(name):
        return sum(b[name].get(p, 0) - a[name].get(p, 0) for p in a[name]) / TCK
    etcd, tr = group("etcd"), group("taskraft")
    try:
        u, s, _ = open(time_out).read().split()[-3:]
        client = float(u) + float(s)
    except Exception:
        client = float(rec.get("client_cpu_s") or 0.0)
    active, idle = (etcd, tr) if rec["system"] == "etcd" else (tr, etcd)
    rec.update({
        "wall_s": round(wall, 2),
        "cpu_busy_pct": round(busy / wall * 100, 1),
        "cpu_server_pct": round(active / wall * 100, 1),       # the system under test
        "cpu_idle_peer_pct": round(idle / wall * 100, 1),      # the other cluster, idle meanwhile
        "cpu_client_pct": round(client / wall * 100, 1),
        "cpu_other_pct": round(max(busy - etcd - tr - client, 0) / wall * 100, 1),
        "cpu_steal_pct": round((b["stat"]["steal"] - a["stat"]["steal"]) / TCK / wall * 100, 1),
        "loadavg_before": a["loadavg"][0],
    })
    rec["clean"] = rec["cpu_other_pct"] < float(contam_pct)
    if rec.get("parse_error"):
        rec["clean"] = False  # the tool failed: no figures, try again
    if rec.get("rps"):
        rec["server_cpu_us_per_op"] = round(active / wall / rec["rps"] * 1e6)
    if rec["system"] == "etcd":
        ma, mb = a.get("etcd_metrics", {}), b.get("etcd_metrics", {})

        def d(k):
            return mb.get(k, 0) - ma.get(k, 0)
        rec["leader_changes"] = int(d("etcd_server_leader_changes_seen_total"))
        fs = d("etcd_disk_wal_fsync_duration_seconds_count")
        rec["wal_fsyncs"] = int(fs)
        if fs and rec.get("op") == "write" and rec.get("rps"):
            rec["writes_per_fsync"] = round(rec["rps"] * wall / fs, 1)
    else:
        sa, sb = a.get("tr_state", {}), b.get("tr_state", {})
        rec["leader_changes"] = int(sa.get("leader_id") != sb.get("leader_id")
                                    or sa.get("term") != sb.get("term"))
        if a.get("tr_seq") is not None and b.get("tr_seq") is not None:
            rec["events_committed"] = b["tr_seq"] - a["tr_seq"]
    # Every acknowledged write must be in the store: etcd keys under the run's prefix
    # (counted after the run), taskraft events committed during the run (warm-up included).
    if rec.get("op") == "write" and "ok" in rec:
        found = rec.get("keys_in_store") if rec["system"] == "etcd" else rec.get("events_committed")
        if found is not None and found >= 0:
            rec["verify"] = found >= rec["ok"]
            rec["verify_detail"] = "%s found for %s acknowledged" % (found, rec["ok"])
    print(json.dumps(rec))
    return 0


def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else None


def fmt(v, f):
    return "n/a" if v is None else f % v


def ratio(a, b, f="%.2f×"):
    return "n/a" if not a or b is None else f % (b / a)


def cmd_summarize(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    cases, groups = [], {}
    for r in rows:
        key = (r["case"], r["tool"])
        if key not in cases:
            cases.append(key)
        groups.setdefault(key + (r["system"],), []).append(r)
    print("| case | tool | etcd req/s | taskraft req/s | taskraft/etcd | etcd p50 ms | taskraft p50 ms | "
          "taskraft/etcd | etcd p99 ms | taskraft p99 ms | taskraft/etcd | clean runs (etcd, taskraft) | "
          "errors (etcd, taskraft) | leader changes | server CPU µs/op (etcd, taskraft) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes, unclean = [], []
    for case, tool in cases:
        sides = {}
        for system in ("etcd", "taskraft"):
            allrs = groups.get((case, tool, system), [])
            clean = [r for r in allrs if r.get("clean")]
            rs = clean or allrs  # medians over clean runs; over all if none was clean
            sides[system] = {
                "n": "%d/%d" % (len(clean), len(allrs)),
                "rps": med(rs, "rps"), "p50": med(rs, "p50_ms"), "p99": med(rs, "p99_ms"),
                "errors": sum(int(r.get("errors", 0)) for r in rs),
                "lc": sum(int(r.get("leader_changes", 0)) for r in rs),
                "cpu": med(rs, "server_cpu_us_per_op"),
                "rng": (min((r["rps"] for r in rs if r.get("rps") is not None), default=None),
                        max((r["rps"] for r in rs if r.get("rps") is not None), default=None)),
            }
            if allrs and not clean:
                unclean.append("%s %s (%s)" % (case, system, tool))
            for r in rs:
                if r.get("verify") is False:
                    notes.append("%s %s run %s: acknowledged writes not all found (%s)"
                                 % (case, system, r.get("run"), r.get("verify_detail")))
        e, t = sides["etcd"], sides["taskraft"]
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s, %s | %d, %d | %d, %d | %s, %s |" % (
            case, tool, fmt(e["rps"], "%.0f"), fmt(t["rps"], "%.0f"), ratio(e["rps"], t["rps"]),
            fmt(e["p50"], "%.2f"), fmt(t["p50"], "%.2f"), ratio(e["p50"], t["p50"]),
            fmt(e["p99"], "%.2f"), fmt(t["p99"], "%.2f"), ratio(e["p99"], t["p99"]),
            e["n"], t["n"], e["errors"], t["errors"], e["lc"], t["lc"],
            fmt(e["cpu"], "%.0f"), fmt(t["cpu"], "%.0f")))
    print()
    print("Medians of the clean runs (other processes < the contamination threshold during the run). "
          "Ratios are taskraft ÷ etcd: above 1 is better for req/s, worse for latency.")
    if unclean:
        notes.insert(0, "CONTENDED, no clean run (medians over contended runs; do not use): "
                     + ", ".join(unclean))
    for n in notes:
        print("- " + n)
    return 0


# ---------------------------------------------------------------- failover

def cmd_failover(system, leader_pid, leader_url, urls, every_ms="10", settle="1.5", limit="30"):
    """Open loop: a new write every EVERY_MS to the surviving nodes (alternating), each in its own
    worker with a 5 s timeout, so a write stuck on the dead leader does not hold back the next
    one. After SETTLE s, kill -9 the leader; report the time from the kill to the first
    acknowledgement of a write *sent after the kill* (the outage a client sees)."""
    from concurrent.futures import ThreadPoolExecutor
    survivors = [u for u in urls.split(",") if u.rstrip("/") != leader_url.rstrip("/")]
    log, lock = [], threading.Lock()
    filler = ("lorem ipsum dolor sit amet " * 10)[:150]

    def write(url, n):
        t0 = time.monotonic()
        try:
            if system == "etcd":
                key = "failover/%d/%d" % (os.getpid(), n)
                val = json.dumps({"title": "failover %d" % n, "description": filler})
                status = http(url + "/v3/kv/put", {"key": b64(key), "value": b64(val)}, timeout=5)[0]
            else:
                status = http(url + "/api/tasks", {"title": "failover %d" % n, "description": filler},
                              timeout=5)[0]
        except urllib.error.HTTPError as e:
            status = e.code
        except Exception:
            status = 0
        with lock:
            log.append((t0, time.monotonic(), status))

    # enough workers that writes stuck on the dead leader (up to 5 s) never hold back new ones
    pool = ThreadPoolExecutor(max_workers=1000)
    start = time.monotonic()
    killed, first, n = None, None, 0
    step = float(every_ms) / 1e3
    while True:
        now = time.monotonic()
        if killed is None and now - start >= float(settle):
            killed = time.monotonic()
            os.kill(int(leader_pid), signal.SIGKILL)
        if killed is not None:
            with lock:
                oks = [t1 for (t0, t1, st) in log if 200 <= st < 300 and t0 >= killed]
            if oks and first is None:
                first = min(oks)
            if (first is not None and now - first > 0.5) or now - killed > float(limit):
                break
        pool.submit(write, survivors[n % len(survivors)], n)
        n += 1
        time.sleep(max(0.0, start + n * step - time.monotonic()))
    pool.shutdown(wait=True)
    with lock:
        entries = list(log)
    if first is None:
        oks = [t1 for (t0, t1, st) in entries if 200 <= st < 300 and t0 >= killed]
        first = min(oks) if oks else None
    any_after = [t1 for (t0, t1, st) in entries if 200 <= st < 300 and t1 >= killed]
    sent_after = [e for e in entries if e[0] >= killed]
    print(json.dumps({
        "section": "failover", "system": system, "killed_pid": int(leader_pid), "leader_url": leader_url,
        "kill_to_first_ack_ms": None if first is None else round((first - killed) * 1e3, 1),
        "kill_to_any_ack_ms": round((min(any_after) - killed) * 1e3, 1) if any_after else None,
        "writes_every_ms": float(every_ms),
        "acks_before_kill": sum(1 for (t0, t1, st) in entries if 200 <= st < 300 and t1 < killed),
        "writes_sent_after_kill": len(sent_after),
        "failed_writes_sent_after_kill": sum(1 for e in sent_after if not 200 <= e[2] < 300),
        "failed_statuses": sorted({e[2] for e in sent_after if not 200 <= e[2] < 300}),
    }))
    return 0 if first is not None else 1


# ---------------------------------------------------------------- memory

def vm(pid, field):
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cmd_rss(label, *pids):
    print(json.dumps({"label": label, "pids": {p: {"rss_kib": vm(p, "VmRSS"), "hwm_kib": vm(p, "VmHWM")}
                                               for p in pids}}))
    return 0


def cmd_rss_record(system, records, before, after, *named):
    """One extras.jsonl line: NAME=PID pairs, RSS before (file) and after (file) the load."""
    b, a = json.load(open(before)), json.load(open(after))
    procs = {}
    for item in named:
        name, pid = item.split("=", 1)
        procs[name] = [b["pids"].get(pid), a["pids"].get(pid)]
    print(json.dumps({"section": "rss", "system": system, "records": int(records), "processes": procs}))
    return 0


def cmd_extras(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    fo = [r for r in rows if r.get("section") == "failover"]
    if fo:
        print("### Leader kill -9 → next acknowledged write\n")
        print("| system | runs | kill → first ack of a write sent after the kill, ms: median (min–max) | "
              "writes sent after the kill that failed (median) | their statuses |")
        print("|---|---|---|---|---|")
        for system in ("etcd", "taskraft"):
            rs = [r for r in fo if r["system"] == system]
            if not rs:
                continue
            v = [r["kill_to_first_ack_ms"] for r in rs if r.get("kill_to_first_ack_ms") is not None]
            f = [r["failed_writes_sent_after_kill"] for r in rs]
            st = sorted({s for r in rs for s in r.get("failed_statuses", [])})
            print("| %s | %d (%d recovered) | %s | %s | %s |" % (
                system, len(rs), len(v),
                ("%.0f (%.0f–%.0f)" % (statistics.median(v), min(v), max(v))) if v else "none recovered",
                ("%.0f" % statistics.median(f)) if f else "n/a",
                ", ".join("no answer" if s == 0 else str(s) for s in st) or "-"))
        print("\nOpen loop: a new write every %g ms to the two surviving nodes, 5 s timeout each. "
              "Election timeouts: etcd 1000 ms (heartbeat 100 ms); taskraft 12 ticks × 50 ms = 600 ms "
              "(raft-rs randomizes in [600, 1200) ms)." % fo[0].get("writes_every_ms", 10))
        print()
    mem = [r for r in rows if r.get("section") == "rss"]
    if mem:
        print("### Memory (VmRSS) with many records\n")
        print("| system | records | process | RSS before, MiB | RSS after, MiB | peak (VmHWM), MiB |")
        print("|---|---|---|---|---|---|")
        for r in mem:
            for name, (b, a) in r["processes"].items():
                def mib(x, k):
                    return "n/a" if not x or x.get(k) is None else "%.0f" % (x[k] / 1024)
                print("| %s | %d | %s | %s | %s | %s |" % (r["system"], r["records"], name,
                                                          mib(b, "rss_kib"), mib(a, "rss_kib"),
                                                          mib(a, "hwm_kib")))
        print()
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"etcd-leader": cmd_etcd_leader, "tr-leader": cmd_tr_leader, "tr-state": cmd_tr_state,
          "tr-seq": cmd_tr_seq, "etcd-count": cmd_etcd_count, "descendants": cmd_descendants,
          "quiet": lambda *a: cmd_quiet(a[0], a[1], a[2:]), "snap": cmd_snap, "record": cmd_record,
          "summarize": cmd_summarize, "failover": cmd_failover, "rss": cmd_rss, "rss-record": cmd_rss_record,
          "extras": cmd_extras}[cmd]
    sys.exit(fn(*args))
