// Every refusal of SPEC §5 that can be provoked from outside (all but `busy`, `unavailable`
// and `internal`), as one suite that runs against any "world": one server (errors.test.mjs)
// or a cluster of nodes on Redis (tests/cluster/errors.test.mjs). The same behaviour is
// proved once, against each mode.
//
// The server checks, in this order: the rate limit (a token bucket per socket: 5 in a burst,
// one back every 4 s, every attempt counts), then banned, invalid_payload, bad_frame_count,
// frame_too_large, text_too_long, bad_frame, bad_dimensions, profanity (with
// --filter-profanity). So each case is sent by a fresh client, and for each one the suite
// checks that:
//   - the ack reply is { ok: false, error: { code, message } } with the exact code, and the
//     sender gets `messageerror` { id, code, message } with the same code;
//   - nobody else gets `message` (on any node), and nothing was stored (a new client's
//     replay is unchanged on every node, the store holds as many clips as before, no node's
//     loopchat_clips_accepted_total moved, the sender's node's
//     loopchat_clips_rejected_total{code} went up by 1);
//   - the sender stays connected, and a good clip from a fresh client afterwards is acked and
//     broadcast (to the refused sender too, and to every node).
//
// A world is `{ url, nodes, observers, storedCount(), adminUrl }`: `url` is the node the
// sender (and the fresh client after it) connects to, `nodes` every node (`{ url, output() }`),
// `observers` connected clients that must see broadcasts (at least one per node),
// `storedCount()` how many clips the store holds, `adminUrl` where moderation requests go.
// `world(h, { profanity, admin })` makes one for a test: with the profanity filter or the
// moderation API (token ADMIN_TOKEN) on when asked, and one clip already stored.
import assert from 'node:assert/strict';
import {
  once, expectNoEvent, sendClip, sendGoodClip, loadFrames, dataUri, patchDimensions, padJpeg,
  noise, PNG_1x1, metricsText, metricValue, replayKeys, eventually, WAIT_MS,
} from './helpers.mjs';

export const FRAMES = loadFrames();
const [F1, F2, F3] = FRAMES;
const ID = 'my-correlation-id';
/** SPEC §1's default --replay. */
const REPLAY = 10;
export const ADMIN_TOKEN = 'errors-suite-admin-token';

/**
 * `jpeg` with the sampling factors of its second (blue chroma) component set to `factors`:
 * 0x44 makes zune-jpeg 0.4 panic rather than fail, which the server must turn into a quiet
 * `bad_frame`.
 */
function withChromaSampling(jpeg, factors) {
  const copy = Buffer.from(jpeg);
  const startOfFrame = copy.indexOf(Buffer.from([0xFF, 0xC0]));
  // marker (2), length (2), precision (1), height (2), width (2), component count (1),
  // then id, sampling, table (1 each) per component.
  copy[startOfFrame + 14] = factors;
  return copy;
}

/** The ten fixtures with frame `index` replaced by `frame`. */
const tenWith = (index, frame) => FRAMES.map((f, i) => (i === index ? frame : f));

export const CASES = [
  // invalid_payload: not an object, wrong field types, frames missing.
  { code: 'invalid_payload', what: 'a string payload', payload: 'hello', id: null },
  { code: 'invalid_payload', what: 'a number payload', payload: 42, id: null },
  { code: 'invalid_payload', what: 'an array payload', payload: [F1, F2], id: null },
  { code: 'invalid_payload', what: 'a null payload', payload: null, id: null },
  { code: 'invalid_payload', what: 'frames missing', payload: { id: ID, message: 'no frames' } },
  { code: 'invalid_payload', what: 'frames not an array', payload: { id: ID, message: 'x', frames: 'f-1.jpg' } },
  { code: 'invalid_payload', what: 'message not a string', payload: { id: ID, message: 5, frames: [F1] } },
  // The id is not a string, so which id is echoed is not asserted.
  { code: 'invalid_payload', what: 'id not a string', payload: { id: 5, message: 'x', frames: [F1] }, id: undefined },
  { code: 'invalid_payload', what: 'a frame that is a number', payload: { id: ID, message: '', frames: [F1, 42] } },

  // bad_frame_count: 0 frames or more than 10.
  { code: 'bad_frame_count', what: 'no frames', payload: { id: ID, message: 'empty', frames: [] } },
  { code: 'bad_frame_count', what: 'eleven frames', payload: { id: ID, message: 'eleven', frames: [...FRAMES, F1] } },

  // frame_too_large: one frame over 256 KiB, or the whole message over 3 MiB.
  {
    code: 'frame_too_large',
    what: 'one valid JPEG frame of 256 KiB + 1 byte',
    payload: { id: ID, message: 'big', frames: [F1, padJpeg(F2, 256 * 1024 + 1)] },
  },
  {
    code: 'frame_too_large',
    what: 'ten data-URI frames of 240 KiB JPEGs (about 3.2 MiB in all)',
    payload: { id: ID, message: 'huge', frames: FRAMES.map((f) => dataUri(padJpeg(f, 240 * 1024))) },
  },

  // text_too_long: more than 250 characters once cleaned.
  { code: 'text_too_long', what: '251 characters', payload: { id: ID, message: 'x'.repeat(251), frames: [F1] } },
  {
    code: 'text_too_long',
    what: '251 characters once control characters are removed and the text is trimmed',
    payload: { id: ID, message: ` \u0007${'é'.repeat(251)}\n`, frames: [F1] },
  },

  // bad_frame: not a JPEG, truncated, undecodable, or a data URI that is not image/jpeg base64.
  { code: 'bad_frame', what: 'PNG bytes', payload: { id: ID, message: 'png', frames: [PNG_1x1] } },
  { code: 'bad_frame', what: 'random bytes among good frames', payload: { id: ID, message: 'noise', frames: tenWith(4, noise(4700)) } },
  { code: 'bad_frame', what: 'a data:image/png URI', payload: { id: ID, message: 'png uri', frames: [dataUri(F1, 'image/png')] } },
  {
    code: 'bad_frame',
    what: 'a data URI with invalid base64',
    payload: { id: ID, message: 'bad base64', frames: [dataUri(F1), 'data:image/jpeg;base64,@@not*base64!!'] },
  },
  {
    code: 'bad_frame',
    what: 'a frame that makes the JPEG decoder panic (4×4 chroma subsampling)',
    payload: { id: ID, message: 'panic', frames: tenWith(1, withChromaSampling(F2, 0x44)) },
  },
  { code: 'bad_frame', what: 'a string that is not a data URI', payload: { id: ID, message: 'no uri', frames: ['hello'] } },
  {
    code: 'bad_frame',
    what: 'a truncated JPEG (first 40% of a fixture) among good frames',
    payload: { id: ID, message: 'cut', frames: tenWith(2, F3.subarray(0, Math.floor(F3.length * 0.4))) },
  },

  // bad_dimensions: a side over 640 pixels, or frames of different sizes.
  { code: 'bad_dimensions', what: 'a 641×200 header', payload: { id: ID, message: 'wide', frames: [patchDimensions(F1, 641, 200)] } },
  { code: 'bad_dimensions', what: 'a 200×641 header', payload: { id: ID, message: 'tall', frames: [patchDimensions(F1, 200, 641)] } },
  {
    code: 'bad_dimensions',
    what: 'a forged 65535×65535 header',
    payload: { id: ID, message: 'forged', frames: [patchDimensions(F1, 65535, 65535)] },
  },
  {
    code: 'bad_dimensions',
    what: 'a 100×100 frame among 200×200 ones',
    payload: { id: ID, message: 'mixed sizes', frames: tenWith(2, patchDimensions(F3, 100, 100)) },
  },
];

/** Stores one clip from a fresh client, and waits until every observer has it. */
export async function seed(h, world) {
  const seeder = await h.client(world.url, { name: 'seeder' });
  const seen = world.observers.map((observer) => once(observer.socket, 'message'));
  await sendGoodClip(seeder.socket, { id: 'seed', message: 'already here', frames: [F1, F2] });
  await Promise.all(seen);
}

export async function snapshot(world) {
  const metrics = await Promise.all(world.nodes.map((node) => metricsText(node.url)));
  const sender = metrics[world.nodes.findIndex((node) => node.url === world.url)];
  return {
    replays: await Promise.all(world.nodes.map((node) => replayKeys(node.url))),
    stored: await world.storedCount(),
    accepted: metrics.map((text) => metricValue(text, 'loopchat_clips_accepted_total') ?? 0),
    rejected: (code) => metricValue(sender, 'loopchat_clips_rejected_total', { code }) ?? 0,
  };
}

/** What a new client on each node is replayed once `added` (keys, in order) were stored after `before`. */
const replayAfter = (before, added) => before.replays.map((keys) => [...keys, ...added].slice(-REPLAY));

/** Checks that nothing was stored or broadcast since `before`, and that every node still works. */
export async function assertNothingHappened(h, world, before, { code, rejections = 1, sender }) {
  await Promise.all(world.observers.map((observer) => expectNoEvent(observer.socket, 'message')));
  const after = await snapshot(world);
  assert.deepEqual(after.replays, before.replays, 'a new client\'s replay is unchanged, on every node');
  assert.equal(typeof after.stored, 'number', 'the store\'s clip count is known');
  assert.equal(after.stored, before.stored, 'the store holds as many clips as before');
  assert.deepEqual(after.accepted, before.accepted, 'loopchat_clips_accepted_total is unchanged on every node');
  assert.equal(after.rejected(code), before.rejected(code) + rejections, `loopchat_clips_rejected_total{code="${code}"} +${rejections}`);

  // The refused sender is still connected, and the server still serves everyone.
  assert.equal(sender.socket.connected, true, 'the refused sender stays connected');
  const fresh = await h.client(world.url, { name: 'after' });
  const atObservers = world.observers.map((observer) => once(observer.socket, 'message'));
  const atSender = once(sender.socket, 'message');
  const good = await sendGoodClip(fresh.socket, { id: 'good-after', message: 'still working', frames: FRAMES });
  for (const arrived of atObservers) assert.equal((await arrived).key, good.key, 'the good clip is broadcast');
  assert.equal((await atSender).key, good.key, 'the refused sender receives it too');
  const replays = await Promise.all(world.nodes.map((node) => replayKeys(node.url)));
  assert.deepEqual(replays, replayAfter(before, [good.key]));
  // A refusal is not a crash: nothing may reach the log as a panic (the decoder's own
  // panics are caught and logged at debug level only).
  for (const node of world.nodes) assert.doesNotMatch(node.output(), /panicked/, 'no panic in the server\'s output');
}

/** Checks a refusal's ack reply and messageerror, returns the message in words. */
function assertRefusal(sent, code, id) {
  const { reply, event, eventName } = sent;
  assert.equal(reply.ok, false, `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(reply.error?.code, code, `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(eventName, 'messageerror');
  assert.deepEqual(event, { id, code, message: reply.error.message });
  return reply.error.message;
}

/**
 * Defines the suite's tests with `test(name, fn(t, h))` (the e2e harness, or a cluster
 * suite's) against the worlds `world(h, needs)` makes.
 */
export function refusalTests({ test, world }) {
  for (const { code, what, payload, id = ID } of CASES) {
    test(`${code}: ${what}`, async (t, h) => {
      const setup = await world(h, {});
      const before = await snapshot(setup);
      const sender = await h.client(setup.url, { name: 'sender' });

      const { reply, event, eventName } = await sendClip(sender.socket, payload);
      assert.equal(reply.ok, false, `ack reply: ${JSON.stringify(reply)}`);
      assert.equal(reply.error?.code, code, `ack reply: ${JSON.stringify(reply)}`);
      assert.equal(typeof reply.error.message, 'string');
      assert.ok(reply.error.message.length > 0, 'the error is explained in words');
      assert.equal(eventName, 'messageerror', `sender got ${eventName} ${JSON.stringify(event)}`);
      assert.equal(event.code, code, `messageerror: ${JSON.stringify(event)}`);
      assert.equal(event.message, reply.error.message);
      assert.ok('id' in event, 'messageerror has an id field');
      if (code === 'invalid_payload' && id !== null) {
        // The payload did not parse: echoing the id is welcome, null is acceptable.
        if (id !== undefined) assert.ok(event.id === id || event.id === null, `messageerror id ${JSON.stringify(event.id)}`);
      } else if (id !== undefined) {
        assert.equal(event.id, id, 'messageerror echoes the client\'s id (null when none)');
      }

      await assertNothingHappened(h, setup, before, { code, sender });
    });
  }

  test('an error without an ack callback still reaches the sender as messageerror', async (t, h) => {
    const setup = await world(h, {});
    const before = await snapshot(setup);
    const sender = await h.client(setup.url, { name: 'sender' });
    const error = once(sender.socket, 'messageerror');
    sender.socket.emit('message', { id: 'no-callback', message: 'x', frames: [] });
    assert.deepEqual(
      { id: (await error).id, code: (await error).code },
      { id: 'no-callback', code: 'bad_frame_count' },
    );
    await assertNothingHappened(h, setup, before, { code: 'bad_frame_count', sender });
  });

  test('rate_limited: six clips at once from one socket, five are acked and one is refused', async (t, h) => {
    const setup = await world(h, {});
    const before = await snapshot(setup);
    const sender = await h.client(setup.url, { name: 'burst' });
    const seenByObservers = setup.observers.map((observer) => observer.received.message.length);

    const ids = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
    const replies = await Promise.all(ids.map((id, i) =>
      sender.socket.timeout(WAIT_MS).emitWithAck('message', { id, message: `burst ${i}`, frames: [FRAMES[i], FRAMES[i + 1]] })));
    const accepted = replies.filter((r) => r.ok === true);
    const refused = replies.map((r, i) => ({ r, id: ids[i] })).filter(({ r }) => r.ok !== true);
    assert.equal(accepted.length, 5, `five acked: ${JSON.stringify(replies.map((r) => r.ok ? 'ok' : r.error))}`);
    assert.equal(refused.length, 1);
    assert.equal(refused[0].r.error.code, 'rate_limited');
    // Which of the six is refused depends on the order the server handles them in: it is the one
    // whose reply says so, and its messageerror carries its id.
    await eventually(() => sender.received.messageerror.length === 1 && sender.received.messageack.length === 5, 'five messageack and one messageerror');
    assert.deepEqual(sender.received.messageerror[0], { id: refused[0].id, code: 'rate_limited', message: refused[0].r.error.message });
    assert.deepEqual(sender.received.messageack.map((c) => c.key).sort(), accepted.map((r) => r.message.key).sort());

    // The five went out to every observer, the refused one did not.
    for (const [i, observer] of setup.observers.entries()) {
      await eventually(() => observer.received.message.length === seenByObservers[i] + 5, 'five broadcasts');
    }
    await Promise.all(setup.observers.map((observer) => expectNoEvent(observer.socket, 'message')));
    for (const [i, observer] of setup.observers.entries()) {
      assert.deepEqual(observer.received.message.slice(seenByObservers[i]).map((c) => c.id).sort(), accepted.map((r) => r.message.id).sort());
    }

    const after = await snapshot(setup);
    const senderNode = setup.nodes.findIndex((node) => node.url === setup.url);
    assert.equal(after.stored, before.stored + 5);
    assert.deepEqual(after.accepted, before.accepted.map((count, i) => (i === senderNode ? count + 5 : count)));
    assert.equal(after.rejected('rate_limited'), before.rejected('rate_limited') + 1);
    assert.deepEqual(after.replays, replayAfter(before, accepted.map((r) => r.message.key).sort()));

    // The sixth is still refused right after; a good clip from a fresh client goes through.
    const again = await sendClip(sender.socket, { id: 'r7', message: 'again', frames: [F1] });
    assert.equal(again.reply.error?.code, 'rate_limited');
    const snapshotNow = await snapshot(setup);
    await assertNothingHappened(h, setup, snapshotNow, { code: 'rate_limited', rejections: 0, sender });
  });

  test('rate_limited: invalid payloads consume tokens too', async (t, h) => {
    const setup = await world(h, {});
    const before = await snapshot(setup);
    const sender = await h.client(setup.url, { name: 'sloppy' });
    for (let i = 0; i < 5; i += 1) {
      const { reply, event } = await sendClip(sender.socket, 'not an object');
      assert.equal(reply.error?.code, 'invalid_payload', `attempt ${i + 1}: ${JSON.stringify(reply)}`);
      assert.equal(event.code, 'invalid_payload');
    }
    const { reply, event, eventName } = await sendClip(sender.socket, { id: 'valid', message: 'valid but late', frames: FRAMES });
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, 'rate_limited', `the sixth attempt: ${JSON.stringify(reply)}`);
    assert.equal(eventName, 'messageerror');
    assert.deepEqual({ id: event.id, code: event.code }, { id: 'valid', code: 'rate_limited' });

    const after = await snapshot(setup);
    assert.equal(after.rejected('invalid_payload'), before.rejected('invalid_payload') + 5);
    await assertNothingHappened(h, setup, before, { code: 'rate_limited', sender });
  });

  test('profanity: with --filter-profanity a clip with profane text is refused, clean text still goes', async (t, h) => {
    const setup = await world(h, { profanity: true });
    const before = await snapshot(setup);
    const sender = await h.client(setup.url, { name: 'potty-mouth' });
    const message = assertRefusal(await sendClip(sender.socket, { id: ID, message: 'what the fuck is this', frames: [F1] }), 'profanity', ID);
    assert.match(message, /words/, 'the refusal says why in words');
    await assertNothingHappened(h, setup, before, { code: 'profanity', sender });

    const clean = await sendGoodClip(sender.socket, { message: 'the scunthorpe office says hello', frames: [F2] });
    assert.equal(clean.message, 'the scunthorpe office says hello', 'clean text is accepted with the filter on');
  });

  test('banned: a banned user is refused with the time the ban ends, nothing is stored or broadcast', async (t, h) => {
    const setup = await world(h, { admin: true });
    const sender = await h.client(setup.url, { name: 'troll', token: 'T'.repeat(43) });
    const response = await fetch(`${setup.adminUrl}/admin/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: sender.welcome.you.id, minutes: 30 }),
    });
    assert.equal(response.status, 201);
    const { until } = await response.json();
    const before = await snapshot(setup);

    const message = assertRefusal(await sendClip(sender.socket, { id: ID, message: 'let me in', frames: [F1] }), 'banned', ID);
    const untilText = `${new Date(until).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
    assert.ok(message.includes(untilText), `the message says until when (${untilText}): ${message}`);
    await assertNothingHappened(h, setup, before, { code: 'banned', sender });
  });
}
