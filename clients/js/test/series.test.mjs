// sendSeries: a regular series longer than a frame allows is split into `series` frames that
// start where they fall (same UTC offset); the server stores exactly the samples it stands
// for, gaps left out, a bad value rejected with its index in the whole series; sending it
// again is all duplicates (derived ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClarityClient, ClarityError, SessionTokens } from '../dist/index.js';
import { signup, startServer, storedSamples, tempDir } from './helpers.mjs';

const MINUTE = 60_000;
const N = 2500;

/** `utcMs` as RFC 3339 at +02:00, e.g. a phone in Berlin in summer. */
function berlin(utcMs) {
  return `${new Date(utcMs + 2 * 3_600_000).toISOString().slice(0, 19)}+02:00`;
}

test('a long series is split at frame size, stored sample for sample, and idempotent', async () => {
  const data = tempDir();
  const server = await startServer(data.dir);
  let client;
  try {
    const account = await signup(server.url);
    const tokens = await SessionTokens.login(server.url, account.email, account.password);
    client = new ClarityClient({ url: server.url, tokens, maxBatchSize: 1000 });
    const startMs = Math.floor(Date.now() / MINUTE) * MINUTE - (N + 10) * MINUTE;
    // A gap every 100th minute; one impossible heart rate in the second frame.
    const values = Array.from({ length: N }, (_, i) => (i % 100 === 7 ? null : i === 1700 ? 400 : 55 + (i % 40)));
    const series = { kind: 'heart_rate', unit: 'bpm', source: 'watch', start: berlin(startMs), interval_ms: MINUTE, values };
    const present = values.filter((v) => v !== null).length;

    const first = await client.sendSeries(series);
    assert.equal(first.accepted, present - 1, JSON.stringify({ ...first, rejected: first.rejected.length }));
    assert.deepEqual(first.rejected.map((r) => [r.index, r.code]), [[1700, 'out_of_range']]);

    const stored = await storedSamples(server.url, await tokens.get());
    assert.equal(stored.length, present - 1);
    const byStart = new Map(stored.map((s) => [Date.parse(s.start), s]));
    for (const [i, v] of values.entries()) {
      const s = byStart.get(startMs + i * MINUTE);
      if (v === null || i === 1700) {
        assert.equal(s, undefined, `minute ${i}: nothing stored`);
        continue;
      }
      assert.ok(s, `minute ${i} stored`);
      assert.equal(s.value, v, `minute ${i}`);
      assert.equal(s.source, 'watch');
      assert.ok(s.start.endsWith('+02:00'), `minute ${i} keeps the phone's offset: ${s.start}`);
      assert.match(s.id, /^s:heart_rate:\d+:[0-9a-f]{16}$/);
    }

    const again = await client.sendSeries(series);
    assert.equal(again.accepted, 0);
    assert.equal(again.duplicates, present - 1);
    assert.deepEqual(again.rejected.map((r) => r.index), [1700]);
    assert.equal(client.pending, 0);

    await assert.rejects(
      client.sendSeries({ ...series, start: '2026-01-01T10:00:00' }),
      (e) => e instanceof ClarityError && e.code === 'invalid_frame' && /offset/.test(e.message),
    );
  } finally {
    client?.close();
    await server.stop();
    data.remove();
  }
});
