// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the end-to-end tests: where the programs are, throwaway
// git workspaces, bounded waits, a raw JSON-RPC peer over a spawned
// cortexd's stdio, and the stdout-hygiene check.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const SOURCE_ROOT = dirname(dirname(E2E_DIR));
export const TAP = join(E2E_DIR, 'lib', 'stdout-tap.mjs');

export const TOOL_NAMES = ['search', 'get', 'observe', 'draft', 'publish', 'comment', 'recent', 'status'];
export const HANDSHAKE_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'];
export const STATELESS_VERSION = '2026-07-28';
export const LATEST_HANDSHAKE = '2025-11-25';
export const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Fails the whole file (exit 1) with a message when a precondition is unmet. */
export function fatal(msg) {
  process.stderr.write(`e2e: FATAL: ${msg}\n`);
  process.exit(1);
}

/** The npm test clients must be installed; a missing install is a failure. */
export function requireNodeModules() {
  const probe = join(E2E_DIR, 'node_modules', '@modelcontextprotocol', 'sdk', 'package.json');
  if (!existsSync(probe))
    fatal(`${join(E2E_DIR, 'node_modules')} is missing the npm test clients: ` +
      'run `bash .ci/setup.sh --test` from the repository root (it runs `npm ci` in tests/e2e)');
}

/** Absolute path of the program named by env var `name` (CORTEXD, CORTEX). */
export function program(name) {
  const p = process.env[name];
  if (!p) fatal(`${name} is not set: run these tests through \`meson test\``);
  if (!existsSync(p)) fatal(`${name}=${p} does not exist: build it first`);
  return p;
}

/** The tool definitions the binary is built from. */
export function toolsJson() {
  return JSON.parse(readFileSync(join(SOURCE_ROOT, 'protocol', 'mcp', 'tools.json'), 'utf8')).tools;
}

/** A fresh temp directory holding an empty git repository (realpath'd). */
export function makeWorkspace(tag = 'ws') {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), `cortex-e2e-${tag}-`)));
  const r = spawnSync('git', ['init', '-q', dir], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`git init ${dir} failed: ${r.stderr || r.error}`);
  return dir;
}

export function removeWorkspace(dir) {
  if (dir && dir.startsWith(tmpdir())) rmSync(dir, { recursive: true, force: true });
}

/** The environment a spawned cortexd gets: ours (sanitizer options, PATH). */
export function childEnv(extra = {}) {
  return { ...process.env, ...extra };
}

/** Rejects after `ms` with a message naming `what`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Sanitizer and crash reports a process may have left on stderr. */
export function sanitizerReport(stderr) {
  const m = /(ERROR: (Address|Leak|Memory|Thread)Sanitizer[^\n]*|runtime error:[^\n]*|SUMMARY: \w+Sanitizer[^\n]*)/.exec(stderr);
  return m ? m[0] : null;
}

/**
 * Checks that every line a server wrote to stdout is one JSON-RPC 2.0
 * message (or a batch of them); returns the parsed messages.
 */
export function assertJsonRpcLines(text, assert, what) {
  const msgs = [];
  if (text.length === 0) return msgs;
  assert.ok(text.endsWith('\n'), `${what}: stdout does not end with a newline: ${JSON.stringify(text.slice(-200))}`);
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    let v;
    try {
      v = JSON.parse(line);
    } catch (e) {
      assert.fail(`${what}: stdout line ${i + 1} is not JSON (${e.message}): ${JSON.stringify(line.slice(0, 300))}`);
    }
    for (const m of Array.isArray(v) ? v : [v]) {
      assert.ok(m && typeof m === 'object' && m.jsonrpc === '2.0',
        `${what}: stdout line ${i + 1} is not a JSON-RPC 2.0 message: ${line.slice(0, 300)}`);
      const isResponse = 'id' in m && ('result' in m || 'error' in m) && !('method' in m);
      const isRequestOrNote = typeof m.method === 'string';
      assert.ok(isResponse || isRequestOrNote,
        `${what}: stdout line ${i + 1} is neither a response nor a request/notification: ${line.slice(0, 300)}`);
      msgs.push(m);
    }
  });
  return msgs;
}

/**
 * A raw JSON-RPC peer: spawns cortexd, writes one message a line to its
 * stdin, reads its stdout line by line. Every wait is bounded.
 */
export class RawPeer {
  constructor(cmd, args, opts = {}) {
    this.stdout = '';
    this.stderr = '';
    this.messages = [];
    this.waiters = [];
    this.buf = '';
    this.exit = null;
    this.child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? childEnv(),
      cwd: opts.cwd,
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
        this.flushWaiters();
      });
    });
    this.child.on('error', (e) => { this.spawnError = e; this.flushWaiters(); });
    this.child.stdin.on('error', () => {}); // EPIPE after an early exit shows in exit
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d) => { if (this.stderr.length < 1 << 20) this.stderr += d; });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d) => {
      this.stdout += d;
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).replace(/\r$/, '');
        this.buf = this.buf.slice(nl + 1);
        let msg;
        try { msg = JSON.parse(line); } catch { msg = { unparsable: line }; }
        this.messages.push(msg);
      }
      this.flushWaiters();
    });
  }

  flushWaiters() {
    this.waiters = this.waiters.filter((w) => !w());
  }

  send(obj) {
    this.child.stdin.write(JSON.stringify(obj) + '\n');
  }

  /** Sends a request and waits (bounded) for the response with its id. */
  request(id, method, params, timeoutMs = 15000) {
    const msg = { jsonrpc: '2.0', id, method };
    if (params !== undefined) msg.params = params;
    this.send(msg);
    return this.waitFor((m) => m && 'id' in m && m.id === id && !('method' in m), timeoutMs,
      `response to ${method} id=${JSON.stringify(id)}`);
  }

  notify(method, params) {
    const msg = { jsonrpc: '2.0', method };
    if (params !== undefined) msg.params = params;
    this.send(msg);
  }

  waitFor(pred, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ` +
          `stdout so far: ${this.stdout.slice(-1000)}; stderr: ${this.stderr.slice(-1000)}`));
      }, timeoutMs);
      const check = () => {
        if (done) return true;
        const m = this.messages.find(pred);
        if (m) { done = true; clearTimeout(timer); resolve(m); return true; }
        if (this.spawnError || this.exit) {
          done = true; clearTimeout(timer);
          reject(new Error(`cortexd ${this.spawnError ? 'failed to start: ' + this.spawnError.message
            : 'exited (' + JSON.stringify(this.exit) + ')'} before ${what}; stderr: ${this.stderr.slice(-2000)}`));
          return true;
        }
        return false;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  /** Closes stdin and waits (bounded) for the process to exit by itself. */
  async closeAndWait(timeoutMs = 10000) {
    try { this.child.stdin.end(); } catch { /* already closed */ }
    return withTimeout(this.exited, timeoutMs, 'cortexd to exit after its stdin closed');
  }

  /** Always safe: makes sure the process is gone (finally blocks). */
  async kill() {
    if (this.exit) return;
    try { this.child.stdin.end(); } catch { /* ignore */ }
    try { this.child.kill('SIGTERM'); } catch { /* ignore */ }
    try {
      await withTimeout(this.exited, 3000, 'exit after SIGTERM');
    } catch {
      try { this.child.kill('SIGKILL'); } catch { /* ignore */ }
      await withTimeout(this.exited, 3000, 'exit after SIGKILL').catch(() => {});
    }
  }
}

/** The first text content block of a tool result, parsed as JSON. */
export function textJson(result) {
  const block = (result.content || []).find((c) => c.type === 'text');
  if (!block) throw new Error(`tool result has no text block: ${JSON.stringify(result).slice(0, 500)}`);
  return JSON.parse(block.text);
}
