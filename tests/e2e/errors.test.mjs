// Every refusal of SPEC §5 that can be provoked from outside, against one server: the suite
// itself is in refusals.mjs (tests/cluster/errors.test.mjs runs it against a cluster).
import assert from 'node:assert/strict';
import { e2e, metricsText, metricValue, sendGoodClip } from './helpers.mjs';
import { ADMIN_TOKEN, FRAMES, refusalTests, seed } from './refusals.mjs';

/** A server of its own, with an observer and one stored clip. */
async function oneServer(h, { profanity = false, admin = false }) {
  const args = [...(profanity ? ['--filter-profanity'] : []), ...(admin ? ['--admin-token', ADMIN_TOKEN] : [])];
  const server = await h.server({ args });
  const observer = await h.client(server.url, { name: 'observer' });
  const world = {
    url: server.url,
    nodes: [server],
    observers: [observer],
    storedCount: async () => metricValue(await metricsText(server.url), 'loopchat_clips_stored'),
    adminUrl: server.url,
  };
  await seed(h, world);
  return world;
}

refusalTests({ test: e2e, world: oneServer });

e2e('profanity: without --filter-profanity the same text is accepted', async (t, h) => {
  const server = await h.server();
  const sender = await h.client(server.url, { name: 'free-speech' });
  const clip = await sendGoodClip(sender.socket, { message: 'what the fuck is this', frames: [FRAMES[0]] });
  assert.equal(clip.message, 'what the fuck is this');
});
