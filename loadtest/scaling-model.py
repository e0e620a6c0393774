#!/usr/bin/env python3
"""The model behind docs/scaling.md: how far one Raft group goes, and how
boards spread over many groups.

    python3 loadtest/scaling-model.py            # the tables in docs/scaling.md
    python3 loadtest/scaling-model.py --check    # asserts part 1 against the measurements
    python3 loadtest/scaling-model.py --zipf 1.2 --hosts 9 --cross-board-moves 0.05

Deterministic (seeded), standard library only, well under a second.

Inputs. Every measured figure is in MEASURED below with where it comes
from. The per-create costs are µs of CPU per acknowledged create at 64
connections from `loadtest/cpu-split` (docs/scaling.md, "Where the CPU goes
per create"): each process's utime + stime from /proc over a 20 s
closed-loop create run, divided by the creates acknowledged in it. The
model takes the middle of each measured range. Anything not measured is
in GUESSED and is a command-line option.

Part 1, one group on this 2-core VM. At saturation every core is busy, so
creates/s = cores x 1e6 / (leader + 2 followers + MariaDB + client µs per
create). `--check` asserts that this reproduces the measured creates/s of
the same runs within MEASURE_ERROR (the README's run-to-run noise), and
that no measured run beat the modelled ceiling by more than that.

Part 2, one group on a 16-core host. Two limits, the lower wins:
  - by CPU: cores x efficiency x 1e6 / (µs per create on that host);
  - by one thread: work that runs on one thread whatever the cores. Today
    that is (a) the leader's main actor thread (applier, WebSocket hub,
    transport: measured 27-34 µs per create) and (b) the apply chain: the
    applier keeps one batch in flight (src/applier/mod.rs, `busy`), so its
    own CPU and MariaDB's apply connection (measured 20-25 µs per create)
    run one after the other, never overlapped. The applier's share of the
    main thread is not measured (GUESSED applier_share).
This is Amdahl's law in throughput form: the serial µs per create bound the
speed-up over one core to (all µs per create) / (serial µs per create).
Held constant: the per-create costs at 64 connections. More load makes
bigger batches and cheaper creates (the model is conservative there);
memory bandwidth, lock contention and hyper-threads are not in it (the
efficiency factor, 1.0 by default, is optimistic there).

Part 3, many groups on k hosts (one node and its MariaDB per host, the
clients elsewhere). Boards get Zipf-distributed write rates; boards belong
to organisations; cross-board card moves go between boards of one
organisation. The placement driver packs whole organisations into groups
(a board never splits) up to `fill` of a group's ceiling, and places each
group's three replicas on three hosts, the leader on the least-loaded. A
card move between boards of two groups costs three entries instead of one
(a move-out intent in the source group, the card created in the
destination, the intent resolved in the source: docs/scaling.md, "Moves
between groups"). The cluster's ceiling is the total write rate at which
the first host runs out of CPU or the first group reaches its ceiling,
found by bisection, re-placing at every rate as the placement driver would.
"""

import argparse
import bisect
import heapq
import random
import sys

# Measured. (low, high) ranges; the model takes the middle.
MEASURED = {
    # loadtest/cpu-split, 64 connections, 5 runs (docs/scaling.md, table
    # "Where the CPU goes per create"), µs of CPU per create.
    "leader_us": ((56, 73), "cpu-split 64c: leader node"),
    "follower_us": ((45, 58), "cpu-split 64c: each follower"),
    "mariadb_us": ((125, 153), "cpu-split 64c: MariaDB, three databases"),
    "client_us": ((21, 28), "cpu-split 64c: the load tool"),
    "main_thread_us": ((27, 34), "cpu-split 64c: leader's busiest thread (main actor thread)"),
    "mariadb_thread_us": ((20, 25), "cpu-split 64c: MariaDB's busiest thread (one apply connection)"),
    "creates_64": ((5181, 6416), "cpu-split 64c: creates/s, same runs"),
    # loadtest/cpu-split, 16 connections, 1 run.
    "cluster_16_us": ((454, 454), "cpu-split 16c: whole cluster"),
    "client_16_us": ((26, 26), "cpu-split 16c: the load tool"),
    "creates_16": ((3722, 3722), "cpu-split 16c: creates/s"),
    # README "Performance", RUNS=5 loadtest/compare-etcd, median of 5.
    "compare_etcd_64": ((4925, 4925), "README Performance: creates/s at 64 connections"),
    "p50_1conn_ms": ((1.49, 1.49), "README Performance: p50 at 1 connection"),
}
# The README ("Performance"): runs vary by ±15 % from one minute to the next.
MEASURE_ERROR = 0.15

# Not measured: each is an option, and docs/scaling.md labels it guessed.
GUESSED = {
    "applier_share": 0.5,  # of the main thread's µs per create, the applier's
    "efficiency": 1.0,  # of each core's second that useful work gets on 16 cores
    "cross_board_moves": 0.02,  # of all writes, card moves to another board
    "fill": 0.5,  # a group is filled to this share of its ceiling (room to grow)
    "zipf": 1.0,  # skew of write rates over boards
}


def mid(name):
    low, high = MEASURED[name][0]
    return (low + high) / 2


def per_second(us):
    """Creates/s a thread allows at `us` µs per create (none: no limit)."""
    return 1e6 / us if us > 0 else float("inf")


class Costs:
    """µs of CPU per create, the middle of each measured range."""

    def __init__(self, applier_share, efficiency):
        self.leader = mid("leader_us")
        self.follower = mid("follower_us")
        self.mariadb = mid("mariadb_us")
        self.database = self.mariadb / 3  # one node's database
        self.client = mid("client_us")
        self.main_thread = mid("main_thread_us")
        self.mariadb_thread = mid("mariadb_thread_us")
        self.applier_share = applier_share
        self.efficiency = efficiency

    @property
    def cluster(self):
        return self.leader + 2 * self.follower + self.mariadb

    def serial_limits(self, changed):
        """The single-thread limits of one group, creates/s, by name.

        `changed`: with the applier on its own thread and pipelined (the
        next batch built while MariaDB commits the last), so the apply chain
        is the slower of its two threads, not their sum."""
        applier = self.applier_share * self.main_thread
        if not changed:
            return {
                "leader main thread": per_second(self.main_thread),
                "apply chain (applier + MariaDB, serial)": per_second(applier + self.mariadb_thread),
            }
        return {
            "leader main thread without the applier": per_second(self.main_thread - applier),
            "MariaDB apply connection": per_second(self.mariadb_thread),
            "applier thread": per_second(applier),
        }

    def group_ceiling(self, changed):
        return min(self.serial_limits(changed).values())

    def by_cpu(self, cores, per_create_us):
        return cores * self.efficiency * 1e6 / per_create_us


def part1(costs):
    """One group on this 2-core VM: the model against the measurements."""
    rows = []
    predicted = costs.by_cpu(2, costs.cluster + costs.client) / costs.efficiency
    rows.append(("64 connections, cpu-split runs", predicted, MEASURED["creates_64"][0]))
    rows.append(("64 connections, compare-etcd median", predicted, MEASURED["compare_etcd_64"][0]))
    p16 = 2e6 / (mid("cluster_16_us") + mid("client_16_us"))
    rows.append(("16 connections, cpu-split run", p16, MEASURED["creates_16"][0]))
    return rows


def check(costs):
    """Asserts the model reproduces the measured single-group figures."""
    failures = []
    rows = part1(costs)
    p64, (low, high) = rows[0][1], rows[0][2]
    middle = (low + high) / 2
    if abs(p64 - middle) > MEASURE_ERROR * middle:
        failures.append(f"2 cores, 64c: model {p64:,.0f} vs measured middle {middle:,.0f}")
    p16, (m16, _) = rows[2][1], rows[2][2]
    if abs(p16 - m16) > MEASURE_ERROR * m16:
        failures.append(f"2 cores, 16c: model {p16:,.0f} vs measured {m16:,}")
    for name, predicted, (_, best) in rows:
        # A ceiling: no run may beat it by more than the noise.
        if best > predicted * (1 + MEASURE_ERROR):
            failures.append(f"{name}: measured {best:,} beats the model's {predicted:,.0f}")
    # The processes must add up to the measured whole cluster.
    if not 272 <= costs.cluster <= 341:
        failures.append(f"leader + 2 followers + MariaDB = {costs.cluster} µs, measured 272-341")
    for failure in failures:
        print("FAIL:", failure)
    if failures:
        sys.exit(1)
    print(f"ok: 2 cores, 64 connections: model {p64:,.0f} creates/s, measured {low:,}-{high:,} "
          f"(middle {middle:,.0f}: {p64 / middle - 1:+.1%}); 16 connections: model {p16:,.0f}, "
          f"measured {m16:,} ({p16 / m16 - 1:+.1%}); within ±{MEASURE_ERROR:.0%}, no run above the ceiling")


def one_group_table(costs, cores_list):
    """Part 2: one group's ceiling by cores, two layouts, today and changed."""
    out = []
    for cores in cores_list:
        # Layout A, as measured: 3 nodes, MariaDB and the client on one host.
        a_cpu = costs.by_cpu(cores, costs.cluster + costs.client)
        # Layout B: 3 hosts of `cores`, each one node and its own MariaDB;
        # the leader's host is the busiest.
        b_cpu = costs.by_cpu(cores, costs.leader + costs.database)
        out.append((cores, a_cpu, b_cpu, costs.group_ceiling(False), costs.group_ceiling(True)))
    return out


def zipf_rates(boards, s, total, rng):
    weights = [1 / (i + 1) ** s for i in range(boards)]
    rng.shuffle(weights)
    scale = total / sum(weights)
    return [w * scale for w in weights]


def organisations(boards, rng):
    """Boards into organisations of 1-30 boards (most small), seeded."""
    orgs, start = [], 0
    while start < boards:
        size = min(boards - start, max(1, int(rng.paretovariate(1.2))))
        size = min(size, 30)
        orgs.append(list(range(start, start + size)))
        start += size
    return orgs


class Workload:
    """Boards with shares of the total write rate, in organisations."""

    def __init__(self, boards, zipf, seed):
        rng = random.Random(seed)
        self.share = zipf_rates(boards, zipf, 1.0, rng)
        self.orgs = organisations(boards, rng)
        self.org_share = [sum(self.share[b] for b in members) for members in self.orgs]
        # Organisations, and boards, busiest first: the order the placement
        # driver packs them in, whatever the total rate.
        self.orgs_by_share = sorted(range(len(self.orgs)), key=lambda o: -self.org_share[o])
        self.boards_by_share = sorted(range(boards), key=lambda b: -self.share[b])
        self.neg_org_share = [-self.org_share[o] for o in self.orgs_by_share]
        self.prefix = [0.0]
        for o in self.orgs_by_share:
            self.prefix.append(self.prefix[-1] + self.org_share[o])
        # The share of all writes on boards that have another board to move to.
        self.movable = sum(s for s, m in zip(self.org_share, self.orgs) if len(m) > 1)


def place(work, total, group_ceiling, hosts, costs, moves, fill, affinity):
    """The placement driver at one total write rate: boards into groups,
    groups onto hosts. Returns a dict: each group's entries/s and boards,
    each host's CPU µs per second, the share of cross-board moves that
    cross groups."""
    target = fill * group_ceiling
    # Units of placement: an organisation's boards together while they fit
    # (its cross-board moves then stay in one group); a bigger
    # organisation, or no affinity, is placed board by board.
    limit = target / total if affinity else -1.0
    cap = target / total
    crumb = cap / 100
    # Organisations in share order: [split | whole, big | whole, crumbs].
    i_whole = bisect.bisect_left(work.neg_org_share, -limit)
    i_crumb = max(i_whole, bisect.bisect_right(work.neg_org_share, -crumb))
    split = work.orgs_by_share[:i_whole]
    whole = [(work.org_share[o], work.orgs[o]) for o in work.orgs_by_share[i_whole:i_crumb]]
    # Crumbs of whole organisations (most of them) just fill the groups:
    # where a crumb goes does not move the balance, only its share counts.
    fluid = work.prefix[-1] - work.prefix[i_crumb]
    if i_whole == len(work.orgs):
        boards = [(work.share[b], (b,)) for b in work.boards_by_share]
    else:
        boards = sorted(((work.share[b], (b,)) for o in split for b in work.orgs[o]), key=lambda u: -u[0])
    units = list(heapq.merge(whole, boards, key=lambda u: -u[0]))
    # Best fit decreasing: the fullest group the unit fits in, else a new
    # one; boards under 1 % of a group fill the groups in turn.
    group_of = {}
    loads = []  # sorted (share, group)
    size = []
    crumbs = 0
    for share, members in units:
        if share < crumb:
            break
        crumbs += 1
        i = bisect.bisect_right(loads, (cap - share, float("inf"))) - 1
        if i >= 0:
            load, g = loads.pop(i)
        else:
            load, g = 0.0, len(size)
            size.append(0)
        group_of[members[0]] = g
        size[g] += len(members)
        bisect.insort(loads, (load + share, g))
    filling = [[load, g] for load, g in loads]
    at, n = 0, len(filling)
    for share, members in units[crumbs:]:
        while at < n and filling[at][0] + share > cap:
            at += 1
        if at == n:
            filling.append([0.0, len(size)])
            size.append(0)
            n += 1
        filling[at][0] += share
        g = filling[at][1]
        group_of[members[0]] = g
        size[g] += 1
    for slot in filling:
        room = min(fluid, cap - slot[0])
        if room > 0:
            slot[0] += room
            size[slot[1]] += 2  # many boards
            fluid -= room
    while fluid > 0:
        filling.append([min(fluid, cap), len(size)])
        size.append(2)
        fluid -= cap
    loads = filling
    rate = [0.0] * len(size)
    for load, g in loads:
        rate[g] = load
    # Each group's entries: its boards' writes, plus two more entries for
    # every move that crosses to another group (one in the destination,
    # one to resolve the intent in the source). A board's moves go to the
    # other boards of its organisation in proportion to their writes; an
    # organisation placed whole moves within one group.
    crossing = 0.0
    moved = moves * work.movable
    for o in split:
        members = work.orgs[o]
        if len(members) < 2:
            continue
        org = work.org_share[o]
        in_group = {}
        for b in members:
            in_group[group_of[b]] = in_group.get(group_of[b], 0.0) + work.share[b]
        if len(in_group) == 1:
            continue
        for b in members:
            g = group_of[b]
            per_other = moves * work.share[b] / (org - work.share[b])
            for h, there in in_group.items():
                if h != g:
                    part = per_other * there
                    crossing += part
                    rate[g] += part
                    rate[h] += part
    rate = [r * total for r in rate]
    # Groups onto hosts, busiest first: the leader on the host whose CPU is
    # least used, the two followers on the next two.
    cpu = [(0.0, h) for h in range(hosts)]
    heapq.heapify(cpu)
    for g in sorted(range(len(rate)), key=lambda g: -rate[g]):
        leader, f1, f2 = (heapq.heappop(cpu) for _ in range(3))
        heapq.heappush(cpu, (leader[0] + rate[g] * (costs.leader + costs.database), leader[1]))
        for f in (f1, f2):
            heapq.heappush(cpu, (f[0] + rate[g] * (costs.follower + costs.database), f[1]))
    return {
        "rate": rate,
        "size": size,
        "host_us": [c for c, _ in cpu],
        "crossing": crossing / moved if moved else 0.0,
    }


def cluster_ceiling(work, hosts, cores, costs, changed, moves, fill, affinity):
    """The highest total write rate the placement driver can carry on
    `hosts` hosts, and what binds there."""
    g_ceiling = costs.group_ceiling(changed)
    capacity = cores * costs.efficiency * 1e6

    def use(total):
        """The most used resource at `total` writes/s (1.0 = full), and which."""
        placed = place(work, total, g_ceiling, hosts, costs, moves, fill, affinity)
        hottest = max(range(len(placed["rate"])), key=lambda g: placed["rate"][g])
        by_group = placed["rate"][hottest] / g_ceiling
        by_host = max(placed["host_us"]) / capacity
        if by_group >= by_host:
            alone = placed["size"][hottest] == 1
            why = "the hottest board fills a group" if alone else "a group's ceiling"
            return by_group, why, placed
        return by_host, "a host's CPU", placed

    # Loads are linear in the rate for one placement: scale once to find
    # the bracket, then bisect, re-placing at every step.
    first, _, _ = use(100_000.0)
    estimate = 100_000.0 / first
    low, high = estimate * 0.6, estimate * 1.5
    while use(low)[0] > 1:
        low *= 0.6
    while use(high)[0] <= 1:
        low, high = high, high * 1.5
    why = ""
    for _ in range(6):
        total = (low * high) ** 0.5
        used, reason, _ = use(total)
        if used <= 1:
            low = total
        else:
            high, why = total, reason
    _, reason, placed = use(low)
    host_us = placed["host_us"]
    hottest = max(work.share)
    return {
        "ceiling": low,
        "bound": why or reason,
        "groups": len(placed["rate"]),
        "imbalance": max(host_us) / (sum(host_us) / len(host_us)),
        "crossing": placed["crossing"],
        "entries_per_write": sum(placed["rate"]) / low,
        "hot_board_rate": hottest * low,
        "hot_board_share": hottest,
    }


def main():
    p = argparse.ArgumentParser(
        description="One Raft group's ceiling and boards over many groups (docs/scaling.md).",
        epilog="Measured inputs are fixed in MEASURED (see the module doc); the options are the guesses.",
    )
    p.add_argument("--check", action="store_true", help="assert part 1 reproduces the measured creates/s, then exit")
    p.add_argument("--cores", type=int, nargs="*", default=[2, 4, 8, 16, 32], help="host sizes for part 2")
    p.add_argument("--applier-share", type=float, default=GUESSED["applier_share"],
                   help="share of the main thread's µs that is the applier's (not measured; default %(default)s)")
    p.add_argument("--efficiency", type=float, default=GUESSED["efficiency"],
                   help="useful share of each core on big hosts (default %(default)s)")
    p.add_argument("--hosts", type=int, nargs="*", default=[3, 6, 9, 12, 24], help="host counts for part 3")
    p.add_argument("--host-cores", type=int, default=16, help="cores per host in part 3 (default %(default)s)")
    p.add_argument("--boards", type=int, default=10_000, help="boards in part 3 (default %(default)s)")
    p.add_argument("--zipf", type=float, default=GUESSED["zipf"], help="skew of write rates over boards (default %(default)s)")
    p.add_argument("--cross-board-moves", type=float, default=GUESSED["cross_board_moves"],
                   help="share of writes that move a card to another board (default %(default)s)")
    p.add_argument("--fill", type=float, default=GUESSED["fill"], help="a group is filled to this share of its ceiling")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    costs = Costs(a.applier_share, a.efficiency)

    if a.check:
        check(costs)
        return

    print("1. One group on this 2-core VM (creates/s): model = 2 cores / µs of CPU per create")
    print(f"   per create: leader {costs.leader} + 2 x follower {costs.follower} + MariaDB {costs.mariadb}"
          f" + client {costs.client} = {costs.cluster + costs.client} µs")
    print(f"   {'run':<38} {'model':>8} {'measured':>14}")
    for name, predicted, (low, high) in part1(costs):
        measured = f"{low:,}" if low == high else f"{low:,}-{high:,}"
        print(f"   {name:<38} {predicted:>8,.0f} {measured:>14}")

    print()
    print("2. One group on a bigger host (creates/s)")
    print("   A: 3 nodes + MariaDB + client on one host (as measured); B: one node + its MariaDB per host")
    print(f"   {'cores':>5} {'A by CPU':>9} {'B by CPU':>9} {'serial today':>13} {'serial changed':>15} "
          f"{'ceiling A today':>16} {'ceiling A changed':>18} {'ceiling B changed':>18}")
    for cores, a_cpu, b_cpu, today, changed in one_group_table(costs, a.cores):
        print(f"   {cores:>5} {a_cpu:>9,.0f} {b_cpu:>9,.0f} {today:>13,.0f} {changed:>15,.0f} "
              f"{min(a_cpu, today):>16,.0f} {min(a_cpu, changed):>18,.0f} {min(b_cpu, changed):>18,.0f}")
    for label, changed in (("today", False), ("changed", True)):
        limits = ", ".join(f"{k} {v:,.0f}" for k, v in costs.serial_limits(changed).items())
        print(f"   serial limits, {label}: {limits}")
    total_us = costs.cluster + costs.client
    serial = 1e6 / costs.group_ceiling(False)
    print(f"   Amdahl: {serial:.1f} of {total_us:.0f} µs per create serial today: at most "
          f"{total_us / serial:.1f}x one core ({costs.by_cpu(1, total_us):,.0f}/s)")
    for share in (0.0, 1.0):
        c = Costs(share, a.efficiency)
        print(f"   applier share {share:.0%} of the main thread (not measured): today's serial "
              f"ceiling {c.group_ceiling(False):,.0f}")

    print()
    work = Workload(a.boards, a.zipf, a.seed)
    print(f"3. Many groups: {a.boards:,} boards in {len(work.orgs):,} organisations, Zipf {a.zipf}, "
          f"{a.cross_board_moves:.0%} of writes move a card to another board of the same organisation,")
    print(f"   hosts of {a.host_cores} cores (one node + its MariaDB each), groups of 3 replicas filled to "
          f"{a.fill:.0%} of a group's ceiling, code changed as in part 2")
    print(f"   {'hosts':>5} {'groups':>6} {'ceiling writes/s':>17} {'bound':<34} {'busiest host/mean':>18} "
          f"{'moves crossing':>15} {'entries/write':>14} {'hottest board/s':>16}")

    def row(label, r):
        print(f"   {label:>5} {r['groups']:>6} {r['ceiling']:>17,.0f} {r['bound']:<34} {r['imbalance']:>18.2f} "
              f"{r['crossing']:>15.1%} {r['entries_per_write']:>14.3f} {r['hot_board_rate']:>16,.0f}")

    for hosts in a.hosts:
        r = cluster_ceiling(work, hosts, a.host_cores, costs, True, a.cross_board_moves, a.fill, True)
        row(str(hosts), r)
    print()
    hosts = 9 if 9 in a.hosts else a.hosts[0]
    print(f"   at {hosts} hosts, varied one at a time:")
    print(f"   {'':>5} {'groups':>6} {'ceiling writes/s':>17} {'bound':<34} {'busiest host/mean':>18} "
          f"{'moves crossing':>15} {'entries/write':>14} {'hottest board/s':>16}")
    r = cluster_ceiling(work, hosts, a.host_cores, costs, True, a.cross_board_moves, a.fill, False)
    print("   boards placed one by one, not by organisation:")
    row("", r)
    r = cluster_ceiling(work, hosts, a.host_cores, costs, True, 0.2, a.fill, False)
    print("   ... and 20 % of writes are cross-board moves:")
    row("", r)
    r = cluster_ceiling(work, hosts, a.host_cores, costs, False, a.cross_board_moves, a.fill, True)
    print("   today's code (serial applier chain) in every group:")
    row("", r)
    for s in (0.8, 1.2):
        w = Workload(a.boards, s, a.seed)
        r = cluster_ceiling(w, hosts, a.host_cores, costs, True, a.cross_board_moves, a.fill, True)
        print(f"   Zipf {s} (hottest board {r['hot_board_share']:.1%} of all writes):")
        row("", r)
    p50 = mid("p50_1conn_ms")
    print()
    print(f"   a move between groups on an idle cluster (1-connection p50 {p50} ms a commit): answered after "
          f"2 commits one after the other, ~{2 * p50:.1f} ms, resolved after 3, ~{3 * p50:.1f} ms; "
          f"inside one group {p50} ms")


if __name__ == "__main__":
    main()
