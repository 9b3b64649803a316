// SPDX-License-Identifier: Apache-2.0
// Raw JSON-RPC over a spawned cortexd's stdin/stdout, once per protocol
// version: the four handshake versions, an unknown one, and the stateless
// 2026-07-28 era (server/discover, _meta on every request). Also checks that
// every stdout line is JSON-RPC and that cortexd exits 0 on stdin EOF.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HANDSHAKE_VERSIONS, LATEST_HANDSHAKE, META_VERSION, RawPeer, STATELESS_VERSION, TOOL_NAMES, ULID,
  assertJsonRpcLines, childEnv, makeWorkspace, program, removeWorkspace, sanitizerReport, textJson,
} from './lib/common.mjs';

const CORTEXD = program('CORTEXD');
const ALL_VERSIONS = [...HANDSHAKE_VERSIONS, STATELESS_VERSION];

/** Runs fn(peer, ws) against a fresh cortexd in a fresh workspace. */
async function withServer(tag, fn) {
  const ws = makeWorkspace(tag);
  const peer = new RawPeer(CORTEXD, ['--workspace', ws], { env: childEnv(), cwd: ws });
  try {
    await fn(peer, ws);
    const exit = await peer.closeAndWait(10000);
    assertJsonRpcLines(peer.stdout, assert, `cortexd (${tag})`);
    const report = sanitizerReport(peer.stderr);
    assert.equal(report, null, `sanitizer report: ${report}\n${peer.stderr.slice(-4000)}`);
    assert.deepEqual(exit, { code: 0, signal: null },
      `cortexd did not exit 0 after stdin EOF: ${JSON.stringify(exit)}; stderr: ${peer.stderr.slice(-2000)}`);
  } finally {
    await peer.kill();
    removeWorkspace(ws);
  }
}

function ok(resp, what) {
  assert.ok(!('error' in resp), `${what}: got error ${JSON.stringify(resp.error)}`);
  assert.equal(resp.jsonrpc, '2.0');
  assert.ok(resp.result && typeof resp.result === 'object', `${what}: no result object`);
  return resp.result;
}

/** The tool result's JSON: structuredContent when present, else the text block. */
function toolJson(result) {
  const fromText = textJson(result);
  if (result.structuredContent !== undefined) assert.deepEqual(fromText, result.structuredContent);
  return fromText;
}

async function observeAndSearch(peer, idBase, meta) {
  const word = `zorblat${idBase.replace(/[^a-z0-9]/gi, '')}`;
  const withMeta = (p) => (meta ? { ...p, _meta: meta } : p);
  const obs = ok(await peer.request(`${idBase}-observe`, 'tools/call',
    withMeta({ name: 'observe', arguments: { text: `The ${word} module caches DNS answers.` } })),
  'tools/call observe');
  assert.notEqual(obs.isError, true, `observe failed: ${JSON.stringify(obs)}`);
  const oj = toolJson(obs);
  assert.equal(oj.results.length, 1);
  assert.match(oj.results[0].id, ULID);
  const id = oj.results[0].id;

  const srch = ok(await peer.request(7001, 'tools/call',
    withMeta({ name: 'search', arguments: { query: word } })), 'tools/call search');
  assert.notEqual(srch.isError, true, `search failed: ${JSON.stringify(srch)}`);
  const sj = toolJson(srch);
  assert.ok(sj.results.some((r) => r.id === id), `search for ${word} did not find ${id}: ${JSON.stringify(sj)}`);
  return { obs, srch };
}

describe('handshake era', { timeout: 100000 }, () => {
  for (const version of [...HANDSHAKE_VERSIONS, '1999-01-01']) {
    const expected = HANDSHAKE_VERSIONS.includes(version) ? version : LATEST_HANDSHAKE;
    it(`initialize ${version} → ${expected}, then tools/list and tools/call`, { timeout: 60000 }, async () => {
      await withServer(`v${version}`, async (peer) => {
        const init = ok(await peer.request(1, 'initialize', {
          protocolVersion: version,
          capabilities: {},
          clientInfo: { name: 'cortex-e2e-raw', version: '1.0.0' },
        }), 'initialize');
        assert.equal(init.protocolVersion, expected);
        assert.equal(typeof init.serverInfo?.name, 'string');
        assert.equal(typeof init.serverInfo?.version, 'string');
        assert.ok(init.capabilities && init.capabilities.tools, 'capabilities.tools');
        peer.notify('notifications/initialized');

        // A string id stays a string.
        const list = ok(await peer.request('list-1', 'tools/list', {}), 'tools/list');
        assert.deepEqual(list.tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
        for (const t of list.tools) assert.equal(t.inputSchema.type, 'object');

        const { obs } = await observeAndSearch(peer, `v${version}`);
        if (version >= '2025-06-18') assert.ok(obs.structuredContent, 'structuredContent (2025-06-18+)');

        // The notification got no answer: exactly one response per request.
        const responses = peer.messages.filter((m) => 'id' in m && !('method' in m));
        assert.deepEqual(responses.map((m) => m.id), [1, 'list-1', `v${version}-observe`, 7001]);
      });
    });
  }
});

describe('stateless era (2026-07-28)', { timeout: 100000 }, () => {
  const meta = (v = STATELESS_VERSION) => ({
    [META_VERSION]: v,
    'io.modelcontextprotocol/clientInfo': { name: 'cortex-e2e-raw', version: '1.0.0' },
    'io.modelcontextprotocol/clientCapabilities': {},
  });

  it('server/discover without initialize, tools with _meta, unsupported version', { timeout: 60000 }, async () => {
    await withServer('stateless', async (peer) => {
      const disc = ok(await peer.request(1, 'server/discover', { _meta: meta() }), 'server/discover');
      assert.ok(Array.isArray(disc.supportedVersions), `supportedVersions: ${JSON.stringify(disc)}`);
      for (const v of ALL_VERSIONS)
        assert.ok(disc.supportedVersions.includes(v), `supportedVersions lacks ${v}: ${disc.supportedVersions}`);
      assert.ok(disc.capabilities && disc.capabilities.tools, 'capabilities.tools');

      const list = ok(await peer.request(2, 'tools/list', { _meta: meta() }), 'tools/list');
      assert.deepEqual(list.tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
      assert.equal(list.resultType, 'complete');
      assert.equal(typeof list.ttlMs, 'number', `tools/list ttlMs: ${JSON.stringify(list).slice(0, 200)}`);
      assert.equal(typeof list.cacheScope, 'string', 'tools/list cacheScope');

      const { obs, srch } = await observeAndSearch(peer, 'stateless', meta());
      assert.equal(obs.resultType, 'complete');
      assert.equal(srch.resultType, 'complete');
      assert.ok(obs.structuredContent, 'structuredContent');

      const bad = await peer.request(3, 'tools/call',
        { name: 'status', arguments: {}, _meta: meta('2099-01-01') });
      assert.ok(bad.error, `an unsupported version was served: ${JSON.stringify(bad)}`);
      assert.equal(bad.error.code, -32022);
      assert.equal(bad.error.data?.requested, '2099-01-01');
      assert.ok(Array.isArray(bad.error.data?.supported), `data.supported: ${JSON.stringify(bad.error)}`);
      assert.ok(bad.error.data.supported.includes(STATELESS_VERSION));
    });
  });
});
