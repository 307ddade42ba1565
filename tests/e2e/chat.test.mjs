// The chat flow (SPEC §2, §4) through the official socket.io-client against the real server:
// sending clips as binary frames, data URIs and over long-polling, what the sender and the
// others receive, the served GIF, the replay on connect, names, text cleaning and presence.
import assert from 'node:assert/strict';
import {
  e2e, once, expectNoEvent, eventually, sendClip, sendGoodClip, loadFrames, dataUri, padJpeg,
  metricsText, metricValue, clipsStored, assertClip, assertGif, WAIT_MS,
} from './helpers.mjs';

const FRAMES = loadFrames();
const TEN_MINUTES_MS = 10 * 60 * 1000;

/**
 * Sends `payload` from `sender` and checks the whole round trip: the ack reply and
 * `messageack` carry the same Clip, every other client gets exactly that Clip as `message`,
 * the sender never gets `message`, the counters moved, and the GIF is served as it should be.
 */
async function sendAndCheckDelivery({ server, sender, others, payload, frames, delayMs = 200 }) {
  const acceptedBefore = metricValue(await metricsText(server.url), 'loopchat_clips_accepted_total') ?? 0;
  const storedBefore = await clipsStored(server.url);
  const broadcasts = others.map((other) => once(other.socket, 'message'));

  const { reply, event, eventName } = await sendClip(sender.socket, payload);
  assert.equal(reply.ok, true, `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(eventName, 'messageack', `sender got ${eventName} ${JSON.stringify(event)}`);
  const clip = reply.message;
  assertClip(assert, clip, {
    id: payload.id ?? null,
    author: sender.welcome.you,
    message: payload.message,
    frames,
    width: 200,
    height: 200,
    delay_ms: delayMs,
    ttl_ms: TEN_MINUTES_MS,
  });
  assert.deepEqual(event, clip, 'messageack carries the same Clip as the ack reply');

  for (const broadcast of broadcasts) assert.deepEqual(await broadcast, clip, 'the others get the Clip as `message`');
  await expectNoEvent(sender.socket, 'message');
  assert.equal(sender.received.message.filter((m) => m.key === clip.key).length, 0, 'the sender never gets its own `message`');

  const metrics = await metricsText(server.url);
  assert.equal(metricValue(metrics, 'loopchat_clips_accepted_total'), acceptedBefore + 1, 'loopchat_clips_accepted_total +1');
  assert.equal(metricValue(metrics, 'loopchat_clips_stored'), storedBefore + 1, 'loopchat_clips_stored +1');

  const { etag } = await assertGif(assert, server.url, clip, { frames, delayCs: delayMs / 10 });
  const revalidated = await fetch(new URL(clip.clip, server.url), { headers: { 'If-None-Match': etag } });
  assert.equal(revalidated.status, 304, 'If-None-Match with the ETag answers 304');
  assert.equal((await revalidated.arrayBuffer()).byteLength, 0, 'a 304 has no body');
  return clip;
}

e2e('ten binary frames: acked to the sender, broadcast to the others, served as a looping GIF', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  await sendAndCheckDelivery({
    server, sender: a, others: [b], frames: 10,
    payload: { id: 'c-1', message: 'hello loop', frames: FRAMES },
  });
});

e2e('ten data-URI frames are accepted like binary ones', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  const c = await h.client(server.url, { name: 'carol' });
  await sendAndCheckDelivery({
    server, sender: a, others: [b, c], frames: 10,
    payload: { id: 'uri-1', message: 'from an older client', frames: FRAMES.map((f) => dataUri(f)) },
  });
});

e2e('binary and data-URI frames may be mixed in one message', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  await sendAndCheckDelivery({
    server, sender: a, others: [b], frames: 10,
    payload: { id: 'mixed', message: 'mixed', frames: FRAMES.map((f, i) => (i % 2 ? dataUri(f) : f)) },
  });
});

e2e('a single frame makes a one-frame GIF', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  await sendAndCheckDelivery({
    server, sender: a, others: [b], frames: 1,
    payload: { id: 'one', message: 'still', frames: [FRAMES[4]] },
  });
});

e2e('ten binary frames over the HTTP long-polling transport', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'poller', transports: ['polling'] });
  const b = await h.client(server.url, { name: 'bob' });
  const c = await h.client(server.url, { name: 'also-polling', transports: ['polling'] });
  assert.equal(a.socket.io.engine.transport.name, 'polling');
  await sendAndCheckDelivery({
    server, sender: a, others: [b, c], frames: 10,
    payload: { id: 'poll-1', message: 'over polling', frames: FRAMES },
  });
});

e2e('--frame-delay sets the GIF frame delay and Clip.delay_ms', async (t, h) => {
  const server = await h.server({ args: ['--frame-delay', '500ms'] });
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  await sendAndCheckDelivery({
    server, sender: a, others: [b], frames: 10, delayMs: 500,
    payload: { id: 'slow', message: 'slow motion', frames: FRAMES },
  });
});

e2e('without an ack callback the sender still gets messageack; id is null when not given', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  const ack = once(a.socket, 'messageack');
  const broadcast = once(b.socket, 'message');
  a.socket.emit('message', { message: 'no callback', frames: FRAMES });
  const clip = await ack;
  assertClip(assert, clip, { id: null, author: a.welcome.you, message: 'no callback', frames: 10 });
  assert.deepEqual(await broadcast, clip);
  await expectNoEvent(a.socket, 'message');
});

e2e('a frame of exactly 256 KiB is accepted', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  const big = padJpeg(FRAMES[0], 256 * 1024); // a valid JPEG, padded with COM segments
  assert.equal(big.length, 262144);
  await sendAndCheckDelivery({
    server, sender: a, others: [b], frames: 2,
    payload: { id: 'big', message: 'big', frames: [big, FRAMES[1]] },
  });
});

e2e('the text is stored cleaned: control characters removed, then trimmed; never as HTML', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const b = await h.client(server.url, { name: 'bob' });
  const cases = [
    ['  hi\u0007 there \n', 'hi there'],
    ['', ''],
    ['<b>bold</b> & <img src=x onerror=alert(1)>', '<b>bold</b> & <img src=x onerror=alert(1)>'],
    ['x'.repeat(250), 'x'.repeat(250)],
    ['é'.repeat(250), 'é'.repeat(250)], // 250 characters, 500 UTF-8 bytes
    [`\t ${'y'.repeat(250)}\u0000 \r\n`, 'y'.repeat(250)], // 250 once cleaned
  ];
  // The rate limit allows 5 messages in a burst per socket: use a fresh sender per case.
  const stored = [];
  for (const [i, [text, expected]] of cases.entries()) {
    const sender = await h.client(server.url, { name: `sender-${i}` });
    const broadcast = once(b.socket, 'message', WAIT_MS, (m) => m.id === `text-${i}`);
    const clip = await sendGoodClip(sender.socket, { id: `text-${i}`, message: text, frames: [FRAMES[i]] });
    assert.equal(clip.message, expected, `text ${JSON.stringify(text)} is stored as ${JSON.stringify(expected)}`);
    assert.equal((await broadcast).message, expected);
    stored.push(clip);
  }
  const replay = (await h.client(server.url, { name: 'late' })).replay;
  assert.deepEqual(replay.map((c) => c.message), stored.map((c) => c.message), 'the replay holds the cleaned texts');
  assert.equal(a.received.message.length, cases.length, 'a bystander got every message');
});

e2e('welcome then messages on connect; the replay is the last REPLAY clips, oldest first', async (t, h) => {
  const server = await h.server({ args: ['--replay', '10'] });
  const first = await h.client(server.url, { name: 'first' });
  assert.deepEqual(first.replay, [], 'an empty store replays nothing');

  // 12 clips, one after another, from several senders (5 per socket in a burst at most).
  const sent = [];
  let sender;
  for (let i = 0; i < 12; i += 1) {
    if (i % 5 === 0) sender = await h.client(server.url, { name: `sender-${i / 5}` });
    sent.push(await sendGoodClip(sender.socket, { id: `clip-${i}`, message: `number ${i}`, frames: [FRAMES[i % 10], FRAMES[(i + 1) % 10]] }));
  }
  const keys = sent.map((c) => c.key);
  assert.deepEqual([...keys].sort(), keys, 'UUIDv7 keys are time-ordered');
  assert.equal(new Set(keys).size, 12, 'keys are unique');

  const carol = await h.client(server.url, { name: 'carol' });
  const order = carol.events.map((e) => e.event).filter((e) => e === 'welcome' || e === 'messages');
  assert.deepEqual(order, ['welcome', 'messages'], 'welcome first, then messages, once each');
  assert.equal(carol.welcome.you.name, 'carol', 'the name comes from auth.name');
  assert.equal(typeof carol.welcome.you.id, 'string');
  assert.ok(carol.welcome.you.id.length > 0);
  assert.ok(Number.isInteger(carol.welcome.online) && carol.welcome.online >= 1, `welcome.online ${carol.welcome.online}`);
  assert.deepEqual(carol.replay.map((c) => c.key), keys.slice(-10), 'the last 10 keys, oldest first');
  assert.deepEqual(carol.replay, sent.slice(-10), 'the replayed Clips are the acked Clips');
});

e2e('--replay limits the replay; ids are server-issued and distinct', async (t, h) => {
  const server = await h.server({ args: ['--replay', '3'] });
  const sender = await h.client(server.url, { name: 'sender' });
  const sent = [];
  for (let i = 0; i < 5; i += 1) sent.push(await sendGoodClip(sender.socket, { message: `m${i}`, frames: [FRAMES[i]] }));
  const late = await h.client(server.url, { name: 'late' });
  assert.deepEqual(late.replay.map((c) => c.key), sent.slice(-3).map((c) => c.key));
  assert.notEqual(late.welcome.you.id, sender.welcome.you.id);
});

e2e('without auth.name a random two-word name is given; a sent name is sanitised', async (t, h) => {
  const server = await h.server();
  const anonymous = await h.client(server.url);
  assert.match(anonymous.welcome.you.name, /^[a-z]+(-[a-z]+)+$/, 'a name like amber-otter');
  const other = await h.client(server.url);
  assert.notEqual(other.welcome.you.id, anonymous.welcome.you.id);

  const messy = await h.client(server.url, { name: '  \u0007bob\n ' });
  assert.equal(typeof messy.welcome.you.name, 'string');
  assert.doesNotMatch(messy.welcome.you.name, /[\u0000-\u001f\u007f]/, 'no control characters in a name');
  assert.match(messy.welcome.you.name, /bob/);

  // The Clip's author is the sanitised name.
  const clip = await sendGoodClip(anonymous.socket, { message: 'hi', frames: [FRAMES[0]] });
  const { id, name } = anonymous.welcome.you;
  assert.deepEqual(clip.author, { id, name });
});

e2e('presence: the others are told the new count when someone connects or leaves', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  assert.equal(a.welcome.online, 1, 'alone on the server');
  const b = await h.client(server.url, { name: 'bob' });
  assert.equal(b.welcome.online, 2, 'welcome.online counts the newcomer');
  await eventually(() => a.received.presence.some((p) => p.online === 2), 'presence { online: 2 } at alice');

  b.close();
  await eventually(() => a.received.presence.at(-1)?.online === 1, 'presence { online: 1 } at alice after bob left');

  // Ten at once: alice ends up seeing 11.
  const many = Array.from({ length: 10 }, (_, i) => h.client(server.url, { name: `crowd-${i}` }));
  await Promise.all(many);
  await eventually(() => a.received.presence.at(-1)?.online === 11, 'presence { online: 11 } at alice');
  for (const p of a.received.presence) assert.ok(Number.isInteger(p.online), `presence ${JSON.stringify(p)}`);
});

e2e('the chat page is served with the current replay in it', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const clip = await sendGoodClip(a.socket, { message: 'on the page', frames: FRAMES });
  const response = await fetch(`${server.url}/`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
  const html = await response.text();
  assert.ok(html.includes(clip.key), 'the page has the clip in it');
});
