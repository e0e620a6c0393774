#!/usr/bin/env python3
"""p50/p99 of search statements on a lab table (gen.py's tasks, loaded by
run.sh), one connection, each statement run for QUERIES drawn query texts.

  bench.py [--port 3399] [--db searchlab] [-n 200] VARIANT... [--sets SET,...]

A variant is a name in VARIANTS below; a set names how query words are drawn
(as loadtest/search-bench draws them: {word} is a long-tail word as often as
the tasks use it, {noun} a common word; `top` is one of the 10 most common
tail words, each in 10-33% of the tasks).
"""
import argparse
import random
import statistics
import sys
import time

import pymysql

sys.path.insert(0, __import__("os").path.dirname(__file__))
import gen  # noqa: E402

T = "MATCH (title, description) AGAINST (%(q)s IN BOOLEAN MODE)"
VISIBLE = "board_id IN %(boards)s"

VARIANTS = {
    # today's statement (src/db/search.rs before V10)
    "current": f"SELECT id, {T} AS score FROM {{t}} WHERE {T} ORDER BY score DESC, id LIMIT 21",
    # the same without the id tie-break: ORDER BY MATCH DESC LIMIT
    "order-match": f"SELECT id, {T} AS score FROM {{t}} WHERE {T} ORDER BY {T} DESC LIMIT 21",
    # needs an explicit FTS_DOC_ID column (the lab's tasks_b; run.sh's table has InnoDB's hidden one)
    "order-match-docid": f"SELECT FTS_DOC_ID, {T} AS score FROM {{t}} WHERE {T} ORDER BY {T} DESC LIMIT 21",
    "order-match-docid-visible": f"SELECT FTS_DOC_ID, {T} AS score FROM {{t}} WHERE {T} AND {VISIBLE} ORDER BY {T} DESC LIMIT 21",
    "hybrid": "",  # hybrid() below
    "hybrid-visible": "",
    "count": f"SELECT COUNT(*) FROM {{t}} WHERE {T}",
    "ids-only": f"SELECT id FROM {{t}} WHERE {T} LIMIT 21",
    "current-visible": f"SELECT id, {T} AS score FROM {{t}} WHERE {T} AND {VISIBLE} ORDER BY score DESC, id LIMIT 21",
}


def draw(kind, rng):
    noun = rng.choice(gen.NOUNS)
    word = gen.zipf_word(rng)
    top = gen.TAIL_WORDS[rng.randrange(10)]
    return {
        "word": [word],
        "noun": [noun],
        "noun-word": [noun, word],
        "top": [top],
        "top2": [top, gen.TAIL_WORDS[rng.randrange(10)]],
        "three": [noun, word, gen.zipf_word(rng)],
    }[kind]


def boolean(words, style):
    if style == "prefix":
        return " ".join(f"+{w}*" for w in words)
    if style == "exact-last-prefix":
        return " ".join(f"+{w}" for w in words[:-1]) + f" +{words[-1]}*"
    return " ".join(f"+{w}" for w in words)


import os
PROBE, WINDOW = 2000, int(os.environ.get("WINDOW", 20000))
COMMON_MATCHES = int(os.environ.get("COMMON_MATCHES", 5000))


def pattern(w):
    return f"(?i)(?<![[:alnum:]_]){w}"


def hybrid(cur, table, words, boards):
    """src/db/search.rs's plan: probe the newest PROBE tasks for each word;
    every word common (in about COMMON_MATCHES tasks or more: share of the
    probe times the table's estimated rows) -> rank among the newest WINDOW
    tasks by occurrences; else FULLTEXT on the uncommon words, REGEXP for
    the common ones."""
    vis = " AND board_id IN %(boards)s" if boards else ""
    cur.execute(f"SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET {WINDOW - 1}")
    lower = cur.fetchone()
    if lower is None:
        common = [False] * len(words)
    else:
        cur.execute(f"SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET {PROBE - 1}")
        probe = cur.fetchone()[0]
        sums = ", ".join(f"SUM(title REGEXP %(p{i})s OR description REGEXP %(p{i})s)" for i in range(len(words)))
        cur.execute(f"SELECT {sums} FROM {table} WHERE id >= %(probe)s",
                    {"probe": probe, **{f"p{i}": pattern(w) for i, w in enumerate(words)}})
        hits = cur.fetchone()
        cur.execute("SELECT TABLE_ROWS FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
        rows = max(int(cur.fetchone()[0] or 0), WINDOW)
        common = [int(x or 0) * rows >= COMMON_MATCHES * PROBE for x in hits]
    params = {"boards": boards, **{f"p{i}": pattern(w) for i, w in enumerate(words)},
              **{f"w{i}": w for i, w in enumerate(words)}}
    if all(common):
        params["lower"] = lower[0]
        score = " + ".join(
            f"(title REGEXP %(p{i})s) * 3 + (CHAR_LENGTH(description) - CHAR_LENGTH(REGEXP_REPLACE(description, %(p{i})s, ''))) DIV CHAR_LENGTH(%(w{i})s)"
            for i in range(len(words)))
        where = " AND ".join(f"(title REGEXP %(p{i})s OR description REGEXP %(p{i})s)" for i in range(len(words)))
        sql = f"SELECT id, CAST({score} AS DOUBLE) AS score FROM {table} WHERE id >= %(lower)s{vis} AND {where} ORDER BY score DESC, id DESC LIMIT 21"
    else:
        params["q"] = " ".join(f"+{w}*" for w, c in zip(words, common) if not c)
        extra = "".join(f" AND (title REGEXP %(p{i})s OR description REGEXP %(p{i})s)" for i, c in enumerate(common) if c)
        sql = f"SELECT id, {T} AS score FROM {table} WHERE {T}{vis}{extra} ORDER BY score DESC, id LIMIT 21"
    cur.execute(sql, params)
    return cur.fetchall(), all(common)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=3399)
    ap.add_argument("--db", default="searchlab")
    ap.add_argument("--table", default="tasks")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--style", default="prefix")
    ap.add_argument("--sets", default="word,noun-word,noun,top,three")
    ap.add_argument("--boards", type=int, default=0,
                    help="visible boards for *-visible variants (board 0, the big one, among them)")
    ap.add_argument("--sql", help="a statement of your own ({t}, %%(q)s, %%(boards)s)")
    ap.add_argument("variants", nargs="*")
    args = ap.parse_args()
    conn = pymysql.connect(host="127.0.0.1", port=args.port, user="root", database=args.db)
    cur = conn.cursor()
    variants = [(v, VARIANTS[v]) for v in args.variants]
    if args.sql:
        variants.append(("custom", args.sql))
    boards = tuple(gen.board_id(b) for b in range(max(args.boards, 1)))
    print(f"table {args.table}, style {args.style}, n {args.n}")
    for name, sql in variants:
        sql = sql.replace("{t}", args.table)
        for kind in args.sets.split(","):
            rng = random.Random(kind)
            times, rows, windowed = [], [], 0
            for _ in range(args.n):
                words = draw(kind, rng)
                q = boolean(words, args.style)
                started = time.perf_counter()
                if name.startswith("hybrid"):
                    got, w = hybrid(cur, args.table, list(dict.fromkeys(words)),
                                    boards if name == "hybrid-visible" else None)
                    windowed += w
                else:
                    cur.execute(sql, {"q": q, "boards": boards})
                    got = cur.fetchall()
                times.append((time.perf_counter() - started) * 1000)
                rows.append(len(got))
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{name:28} {kind:10} p50 {statistics.median(times):8.1f} ms"
                  f"  p99 {p99:8.1f} ms  max {times[-1]:8.1f}  rows~{statistics.median(rows)}  windowed {windowed}",
                  flush=True)


if __name__ == "__main__":
    main()
