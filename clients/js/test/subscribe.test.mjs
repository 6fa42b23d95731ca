// Acceptance: a subscriber to the change feed (stream `samples`) resumes across a kill -9
// restart of the server and a cut connection with no gap and no duplicate offset: it sees
// every write exactly once, in order, and what it applied equals what the server lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClarityClient, ClarityRest, SessionTokens } from '../dist/index.js';
import { heartRates, signup, startProxy, startServer, storedSamples, tempDir, until } from './helpers.mjs';

test('a change-feed subscriber resumes across a server restart and a cut: no gap, no duplicate', async () => {
  const data = tempDir();
  let server = await startServer(data.dir);
  const proxy = await startProxy(server.addr);
  let subscriber;
  try {
    const account = await signup(server.url);
    const tokens = await SessionTokens.login(server.url, account.email, account.password);
    // The writer talks to the server directly; the subscriber through the proxy.
    const writer = () => new ClarityRest({ url: server.url, tokens });
    subscriber = new ClarityClient({ url: proxy.url, tokens, backoff: { initialMs: 50, maxMs: 400 } });
    const offsets = [];
    const wire = [];
    const copy = new Map();
    const reloads = [];
    subscriber.on('frame', (f) => {
      if (f.type === 'change') wire.push(f.offset);
    });
    const sub = subscriber.subscribe('samples', undefined, (change) => {
      offsets.push(change.offset);
      if (change.op === 'upsert') copy.set(change.sample.id, change.sample);
      else copy.delete(change.id);
    }, { since: 0, onReload: (info) => reloads.push(info) });

    const samples = heartRates(150, 'feed');
    let ops = 0;
    const write = async (part) => {
      const r = await writer().upload(part);
      assert.equal(r.accepted, part.length);
      ops += part.length;
    };
    await write(samples.slice(0, 50));
    await until(() => offsets.length === ops, 20_000, 'the first 50 changes');

    // Killed and restarted: the writes made while the subscriber reconnects are replayed.
    await server.kill9();
    server = await startServer(data.dir);
    proxy.retarget(server.addr);
    await write(samples.slice(50, 100));
    await until(() => offsets.length === ops, 20_000, 'the changes after the restart');

    // Cut while live, then more writes (inserts, an edit, deletes) before it is back.
    proxy.cutAll();
    await write(samples.slice(100, 150));
    const edited = { ...samples[20], value: 99, version: 2 };
    const again = await writer().upload([edited]);
    assert.equal(again.updated, 1);
    ops += 1;
    const del = await writer().deleteSamples(samples.slice(0, 10).map((s) => s.id));
    assert.equal(del.deleted, 10);
    ops += 10;
    await until(() => offsets.length === ops, 20_000, 'the changes after the cut');

    assert.deepEqual(reloads, [], 'resumed, never reloaded');
    for (let i = 1; i < offsets.length; i += 1) {
      assert.ok(offsets[i] > offsets[i - 1], `offsets strictly increase: ${offsets.slice(i - 1, i + 1)}`);
    }
    assert.equal(sub.offset, offsets.at(-1));
    // Resumes replayed only what was missed: the wire never carried an offset twice.
    assert.equal(new Set(wire).size, wire.length, `no offset sent twice: ${wire.length} frames for ${ops} changes`);
    const stored = await storedSamples(server.url, await tokens.get());
    assert.deepEqual([...copy.keys()].sort(), stored.map((s) => s.id).sort());
    assert.equal(copy.get(samples[20].id).value, 99);
  } finally {
    subscriber?.close();
    await proxy.close();
    await server.stop();
    data.remove();
  }
});
