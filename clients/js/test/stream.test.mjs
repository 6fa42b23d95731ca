// Acceptance: a client streams 10,000 samples through three kill -9 restarts of the server
// and three connections cut mid-frame by a proxy; every sample is stored exactly once and the
// send() promises resolve in call order. Then: an access token expiring mid-stream is
// refreshed in band without loss or reconnect, and a closed login stops the client with an
// AuthError instead of retrying.
//
// The client always talks to the proxy; a restarted server comes back on a new port and the
// proxy is pointed at it (what a load balancer does), so the client keeps one URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError, ClarityClient, SessionTokens } from '../dist/index.js';
import { heartRates, signup, startProxy, startServer, storedSamples, tempDir, until } from './helpers.mjs';

test('10,000 samples through 3 kill -9 restarts and 3 mid-frame cuts: each stored once, acks in order', async () => {
  const data = tempDir();
  let server = await startServer(data.dir);
  const proxy = await startProxy(server.addr);
  let client;
  try {
    const account = await signup(server.url);
    const tokens = await SessionTokens.login(proxy.url, account.email, account.password);
    client = new ClarityClient({ url: proxy.url, tokens, maxBatchSize: 100, backoff: { initialMs: 50, maxMs: 400 } });
    const states = [];
    client.on('state', (s) => states.push(s));

    const samples = heartRates(10_000, 'acc');
    const CALLS = 100;
    const order = [];
    const results = [];
    const restarts = [];
    let cuts = 0;
    // Disruptions start from the resolution of these calls, i.e. while later calls are in
    // flight or queued: a kill -9 (then a restart on the same data folder) or an armed cut
    // (the next chunk of the stream, either way, is forwarded only half).
    const disrupt = new Map([[15, 'kill'], [30, 'cut'], [45, 'kill'], [60, 'cut'], [75, 'kill'], [85, 'cut']]);
    const calls = [];
    for (let i = 0; i < CALLS; i += 1) {
      const batch = samples.slice(i * 100, (i + 1) * 100);
      calls.push(client.send(batch).then((r) => {
        order.push(i);
        results[i] = r;
        const what = disrupt.get(i);
        if (what === 'kill') {
          restarts.push((async () => {
            await server.kill9();
            server = await startServer(data.dir);
            proxy.retarget(server.addr);
          })());
        } else if (what === 'cut') {
          proxy.cutMidFrame().then(() => {
            cuts += 1;
          });
        }
      }));
    }
    await Promise.all(calls);
    await Promise.all(restarts);
    assert.equal(restarts.length, 3);
    // Every armed cut happened while the stream was still going.
    await until(() => cuts === 3, 2000, 'the three cuts');

    assert.deepEqual(order, [...Array(CALLS).keys()], 'send() promises resolve in call order');
    for (const [i, r] of results.entries()) {
      assert.equal(r.accepted + r.duplicates, 100, `call ${i}: ${JSON.stringify(r)}`);
      assert.deepEqual(r.rejected, [], `call ${i}`);
    }
    assert.equal(client.pending, 0);
    assert.ok(states.filter((s) => s === 'reconnecting').length >= 6, `reconnected after each disruption: ${states}`);

    const stored = await storedSamples(server.url, await tokens.get());
    const ids = stored.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, 'no sample stored twice');
    assert.deepEqual(new Set(ids), new Set(samples.map((s) => s.id)), 'every sample stored');
  } finally {
    client?.close();
    await proxy.close();
    await server.stop();
    data.remove();
  }
});

test('a token expiring mid-stream is refreshed in band: no reconnect, nothing lost', async () => {
  const data = tempDir();
  const server = await startServer(data.dir, {
    CLARITY_ACCESS_TOKEN_TTL_SECS: '6',
    CLARITY_TOKEN_EXPIRY_WARNING_SECS: '3',
  });
  let client;
  try {
    const account = await signup(server.url);
    let refreshes = 0;
    const tokens = await SessionTokens.login(server.url, account.email, account.password, {
      marginMs: 500,
      onChange: (t) => {
        if (t) refreshes += 1;
      },
    });
    refreshes = 0;
    client = new ClarityClient({ url: server.url, tokens, backoff: { initialMs: 50, maxMs: 400 } });
    const states = [];
    const refreshed = [];
    client.on('state', (s) => states.push(s));
    client.on('frame', (f) => {
      if (f.type === 'refreshed') refreshed.push(f.expires_at);
    });
    const samples = heartRates(1500, 'ttl');
    // 30 batches, one every 300 ms: 9 s of streaming over a 6 s token.
    const calls = [];
    for (let i = 0; i < 30; i += 1) {
      calls.push(client.send(samples.slice(i * 50, (i + 1) * 50)));
      await new Promise((r) => setTimeout(r, 300));
    }
    const results = await Promise.all(calls);
    assert.ok(refreshes >= 2, `refreshed ${refreshes} times`);
    assert.ok(refreshed.length >= 2, `the server confirmed ${refreshed.length} refreshes`);
    assert.deepEqual(states, ['open'], 'one session throughout');
    assert.equal(results.reduce((n, r) => n + r.accepted, 0), 1500);
    const stored = await storedSamples(server.url, await tokens.get());
    assert.equal(stored.length, 1500);
  } finally {
    client?.close();
    await server.stop();
    data.remove();
  }
});

test('a login ended elsewhere stops the client with an AuthError, not endless retries', async () => {
  const data = tempDir();
  const server = await startServer(data.dir);
  let client;
  try {
    const account = await signup(server.url);
    const tokens = await SessionTokens.login(server.url, account.email, account.password);
    client = new ClarityClient({ url: server.url, tokens, backoff: { initialMs: 20, maxMs: 50 } });
    await client.send(heartRates(10, 'auth'));
    const failed = new Promise((resolve) => client.on('error', resolve));
    // Another copy of the same login logs out (e.g. the user signed out on the web).
    const other = new SessionTokens({ url: server.url, tokens: tokens.current() });
    await other.logout();
    const error = await failed;
    assert.ok(error instanceof AuthError, String(error));
    assert.equal(error.code, 'logged_out');
    assert.equal(client.state, 'failed');
    await assert.rejects(client.send(heartRates(1, 'after')), AuthError);
  } finally {
    client?.close();
    await server.stop();
    data.remove();
  }
});
