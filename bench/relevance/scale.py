#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Relevance of `search` as the store grows (issue 12, item 7).

Generates, with a fixed seed, a store of N coding-agent notes (identifiers
in snake, camel, Pascal and spaced forms, file paths, error messages, test
runs, prose; some notes in Chinese, Japanese, Thai, Russian and Arabic) and
a set of judged known-item queries, records the store into a real cortexd
through the batch `observe` tool (500 a call, in order: insertion order is
the notes' age), then asks every query in keyword, semantic and hybrid mode
and reports recall@5 and MRR per query class and per age third of the
targets (oldest, middle, newest).

  python3 bench/relevance/scale.py --bindir build-bench --sizes 1000,10000,100000

The queries and their target notes are the same at every size; only the
number of other notes around them changes, so a figure that falls from 1k
to 100k is the engine losing old or rarer notes, not a harder question.
The targets sit at evenly spaced positions over the store's age, the query
classes interleaved, so each third of the store holds the same mix.

Query classes (72 queries each, 432 in all):
  identifier   the target names an identifier in one style (parseConfigFile),
               the query in another (parse_config_file, "parse config file")
  wordform     the query's words in other forms than the note's
               (note "The allocator corrupts when it reads transactions",
               query "allocators corrupted transaction")
  typo_ident   an identifier with one typo (decodeWebhookBfufer, reluease_shard_set)
  typo_word    two of three words of the note misspelt (exorter lnaks
               transactions)
  paraphrase   half: no content word in common with the target ("invoicing
               backend RAM usage keeps climbing" for "Billing service: memory
               grows without bound"); half: one word or its stem in common in
               each part ("billing backend memory usage keeps climbing")
  script       two words of a note in Chinese, Japanese, Thai, Russian or
               Arabic (CJK and Thai notes have no spaces between words)

Each target is the only note holding its combination (of identifier parts,
of component/verb/object, of concept pair, of script words); the other
notes are built from the same vocabulary in other combinations, so they are
near misses; a note that would hold a target's combination (word families
compared) is drawn again, and `--check` audits a store for it. A query has
exactly one relevant note, so recall@5 is hit@5.

Metrics (10 results a query): recall@5 = share of queries whose target is
in the top 5; MRR = mean of 1 / rank of the target (0 if not in the top 10).
Only python3's standard library is used.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval as relevance_eval  # noqa: E402  (the MCP client and git helpers)

SEED = 20261207
PER_CLASS = 72
CLASSES = ("identifier", "wordform", "typo_ident", "typo_word", "paraphrase", "script")
MODES = ("keyword", "semantic", "hybrid")
BATCH = 500

# ---------------------------------------------------------------- vocabulary

VERBS = ["parse", "load", "flush", "resolve", "encode", "decode", "validate", "compute",
         "fetch", "render", "merge", "split", "emit", "schedule", "rotate", "sign", "verify",
         "serialize", "hydrate", "reconcile", "normalize", "compact", "evict", "refresh",
         "register", "dispatch", "allocate", "release", "snapshot", "prune"]
NOUNS1 = ["config", "ledger", "invoice", "payout", "webhook", "session", "token", "cache",
          "batch", "account", "refund", "cursor", "manifest", "schema", "index", "queue",
          "bucket", "tenant", "quota", "report", "journal", "shard", "lease", "bundle", "profile"]
NOUNS2 = ["file", "entry", "header", "table", "row", "state", "buffer", "key", "window",
          "list", "map", "record", "limit", "digest", "path", "frame", "chunk", "block",
          "plan", "set"]
MODULES = ["config", "gateway", "webhook", "ledger", "billing", "payouts", "refunds", "fx",
           "money", "api", "db", "outbox", "fraud", "obs", "auth", "search", "sync", "cli",
           "storage", "scheduler"]
EXTS = [".c", ".h", ".py", ".ts", ".go", ".rs", ".sql"]
SUSPECTS = ["config", "schema", "cache", "cursor", "quota", "lease", "manifest"]
PEOPLE = ["Ines", "Marek", "Priya", "Tomas", "Aiko", "Wei", "Olu", "Sven", "Dana", "Yusuf"]

# word families: (base, third person, -ing, -ed)
VFAM = [("deadlock", "deadlocks", "deadlocking", "deadlocked"),
        ("stall", "stalls", "stalling", "stalled"),
        ("leak", "leaks", "leaking", "leaked"),
        ("crash", "crashes", "crashing", "crashed"),
        ("retry", "retries", "retrying", "retried"),
        ("block", "blocks", "blocking", "blocked"),
        ("throttle", "throttles", "throttling", "throttled"),
        ("overflow", "overflows", "overflowing", "overflowed"),
        ("corrupt", "corrupts", "corrupting", "corrupted"),
        ("drop", "drops", "dropping", "dropped"),
        ("duplicate", "duplicates", "duplicating", "duplicated"),
        ("truncate", "truncates", "truncating", "truncated"),
        ("reject", "rejects", "rejecting", "rejected"),
        ("panic", "panics", "panicking", "panicked"),
        ("starve", "starves", "starving", "starved")]
# (singular, plural)
COMPS = [("worker", "workers"), ("scheduler", "schedulers"), ("exporter", "exporters"),
         ("importer", "importers"), ("migration", "migrations"), ("consumer", "consumers"),
         ("producer", "producers"), ("replica", "replicas"), ("listener", "listeners"),
         ("uploader", "uploaders"), ("resolver", "resolvers"), ("allocator", "allocators"),
         ("compactor", "compactors"), ("indexer", "indexers"), ("poller", "pollers"),
         ("sweeper", "sweepers"), ("watcher", "watchers"), ("notifier", "notifiers"),
         ("collector", "collectors"), ("renderer", "renderers")]
OBJS = [("batch", "batches"), ("connection", "connections"), ("request", "requests"),
        ("transaction", "transactions"), ("snapshot", "snapshots"), ("checkpoint", "checkpoints"),
        ("message", "messages"), ("partition", "partitions"), ("lock", "locks"),
        ("handle", "handles"), ("socket", "sockets"), ("upload", "uploads"),
        ("payload", "payloads"), ("invoice", "invoices"), ("refund", "refunds")]

# paraphrase: (what a note says, what a query says): no content word shared
# paraphrase: (what a note says, what a query says with no content word in
# common, a looser paraphrase that shares one word or its stem)
PARA_SYMPTOMS = [
    ("connection pool exhausted", "ran out of database handles", "no pooled handles left"),
    ("memory grows without bound", "RAM usage keeps climbing", "memory usage keeps climbing"),
    ("requests time out", "calls hang past the deadline", "request hangs past the deadline"),
    ("disk fills up", "storage volume runs full", "disks run full"),
    ("duplicate rows inserted", "same record written twice", "same row written twice"),
    ("clock skew breaks signatures", "machine time drift invalidates hmac", "clocks drift so signing fails"),
    ("certificate expired", "tls cert no longer valid", "certificates no longer valid"),
    ("latency spikes at midnight", "slow responses around 00:00", "spiking slowness around 00:00"),
    ("crash on empty input", "segfault given blank data", "crashing given blank data"),
    ("rounding error in totals", "sums off by one cent", "rounded sums off by one cent"),
    ("stale cache served", "outdated cached values returned", "outdated values served"),
    ("permission denied on startup", "access refused when booting", "permissions refused when booting"),
    ("deadlock under load", "threads wait on each other when busy", "threads deadlocking when busy"),
    ("encoding mangles accents", "diacritics garbled by charset conversion", "accented letters garbled"),
    ("queue backlog grows", "pending jobs pile up", "queued jobs pile up"),
    ("login loop after password change", "sign-in keeps redirecting once credentials reset",
     "sign-in loops once passwords reset"),
    ("too many open files", "file descriptor limit hit", "out of file descriptors"),
    ("migration locks the table", "schema change freezes writes", "migrating freezes writes"),
    ("retries amplify the outage", "repeated attempts worsen the incident", "retrying worsens the incident"),
    ("logs flood with warnings", "journal drowning in noisy alerts", "logging drowning in noisy alerts"),
    ("build fails on arm64", "compilation breaks for aarch64", "builds break for aarch64"),
    ("timezone shifts report dates", "utc offset moves daily summaries", "utc offset moves reported days"),
    ("upload stalls at 99 percent", "file transfer freezes near completion", "uploading freezes near completion"),
    ("dns lookups are slow", "hostname resolution takes ages", "hostname lookup takes ages"),
]
PARA_COMPS = [
    ("billing service", "invoicing backend", "billing backend"),
    ("payment gateway", "card processor", "payments processor"),
    ("nightly reconciliation", "end-of-day matching job", "reconciling job at night"),
    ("search indexer", "lookup crawler", "indexing crawler"),
    ("mobile app", "phone client", "mobile client"),
    ("admin dashboard", "operator console", "admin console"),
    ("email sender", "mail dispatcher", "emails dispatcher"),
    ("postgres primary", "main sql server", "main postgres server"),
    ("redis", "in-memory key store", "redis key store"),
    ("kubernetes ingress", "cluster edge router", "kubernetes edge router"),
    ("ci pipeline", "automated build system", "ci build system"),
    ("webhook receiver", "callback endpoint", "webhooks endpoint"),
    ("feature flag service", "toggle manager", "feature toggle manager"),
    ("pdf generator", "document exporter", "pdf exporter"),
    ("auth proxy", "login gateway", "auth gateway"),
]

SCRIPT_WORDS = {
    "zh": ["连接池", "死锁", "超时", "缓存", "数据库", "配置文件", "内存泄漏", "索引", "队列",
           "事务", "日志", "证书", "迁移", "回滚", "负载均衡", "线程"],
    "ja": ["アップロード", "ダウンロード", "データベース", "キャッシュ", "タイムアウト", "設定ファイル",
           "接続", "認証", "証明書", "再試行", "更新", "削除", "検索", "通知", "移行", "障害"],
    "th": ["การเชื่อมต่อ", "ฐานข้อมูล", "หน่วยความจำ", "แคช", "หมดเวลา", "ไฟล์ตั้งค่า",
           "การอัปโหลด", "คิว", "ใบรับรอง", "บันทึก", "ดัชนี", "ธุรกรรม", "การย้ายข้อมูล",
           "เซิร์ฟเวอร์", "การแจ้งเตือน", "สิทธิ์"],
    "ru": ["соединение", "таймаут", "кэш", "транзакция", "миграция", "очередь", "сертификат",
           "индекс", "журнал", "блокировка", "репликация", "сервер", "память", "запрос",
           "конфигурация", "откат"],
    "ar": ["الاتصال", "قاعدة", "الذاكرة", "المهلة", "التخزين", "الشهادة", "الفهرس", "الطابور",
           "المعاملة", "الترحيل", "الخادم", "السجل", "التحديث", "الصلاحيات", "الإشعار", "النسخ"],
}
SCRIPT_TEMPLATES = {
    "zh": ["{a}在处理{b}时失败，第{n}次构建已修复。", "排查发现{a}和{b}之间有竞争条件，工单{n}。",
           "上线后{a}异常，原因是{b}配置错误，见变更{n}。"],
    "ja": ["{a}の処理中に{b}が失敗しました（チケット{n}）。", "{a}と{b}の設定を見直した。ビルド{n}で確認済み。",
           "本番で{a}が遅く、{b}が原因だった。修正は{n}番。"],
    "th": ["{a}ล้มเหลวระหว่าง{b} แก้ไขแล้วในรุ่น {n}", "พบปัญหา{a}เมื่อ{b}ทำงานหนัก ตั๋ว {n}",
           "ตรวจสอบ{a}และ{b}หลังปรับใช้ครั้งที่ {n}"],
    "ru": ["{a} ломается, когда {b} перегружен; исправлено в сборке {n}.",
           "Проблема: {a} и {b} конфликтуют, тикет {n}.",
           "После релиза {n} {a} зависает из-за того, что {b} не отвечает."],
    "ar": ["فشل {a} أثناء {b} وتم الإصلاح في الإصدار {n}", "مشكلة في {a} عند ضغط {b}، التذكرة {n}",
           "بعد النشر {n} توقف {a} بسبب {b}"],
}
SCRIPTS = ("zh", "ja", "th", "ru", "ar")

ERRORS = ["connection refused", "no such file or directory", "permission denied",
          "resource temporarily unavailable", "broken pipe", "invalid argument",
          "database is locked", "unexpected end of input", "checksum mismatch",
          "value out of range", "key not found", "operation timed out"]
FACTS = ["returns early when the input is empty", "must be called with the lock held",
         "allocates on every call; hot in profiles", "is not safe to call from a signal handler",
         "ignores the trailing newline", "reads the whole file into memory",
         "was rewritten last sprint; the old one is still exported",
         "is the only caller of the retry helper", "logs at debug level only",
         "swallows the error and returns zero", "takes ownership of the buffer",
         "is called once per request", "needs the schema version from the header"]


TRAILERS = ["(build %d)", "See #%d.", "Ref PAY-%d.", "Noted in session %d.", "Commit %07x."]


def trailer(rng):
    """A reference that makes each note's text its own (a repeated text is
    answered as a repeat of the first)."""
    return rng.choice(TRAILERS) % rng.randrange(1, 16 ** 7)


def ident_style(parts, style):
    if style == "snake":
        return "_".join(parts)
    if style == "camel":
        return parts[0] + "".join(p.capitalize() for p in parts[1:])
    if style == "pascal":
        return "".join(p.capitalize() for p in parts)
    if style == "spaced":
        return " ".join(parts)
    if style == "kebab":
        return "-".join(parts)
    raise ValueError(style)


def typo(rng, word):
    """One Damerau edit (transposition, deletion, substitution or insertion)
    inside the word, never on its first letter."""
    w = list(word)
    kind = rng.choice(("transpose", "transpose", "delete", "substitute", "insert"))
    if kind == "transpose":
        cands = [i for i in range(1, len(w) - 1) if w[i] != w[i + 1]]
        if cands:
            i = rng.choice(cands)
            w[i], w[i + 1] = w[i + 1], w[i]
            return "".join(w)
        kind = "substitute"
    i = rng.randrange(1, len(w))
    if kind == "delete":
        del w[i]
    elif kind == "insert":
        w.insert(i, rng.choice("aeiourstn"))
    else:
        c = w[i]
        w[i] = rng.choice([x for x in "aeiourstnlcdm" if x != c])
    out = "".join(w)
    return out if out != word else word[:1] + word[2:]


def path_for(rng, parts):
    mod = rng.choice(MODULES)
    return mod, "src/%s/%s%s" % (mod, "_".join(parts[1:]), rng.choice(EXTS))


# ---------------------------------------------------------------- targets

def make_targets():
    """The judged queries and their target notes, the same at every size."""
    rng = random.Random(SEED)
    out = {c: [] for c in CLASSES}
    used_ident = set()
    all_ident = [(v, a, b) for v in VERBS for a in NOUNS1 for b in NOUNS2]
    rng.shuffle(all_ident)
    idents = iter(all_ident)
    styles = ("snake", "camel", "pascal", "spaced")

    for n in range(PER_CLASS):
        parts = next(idents)
        used_ident.add(parts)
        s_note, s_query = rng.sample(styles[:3], 1)[0], None
        s_query = rng.choice([s for s in styles if s != s_note])
        mod, path = path_for(rng, parts)
        body = "%s in %s %s. Found while reading %s. %s" % (
            ident_style(parts, s_note), path, rng.choice(FACTS),
            ident_style((rng.choice(VERBS), rng.choice(NOUNS1)), s_note), trailer(rng))
        out["identifier"].append({"query": ident_style(parts, s_query), "text": body,
                                  "subcortex": mod, "files": [path],
                                  "combo": ("idents", "".join(parts))})

    for n in range(PER_CLASS):
        parts = next(idents)
        used_ident.add(parts)
        style = rng.choice(("snake", "camel", "pascal"))
        mod, path = path_for(rng, parts)
        body = "%s (%s) %s; callers in src/%s rely on it. %s" % (
            ident_style(parts, style), path, rng.choice(FACTS), rng.choice(MODULES), trailer(rng))
        qparts = list(parts)
        k = rng.choice([i for i, p in enumerate(parts) if len(p) >= 4])
        qparts[k] = typo(rng, parts[k])
        qstyle = style if rng.random() < 0.5 else rng.choice(("snake", "camel"))
        out["typo_ident"].append({"query": ident_style(qparts, qstyle), "text": body,
                                  "subcortex": mod, "files": [path],
                                  "combo": ("idents", "".join(parts))})

    triples = [(c, v, o) for c in range(len(COMPS)) for v in range(len(VFAM)) for o in range(len(OBJS))]
    rng.shuffle(triples)
    used_triples = set(triples[:2 * PER_CLASS])
    for n, (c, v, o) in enumerate(triples[:2 * PER_CLASS]):
        comp, verb, obj = COMPS[c], VFAM[v], OBJS[o]
        mod = rng.choice(MODULES)
        body = "The %s %s when it reads %s; seen %d times since %s's deploy." % (
            comp[0], verb[1], obj[1], rng.randint(2, 40), rng.choice(PEOPLE))
        item = {"text": body, "subcortex": mod,
                "files": ["src/%s/%s_%s.c" % (mod, comp[0], obj[0])],
                "combo": ("triples", (c, v, o))}
        if n < PER_CLASS:
            # every word in another form than the note's
            item["query"] = "%s %s %s" % (comp[1], rng.choice((verb[2], verb[3])), obj[0])
            out["wordform"].append(item)
        else:
            words = [comp[0], verb[1], obj[1]]
            for k in rng.sample(range(3), 2):
                words[k] = typo(rng, words[k])
            item["query"] = " ".join(words)
            out["typo_word"].append(item)

    pairs = [(s, c) for s in range(len(PARA_SYMPTOMS)) for c in range(len(PARA_COMPS))]
    rng.shuffle(pairs)
    used_pairs = set(pairs[:PER_CLASS])
    for n, (s, c) in enumerate(pairs[:PER_CLASS]):
        mod = rng.choice(MODULES)
        body = "%s: %s after release %d.%d; %s found it, fix in review." % (
            PARA_COMPS[c][0].capitalize(), PARA_SYMPTOMS[s][0], rng.randint(1, 9),
            rng.randint(0, 30), rng.choice(PEOPLE))
        # half pure synonyms, half sharing one word's stem with the note
        out["paraphrase"].append({"query": "%s %s" % (PARA_COMPS[c][1 + n % 2], PARA_SYMPTOMS[s][1 + n % 2]),
                                  "text": body, "subcortex": mod,
                                  "sub": ("synonyms", "shared-stem")[n % 2],
                                  "combo": ("pairs", (PARA_SYMPTOMS[s][0], PARA_COMPS[c][0]))})

    used_script = set()
    for n in range(PER_CLASS):
        sc = SCRIPTS[n % len(SCRIPTS)]
        words = SCRIPT_WORDS[sc]
        while True:
            a, b = rng.sample(range(len(words)), 2)
            if (sc, a, b) not in used_script and (sc, b, a) not in used_script:
                break
        used_script.add((sc, a, b))
        body = rng.choice(SCRIPT_TEMPLATES[sc]).format(a=words[a], b=words[b], n=rng.randint(100, 9999))
        out["script"].append({"query": "%s %s" % (words[a], words[b]), "text": body,
                              "subcortex": rng.choice(MODULES), "sub": sc,
                              "combo": ("script", (words[a], words[b]))})

    # interleave the classes so each age third holds the same mix
    queries = []
    for n in range(PER_CLASS):
        for c in CLASSES:
            t = out[c][n]
            t["class"] = c
            t["qid"] = "%s-%02d" % (c, n)
            queries.append(t)
    used = {"ident": used_ident, "triples": used_triples, "pairs": used_pairs,
            "script": used_script}
    return queries, used


# ---------------------------------------------------------------- judging

def squash(text):
    return "".join(ch for ch in text.lower() if ch.isalnum())


class Judge:
    """Which targets' combinations a text holds. A note other than the
    target that holds a target's combination would answer its query as
    well, so the store never keeps one (make_store draws again)."""

    def __init__(self, queries):
        self.idents = {}    # squashed identifier -> qid
        self.triples = {}   # (comp, verb, obj) family ids -> qid
        self.pairs = {}     # (symptom, component) note phrases -> qid
        self.script = {}    # (word a, word b) -> qid
        self.fam = {}
        for group, table in (("c", COMPS), ("v", VFAM), ("o", OBJS)):
            for i, forms in enumerate(table):
                for f in forms:
                    self.fam.setdefault(f, set()).add((group, i))
        for q in queries:
            if "combo" not in q:
                continue
            kind, val = q["combo"]
            getattr(self, kind)[tuple(val) if kind != "idents" else val] = q["qid"]

    def holds(self, text):
        out = set()
        sq = squash(text)
        for k, qid in self.idents.items():
            if k in sq:
                out.add(qid)
        low = text.lower()
        words = "".join(ch if ch.isalnum() else " " for ch in low).split()
        got = {"c": set(), "v": set(), "o": set()}
        for w in words:
            for g, i in self.fam.get(w, ()):
                got[g].add(i)
        for c in got["c"]:
            for v in got["v"]:
                for o in got["o"]:
                    if (c, v, o) in self.triples:
                        out.add(self.triples[(c, v, o)])
        for (sy, co), qid in self.pairs.items():
            if sy in low and co in low:
                out.add(qid)
        for (a, b), qid in self.script.items():
            if a in text and b in text:
                out.add(qid)
        return out


# ---------------------------------------------------------------- the others

def filler(rng, used):
    """One note that is not a target: near misses from the same vocabulary."""
    def ident():
        while True:
            p = (rng.choice(VERBS), rng.choice(NOUNS1), rng.choice(NOUNS2))
            if p not in used["ident"]:
                return p
    k = rng.randrange(12)
    mod = rng.choice(MODULES)
    files = []
    if k <= 2:
        p = ident()
        style = rng.choice(("snake", "camel", "pascal"))
        m, path = path_for(rng, p)
        files = [path]
        text = rng.choice([
            "%s in %s %s." % (ident_style(p, style), path, rng.choice(FACTS)),
            "Ran tests/%s/test_%s.py after rebasing: %d passed in %.1f s." % (
                m, "_".join(p), rng.randint(3, 90), rng.uniform(0.5, 40)),
            "PR #%d renames %s to %s; %s asked for a test first." % (
                rng.randint(100, 9999), ident_style(p, style), ident_style(ident(), style),
                rng.choice(PEOPLE)),
        ])
    elif k == 3:
        p = ident()
        text = "error: %s: %s (errno %d) while the %s was %s." % (
            ident_style(p, "snake"), rng.choice(ERRORS), rng.randint(1, 120),
            rng.choice(NOUNS1), rng.choice(VFAM)[3])
    elif k <= 5:
        while True:
            t = (rng.randrange(len(COMPS)), rng.randrange(len(VFAM)), rng.randrange(len(OBJS)))
            if t not in used["triples"]:
                break
        comp, verb, obj = COMPS[t[0]], VFAM[t[1]], OBJS[t[2]]
        text = rng.choice([
            "The %s %s when it reads %s; seen %d times since %s's deploy." % (
                comp[0], verb[1], obj[1], rng.randint(2, 40), rng.choice(PEOPLE)),
            "Watched the %s %s for an hour: no %s %s this time." % (
                comp[0], rng.choice(("logs", "metrics", "traces")), obj[0], verb[2]),
            "%s %s %s again in staging; %s thinks it is the %s." % (
                comp[1].capitalize(), verb[3], obj[1], rng.choice(PEOPLE), rng.choice(SUSPECTS)),
        ])
    elif k == 6:
        while True:
            pr = (rng.randrange(len(PARA_SYMPTOMS)), rng.randrange(len(PARA_COMPS)))
            if pr not in used["pairs"]:
                break
        text = "%s: %s after release %d.%d; %s found it, fix in review." % (
            PARA_COMPS[pr[1]][0].capitalize(), PARA_SYMPTOMS[pr[0]][0], rng.randint(1, 9),
            rng.randint(0, 30), rng.choice(PEOPLE))
    elif k == 7:
        sc = rng.choice(SCRIPTS)
        words = SCRIPT_WORDS[sc]
        while True:
            a, b = rng.sample(range(len(words)), 2)
            if (sc, a, b) not in used["script"] and (sc, b, a) not in used["script"]:
                break
        text = rng.choice(SCRIPT_TEMPLATES[sc]).format(a=words[a], b=words[b],
                                                       n=rng.randint(100, 9999))
    elif k == 8:
        text = "Session wrap-up: worked on %s in src/%s, %d files touched, %s next. Build %d green." % (
            rng.choice(NOUNS1), mod, rng.randint(1, 12), rng.choice(PEOPLE), rng.randint(1000, 99999))
    elif k == 9:
        text = "Bumped %s from %d.%d to %d.%d in the %s lockfile; no API changes noticed." % (
            rng.choice(("libuv", "openssl", "sqlite", "zlib", "pydantic", "react", "tokio", "serde")),
            rng.randint(0, 9), rng.randint(0, 40), rng.randint(0, 9), rng.randint(0, 40), mod)
    elif k == 10:
        text = "Flaky: tests/%s/test_%s_%s fails about 1 in %d runs on CI; rerun passes." % (
            mod, rng.choice(NOUNS1), rng.choice(NOUNS2), rng.randint(5, 80))
    else:
        text = "Benchmark of %s %s: p50 %.2f ms, p99 %.1f ms over %d runs (commit %07x)." % (
            rng.choice(VERBS), rng.choice(NOUNS1), rng.uniform(0.05, 9), rng.uniform(1, 90),
            rng.randint(100, 100000), rng.randrange(16 ** 7))
    return {"text": "%s %s" % (text, trailer(rng)), "subcortex": mod, "files": files}


def make_store(n, queries, used):
    """n notes in age order (oldest first), targets at evenly spaced places.
    Returns (items, positions of the targets by qid)."""
    if n < len(queries):
        raise relevance_eval.BenchError("a store of %d cannot hold %d targets" % (n, len(queries)))
    rng = random.Random(SEED * 7 + n)
    at = {}
    for j, q in enumerate(queries):
        at[int((j + 0.5) * n / len(queries))] = q
    judge = Judge(queries)
    items, pos = [], {}
    for i in range(n):
        q = at.get(i)
        if q is not None:
            it = {"text": q["text"], "subcortex": q["subcortex"], "qid": q["qid"]}
            if q.get("files"):
                it["files"] = q["files"]
            pos[q["qid"]] = i
        else:
            while True:
                it = filler(rng, used)
                if not judge.holds(it["text"]):
                    break
        items.append(it)
    return items, pos


# ---------------------------------------------------------------- audit

def audit(items, queries):
    """Checks what the judgement rests on: each target holds its own
    combination and no other note holds it. Returns the violations."""
    judge = Judge(queries)
    bad = []
    for it in items:
        got = judge.holds(it["text"])
        if "qid" in it:
            if it["qid"] not in got:
                bad.append("%s: the target does not hold its own combination" % it["qid"])
            got.discard(it["qid"])
        if got:
            bad.append("%r holds the combination of %s" % (it["text"][:80], ", ".join(sorted(got))))
    texts = [it["text"] for it in items]
    if len(set(texts)) != len(texts):
        bad.append("%d texts are repeated" % (len(texts) - len(set(texts))))
    return bad


# ---------------------------------------------------------------- run

def workspace(tmp, author):
    """A fresh git repository in tmp and the environment a cortexd serving
    it runs with (HOME in tmp, no inherited workspace or git settings)."""
    home = os.path.join(tmp, "home")
    repo = os.path.realpath(os.path.join(tmp, "repo"))
    os.makedirs(home)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CORTEX_WORKSPACE", "GIT_DIR", "GIT_WORK_TREE", "NO_COLOR")}
    env.update(relevance_eval.GIT_ENV)
    env.update({"HOME": home, "CORTEX_AUTHOR": author, "GIT_CONFIG_NOSYSTEM": "1",
                "LC_ALL": "C.UTF-8"})
    relevance_eval.make_repo(repo, ["README.md"], env)
    return env, repo


def serve(cortexd, env, repo, stderr_path, timeout, client):
    """cortexd on repo, through the MCP handshake."""
    srv = relevance_eval.Server([cortexd, "--workspace", repo], env, repo, stderr_path, timeout)
    srv.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": client, "version": "1"}})
    srv.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return srv


def measure(opts, n, queries, used):
    items, pos = make_store(n, queries, used)
    tmp = tempfile.mkdtemp(prefix="cortex-relscale-")
    srv = None
    try:
        env, repo = workspace(tmp, "relevance-scale")
        srv = serve(opts.cortexd, env, repo, os.path.join(tmp, "cortexd.stderr"), opts.timeout,
                    "relevance-scale")

        t0 = time.monotonic()
        id_qid = {}
        folded = repeats = 0
        for i in range(0, n, BATCH):
            chunk = items[i:i + BATCH]
            obs = []
            for it in chunk:
                a = {"text": it["text"], "subcortex": it["subcortex"]}
                if it.get("files"):
                    a["files"] = it["files"]
                obs.append(a)
            r = srv.tool("observe", {"observations": obs}, timeout=max(opts.timeout, 300))
            res = r.get("results", [])
            if len(res) != len(chunk):
                raise relevance_eval.BenchError("observe answered %d results for %d" % (len(res), len(chunk)))
            for it, one in zip(chunk, res):
                folded += bool(one.get("folded"))
                repeats += bool(one.get("repeat"))
                if "qid" in it:
                    if one.get("repeat") or one.get("folded"):
                        raise relevance_eval.BenchError("target %s was folded into %s" % (it["qid"], one["id"]))
                    id_qid[one["id"]] = it["qid"]
            if opts.progress and (i // BATCH) % 20 == 19:
                relevance_eval.log("  %d: %d/%d recorded (%.0f s)" % (n, i + len(chunk), n, time.monotonic() - t0))
        t_load = time.monotonic() - t0

        # vectors load lazily behind initialize: wait (bounded) for semantic
        t1 = time.monotonic()
        notes = []
        while True:
            r = srv.tool("search", {"query": "warm up the vector index", "mode": "semantic", "limit": 1},
                         timeout=max(opts.timeout, 300))
            if not r.get("degraded"):
                break
            if time.monotonic() - t1 > opts.warmup:
                notes.append("semantic still degraded after %.0f s" % opts.warmup)
                break
            time.sleep(0.2)
        t_warm = time.monotonic() - t1

        out = {"items": n, "queries": len(queries), "load_seconds": round(t_load, 1),
               "load_per_second": round(n / t_load) if t_load else None,
               "warmup_seconds": round(t_warm, 2), "folded": folded, "repeats": repeats,
               "notes": notes, "modes": {}}
        kw_lists = {}
        for mode in opts.modes:
            rows = []
            degraded = 0
            t2 = time.monotonic()
            for q in queries:
                r = srv.tool("search", {"query": q["query"], "limit": 10, "mode": mode,
                                        "max_tokens": 20000})
                degraded += bool(r.get("degraded"))
                if mode == "keyword":
                    kw_lists[q["qid"]] = [res.get("id") for res in r.get("results", [])]
                rank = None
                for k, res in enumerate(r.get("results", [])[:10]):
                    if id_qid.get(res.get("id")) == q["qid"]:
                        rank = k + 1
                        break
                third = min(2, pos[q["qid"]] * 3 // n)
                rows.append({"qid": q["qid"], "class": q["class"], "rank": rank, "third": third,
                             "sub": q.get("sub")})
            m = summarize(rows)
            m["seconds"] = round(time.monotonic() - t2, 2)
            if degraded:
                m["degraded_queries"] = degraded
            if opts.verbose:
                m["per_query"] = rows
            out["modes"][mode] = m
        code = srv.close()
        srv = None
        if code not in (0, None):
            out["notes"].append("cortexd exited with status %d" % code)
        if opts.exact_check and kw_lists:
            out["exact_check"] = exact_check(opts, env, repo, tmp, queries, kw_lists)
        return out
    except BaseException:
        try:
            with open(os.path.join(tmp, "cortexd.stderr"), "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            if tail.strip():
                relevance_eval.log("--- cortexd stderr (tail)\n" + tail)
        except OSError:
            pass
        raise
    finally:
        if srv is not None:
            srv.close()
        if opts.keep:
            relevance_eval.log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def exact_check(opts, env, repo, tmp, queries, kw_lists):
    """Asks every query in keyword mode again of a cortexd that scores every
    match (CORTEX_SEARCH_EXHAUSTIVE=1) and compares the ten results, in
    order, with the pruned keyword list's: the pruning must change nothing."""
    srv = serve(opts.cortexd, dict(env, CORTEX_SEARCH_EXHAUSTIVE="1"), repo,
                os.path.join(tmp, "cortexd-exhaustive.stderr"), opts.timeout, "relevance-scale")
    try:
        differ = []
        t0 = time.monotonic()
        for q in queries:
            r = srv.tool("search", {"query": q["query"], "limit": 10, "mode": "keyword",
                                    "max_tokens": 20000})
            ids = [res.get("id") for res in r.get("results", [])]
            if ids != kw_lists.get(q["qid"]):
                differ.append(q["qid"])
        return {"queries": len(queries), "identical": len(queries) - len(differ),
                "differ": differ, "seconds": round(time.monotonic() - t0, 2)}
    finally:
        srv.close()


def summarize(rows):
    def agg(rs):
        n = len(rs)
        return {"queries": n,
                "recall@5": round(sum(1 for r in rs if r["rank"] and r["rank"] <= 5) / n, 4),
                "mrr": round(sum(1.0 / r["rank"] for r in rs if r["rank"]) / n, 4)}
    by = {}
    for r in rows:
        by.setdefault(r["class"], []).append(r)
    thirds = {}
    for r in rows:
        thirds.setdefault(("oldest", "middle", "newest")[r["third"]], []).append(r)
    subs = {}
    for r in rows:
        if r.get("sub"):
            subs.setdefault("%s:%s" % (r["class"], r["sub"]), []).append(r)
    return {"all": agg(rows), "by_class": {c: agg(by[c]) for c in CLASSES if c in by},
            "by_subclass": {k: agg(v) for k, v in sorted(subs.items())},
            "by_age": {t: agg(thirds[t]) for t in ("oldest", "middle", "newest") if t in thirds}}


def print_report(rep):
    sizes = rep["sizes"]
    for s in sizes:
        r = rep["results"][str(s)]
        print("%d items: recorded in %.1f s (%s/s), semantic ready after %.1f s, %d folded, %d repeats"
              % (s, r["load_seconds"], r["load_per_second"], r["warmup_seconds"], r["folded"], r["repeats"]))
        for n in r["notes"]:
            print("  note: %s" % n)
        ec = r.get("exact_check")
        if ec:
            print("  keyword lists identical to scoring every match: %d of %d queries%s"
                  % (ec["identical"], ec["queries"],
                     "" if not ec["differ"] else " (differ: %s)" % ", ".join(ec["differ"][:10])))
    for metric in ("recall@5", "mrr"):
        print("\n%s" % metric)
        head = "%-22s" % "class"
        for mode in rep["modes"]:
            for s in sizes:
                head += " %9s" % ("%s %s" % (mode[:3], human(s)))
        print(head)
        first = rep["results"][str(sizes[0])]["modes"][rep["modes"][0]]
        for c in list(CLASSES) + ["all", "oldest", "middle", "newest"] + list(first["by_subclass"]):
            line = "%-22s" % c
            for mode in rep["modes"]:
                for s in sizes:
                    m = rep["results"][str(s)]["modes"][mode]
                    d = (m["all"] if c == "all" else m["by_age"].get(c) or m["by_class"].get(c)
                         or m["by_subclass"][c])
                    line += " %9.3f" % d[metric]
            print(line)


def human(n):
    return "%dk" % (n // 1000) if n % 1000 == 0 else str(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bindir", help="a build directory (uses BINDIR/sidecar/cortexd)")
    ap.add_argument("--cortexd", default=os.environ.get("CORTEXD"), help="cortexd binary ($CORTEXD)")
    ap.add_argument("--sizes", default="1000,10000", help="store sizes, comma-separated (default 1000,10000)")
    ap.add_argument("--modes", default=",".join(MODES), help="subset of keyword,semantic,hybrid")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per request (default 60)")
    ap.add_argument("--warmup", type=float, default=120,
                    help="seconds to wait for semantic search to stop being degraded (default 120)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--verbose", action="store_true", help="per-query ranks in the JSON")
    ap.add_argument("--progress", action="store_true", help="loading progress on stderr")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    ap.add_argument("--write", metavar="DIR", help="write store-N.jsonl and queries.jsonl to DIR and stop")
    ap.add_argument("--exact-check", action="store_true",
                    help="ask the keyword queries again of a cortexd that scores every match "
                         "(CORTEX_SEARCH_EXHAUSTIVE=1) and report whether any list differs")
    ap.add_argument("--check", action="store_true",
                    help="check that no note but the target holds a target's combination, and stop")
    opts = ap.parse_args()
    opts.sizes = [int(s) for s in opts.sizes.split(",") if s]
    opts.modes = [m for m in opts.modes.split(",") if m]
    if any(m not in MODES for m in opts.modes):
        ap.error("--modes takes keyword, semantic, hybrid")
    queries, used = make_targets()
    if opts.check:
        worst = 0
        for s in opts.sizes:
            items, _ = make_store(s, queries, used)
            bad = audit(items, queries)
            print("%d items: %d violations" % (s, len(bad)))
            for b in bad[:20]:
                print("  " + b)
            worst = max(worst, len(bad))
        return 1 if worst else 0
    if opts.write:
        os.makedirs(opts.write, exist_ok=True)
        with open(os.path.join(opts.write, "queries.jsonl"), "w", encoding="utf-8") as f:
            for q in queries:
                f.write(json.dumps({"id": q["qid"], "class": q["class"], "query": q["query"],
                                    "target": q["text"]}, ensure_ascii=False) + "\n")
        for s in opts.sizes:
            items, _ = make_store(s, queries, used)
            with open(os.path.join(opts.write, "store-%d.jsonl" % s), "w", encoding="utf-8") as f:
                for it in items:
                    f.write(json.dumps(it, ensure_ascii=False) + "\n")
        return 0
    if opts.bindir and not opts.cortexd:
        opts.cortexd = os.path.join(opts.bindir, "sidecar", "cortexd")
    if not opts.cortexd:
        ap.error("give --bindir or --cortexd (or set $CORTEXD)")
    opts.cortexd = os.path.abspath(opts.cortexd)
    rep = {"seed": SEED, "sizes": opts.sizes, "modes": opts.modes, "results": {}}
    try:
        for s in opts.sizes:
            relevance_eval.log("scale.py: %d items" % s)
            rep["results"][str(s)] = measure(opts, s, queries, used)
    except (relevance_eval.BenchError, OSError) as e:
        relevance_eval.log("scale.py: %s" % e)
        return 2
    if opts.json:
        print(json.dumps(rep, indent=1, ensure_ascii=False))
    else:
        print_report(rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
