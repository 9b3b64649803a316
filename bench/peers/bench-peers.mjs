#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// cortexd against npm MCP memory servers, through the official MCP SDK
// client over stdio, in one run on one machine (issue 12's goals "through
// the official SDK client >= 2x the fastest npm peer" and "search p50").
//
//   npm ci --prefix bench/peers        (once; see bench/README.md)
//   node bench/peers/bench-peers.mjs --cortexd build-bench/sidecar/cortexd \
//        --bench-mcp build-bench/bench/bench-mcp [--items 10000] [--writes 2000]
//        [--queries 1000] [--only cortexd,ai-devkit,server-memory] [--json]
//
// Every server gets the same notes and queries: bench-mcp's corpus
// (`bench-mcp --dump N` prints N notes and N queries, seeded). Per server:
//   writes   --writes notes, one tools/call at a time, each waiting for its
//            answer, into an empty store: calls/s and p50/p99 ms;
//   populate the store up to --items notes (batches where the server has
//            them), not timed;
//   search   --queries queries, limit 10, one at a time: p50/p95/p99 ms and
//            the median bytes of the answer's text block (what an agent
//            reads).
// The peers, as an agent would run them with their defaults:
//   ai-devkit      @ai-devkit/memory: SQLite FTS5 through better-sqlite3
//                  (semantic search is off by default), storeKnowledge and
//                  searchKnowledge; its database under a temp HOME.
//   server-memory  @modelcontextprotocol/server-memory: a knowledge graph in
//                  a JSON file, create_entities and search_nodes.
// It prints figures and asserts nothing. Servers run in temp dirs that are
// removed at the end.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir, cpus, loadavg } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const opts = { items: 10000, writes: 2000, queries: 1000, only: null, json: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i], v = () => {
    if (i + 1 >= argv.length) usage(`${a} wants a value`);
    return argv[++i];
  };
  if (a === "--cortexd") opts.cortexd = resolve(v());
  else if (a === "--bench-mcp") opts.benchMcp = resolve(v());
  else if (a === "--items") opts.items = posint(a, v());
  else if (a === "--writes") opts.writes = posint(a, v());
  else if (a === "--queries") opts.queries = posint(a, v());
  else if (a === "--only") opts.only = v().split(",");
  else if (a === "--json") opts.json = true;
  else if (a === "-h" || a === "--help") usage();
  else usage(`unknown argument ${a}`);
}
if (!opts.cortexd || !opts.benchMcp) usage("--cortexd and --bench-mcp are required");

function usage(why) {
  if (why) console.error(`bench-peers: ${why}`);
  console.error("usage: node bench/peers/bench-peers.mjs --cortexd PATH --bench-mcp PATH\n" +
                "         [--items N] [--writes N] [--queries N] [--only a,b] [--json]");
  process.exit(why ? 2 : 0);
}

function posint(name, s) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) usage(`${name} wants a whole number >= 1`);
  return n;
}

// ---- the corpus ----------------------------------------------------------
const need = Math.max(opts.items, opts.writes, opts.queries);
const dump = execFileSync(opts.benchMcp, ["--dump", String(need)],
                          { encoding: "utf8", maxBuffer: 1 << 30 }).split("\n");
const notes = [], queries = [];
for (const line of dump) {
  if (line.startsWith("{")) notes.push(JSON.parse(line));
  else if (line.startsWith("query ")) queries.push(line.slice(6).replace(/^\S+\s+/, ""));
}
if (notes.length < need || queries.length < opts.queries) {
  console.error(`bench-peers: bench-mcp --dump gave ${notes.length} notes, ` +
                `${queries.length} queries`);
  process.exit(1);
}

// A title of 10-100 characters, unique per note (ai-devkit refuses a title
// it holds already).
function titleOf(n, i) {
  const t = (n.title || n.text).replace(/\s+/g, " ").slice(0, 80).trim();
  return `${t} #${i}`;
}

// ---- the servers ---------------------------------------------------------
const peers = {
  cortexd: {
    what: "cortexd (this build)",
    spawn: (dir) => ({ command: opts.cortexd, args: [],
                       env: { CORTEX_WORKSPACE: dir, HOME: dir } }),
    write: (n) => ({ name: "observe", arguments: n }),
    batch: (ns) => ({ name: "observe", arguments: { observations: ns } }),
    search: (q) => ({ name: "search", arguments: { query: q, limit: 10 } }),
  },
  "ai-devkit": {
    what: "@ai-devkit/memory " + pkgVersion("@ai-devkit/memory"),
    spawn: (dir) => ({ command: process.execPath,
                       args: [join(here, "node_modules/@ai-devkit/memory/dist/index.js")],
                       env: { HOME: dir } }),
    write: (n, i) => ({ name: "memory_storeKnowledge",
                        arguments: { title: titleOf(n, i), content: n.text,
                                     tags: (n.tags || []).slice(0, 10) } }),
    batch: null,
    search: (q) => ({ name: "memory_searchKnowledge", arguments: { query: q, limit: 10 } }),
  },
  "server-memory": {
    what: "@modelcontextprotocol/server-memory " +
          pkgVersion("@modelcontextprotocol/server-memory"),
    spawn: (dir) => ({ command: process.execPath,
                       args: [join(here, "node_modules/@modelcontextprotocol/server-memory/dist/index.js")],
                       env: { HOME: dir, MEMORY_FILE_PATH: join(dir, "memory.jsonl") } }),
    write: (n, i) => ({ name: "create_entities",
                        arguments: { entities: [entity(n, i)] } }),
    batch: (ns, base) => ({ name: "create_entities",
                            arguments: { entities: ns.map((n, k) => entity(n, base + k)) } }),
    search: (q) => ({ name: "search_nodes", arguments: { query: q } }),
  },
};

function entity(n, i) {
  return { name: titleOf(n, i), entityType: n.subcortex || "note", observations: [n.text] };
}

function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(here, "node_modules", name, "package.json"))).version;
  } catch {
    return "(not installed: npm ci --prefix bench/peers)";
  }
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function connect(peer, dir) {
  const s = peer.spawn(dir);
  const t = new StdioClientTransport({ command: s.command, args: s.args,
                                       env: { PATH: process.env.PATH, ...s.env },
                                       cwd: dir, stderr: "ignore" });
  const c = new Client({ name: "cortex-bench-peers", version: "1" });
  await c.connect(t);
  return c;
}

async function call(c, req) {
  const r = await c.callTool(req, undefined, { timeout: 600000 });
  if (r.isError) throw new Error(`${req.name}: ${JSON.stringify(r.content).slice(0, 300)}`);
  return r;
}

async function measure(name) {
  const peer = peers[name];
  const dir = mkdtempSync(join(tmpdir(), `bench-peers-${name}-`));
  const out = { server: name, what: peer.what };
  let c;
  try {
    c = await connect(peer, dir);
    // writes, one at a time
    const lat = [];
    const t0 = performance.now();
    for (let i = 0; i < opts.writes; i++) {
      const s = performance.now();
      await call(c, peer.write(notes[i], i));
      lat.push(performance.now() - s);
    }
    const secs = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    out.writes = { n: opts.writes, per_sec: opts.writes / secs, p50_ms: pct(lat, 0.5),
                   p99_ms: pct(lat, 0.99) };
    // populate to --items
    for (let i = opts.writes; i < opts.items;) {
      const k = Math.min(500, opts.items - i);
      if (peer.batch) {
        await call(c, peer.batch(notes.slice(i, i + k), i));
        i += k;
      } else {
        await call(c, peer.write(notes[i], i));
        i++;
      }
    }
    // search
    const sl = [], bytes = [];
    let empty = 0;
    for (let i = 0; i < opts.queries; i++) {
      const s = performance.now();
      const r = await call(c, peer.search(queries[i]));
      sl.push(performance.now() - s);
      const text = (r.content || []).filter((x) => x.type === "text").map((x) => x.text)
                                     .join("");
      bytes.push(Buffer.byteLength(text));
      if (text.length < 40) empty++;
    }
    sl.sort((a, b) => a - b);
    bytes.sort((a, b) => a - b);
    out.search = { items: Math.max(opts.items, opts.writes), queries: opts.queries,
                   p50_ms: pct(sl, 0.5), p95_ms: pct(sl, 0.95), p99_ms: pct(sl, 0.99),
                   text_bytes_p50: pct(bytes, 0.5), near_empty: empty };
  } catch (e) {
    out.error = String(e && e.message || e);
  } finally {
    if (c) await c.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const names = opts.only || Object.keys(peers);
for (const n of names) if (!peers[n]) usage(`no server named ${n}`);
for (const n of names.filter((n) => n !== "cortexd")) {
  if (!existsSync(join(here, "node_modules"))) {
    console.error("bench-peers: the peers are not installed: npm ci --prefix bench/peers");
    process.exit(1);
  }
}
const results = [];
const load0 = loadavg()[0];
for (const n of names) results.push(await measure(n));
const f = (x, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : "NaN");
if (opts.json) {
  console.log(JSON.stringify({ machine: { nproc: cpus().length, cpu: cpus()[0]?.model },
                               load: [load0, loadavg()[0]], results }));
} else {
  console.log(`machine nproc=${cpus().length} cpu="${cpus()[0]?.model}"`);
  for (const r of results) {
    if (r.error) {
      console.log(`peer server=${r.server} error="${r.error}"`);
      continue;
    }
    console.log(`peer server=${r.server} what="${r.what}"`);
    console.log(`peer_writes server=${r.server} n=${r.writes.n} per_sec=${f(r.writes.per_sec, 0)} ` +
                `p50=${f(r.writes.p50_ms)} p99=${f(r.writes.p99_ms)}`);
    console.log(`peer_search server=${r.server} items=${r.search.items} ` +
                `queries=${r.search.queries} p50=${f(r.search.p50_ms)} ` +
                `p95=${f(r.search.p95_ms)} p99=${f(r.search.p99_ms)} ` +
                `text_bytes_p50=${r.search.text_bytes_p50} near_empty=${r.search.near_empty}`);
  }
  const cx = results.find((r) => r.server === "cortexd" && !r.error);
  const others = results.filter((r) => r.server !== "cortexd" && !r.error);
  if (cx && others.length) {
    const best = others.reduce((a, b) => (a.writes.per_sec > b.writes.per_sec ? a : b));
    const fastest = others.reduce((a, b) => (a.search.p50_ms < b.search.p50_ms ? a : b));
    console.log(`peer_ratio writes_vs_fastest=${f(cx.writes.per_sec / best.writes.per_sec, 2)} ` +
                `(${best.server}) search_p50_vs_fastest=${f(cx.search.p50_ms / fastest.search.p50_ms, 2)} ` +
                `(${fastest.server})`);
  }
  console.log(`loadavg start=${f(load0, 2)} end=${f(loadavg()[0], 2)}`);
}
