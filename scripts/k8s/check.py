#!/usr/bin/env python3
"""Consistency checks on the rendered Kubernetes manifests (and the Dockerfile)
that schema validation cannot see: references between objects, the node's
environment contract, probes, security settings, time budgets.

Usage: check.py RENDERED.yaml DOCKERFILE
Prints each failed check, then 'k8s-check: N passed, N failed'; exits 1 on
any failure. Needs PyYAML (installed with kubernetes-validate).
"""

import re
import sys

import yaml

# What the node does on SIGTERM (leadership handover <= 3 s, draining
# <= 10 s), added to the preStop budget when checking the grace period.
NODE_SHUTDOWN_SECONDS = 13

CONTRACT_ENV = [
    "TASKRAFT_POD_NAME",
    "TASKRAFT_PEER_SERVICE",
    "TASKRAFT_INITIAL_CLUSTER_SIZE",
    "TASKRAFT_HTTP_ADDR",
    "TASKRAFT_RAFT_ADDR",
    "TASKRAFT_MYSQL_URL",
    "TASKRAFT_DATA_DIR",
]


class Checks:
    def __init__(self, docs, dockerfile):
        self.docs = docs
        self.dockerfile = dockerfile
        self.by_kind = {}
        for d in docs:
            self.by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        self.passed = 0
        self.failed = 0

    def check(self, name, problems):
        problems = [p for p in problems if p]
        if problems:
            self.failed += 1
            for p in problems:
                print("FAIL %s: %s" % (name, p))
        else:
            self.passed += 1

    def one(self, kind):
        objs = list(self.by_kind.get(kind, {}).values())
        return objs[0] if len(objs) == 1 else None


def subset(a, b):
    return all(b.get(k) == v for k, v in (a or {}).items())


def env_of(container, configmaps, secrets):
    """The container's environment as Kubernetes builds it: envFrom first,
    then env in order, expanding $(VAR) from what is defined so far. Returns
    (values, problems); secret values are returned as '<secret:name/key>'."""
    values, problems = {}, []
    for src in container.get("envFrom", []):
        ref = src.get("configMapRef") or src.get("secretRef")
        pool = configmaps if "configMapRef" in src else secrets
        obj = pool.get(ref["name"])
        if obj is None:
            if not ref.get("optional"):
                problems.append("envFrom %s not rendered" % ref["name"])
            continue
        for k in list(obj.get("data", {})) + list(obj.get("stringData", {})):
            values[src.get("prefix", "") + k] = "<%s:%s>" % (ref["name"], k)
            if "configMapRef" in src:
                values[src.get("prefix", "") + k] = obj["data"][k]
    for e in container.get("env", []):
        if "value" in e:
            def expand(m):
                var = m.group(1)
                if var not in values:
                    problems.append("%s refers to $(%s), not defined before it" % (e["name"], var))
                    return m.group(0)
                return values[var]
            values[e["name"]] = re.sub(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", expand, e["value"])
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "secretKeyRef" in vf or "configMapKeyRef" in vf:
                ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
                pool = secrets if "secretKeyRef" in vf else configmaps
                obj = pool.get(ref["name"])
                # optional: tolerates a missing object, but a rendered object
                # without the key is a typo that silently drops the setting.
                if obj is None and not ref.get("optional"):
                    problems.append("%s: %s not rendered" % (e["name"], ref["name"]))
                if obj is not None and ref["key"] not in {**obj.get("data", {}), **obj.get("stringData", {})}:
                    problems.append("%s: %s has no key %s" % (e["name"], ref["name"], ref["key"]))
                values[e["name"]] = "<secret:%s/%s>" % (ref["name"], ref["key"])
            elif "fieldRef" in vf:
                values[e["name"]] = "<field:%s>" % vf["fieldRef"]["fieldPath"]
            else:
                values[e["name"]] = "<from>"
    return values, problems


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def main():
    rendered, dockerfile_path = sys.argv[1], sys.argv[2]
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    with open(dockerfile_path) as f:
        dockerfile = f.read()
    c = Checks(docs, dockerfile)

    c.check("namespace-agnostic", [
        "%s/%s hard-codes namespace %s" % (d["kind"], d["metadata"]["name"], d["metadata"]["namespace"])
        for d in docs if d["metadata"].get("namespace")])

    sts = c.one("StatefulSet")
    if sts is None:
        c.check("one StatefulSet", ["expected exactly one StatefulSet"])
        return finish(c)
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    services = c.by_kind.get("Service", {})
    configmaps = c.by_kind.get("ConfigMap", {})
    secrets = c.by_kind.get("Secret", {})
    containers = {x["name"]: x for x in pod.get("containers", [])}
    inits = {x["name"]: x for x in pod.get("initContainers", [])}
    node = containers.get("taskraft")
    mysql = inits.get("mysql") or containers.get("mysql")
    if node is None or mysql is None:
        c.check("containers", ["need a `taskraft` container and a `mysql` (sidecar) container"])
        return finish(c)
    named_ports = {p["name"]: p["containerPort"] for p in node.get("ports", [])}

    c.check("statefulset shape", [
        None if subset(spec["selector"]["matchLabels"], labels) else "selector does not match the pod labels",
        None if spec.get("podManagementPolicy") == "Parallel" else "podManagementPolicy is not Parallel",
        None if pod.get("enableServiceLinks") is False else "enableServiceLinks should be false (TASKRAFT_* service env)",
        None if set(named_ports) >= {"http", "raft"} else "taskraft needs ports named http and raft",
    ])

    peers = services.get(spec.get("serviceName"))
    c.check("headless peer service", [
        "serviceName %s is not rendered" % spec.get("serviceName") if peers is None else None,
    ] + ([] if peers is None else [
        None if peers["spec"].get("clusterIP") == "None" else "not headless (clusterIP: None)",
        None if peers["spec"].get("publishNotReadyAddresses") is True else "publishNotReadyAddresses is not true",
        None if {p["name"] for p in peers["spec"]["ports"]} >= {"http", "raft"} else "needs ports http and raft",
    ]))

    svc_problems = []
    for name, svc in services.items():
        if not subset(svc["spec"].get("selector"), labels):
            svc_problems.append("%s: selector does not select the pods" % name)
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            if isinstance(tp, str) and tp not in named_ports:
                svc_problems.append("%s: targetPort %s is not a container port" % (name, tp))
            if isinstance(tp, int) and tp not in named_ports.values():
                svc_problems.append("%s: targetPort %d is not a container port" % (name, tp))
    c.check("services select the pods and their ports", svc_problems)

    pdbs = c.by_kind.get("PodDisruptionBudget", {})
    c.check("pod disruption budget", ["no PodDisruptionBudget"] if not pdbs else [
        None if subset(p["spec"]["selector"]["matchLabels"], labels) else "%s does not select the pods" % n
        for n, p in pdbs.items()] + [
        None if p["spec"].get("maxUnavailable") == 1 else "%s: maxUnavailable is not 1" % n
        for n, p in pdbs.items()])

    sa = pod.get("serviceAccountName")
    rbac = []
    if sa not in c.by_kind.get("ServiceAccount", {}):
        rbac.append("serviceAccountName %s is not rendered" % sa)
    can_get = False
    for rb in c.by_kind.get("RoleBinding", {}).values():
        if not any(s["kind"] == "ServiceAccount" and s["name"] == sa for s in rb.get("subjects", [])):
            continue
        role = c.by_kind.get("Role", {}).get(rb["roleRef"]["name"])
        if role is None:
            rbac.append("RoleBinding %s names a Role that is not rendered" % rb["metadata"]["name"])
            continue
        for rule in role.get("rules", []):
            if ("apps" in rule.get("apiGroups", []) and "statefulsets" in rule.get("resources", [])
                    and "get" in rule.get("verbs", [])
                    and sts["metadata"]["name"] in rule.get("resourceNames", [sts["metadata"]["name"]])):
                can_get = True
    sa_path = "/var/run/secrets/kubernetes.io/serviceaccount"
    if pod.get("automountServiceAccountToken") is False and not any(
            m["mountPath"].rstrip("/") == sa_path for m in node.get("volumeMounts", [])):
        rbac.append("no ServiceAccount token in the taskraft container (%s)" % sa_path)
    if not can_get:
        rbac.append("the ServiceAccount cannot get statefulset %s (preStop needs it)" % sts["metadata"]["name"])
    c.check("preStop RBAC", rbac)

    sec = []
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        sec.append("pod securityContext.runAsNonRoot is not true")
    for x in list(containers.values()) + list(inits.values()):
        sc = x.get("securityContext", {})
        n = x["name"]
        if sc.get("allowPrivilegeEscalation") is not False:
            sec.append("%s: allowPrivilegeEscalation is not false" % n)
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            sec.append("%s: capabilities do not drop ALL" % n)
        if sc.get("readOnlyRootFilesystem") is not True:
            sec.append("%s: readOnlyRootFilesystem is not true" % n)
        if sc.get("runAsUser", 1) == 0:
            sec.append("%s: runs as root" % n)
        res = x.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    sec.append("%s: no %s.%s" % (n, part, r))
    c.check("security contexts and resources", sec)

    vol_names = {v["name"] for v in pod.get("volumes", [])} | {
        v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])}
    vols = []
    for x in list(containers.values()) + list(inits.values()):
        for m in x.get("volumeMounts", []):
            if m["name"] not in vol_names:
                vols.append("%s mounts %s, which is not a volume" % (x["name"], m["name"]))
    for v in pod.get("volumes", []):
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            vols.append("volume %s: ConfigMap %s not rendered" % (v["name"], v["configMap"]["name"]))
    c.check("volumes", vols)

    # Mutual TLS between peers: each peer_tls_* file is a key of a rendered
    # Secret, mounted read-only into the taskraft container only.
    peer_tls = []
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    node_env = {e["name"]: e.get("value") for e in node.get("env", [])}
    for var, key in (("TASKRAFT_PEER_TLS_CA_FILE", "ca.crt"),
                     ("TASKRAFT_PEER_TLS_CERT_FILE", "tls.crt"),
                     ("TASKRAFT_PEER_TLS_KEY_FILE", "tls.key")):
        path = node_env.get(var)
        if not path:
            peer_tls.append("%s is not set on the taskraft container" % var)
            continue
        mounts = [m for m in node.get("volumeMounts", [])
                  if path.startswith(m["mountPath"].rstrip("/") + "/")]
        if not mounts:
            peer_tls.append("%s %s is on no volume mount" % (var, path))
            continue
        m = mounts[0]
        v = volumes.get(m["name"], {})
        secret = secrets.get(v.get("secret", {}).get("secretName"))
        if secret is None:
            peer_tls.append("%s: volume %s is not a rendered Secret" % (var, m["name"]))
            continue
        if m.get("readOnly") is not True:
            peer_tls.append("%s: mount %s is not readOnly" % (var, m["name"]))
        name = path[len(m["mountPath"].rstrip("/")) + 1:]
        if name != key or key not in secret.get("data", {}):
            peer_tls.append("%s: %s is not key %s of Secret %s" % (var, name, key, secret["metadata"]["name"]))
        for x in [mysql] + list(inits.values()):
            if x is not node and any(mm["name"] == m["name"] for mm in x.get("volumeMounts", [])):
                peer_tls.append("%s also mounts the peer TLS Secret" % x["name"])
    c.check("peer TLS files from a Secret", sorted(set(peer_tls)))

    env, env_problems = env_of(node, configmaps, secrets)
    menv, m_problems = env_of(mysql, configmaps, secrets)
    c.check("environment references", env_problems + m_problems)

    contract = ["%s is not set" % k for k in CONTRACT_ENV if k not in env]
    if not contract:
        if env["TASKRAFT_POD_NAME"] != "<field:metadata.name>":
            contract.append("TASKRAFT_POD_NAME is not the pod's metadata.name")
        if not env["TASKRAFT_PEER_SERVICE"].startswith(spec["serviceName"] + ".<field:metadata.namespace>.svc."):
            contract.append("TASKRAFT_PEER_SERVICE %r is not <serviceName>.<namespace>.svc.<domain>"
                            % env["TASKRAFT_PEER_SERVICE"])
        if env["TASKRAFT_INITIAL_CLUSTER_SIZE"] != str(spec.get("replicas")):
            contract.append("TASKRAFT_INITIAL_CLUSTER_SIZE %s differs from replicas %s in the base"
                            % (env["TASKRAFT_INITIAL_CLUSTER_SIZE"], spec.get("replicas")))
        if port_of(env["TASKRAFT_HTTP_ADDR"]) != named_ports.get("http"):
            contract.append("TASKRAFT_HTTP_ADDR port differs from container port http")
        if port_of(env["TASKRAFT_RAFT_ADDR"]) != named_ports.get("raft"):
            contract.append("TASKRAFT_RAFT_ADDR port differs from container port raft")
        # Prometheus scrapes the open metrics listener: with accounts on,
        # the http port's /metrics answers 401.
        if "TASKRAFT_METRICS_ADDR" not in env:
            contract.append("TASKRAFT_METRICS_ADDR is not set (the http port's /metrics needs a token)")
        elif port_of(env["TASKRAFT_METRICS_ADDR"]) != named_ports.get("metrics"):
            contract.append("TASKRAFT_METRICS_ADDR port differs from container port metrics")
        annotations = spec["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/port") != str(named_ports.get("metrics")):
            contract.append("the prometheus.io/port annotation is not the metrics port")
        claims = {v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])}
        if not any(m["name"] in claims and env["TASKRAFT_DATA_DIR"].startswith(m["mountPath"].rstrip("/") + "/")
                   for m in node.get("volumeMounts", [])):
            contract.append("TASKRAFT_DATA_DIR is not on a PersistentVolumeClaim")
        if not any(m["mountPath"].rstrip("/") == "/var/lib/mysql" and m["name"] in claims
                   for m in mysql.get("volumeMounts", [])):
            contract.append("MySQL's /var/lib/mysql is not on a PersistentVolumeClaim")
        m = re.match(r"^mysql://([^:@/]+):([^@]*)@127\.0\.0\.1:3306/([A-Za-z0-9_]+)$", env["TASKRAFT_MYSQL_URL"])
        if not m:
            contract.append("TASKRAFT_MYSQL_URL %r is not mysql://USER:PASSWORD@127.0.0.1:3306/DB"
                            % env["TASKRAFT_MYSQL_URL"])
        else:
            user, password, db = m.groups()
            if menv.get("MYSQL_USER") != user:
                contract.append("TASKRAFT_MYSQL_URL user %s is not the sidecar's MYSQL_USER" % user)
            if password != menv.get("MYSQL_PASSWORD"):
                contract.append("TASKRAFT_MYSQL_URL password is not the sidecar's MYSQL_PASSWORD secret")
            grants = "".join(x.get("data", {}).get(k, "") for x in configmaps.values() for k in x.get("data", {})
                             if k.endswith(".sql") or k.endswith(".sh")).replace("\\`", "`")
            if "`%s`.* TO '%s'@" % (db, user) not in grants:
                contract.append("no GRANT on `%s`.* to '%s' in the MySQL init SQL" % (db, user))
            # Migrations run in an init container with the stronger account.
            migrate = inits.get("migrate")
            if not migrate or migrate.get("args") != ["migrate"]:
                contract.append("no `migrate` init container running `taskraft migrate`")
            else:
                menv2 = {e["name"]: e.get("value", "") for e in migrate.get("env", [])}
                mm = re.match(r"^mysql://([^:@/]+):([^@]*)@127\.0\.0\.1:3306/([A-Za-z0-9_]+)$",
                              menv2.get("TASKRAFT_MYSQL_MIGRATE_URL", ""))
                if not mm or mm.group(3) != db:
                    contract.append("the migrate init container's TASKRAFT_MYSQL_MIGRATE_URL is not the node's database")
                elif "`%s`.* TO '%s'@" % (db, mm.group(1)) not in grants:
                    contract.append("no GRANT on `%s`.* to the migration account '%s'" % (db, mm.group(1)))
    c.check("node environment contract", contract)

    probes = []
    for x in list(containers.values()) + list(inits.values()):
        ports = {p["name"]: p["containerPort"] for p in x.get("ports", [])}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = x.get(kind)
            if not p:
                continue
            for h in ("httpGet", "tcpSocket"):
                if h in p and isinstance(p[h]["port"], str) and p[h]["port"] not in ports:
                    probes.append("%s %s: port %s is not a named port" % (x["name"], kind, p[h]["port"]))
    for kind, path in (("startupProbe", None), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        p = node.get(kind)
        if not p:
            probes.append("taskraft has no %s" % kind)
        elif path and p.get("httpGet", {}).get("path") != path:
            probes.append("taskraft %s is not GET %s" % (kind, path))
    live = node.get("livenessProbe", {})
    if live.get("periodSeconds", 10) * live.get("failureThreshold", 3) < 30:
        probes.append("taskraft livenessProbe restarts after < 30 s of failures: too aggressive")
    if mysql in inits.values():
        if mysql.get("restartPolicy") != "Always":
            probes.append("the mysql init container is not a native sidecar (restartPolicy: Always)")
        if "startupProbe" not in mysql:
            probes.append("the mysql sidecar has no startupProbe: taskraft could start before MySQL")
    c.check("probes", probes)

    term = []
    grace = pod.get("terminationGracePeriodSeconds", 30)
    budget = int(env.get("PRESTOP_BUDGET_SECONDS", "60"))
    cmd = node.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if not cmd:
        term.append("taskraft has no preStop exec hook")
    elif not re.search(r"^COPY\b.*\s%s\s*$" % re.escape(cmd[0]), dockerfile, re.M):
        term.append("preStop runs %s, which the Dockerfile does not install" % cmd[0])
    if grace < budget + NODE_SHUTDOWN_SECONDS + 5:
        term.append("terminationGracePeriodSeconds %d < preStop budget %d + node shutdown %d + 5"
                    % (grace, budget, NODE_SHUTDOWN_SECONDS))
    c.check("termination", term)

    df = []
    if not re.search(r"^ENTRYPOINT \[\"taskraft\"\]\s*$", dockerfile, re.M):
        df.append('ENTRYPOINT is not ["taskraft"]')
    if not re.search(r"^CMD \[\"serve\"\]\s*$", dockerfile, re.M):
        df.append('CMD is not ["serve"]')
    if not re.search(r"^EXPOSE 8080 9080\s*$", dockerfile, re.M):
        df.append("EXPOSE 8080 9080 missing")
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    if not user or user[-1].split(":")[0] in ("0", "root") or not user[-1].split(":")[0].isdigit():
        df.append("the image's last USER is not a numeric non-root uid (runAsNonRoot needs one)")
    elif int(user[-1].split(":")[0]) != node.get("securityContext", {}).get("runAsUser"):
        df.append("the image's USER differs from the taskraft container's runAsUser")
    c.check("Dockerfile contract", df)

    return finish(c)


def finish(c):
    print("k8s-check: %d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
