#!/usr/bin/env python3
"""The model behind docs/scaling.md: how far one Raft group goes, and how
boards spread over many.

Inputs are what `loadtest/cpu-split` measured (µs of CPU per create at 64
connections, per process and per busiest thread); pass others to see how
the answer moves:

    loadtest/scaling_model.py                       # the figures in docs/scaling.md
    loadtest/scaling_model.py --cluster-us 341 --serial-us 34 --cores 16

Part 1, one group on one host of N cores: a create costs `cluster_us` of
CPU over the three nodes and MariaDB plus `client_us` in the client, so the
cores allow N * 1e6 / (cluster_us + client_us) creates/s; and the busiest
single thread (the leader's main actor thread) must do `serial_us` per
create, so no number of cores takes one group past 1e6 / serial_us. The
ceiling is the lower of the two. Per-create costs are held at their
64-connection values: bigger batches under more load would lower them (so
the projection is conservative there), and memory bandwidth and lock
contention are not modelled (optimistic there).

Part 2, many groups: a seeded simulation of boards with Zipf-distributed
write rates placed on groups (a board never splits; a group is split when
its load passes half its ceiling) and groups on nodes (each group three
replicas, leaders spread, least-loaded first). It prints how evenly the
leaders' load lands and how many groups a node hosts.
"""
import argparse
import random


def ceiling(cores, cluster_us, client_us, serial_us):
    by_cpu = cores * 1e6 / (cluster_us + client_us)
    by_thread = 1e6 / serial_us
    return min(by_cpu, by_thread), by_cpu, by_thread


def simulate(boards, total_rate, nodes, group_ceiling, seed):
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** 1.1 for i in range(boards)]
    scale = total_rate / sum(weights)
    rates = [w * scale for w in weights]
    rng.shuffle(rates)
    # Boards into groups: fill a group up to half its ceiling (room to grow).
    groups, current = [], []
    for rate in sorted(rates, reverse=True):
        if current and sum(current) + rate > group_ceiling / 2:
            groups.append(current)
            current = []
        current.append(rate)
    if current:
        groups.append(current)
    # Groups onto nodes: the leader on the least-led node, followers on the
    # least-hosting others (a follower costs ~0.8 of a leader, per cpu-split).
    lead = [0.0] * nodes
    host = [0.0] * nodes
    count = [0] * nodes
    for group in sorted(groups, key=sum, reverse=True):
        load = sum(group)
        leader = min(range(nodes), key=lambda n: (lead[n] + host[n], count[n]))
        others = sorted((n for n in range(nodes) if n != leader), key=lambda n: (host[n] + lead[n], count[n]))[:2]
        lead[leader] += load
        for n in others:
            host[n] += 0.8 * load
        for n in [leader, *others]:
            count[n] += 1
    work = [lead[n] + host[n] for n in range(nodes)]
    return groups, work, count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cluster-us", type=float, default=300, help="CPU per create, 3 nodes + MariaDB (measured 272-341)")
    p.add_argument("--client-us", type=float, default=24, help="CPU per create in the client (measured 21-28)")
    p.add_argument("--serial-us", type=float, default=30, help="the busiest thread per create (measured 27-34, leader's main thread)")
    p.add_argument("--cores", type=int, nargs="*", default=[2, 4, 8, 16, 32])
    p.add_argument("--boards", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=9)
    p.add_argument("--rate", type=float, default=150_000, help="writes/s over all boards")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()

    print("One group on one host (creates/s):")
    print(f"{'cores':>6} {'by CPU':>10} {'by one thread':>14} {'ceiling':>10}")
    for cores in a.cores:
        c, cpu, thread = ceiling(cores, a.cluster_us, a.client_us, a.serial_us)
        print(f"{cores:>6} {cpu:>10,.0f} {thread:>14,.0f} {c:>10,.0f}")

    group_ceiling = ceiling(16, a.cluster_us, a.client_us, a.serial_us)[0]
    groups, work, count = simulate(a.boards, a.rate, a.nodes, group_ceiling, a.seed)
    mean = sum(work) / len(work)
    print()
    print(f"Many groups: {a.boards:,} boards, {a.rate:,.0f} writes/s in all (Zipf 1.1), {a.nodes} nodes, "
          f"a group filled to half of {group_ceiling:,.0f}/s")
    print(f"  groups: {len(groups)}; boards in the busiest group: {max(len(g) for g in groups)}; "
          f"busiest board {max(max(g) for g in groups):,.0f} writes/s")
    print(f"  groups per node: {min(count)}-{max(count)}; node load (leader = 1, follower = 0.8): "
          f"max {max(work):,.0f}, mean {mean:,.0f} ({max(work) / mean:.2f}x)")


if __name__ == "__main__":
    main()
