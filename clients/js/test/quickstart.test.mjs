// The README's web quick start, run as written (only the package name points at dist/ and the
// URL at a test server) in node, with fake-indexeddb as the browser's IndexedDB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startServer, tempDir } from './helpers.mjs';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

function webExample() {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const section = readme.split('## Quick start: web')[1];
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, 'the README has a web quick start');
  assert.ok(code.trim().split('\n').length <= 20, 'at most 20 lines');
  return code;
}

test("the README's web quick start works as written", async () => {
  const data = tempDir();
  const server = await startServer(data.dir);
  let child;
  try {
    const resp = await fetch(`${server.url}/api/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ada@example.com', password: 'correct horse battery staple' }),
    });
    assert.equal(resp.status, 201);
    const code = webExample()
      .replace("from '@clarity/client'", `from '${pathToFileURL(join(pkg, 'dist/index.js'))}'`)
      .replace("'http://127.0.0.1:8080'", `'${server.url}'`);
    const file = join(data.dir, 'example.mjs');
    writeFileSync(file, code);
    child = spawn(process.execPath, ['--experimental-websocket', '--no-warnings', '--import', 'fake-indexeddb/auto', file], {
      cwd: pkg,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const want = ['stored 1, already there 0', 'change 1: upsert', 'history: 2026-12-01T08:00:00+01:00 62'];
    const end = Date.now() + 20_000;
    while (!want.every((w) => out.includes(w))) {
      assert.ok(child.exitCode === null, `the example exited early:\n${out}`);
      assert.ok(Date.now() < end, `the example's output lacks ${want.filter((w) => !out.includes(w))}:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    child?.kill();
    await server.stop();
    data.remove();
  }
});
