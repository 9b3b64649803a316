// SPDX-License-Identifier: Apache-2.0
// A transparent stdio wrapper for the SDK-driven tests:
//   node stdout-tap.mjs OUT_FILE EXIT_FILE -- PROGRAM ARGS...
// runs PROGRAM with our stdin, copies its stdout both to our stdout and to
// OUT_FILE byte for byte (so a test can check every line it wrote), passes
// its stderr through, and when it ends writes {"code","signal"} to EXIT_FILE
// and exits the same way. SIGTERM/SIGINT are forwarded.
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
if (sep !== 2 || argv.length < 4) {
  process.stderr.write('usage: stdout-tap.mjs OUT_FILE EXIT_FILE -- PROGRAM [ARGS...]\n');
  process.exit(2);
}
const [outFile, exitFile] = argv;
const [cmd, ...args] = argv.slice(3);
writeFileSync(outFile, '');

const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
child.on('error', (e) => {
  process.stderr.write(`stdout-tap: cannot run ${cmd}: ${e.message}\n`);
  writeFileSync(exitFile, JSON.stringify({ code: null, signal: null, error: e.message }));
  process.exit(127);
});
child.stdin.on('error', () => {});
process.stdin.pipe(child.stdin);
child.stdout.on('data', (chunk) => {
  appendFileSync(outFile, chunk);
  process.stdout.write(chunk);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { try { child.kill(sig); } catch { /* gone */ } });
}
child.on('close', (code, signal) => {
  writeFileSync(exitFile, JSON.stringify({ code, signal }));
  process.exit(code ?? 128);
});
