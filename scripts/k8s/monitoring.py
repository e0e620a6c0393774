#!/usr/bin/env python3
"""Checks k8s/monitoring/ against what a taskraft node exports.

    python3 scripts/k8s/monitoring.py            # check (CI: scripts/k8s-validate)
    python3 scripts/k8s/monitoring.py --write    # regenerate prometheusrule.yaml
    python3 scripts/k8s/monitoring.py --scrape FILE   # also check against a real scrape

Checks:
  1. every metric a rule or a dashboard panel uses is one the node exports:
     the README's Metrics table, the list tests/metrics.rs checks against a
     real cluster's scrape (histograms add _bucket/_sum/_count), or, with
     --scrape, the names in a saved /metrics;
  2. prometheusrule.yaml (for the Prometheus Operator) holds exactly the
     groups of rules.yaml (for promtool and plain Prometheus);
  3. every alert in rules.yaml has a unit test in rules.test.yaml;
  4. the ServiceMonitor selects a Service of k8s/ by its labels, on a port
     that Service names, at /metrics;
  5. the dashboard is valid JSON with unique panel ids and a query in every
     panel.
Exits non-zero on any failure.
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "k8s" / "monitoring"
RULES = MON / "rules.yaml"
OPERATOR_RULES = MON / "prometheusrule.yaml"
TESTS = MON / "rules.test.yaml"
DASHBOARD = MON / "dashboard.json"
SERVICE_MONITOR = MON / "servicemonitor.yaml"

# Series Prometheus itself makes for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "inf", "nan",
}

HEADER = """\
# Generated from rules.yaml by `python3 scripts/k8s/monitoring.py --write`;
# do not edit here. The same alerts as a PrometheusRule, for clusters that
# run the Prometheus Operator (its ruleSelector must match these labels).
"""


def documented_metrics():
    """Names in the README's Metrics table, histograms expanded."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Metrics and alerts", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.split("|")]
        name = cells[1].strip("`")
        names.add(name)
        if cells[2] == "histogram":
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    if len(names) < 20:
        sys.exit(f"README metrics table not found or too short: {sorted(names)}")
    return names


def scraped_metrics(path):
    names = set()
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr
    )
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group(0)
        rest = expr[match.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        # A duration or number suffix (5m, 1e3) is not a name.
        if match.start() > 0 and expr[match.start() - 1].isdigit():
            continue
        names.add(word)
    return names


def rule_exprs(groups):
    for group in groups:
        for rule in group["rules"]:
            yield rule.get("alert") or rule.get("record"), rule["expr"]


def dashboard_exprs(dashboard):
    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r}", target.get("expr", "")
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        if var.get("type") == "query" and query:
            # label_values(metric, label): the metric is the first argument.
            inner = re.sub(r"^\s*label_values\(\s*([^,)]*).*$", r"\1", query)
            yield f"variable {var.get('name')!r}", inner


def operator_rule(groups):
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "taskraft",
            "labels": {
                "app.kubernetes.io/name": "taskraft",
                "app.kubernetes.io/instance": "taskraft",
                "prometheus": "k8s",
                "role": "alert-rules",
            },
        },
        "spec": {"groups": groups},
    }


def main(argv):
    groups = yaml.safe_load(RULES.read_text())["groups"]
    if "--write" in argv:
        OPERATOR_RULES.write_text(
            HEADER + yaml.safe_dump(operator_rule(groups), sort_keys=False, width=100)
        )
        print(f"wrote {OPERATOR_RULES.relative_to(ROOT)}")
        return 0

    failures = []
    exported = documented_metrics() | PROMETHEUS_OWN
    if "--scrape" in argv:
        scraped = scraped_metrics(argv[argv.index("--scrape") + 1]) | PROMETHEUS_OWN
        missing = sorted(n for n in documented_metrics() if n not in scraped)
        if missing:
            failures.append(f"documented but not in the scrape: {missing}")
        exported &= scraped
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    dashboard = json.loads(DASHBOARD.read_text())

    uses = list(rule_exprs(groups)) + list(dashboard_exprs(dashboard))
    checked = 0
    for where, expr in uses:
        names = metric_names(expr)
        if not names:
            failures.append(f"{where}: reads no metric: {expr!r}")
        for name in sorted(names - exported - recorded):
            failures.append(f"{where}: uses {name}, which taskraft does not export")
        checked += len(names)

    operator = yaml.safe_load(OPERATOR_RULES.read_text())
    if operator != operator_rule(groups):
        failures.append(
            "prometheusrule.yaml differs from rules.yaml: run "
            "python3 scripts/k8s/monitoring.py --write"
        )

    tests = yaml.safe_load(TESTS.read_text())
    tested = {
        t["alertname"]
        for test in tests["tests"]
        for t in test.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    for alert in sorted(alerts - tested):
        failures.append(f"alert {alert} has no unit test that fires it")

    monitor = yaml.safe_load(SERVICE_MONITOR.read_text())
    services = [
        doc
        for doc in yaml.safe_load_all((ROOT / "k8s" / "services.yaml").read_text())
        if doc and doc.get("kind") == "Service"
    ]
    want = monitor["spec"]["selector"]["matchLabels"]
    matched = [
        s for s in services
        if all(s["metadata"].get("labels", {}).get(k) == v for k, v in want.items())
    ]
    if len(matched) != 1:
        failures.append(
            f"the ServiceMonitor must select exactly one Service (else every node "
            f"is scraped twice); it selects {[s['metadata']['name'] for s in matched]}"
        )
    else:
        ports = {p["name"] for p in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint.get("port") not in ports:
                failures.append(f"ServiceMonitor port {endpoint.get('port')} not in {ports}")
            if endpoint.get("path", "/metrics") != "/metrics":
                failures.append(f"ServiceMonitor path {endpoint.get('path')}")
        if not matched[0]["spec"].get("publishNotReadyAddresses"):
            failures.append(
                "the scraped Service must publish not-ready pods: an unready "
                "node is the one to alert on"
            )

    ids = []

    def collect(items):
        for panel in items:
            ids.append(panel.get("id"))
            if panel.get("type") != "row" and not panel.get("targets"):
                failures.append(f"dashboard panel {panel.get('title')!r} has no query")
            collect(panel.get("panels", []))

    collect(dashboard.get("panels", []))
    if len(ids) != len(set(ids)) or None in ids:
        failures.append(f"dashboard panel ids must be unique: {ids}")

    for failure in failures:
        print("FAILED:", failure)
    print(
        f"monitoring: {len(alerts)} alerts, {len(ids)} panels, "
        f"{checked} metric uses checked against {len(exported)} exported names; "
        f"{len(failures)} failure(s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
