// SPDX-License-Identifier: Apache-2.0
// cortexd under the MCP Inspector's command line (@modelcontextprotocol/
// inspector --cli), as a person would try a server: list the tools, record
// an observation, find it again. The workspace goes through the inspector's
// `-e KEY=VALUE`, which it puts into the server's environment.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  E2E_DIR, TOOL_NAMES, ULID, childEnv, makeWorkspace, program, removeWorkspace, requireNodeModules,
} from './lib/common.mjs';

requireNodeModules();
const CORTEXD = program('CORTEXD');
const pkgDir = join(E2E_DIR, 'node_modules', '@modelcontextprotocol', 'inspector');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const INSPECTOR = join(pkgDir, typeof pkg.bin === 'string' ? pkg.bin : pkg.bin['mcp-inspector']);
const RUN_MS = 30000;

/**
 * Runs the inspector CLI; resolves {code, stdout, stderr}, never hangs. It
 * runs in its own process group (the CLI starts a second node process, which
 * starts cortexd), so that a timeout kills all of them.
 */
function inspector(ws, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath,
      [INSPECTOR, '--cli', '-e', `CORTEX_WORKSPACE=${ws}`, CORTEXD, ...args],
      { cwd: ws, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '', stderr = '', killed = false;
    child.stdout.setEncoding('utf8').on('data', (d) => { if (stdout.length < 16 << 20) stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { if (stderr.length < 1 << 20) stderr += d; });
    const killGroup = () => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(() => { killed = true; killGroup(); }, RUN_MS);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: 'spawn: ' + e.message, killed, stdout, stderr }); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(); // whatever the CLI left behind
      resolve({ code: code ?? signal, killed, stdout, stderr });
    });
  });
}

function json(run, what) {
  assert.equal(run.code, 0,
    `${what}: the inspector exited ${run.code}${run.killed ? ' (killed after ' + RUN_MS + ' ms)' : ''}; ` +
    `stderr: ${run.stderr.slice(-2000)}; stdout: ${run.stdout.slice(-1000)}`);
  try {
    return JSON.parse(run.stdout);
  } catch (e) {
    assert.fail(`${what}: inspector output is not JSON (${e.message}): ${run.stdout.slice(0, 1000)}`);
  }
}

describe('cortexd under the MCP Inspector CLI', { timeout: 115000 }, () => {
  let ws;
  before(() => { ws = makeWorkspace('inspector'); });
  after(() => removeWorkspace(ws));

  it('tools/list', { timeout: RUN_MS + 5000 }, async () => {
    const out = json(await inspector(ws, ['--method', 'tools/list']), 'tools/list');
    assert.deepEqual(out.tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
  });

  it('tools/call observe, then search finds it', { timeout: 3 * RUN_MS + 5000 }, async () => {
    const obs = json(await inspector(ws, ['--method', 'tools/call', '--tool-name', 'observe',
      '--tool-arg', 'text=Inspector check: the wumpusgrid cache is rebuilt nightly.']), 'observe');
    assert.notEqual(obs.isError, true, JSON.stringify(obs));
    const id = obs.structuredContent?.results?.[0]?.id;
    assert.match(id ?? '', ULID, `observe result: ${JSON.stringify(obs)}`);

    const found = json(await inspector(ws, ['--method', 'tools/call', '--tool-name', 'search',
      '--tool-arg', 'query=wumpusgrid']), 'search');
    assert.notEqual(found.isError, true, JSON.stringify(found));
    assert.ok(found.structuredContent.results.some((r) => r.id === id),
      `search did not find ${id}: ${JSON.stringify(found).slice(0, 1000)}`);
    // The observation went to the workspace given with -e, not elsewhere.
    const st = json(await inspector(ws, ['--method', 'tools/call', '--tool-name', 'status']), 'status');
    assert.equal(st.structuredContent.workspace, ws);
  });

  it('tools/call get, draft, comment, publish and recent', { timeout: 7 * RUN_MS + 5000 }, async () => {
    const call = async (tool, ...args) => {
      const argv = ['--method', 'tools/call', '--tool-name', tool];
      for (const a of args) argv.push('--tool-arg', a);
      const out = json(await inspector(ws, argv), tool);
      assert.notEqual(out.isError, true, `${tool}: ${JSON.stringify(out).slice(0, 1000)}`);
      return out.structuredContent;
    };
    const obs = await call('observe', 'text=Inspector: the flaky test is test_shard_merge.');
    const id = obs.results[0].id;
    // Array and object arguments travel as JSON text through --tool-arg.
    const got = await call('get', `ids=${JSON.stringify([id])}`);
    assert.equal(got.items[0].id, id);
    const draft = await call('draft', 'title=Shard merge test is flaky',
      'body=Retry it once; the race is tracked upstream.', `evidence=${JSON.stringify([id])}`);
    assert.equal(draft.status, 'pending');
    const comment = await call('comment', `target_id=${draft.id}`, 'body=Still flaky on CI.');
    assert.equal(comment.target_id, draft.id);
    const pub = await call('publish', 'name=inspector-runbook', 'content=step one');
    assert.equal(pub.version, 1);
    const recent = await call('recent');
    assert.ok(recent.items.some((i) => i.id === draft.id), JSON.stringify(recent).slice(0, 1000));
  });
});
