// SPDX-License-Identifier: Apache-2.0
// cortexd driven by the official MCP TypeScript SDK (Client +
// StdioClientTransport), the way an agent uses it: every tool, the error
// paths, and stdout hygiene of the whole session.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LATEST_HANDSHAKE, TAP, TOOL_NAMES, ULID, assertJsonRpcLines, childEnv, makeWorkspace,
  program, removeWorkspace, requireNodeModules, sanitizerReport, toolsJson, withTimeout,
} from './lib/common.mjs';

requireNodeModules();
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');

const CORTEXD = program('CORTEXD');
const CALL_MS = 20000;
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

describe('cortexd with the MCP SDK client', { timeout: 100000 }, () => {
  let ws, client, transport, negotiated;
  let stderr = '';
  const tapOut = () => join(ws, '.e2e-stdout');
  const tapExit = () => join(ws, '.e2e-exit');
  const ids = {};

  /** Calls a tool; checks the content/structuredContent contract on success. */
  async function call(name, args) {
    const r = await withTimeout(
      client.callTool({ name, arguments: args }, undefined, { timeout: CALL_MS }),
      CALL_MS + 2000, `tools/call ${name}`);
    if (!r.isError) {
      assert.ok(r.structuredContent && typeof r.structuredContent === 'object',
        `${name}: result has no structuredContent: ${JSON.stringify(r).slice(0, 500)}`);
      const texts = (r.content || []).filter((c) => c.type === 'text');
      assert.ok(texts.length >= 1, `${name}: result has no text block`);
      assert.deepEqual(JSON.parse(texts[0].text), r.structuredContent,
        `${name}: the text block's JSON differs from structuredContent`);
    }
    return r;
  }

  function errorText(r) {
    const t = (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
    assert.ok(t.trim().length > 0, `error result carries no message: ${JSON.stringify(r)}`);
    return t;
  }

  before(async () => {
    ws = makeWorkspace('sdk');
    // Run cortexd through the tap so that every byte of its stdout is kept.
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [TAP, tapOut(), tapExit(), '--', CORTEXD, '--workspace', ws],
      env: childEnv(),
      cwd: ws,
      stderr: 'pipe',
    });
    transport.stderr.setEncoding('utf8');
    transport.stderr.on('data', (d) => { if (stderr.length < 1 << 20) stderr += d; });
    // The client tells HTTP transports the negotiated version this way.
    transport.setProtocolVersion = (v) => { negotiated = v; };
    client = new Client({ name: 'cortex-e2e', version: '1.0.0' });
    try {
      await withTimeout(client.connect(transport, { timeout: 15000 }), 20000, 'connect (initialize)');
    } catch (e) {
      throw new Error(`${e.message}; cortexd stderr: ${stderr.slice(-2000)}`);
    }
  });

  after(async () => {
    try {
      if (client) await withTimeout(client.close(), 10000, 'client.close()').catch(() => {});
    } finally {
      removeWorkspace(ws);
    }
  });

  it('negotiates the newest handshake version', () => {
    assert.equal(negotiated, LATEST_HANDSHAKE);
    const info = client.getServerVersion();
    assert.ok(info && typeof info.name === 'string' && info.name.length > 0, 'serverInfo.name');
    assert.ok(client.getServerCapabilities()?.tools, 'capabilities.tools');
  });

  it('lists exactly the eight tools, as protocol/mcp/tools.json defines them', async () => {
    const { tools } = await withTimeout(client.listTools(undefined, { timeout: CALL_MS }), CALL_MS, 'tools/list');
    assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
    const spec = new Map(toolsJson().map((t) => [t.name, t]));
    for (const t of tools) {
      assert.match(t.name, /^[a-z0-9_]{1,30}$/);
      assert.equal(typeof t.description, 'string');
      assert.ok(t.description.length > 0, `${t.name}: description`);
      assert.equal(t.inputSchema?.type, 'object', `${t.name}: inputSchema.type`);
      assert.equal(t.outputSchema?.type, 'object', `${t.name}: outputSchema.type`);
      assert.ok(t.annotations && typeof t.annotations.readOnlyHint === 'boolean',
        `${t.name}: annotations.readOnlyHint`);
      for (const bad of ['oneOf', 'anyOf', 'allOf', '$ref', '$defs', '$schema'])
        assert.ok(!(bad in t.inputSchema), `${t.name}: inputSchema has top-level ${bad}`);
      const s = spec.get(t.name);
      assert.deepEqual(t.inputSchema, s.inputSchema, `${t.name}: inputSchema differs from tools.json`);
      assert.deepEqual(t.outputSchema, s.outputSchema, `${t.name}: outputSchema differs from tools.json`);
      assert.deepEqual(t.annotations, s.annotations, `${t.name}: annotations differ from tools.json`);
    }
    for (const n of ['search', 'get', 'recent', 'status'])
      assert.equal(tools.find((t) => t.name === n).annotations.readOnlyHint, true, `${n} is read-only`);
  });

  it('observe records one observation', async () => {
    const text = 'The release build needs ninja; the flaky quokkaflux test is fixed by a clean build dir.';
    const r = await call('observe', { text, tags: ['build'], subcortex: 'build' });
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    assert.equal(s.results.length, 1);
    assert.match(s.results[0].id, ULID);
    assert.equal(s.results[0].repeat, false);
    assert.equal(s.recorded, 1);
    assert.equal(s.repeats, 0);
    ids.single = s.results[0].id;
    ids.singleText = text;
  });

  it('observe records a batch of three', async () => {
    const r = await call('observe', {
      observations: [
        { text: 'Batch one: the config parser rejects tabs in keys.' },
        { text: 'Batch two: sqlite WAL files live next to the cache.', tags: ['store'] },
        { text: 'Batch three: run meson test with --print-errorlogs.', title: 'meson test tip' },
      ],
    });
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    assert.equal(s.results.length, 3);
    assert.equal(s.recorded, 3);
    assert.equal(s.repeats, 0);
    for (const x of s.results) { assert.match(x.id, ULID); assert.equal(x.repeat, false); }
    assert.equal(new Set(s.results.map((x) => x.id)).size, 3, 'batch ids are distinct');
    assert.ok(!s.results.some((x) => x.id === ids.single));
    ids.batch = s.results.map((x) => x.id);
  });

  it('observe detects a repeat and returns the first id', async () => {
    const r = await call('observe', { text: ids.singleText });
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    assert.equal(s.results.length, 1);
    assert.equal(s.results[0].id, ids.single);
    assert.equal(s.results[0].repeat, true);
    assert.equal(s.recorded, 0);
    assert.equal(s.repeats, 1);
  });

  it('search finds the observation by a word in it', async () => {
    const r = await call('search', { query: 'quokkaflux' });
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    assert.equal(s.query, 'quokkaflux');
    assert.ok(s.results.some((x) => x.id === ids.single),
      `search did not return ${ids.single}: ${JSON.stringify(s).slice(0, 800)}`);
    assert.equal(s.count, s.results.length);
    const hit = s.results.find((x) => x.id === ids.single);
    assert.equal(hit.kind, 'observation');
    assert.equal(hit.status, 'recorded');
    // compact by default: a short body whole with the match marked; no
    // score, why, provenance or other field an agent would not act on
    assert.equal(hit.snippet, ids.singleText.replace('quokkaflux', '\u00abquokkaflux\u00bb'));
    for (const x of s.results)
      assert.deepEqual(Object.keys(x).filter((k) => !['id', 'kind', 'status', 'title', 'snippet'].includes(k)),
        [], `a default result holds a field it should not: ${JSON.stringify(x)}`);
  });

  it('search with explain: true says why each result ranked', async () => {
    const r = await call('search', { query: 'quokkaflux', explain: true });
    assert.ok(!r.isError, errorText(r));
    const hit = r.structuredContent.results.find((x) => x.id === ids.single);
    assert.ok(hit, `search did not return ${ids.single}`);
    assert.equal(typeof hit.score, 'number');
    assert.ok(Array.isArray(hit.why?.lists) && hit.why.lists.includes('keyword'), JSON.stringify(hit.why));
    assert.equal(hit.why.score, hit.score);
    assert.equal(hit.stale, false);
    assert.equal(hit.subcortex, 'build');
    assert.deepEqual(hit.tags, ['build']);
    assert.equal(typeof hit.updated_at, 'string');
  });

  it('search answers validate against its outputSchema, with no field it does not declare', async () => {
    // The SDK client validates structuredContent against outputSchema
    // itself (a mismatch throws); this checks again with the schema made
    // strict: every field of an answer must be declared.
    const Ajv = (await import('ajv')).default;
    const strict = (o) => {
      if (!o || typeof o !== 'object') return o;
      const c = Array.isArray(o) ? o.map(strict) : Object.fromEntries(
        Object.entries(o).map(([k, v]) => [k, strict(v)]));
      if (!Array.isArray(c) && c.type === 'object' && c.properties) c.additionalProperties = false;
      return c;
    };
    const schema = strict(toolsJson().find((t) => t.name === 'search').outputSchema);
    const validate = new Ajv({ allErrors: true }).compile(schema);
    for (const args of [{ query: 'quokkaflux' }, { query: 'batch meson sqlite', explain: true },
      { query: 'batch meson sqlite', mode: 'keyword' }, { query: 'meson test tip', mode: 'semantic' },
      { query: 'qoukkaflux', mode: 'keyword' }, { query: 'qoukkaflux', explain: true }]) {
      const r = await call('search', args);
      assert.ok(!r.isError, errorText(r));
      assert.ok(r.structuredContent.results.length > 0, `no results for ${JSON.stringify(args)}`);
      assert.ok(validate(r.structuredContent),
        `${JSON.stringify(args)}: ${JSON.stringify(validate.errors)}: ${JSON.stringify(r.structuredContent).slice(0, 800)}`);
      // a typo one edit from an indexed word is corrected, and the answer says so
      if (args.query === 'qoukkaflux')
        assert.deepEqual(r.structuredContent.corrected, { qoukkaflux: 'quokkaflux' });
      else
        assert.equal(r.structuredContent.corrected, undefined);
    }
  });

  it('get returns the full body, and names missing ids', async () => {
    const absent = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    const r = await call('get', { ids: [ids.single, absent] });
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    const item = s.items.find((x) => x.id === ids.single);
    assert.ok(item, `get did not return ${ids.single}: ${JSON.stringify(s).slice(0, 800)}`);
    assert.equal(item.kind, 'observation');
    assert.equal(item.body, ids.singleText);
    assert.deepEqual(s.missing, [absent]);
    assert.equal(s.truncated, false);
  });

  it('draft cites evidence; a draft with unknown evidence is refused', async () => {
    const r = await call('draft', {
      title: 'Clean the build dir when quokkaflux flakes',
      body: '# Fix\n\nRemove `build/` and rebuild; the test is stable after that.',
      subcortex: 'build',
      evidence: [ids.single, ids.batch[2]],
    });
    assert.ok(!r.isError, errorText(r));
    assert.match(r.structuredContent.id, ULID);
    assert.equal(r.structuredContent.status, 'pending');
    ids.draft = r.structuredContent.id;

    const bad = await call('draft', { title: 't', body: 'b', evidence: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] });
    assert.equal(bad.isError, true, `draft with unknown evidence was accepted: ${JSON.stringify(bad)}`);
    errorText(bad);
  });

  it('comment on the draft', async () => {
    const r = await call('comment', { target_id: ids.draft, body: 'Confirmed on a second machine.' });
    assert.ok(!r.isError, errorText(r));
    assert.match(r.structuredContent.id, ULID);
    assert.equal(r.structuredContent.target_id, ids.draft);
    const g = await call('get', { ids: [ids.draft] });
    assert.equal(g.structuredContent.items.length, 1);
    assert.ok(JSON.stringify(g.structuredContent.items[0]).includes('Confirmed on a second machine.'),
      'get on the draft does not show its comment');
  });

  it('publish: content, same content, changed content, workspace files', async () => {
    const v1 = 'step 1: stop the service\n';
    const a = await call('publish', { name: 'restart-runbook', content: v1, title: 'How to restart' });
    assert.ok(!a.isError, errorText(a));
    const s1 = a.structuredContent;
    assert.match(s1.artifact_id, ULID);
    assert.equal(s1.name, 'restart-runbook');
    assert.equal(s1.version, 1);
    assert.equal(s1.sha256, sha256(v1));
    assert.equal(s1.size, Buffer.byteLength(v1));
    assert.equal(s1.unchanged, false);

    const same = await call('publish', { name: 'restart-runbook', content: v1 });
    assert.ok(!same.isError, errorText(same));
    assert.equal(same.structuredContent.version, 1);
    assert.equal(same.structuredContent.unchanged, true);
    assert.equal(same.structuredContent.artifact_id, s1.artifact_id);

    const v2 = 'step 1: drain traffic\nstep 2: stop the service\n';
    const b = await call('publish', { name: 'restart-runbook', content: v2 });
    assert.ok(!b.isError, errorText(b));
    assert.equal(b.structuredContent.artifact_id, s1.artifact_id);
    assert.equal(b.structuredContent.version, 2);
    assert.equal(b.structuredContent.sha256, sha256(v2));
    assert.equal(b.structuredContent.unchanged, false);
    ids.artifact = s1.artifact_id;

    mkdirSync(join(ws, 'docs'));
    const file = '# Deploy\n\nRun `make deploy`.\n';
    writeFileSync(join(ws, 'docs', 'deploy.md'), file);
    const rel = await call('publish', { name: 'deploy-doc', path: 'docs/deploy.md' });
    assert.ok(!rel.isError, errorText(rel));
    assert.equal(rel.structuredContent.version, 1);
    assert.equal(rel.structuredContent.sha256, sha256(file));
    assert.equal(rel.structuredContent.size, Buffer.byteLength(file));

    const file2 = file + '\nThen check the dashboard.\n';
    writeFileSync(join(ws, 'docs', 'deploy.md'), file2);
    const abs = await call('publish', { name: 'deploy-doc', path: join(ws, 'docs', 'deploy.md') });
    assert.ok(!abs.isError, errorText(abs));
    assert.equal(abs.structuredContent.version, 2);
    assert.equal(abs.structuredContent.sha256, sha256(file2));
  });

  it('publish refuses paths outside the workspace', async () => {
    const outside = await call('publish', { name: 'passwd', path: '/etc/passwd' });
    assert.equal(outside.isError, true, `/etc/passwd was published: ${JSON.stringify(outside)}`);
    errorText(outside);

    const dotdot = await call('publish', { name: 'passwd2', path: '../../../../../../etc/passwd' });
    assert.equal(dotdot.isError, true, `../ path was published: ${JSON.stringify(dotdot)}`);

    symlinkSync('/etc/passwd', join(ws, 'innocent.txt'));
    const link = await call('publish', { name: 'passwd3', path: 'innocent.txt' });
    assert.equal(link.isError, true, `a symlink out of the workspace was followed: ${JSON.stringify(link)}`);
  });

  it('recent lists what was recorded', async () => {
    const r = await call('recent', { limit: 100 });
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    assert.equal(s.count, s.items.length);
    const seen = new Set(s.items.map((x) => x.id));
    for (const id of [ids.single, ...ids.batch, ids.draft])
      assert.ok(seen.has(id), `recent does not list ${id}: ${JSON.stringify(s).slice(0, 1000)}`);
    for (const x of s.items) assert.equal(typeof x.updated_at, 'string');
  });

  it('status names the workspace', async () => {
    const r = await call('status', {});
    assert.ok(!r.isError, errorText(r));
    const s = r.structuredContent;
    assert.equal(s.workspace, ws);
    assert.equal(s.state_dir, join(ws, '.cortex'));
    for (const k of ['store', 'outbox', 'sync', 'versions']) assert.equal(typeof s[k], 'object');
  });

  it('an unknown tool is a JSON-RPC error -32602', async () => {
    await assert.rejects(
      withTimeout(client.callTool({ name: 'no_such_tool', arguments: {} }, undefined, { timeout: CALL_MS }),
        CALL_MS + 2000, 'tools/call no_such_tool'),
      (e) => {
        assert.equal(e.code, -32602, `expected code -32602, got ${e.code}: ${e.message}`);
        return true;
      });
  });

  it('a bad argument value is a tool result with isError', async () => {
    const r = await call('search', { query: 'quokkaflux', limit: 0 });
    assert.equal(r.isError, true, `limit: 0 was accepted: ${JSON.stringify(r).slice(0, 500)}`);
    errorText(r);
    const r2 = await call('get', { ids: [] });
    assert.equal(r2.isError, true, `ids: [] was accepted: ${JSON.stringify(r2).slice(0, 500)}`);
  });

  it('stdout carried only JSON-RPC; cortexd exits cleanly when the client closes', async () => {
    await withTimeout(client.close(), 10000, 'client.close()');
    client = null;
    const exit = JSON.parse(readFileSync(tapExit(), 'utf8'));
    const out = readFileSync(tapOut(), 'utf8');
    const msgs = assertJsonRpcLines(out, assert, 'cortexd (SDK session)');
    assert.ok(msgs.length >= 15, `only ${msgs.length} messages on stdout`);
    const report = sanitizerReport(stderr);
    assert.equal(report, null, `sanitizer report on cortexd's stderr: ${report}\n${stderr.slice(-4000)}`);
    assert.deepEqual(exit, { code: 0, signal: null },
      `cortexd did not exit 0 on stdin EOF: ${JSON.stringify(exit)}; stderr: ${stderr.slice(-2000)}`);
  });
});
