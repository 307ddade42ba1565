// Through a TURN server only (SPEC §9): loopchat hands out coturn REST credentials
// (`--turn-secret`) for the `--ice-servers` it lists, and pages opened with `?relay=1`
// connect through the relay or not at all. With a secret that coturn does not share,
// nothing connects, which shows that the first call really went through TURN.
import assert from 'node:assert/strict';
import { eventually, startServer } from '../e2e/helpers.mjs';
import {
  CONNECT_MS, assertFlowing, callTest, costMeter, framesFrom, inCall, mediaStats, newRoom,
} from './call.mjs';
import { startTurn } from './turn.mjs';

callTest('with ?relay=1 the call goes through coturn, relay to relay, and a wrong secret connects nothing', async (t, b) => {
  const meter = costMeter();
  const turn = await startTurn();
  t.after(() => turn.stop());
  const url = await b.startCall(['--ice-servers', turn.url, '--turn-secret', turn.secret]);
  const room = await newRoom(url);
  const ada = await b.open(`${room}?relay=1`, { name: 'ada' });
  const bob = await b.open(`${room}?relay=1`, { name: 'bob' });
  await Promise.all([inCall(ada), inCall(bob)]);

  const iceServers = await ada.evaluate(() => window.loopchat.call.iceServers);
  assert.equal(iceServers.length, 1);
  assert.deepEqual([iceServers[0].urls].flat(), [turn.url]);
  assert.match(iceServers[0].username, /^\d+:/);

  await Promise.all([framesFrom(ada, ['bob']), framesFrom(bob, ['ada'])]);
  meter.mark('all frames flowing through TURN');
  const relayed = (where, pair) => assert.deepEqual([pair.local, pair.remote], ['relay', 'relay'], where);
  await assertFlowing([{ page: ada, from: ['bob'] }, { page: bob, from: ['ada'] }], { pair: relayed });
  meter.report(t, 'a 2-page call through TURN');
  assert.match(turn.log(), /ALLOCATE processed, success/, 'coturn allocated relays');
  assert.match(turn.log(), /CREATE_PERMISSION processed, success/, 'coturn let the peers through');

  // The same coturn, a loopchat whose secret is not coturn's: its credentials are refused.
  const wrong = await startServer({ args: ['--ice-servers', turn.url, '--turn-secret', `not-${turn.secret}`] });
  t.after(() => wrong.cleanup());
  const wrongRoom = new URL(await newRoom(wrong.url), wrong.url).href;
  const cat = await b.open(`${wrongRoom}?relay=1`, { name: 'cat' });
  const dan = await b.open(`${wrongRoom}?relay=1`, { name: 'dan' });
  await Promise.all([inCall(cat), inCall(dan)]);
  // Nothing is watched for a time: coturn refuses the credentials (its log says so), and
  // each page ends its gathering without a candidate. With ?relay=1 a relay candidate is
  // the only kind a page may use, so with none, nothing can connect however long one waits.
  await eventually(() => /Cannot find credentials/.test(turn.log()), 'coturn refusing the wrong credentials', CONNECT_MS);
  for (const page of [cat, dan]) {
    await page.waitForFunction(() => {
      const peers = [...window.loopchat.call.peers.values()];
      return peers.length === 1 && peers[0].pc.iceGatheringState === 'complete';
    }, null, { timeout: CONNECT_MS });
  }
  for (const page of [cat, dan]) {
    const states = await page.evaluate(() => [...window.loopchat.call.peers.values()].map((peer) => peer.pc.connectionState));
    assert.equal(states.length, 1, page.label);
    assert.notEqual(states[0], 'connected', `${page.label} must not connect without TURN`);
    const candidates = await page.evaluate(async () => {
      const [peer] = window.loopchat.call.peers.values();
      const found = [];
      (await peer.pc.getStats()).forEach((report) => { if (report.type === 'local-candidate') found.push(report.candidateType); });
      return found;
    });
    assert.deepEqual(candidates, [], `${page.label}: gathering ended without a candidate`);
    const stats = Object.values(await mediaStats(page));
    assert.equal(stats[0].pair, null, `${page.label}: no candidate pair was selected`);
  }
});
