// A grantee follows the owner's insights through a share; the owner revokes it and the
// subscription ends with onEnd('revoked') (not renewed); a stream no share grants is refused
// with a ClarityError `forbidden`. Then the REST helpers: shares, history pages, deletes,
// the change feed and the export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClarityClient, ClarityError, SessionTokens } from '../dist/index.js';
import { heartRates, signup, startServer, tempDir, until } from './helpers.mjs';

test('share revocation ends the subscription; REST helpers page, delete, follow changes, export', async () => {
  const data = tempDir();
  const server = await startServer(data.dir);
  const clients = [];
  try {
    const ownerAccount = await signup(server.url);
    const viewerAccount = await signup(server.url);
    const ownerTokens = await SessionTokens.login(server.url, ownerAccount.email, ownerAccount.password);
    const viewerTokens = await SessionTokens.login(server.url, viewerAccount.email, viewerAccount.password);
    const owner = new ClarityClient({ url: server.url, tokens: ownerTokens });
    const viewer = new ClarityClient({ url: server.url, tokens: viewerTokens });
    clients.push(owner, viewer);
    const me = await owner.rest.profile();
    const share = await owner.rest.share(viewerAccount.email, 'insights');

    const ends = [];
    const subscribed = [];
    viewer.subscribe('insights', me.user_id, () => {}, {
      since: 0,
      onSubscribed: (f) => subscribed.push(f),
      onEnd: (reason) => ends.push(reason),
    });
    viewer.subscribe('analyses', me.user_id, () => {}, { onEnd: (reason) => ends.push(reason) });
    await until(() => subscribed.length === 1 && ends.length === 1, 10_000, 'subscribed, and analyses refused');
    assert.ok(ends[0] instanceof ClarityError && ends[0].code === 'forbidden', String(ends[0]));
    await owner.rest.unshare(share.share_id);
    await until(() => ends.length === 2, 10_000, 'the revocation');
    assert.equal(ends[1], 'revoked');
    assert.deepEqual((await viewer.rest.shares()).received, []);

    // REST: upload, history across pages, delete, the change feed, the export.
    const samples = heartRates(25, 'rest');
    assert.equal((await owner.rest.upload(samples)).accepted, 25);
    const listed = [];
    for await (const s of owner.rest.history({ kind: 'heart_rate', limit: 10 })) listed.push(s.id);
    assert.deepEqual(listed.sort(), samples.map((s) => s.id).sort());
    const del = await owner.rest.deleteSamples(['rest-0', 'nope']);
    assert.deepEqual([del.deleted, del.not_found], [1, 1]);
    assert.equal(await owner.rest.deleteSample('rest-1'), true);
    assert.equal(await owner.rest.deleteSample('rest-1'), false);
    const changes = [];
    let token;
    for await (const page of owner.rest.changes('0', 10)) {
      changes.push(...page.changes);
      token = page.next_token;
    }
    assert.equal(changes.filter((c) => c.op === 'upsert').length, 23, 'since 0: every current sample');
    assert.equal((await owner.send([{ ...samples[2], value: 70, version: 1 }])).updated, 1);
    const after = [];
    for await (const page of owner.rest.changes(token)) after.push(...page.changes);
    assert.deepEqual(after.map((c) => [c.op, c.sample?.id]), [['upsert', 'rest-2']]);
    const lines = [];
    for await (const line of owner.rest.export()) lines.push(line.type);
    assert.equal(lines[0], 'profile');
    assert.equal(lines.filter((t) => t === 'sample').length, 23);
    assert.equal(lines.at(-1), 'end');
  } finally {
    for (const c of clients) c.close();
    await server.stop();
    data.remove();
  }
});
