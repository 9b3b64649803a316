// SPDX-License-Identifier: Apache-2.0
// The agent of the walkthrough test: the official MCP TypeScript SDK client
// (installed in tests/e2e/node_modules by `bash .ci/setup.sh --test`)
// starting the `cortex` server the way Claude Code does from a project's
// .mcp.json: its command and args (${VAR} expanded), the environment with
// the entry's env on top, in the project directory.
//
// Usage: node agent.mjs PROJECT < STEPS.json
// STEPS is a JSON array of {"tool": NAME, "arguments": {...}} with, for a
// step that waits for something to arrive, "until_found": ID or
// "until_first": ID, and "timeout_s": N (the call is repeated every 300 ms
// until a result's id, or the first result's id, is ID, at most N seconds).
// Prints one JSON object a line on stdout: {"tool", "isError", "result"
// (structuredContent), "text", "calls", "waited_ms"};
// exits 0 when every step was answered (whatever it answered), 1 when a
// step could not be made, with the reason and cortexd's stderr on stderr.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const E2E = join(dirname(dirname(fileURLToPath(import.meta.url))), 'e2e');
const fail = (msg) => {
  process.stderr.write(`walkthrough agent: ${msg}\n`);
  process.exit(1);
};
if (!existsSync(join(E2E, 'node_modules', '@modelcontextprotocol', 'sdk', 'package.json')))
  fail(`${join(E2E, 'node_modules')} lacks the MCP SDK: run \`bash .ci/setup.sh --test\``);
const req = createRequire(join(E2E, 'package.json'));
const load = (spec) => import(pathToFileURL(req.resolve(spec)).href);
const { Client } = await load('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = await load('@modelcontextprotocol/sdk/client/stdio.js');

const project = process.argv[2];
if (!project) fail('usage: node agent.mjs PROJECT < STEPS.json');
const steps = JSON.parse(readFileSync(0, 'utf8'));
const mcp = JSON.parse(readFileSync(join(project, '.mcp.json'), 'utf8'));
const entry = mcp.mcpServers && mcp.mcpServers.cortex;
if (!entry || typeof entry.command !== 'string')
  fail(`${project}/.mcp.json has no mcpServers.cortex with a command: ${JSON.stringify(mcp)}`);

// Claude Code expands ${VAR} and ${VAR:-default} in command, args and env
// (from its own environment); an unset variable without a default is an
// error in the configuration.
const expand = (v) => String(v).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (m, name, def) => {
  if (process.env[name] !== undefined) return process.env[name];
  if (def !== undefined) return def;
  fail(`.mcp.json uses \${${name}}, which is not set`);
});
const env = { ...process.env };
for (const [k, v] of Object.entries(entry.env || {})) env[k] = expand(v);
const transport = new StdioClientTransport({
  command: expand(entry.command),
  args: (entry.args || []).map(expand),
  env,
  cwd: project,
  stderr: 'pipe',
});
let stderr = '';
transport.stderr.setEncoding('utf8');
transport.stderr.on('data', (d) => { if (stderr.length < 1 << 20) stderr += d; });
const client = new Client({ name: 'walkthrough-agent', version: '1.0.0' });
const bounded = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
  setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms).unref())]);

try {
  await bounded(client.connect(transport, { timeout: 20000 }), 25000, 'connect');
  for (const s of steps) {
    const t0 = Date.now();
    const end = t0 + (s.timeout_s || 0) * 1000;
    let r, calls = 0;
    for (;;) {
      r = await bounded(client.callTool({ name: s.tool, arguments: s.arguments }, undefined,
        { timeout: 20000 }), 25000, `tools/call ${s.tool}`);
      calls++;
      const results = (r.structuredContent && r.structuredContent.results) || [];
      const done = s.until_first ? results.length > 0 && results[0].id === s.until_first
        : s.until_found ? results.some((x) => x.id === s.until_found) : true;
      if (done || Date.now() >= end) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    process.stdout.write(JSON.stringify({ tool: s.tool, isError: !!r.isError, result: r.structuredContent ?? null,
      text: (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
      calls, waited_ms: Date.now() - t0 }) + '\n');
  }
  await bounded(client.close(), 10000, 'close');
} catch (e) {
  fail(`${e.message}\n--- server stderr\n${stderr.slice(-4000)}`);
}
process.stderr.write(stderr.slice(-4000));
