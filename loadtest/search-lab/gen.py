#!/usr/bin/env python3
"""Writes N tasks as a tab-separated file for LOAD DATA, drawn from the same
vocabulary and distributions as loadtest/src/seed.rs (`task`, `zipf_word`),
placed as `loadtest seed --boards 200 --big-live 20000 --big-archived 200000`
places them: the first BIG_LIVE + BIG_ARCHIVED on board 0 (the archived ones
archived), the rest round-robin over boards 1..BOARDS-1.

  gen.py N OUT.tsv [BOARDS] [BIG_LIVE] [BIG_ARCHIVED]
Columns: id title description status position priority assignee labels
version created_at updated_at board_id column_id archived
"""
import random
import sys

VERBS = ["Fix", "Add", "Remove", "Refactor", "Investigate", "Document", "Migrate", "Speed up",
         "Review", "Test", "Deploy", "Update", "Rewrite", "Monitor", "Clean up", "Design",
         "Localize", "Audit", "Upgrade", "Automate", "Split", "Merge", "Cache", "Retry"]
NOUNS = ["invoice", "login", "checkout", "dashboard", "report", "export", "import", "search",
         "notification", "upload", "payment", "profile", "settings", "webhook", "schedule",
         "backup", "pipeline", "cluster", "database", "migration", "timeout", "session", "token",
         "password", "printer", "calendar", "newsletter", "sitemap", "receipt", "refund",
         "coupon", "shipping", "warehouse", "inventory", "analytics", "onboarding",
         "permissions", "thumbnail", "queue", "certificate"]
AREAS = ["on mobile", "for admins", "in the API", "on the board", "for new users", "in Safari",
         "behind the proxy", "in production", "on staging", "for EU customers",
         "in the nightly job", "after logout"]
FILLER = ["the", "when", "after", "and", "fails", "is", "slow", "users", "see"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "sa", "vel", "dun", "pri", "zo", "bar", "nek",
             "sul", "fi", "gra", "hol", "ju", "kem", "lir", "mon", "nu", "pel", "quo", "ras",
             "sti", "tam", "ul", "vor", "wen", "xi", "yal", "zet", "bro", "cle", "dor", "eth",
             "fal", "gim", "hun", "isk"]
LABELS = ["bug", "feature", "ops", "ui", "db", "security", "docs", "perf", "billing", "mobile",
          "api", "infra", "design", "support", "legal", "data", "search", "auth", "email",
          "release"]
ASSIGNEES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
TAIL = 20000


def tail_word(k):
    n = k + len(SYLLABLES)
    w = ""
    while n > 0:
        w += SYLLABLES[n % len(SYLLABLES)]
        n //= len(SYLLABLES)
    return w


TAIL_WORDS = [tail_word(k) for k in range(TAIL)]


def zipf_word(rng):
    u = rng.randrange(1_000_000) / 1_000_000.0
    k = min(max(int(TAIL ** u) - 1, 0), TAIL - 1)
    return TAIL_WORDS[k]


def board_id(b):
    return f"00000000-0000-4000-8000-{b + 100:012d}"


def main():
    n = int(sys.argv[1])
    out = open(sys.argv[2], "w")
    boards = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    big_live = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    big_archived = int(sys.argv[5]) if len(sys.argv) > 5 else 200000
    rng = random.Random(17)
    for g in range(n):
        title = f"{rng.choice(VERBS)} {rng.choice(NOUNS)} {zipf_word(rng)} {rng.choice(AREAS)}"
        words = []
        for i in range(8 + rng.randrange(18)):
            r = (i + rng.randrange(3)) % 3
            words.append(rng.choice(NOUNS) if r == 0 else zipf_word(rng) if r == 1
                         else rng.choice(FILLER))
        status = rng.choice(["todo", "todo", "in_progress", "done", "done"])
        labels = sorted(set(rng.choice(LABELS) for _ in range(rng.randrange(4))))
        labels = "[" + ",".join(f'"{l}"' for l in labels) + "]"
        assignee = rng.choice(ASSIGNEES) if rng.randrange(10) else "\\N"
        if g < big_live + big_archived:
            b, archived = 0, int(g >= big_live)
        else:
            b, archived = 1 + g % (boards - 1), 0
        # UUIDv7-like: time-ordered, so the newest task has the greatest id.
        tid = f"01930000-{g >> 16:04x}-7{g & 0xfff:03x}-8000-{g:012x}"
        col = f"00000000-0000-4000-9000-{b * 4 + STATUS_COL[status]:012d}"
        ts = "2026-11-01 00:00:00.000"
        out.write("\t".join([tid, title, " ".join(words), status, str(float(g)),
                             rng.choice(["low", "medium", "high", "urgent"]), assignee, labels,
                             "1", ts, ts, board_id(b), col, str(archived)]) + "\n")


STATUS_COL = {"todo": 0, "in_progress": 1, "done": 2}

if __name__ == "__main__":
    main()
