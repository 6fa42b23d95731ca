// Test helpers: the real `clarity serve` as a child process, a TCP proxy that can cut
// connections mid-frame, and accounts.
//
// The binary: $CLARITY_BIN, else target/debug/clarity of the repository this package is in
// (`cargo build --bin clarity` in the repository root).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.CLARITY_BIN || join(here, '../../../target/debug/clarity');
export const PASSWORD = 'correct horse battery staple';

if (!existsSync(BIN)) {
  throw new Error(`no clarity binary at ${BIN}: run \`cargo build --bin clarity\` in the repository root, or set CLARITY_BIN`);
}

export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'clarity-sdk-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// The signing key is generated into the data folder (kept across restarts), never inherited.
function serverEnv(extra) {
  const env = { ...process.env, ...extra };
  delete env.CLARITY_JWT_SECRET;
  delete env.RUST_LOG;
  return env;
}

/**
 * `clarity serve` on 127.0.0.1 (an ephemeral port) with `dataDir`; resolves once it listens.
 * `kill9()` kills it at once (SIGKILL: no shutdown, no going_away).
 */
export async function startServer(dataDir, env = {}) {
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log', 'info'], {
    env: serverEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 30 s:\n${out}`)), 30_000);
    const onData = (chunk) => {
      out += chunk;
      const m = /listening on http:\/\/([0-9.:]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${out}`)));
  });
  // Keep draining so the child never blocks on a full pipe.
  child.stderr.resume();
  child.stdout.resume();
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    addr,
    url: `http://${addr}`,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target` ("host:port", changeable with `retarget`,
 * e.g. to a restarted server). `cutMidFrame()` arms a cut: the next chunk of at least 64
 * bytes (a WebSocket frame on its way, either direction) is forwarded only half, then both
 * sides of that connection are destroyed. `cutAll()` drops every connection at once.
 */
export async function startProxy(target) {
  let upstream = target;
  let armed = null;
  const pairs = new Set();
  const server = net.createServer((client) => {
    const [host, port] = upstream.split(':');
    const up = net.connect(Number(port), host);
    const pair = { client, up };
    pairs.add(pair);
    const kill = () => {
      pairs.delete(pair);
      client.destroy();
      up.destroy();
    };
    const forward = (from, to) => {
      from.on('data', (chunk) => {
        if (armed && chunk.length >= 64) {
          const done = armed;
          armed = null;
          to.write(chunk.subarray(0, chunk.length >> 1), () => {
            kill();
            done();
          });
          from.pause();
          return;
        }
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => from.resume());
    };
    forward(client, up);
    forward(up, client);
    client.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    retarget(t) {
      upstream = t;
    },
    /** Resolves once a connection was cut in the middle of a chunk. */
    cutMidFrame() {
      return new Promise((resolve) => {
        armed = resolve;
      });
    },
    get connections() {
      return pairs.size;
    },
    cutAll() {
      for (const { client, up } of pairs) {
        client.destroy();
        up.destroy();
      }
      pairs.clear();
    },
    close() {
      this.cutAll();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function post(url, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A new account: `{email, password}`. */
export async function signup(url) {
  const email = `sdk-${randomUUID()}@example.com`;
  await post(url, '/api/v1/auth/signup', { email, password: PASSWORD });
  return { email, password: PASSWORD };
}

/** Every stored sample of the token's user (REST history, all pages). */
export async function storedSamples(url, token) {
  const all = [];
  let cursor = null;
  for (;;) {
    const q = new URLSearchParams({ limit: '10000' });
    if (cursor) q.set('cursor', cursor);
    const resp = await fetch(`${url}/api/v1/health-data?${q}`, { headers: { authorization: `Bearer ${token}` } });
    if (!resp.ok) throw new Error(`history: ${resp.status} ${await resp.text()}`);
    const body = await resp.json();
    all.push(...body.samples);
    cursor = body.next_cursor;
    if (!cursor) return all;
  }
}

/** `n` heart-rate samples, one a minute ending now, with ids `${prefix}-${i}`. */
export function heartRates(n, prefix = 'hr') {
  const end = Math.floor(Date.now() / 60_000) * 60_000;
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    kind: 'heart_rate',
    start: new Date(end - (n - i) * 60_000).toISOString(),
    value: 50 + (i % 60),
    unit: 'bpm',
  }));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` is true (polling every 20 ms), or fails after `ms`. */
export async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
