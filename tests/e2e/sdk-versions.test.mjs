// SPDX-License-Identifier: Apache-2.0
// The official SDK client connected to cortexd with each handshake protocol
// version. The SDK 1.x client always asks for its newest version, so a thin
// wrapper around its stdio transport rewrites the version in the initialize
// request: everything else (negotiation check, tool calls, output-schema
// validation of structuredContent) is the SDK's own.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HANDSHAKE_VERSIONS, TOOL_NAMES, ULID, childEnv, makeWorkspace, program, removeWorkspace,
  requireNodeModules, withTimeout,
} from './lib/common.mjs';

requireNodeModules();
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');

const CORTEXD = program('CORTEXD');
const MS = 20000;

/** A stdio transport that asks for `version` in initialize and records the answer. */
class VersionedTransport extends StdioClientTransport {
  constructor(version, opts) {
    super(opts);
    this.version = version;
    this.answered = null;
    this.initId = null;
  }

  async start() {
    await super.start();
    const deliver = this.onmessage;
    this.onmessage = (msg) => {
      if (msg.id !== undefined && msg.id === this.initId && msg.result) {
        this.answered = msg.result.protocolVersion;
      }
      deliver?.(msg);
    };
  }

  send(message, options) {
    if (message.method === 'initialize') {
      this.initId = message.id;
      message = { ...message, params: { ...message.params, protocolVersion: this.version } };
    }
    return super.send(message, options);
  }
}

describe('the SDK client with each handshake version', { timeout: 110000 }, () => {
  const workspaces = [];
  after(() => workspaces.forEach(removeWorkspace));

  for (const version of HANDSHAKE_VERSIONS) {
    it(`speaks ${version}: negotiates it, lists tools, observes, searches, gets`, async () => {
      const ws = makeWorkspace(`v${version}`);
      workspaces.push(ws);
      const transport = new VersionedTransport(version, {
        command: CORTEXD, args: ['--workspace', ws], env: childEnv(), cwd: ws, stderr: 'pipe',
      });
      const client = new Client({ name: `e2e-${version}`, version: '1.0.0' });
      try {
        await withTimeout(client.connect(transport, { timeout: MS }), MS + 2000, 'connect');
        assert.equal(transport.answered, version, 'cortexd must echo a supported version');
        assert.equal(client.getServerVersion()?.name, 'cortexd');

        const { tools } = await withTimeout(client.listTools(), MS, 'tools/list');
        assert.deepEqual(tools.map((t) => t.name), TOOL_NAMES);

        const text = `Protocol ${version}: the SDK client records an observation about parseConfig.`;
        const obs = await withTimeout(client.callTool({ name: 'observe', arguments: { text } }),
          MS, 'observe');
        assert.equal(obs.isError, false);
        const id = obs.structuredContent.results[0].id;
        assert.match(id, ULID);

        const found = await withTimeout(
          client.callTool({ name: 'search', arguments: { query: 'parseConfig' } }), MS, 'search');
        assert.ok(found.structuredContent.results.some((r) => r.id === id),
          `search did not find ${id}: ${JSON.stringify(found.structuredContent)}`);

        const got = await withTimeout(
          client.callTool({ name: 'get', arguments: { ids: [id] } }), MS, 'get');
        assert.equal(got.structuredContent.items[0].body, text);
      } finally {
        await client.close().catch(() => {});
      }
    });
  }
});
