// A third page joins a call in progress (SPEC §9): every one of the six streams flows, a
// snapshot reaches both others byte for byte (and a large one too, through the sender's
// back-pressure), and a page that is closed loses its tile on the others. The suite's one
// test with more than two pages: each page costs a renderer decoding every other's video.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  CONNECT_MS, assertFlowing, callTest, costMeter, framesFrom, inCall, newRoom, openInCall, tileOf,
} from './call.mjs';

/**
 * The newest snapshot in `page`'s strip, saved through its Save link as a person would:
 * who it is from, the file name it downloads as, its size and SHA-256 (hex).
 */
async function savedSnap(page) {
  const item = page.locator('#snap-strip li.snap').first();
  const [download] = await Promise.all([page.waitForEvent('download'), item.locator('a.snap-save').click()]);
  const bytes = await readFile(await download.path());
  return {
    from: await item.locator('.snap-from').textContent(),
    file: download.suggestedFilename(),
    size: bytes.length,
    jpeg: bytes.subarray(0, 3).toString('hex') === 'ffd8ff',
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

async function snapCount(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll('#snap-strip li.snap').length === n, count, { timeout: CONNECT_MS });
}

callTest('a third page joins a call in progress: all six streams flow, and snapshots arrive byte for byte', async (t, b) => {
  const meter = costMeter();
  const url = await b.startCall();
  const room = await newRoom(url);
  const [ada, bob] = await openInCall(b, room, ['ada', 'bob']);
  meter.mark('2 pages flowing');

  const cat = await b.open(room, { name: 'cat' });
  await inCall(cat);
  await Promise.all([
    framesFrom(ada, ['bob', 'cat']), framesFrom(bob, ['ada', 'cat']), framesFrom(cat, ['ada', 'bob']),
  ]);
  meter.mark('the third page flowing');
  await assertFlowing([
    { page: ada, from: ['bob', 'cat'] },
    { page: bob, from: ['ada', 'cat'] },
    { page: cat, from: ['ada', 'bob'] },
  ]);
  meter.report(t, 'a 3-page call');
  // The newcomer offered to both; those already there answered (and made no offer first).
  const roles = await cat.evaluate(() => [...window.loopchat.call.peers.values()].map((peer) => peer.polite));
  assert.deepEqual(roles, [false, false], 'the newcomer is the impolite, offering side to both');

  // A snapshot from the camera: the others get exactly the bytes cat kept for herself.
  await cat.click('#snap');
  await Promise.all([snapCount(ada, 1), snapCount(bob, 1), snapCount(cat, 1)]);
  const [mine, onAda, onBob] = await Promise.all([savedSnap(cat), savedSnap(ada), savedSnap(bob)]);
  assert.equal(mine.from, 'You');
  assert.equal(mine.jpeg, true, 'a JPEG');
  for (const got of [onAda, onBob]) {
    assert.equal(got.from, 'cat');
    assert.equal(got.size, mine.size);
    assert.equal(got.sha256, mine.sha256);
    assert.match(got.file, /^loopchat-cat-\d+\.jpg$/);
  }
  const picture = ada.locator('#snap-strip li.snap img.snap-picture');
  await ada.waitForFunction((img) => img.complete && img.naturalWidth > 0, await picture.elementHandle());
  assert.equal(await picture.evaluate((img) => img.naturalWidth), 640, 'the still is the camera\'s full picture');

  // A large JPEG (noise does not compress: about 1.5 MB) through the same code: more than
  // the 256 KiB the sender lets queue, so it has to wait for the channel to drain, many
  // times over; without that it would all be queued at once.
  const big = await ada.evaluate(async () => {
    const { sendSnap } = await import('/js/call-snap.js');
    const canvas = new OffscreenCanvas(1280, 960);
    const context = canvas.getContext('2d');
    const noise = context.createImageData(canvas.width, canvas.height);
    for (let offset = 0; offset < noise.data.length; offset += 65536) crypto.getRandomValues(noise.data.subarray(offset, offset + 65536));
    context.putImageData(noise, 0, 0);
    const bytes = await (await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.95 })).arrayBuffer();
    let queued = 0;
    await Promise.all([...window.loopchat.call.peers.values()].map((peer) => {
      const send = peer.dc.send.bind(peer.dc);
      peer.dc.send = (data) => { queued = Math.max(queued, peer.dc.bufferedAmount); send(data); };
      return sendSnap(peer.dc, bytes, 'big.jpg').finally(() => { delete peer.dc.send; });
    }));
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return { size: bytes.byteLength, queued, sha256: [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('') };
  });
  assert.ok(big.size > 1024 * 1024, `a large snapshot (${big.size} bytes)`);
  assert.ok(big.queued <= 256 * 1024 + 16 * 1024, `at most 256 KiB and a chunk queued (${big.queued} bytes)`);
  await Promise.all([snapCount(bob, 2), snapCount(cat, 2)]);
  for (const page of [bob, cat]) {
    const latest = await savedSnap(page);
    assert.deepEqual([latest.from, latest.file, latest.size, latest.sha256], ['ada', 'big.jpg', big.size, big.sha256], page.label);
  }

  // A page that is closed drops out: its tile goes on both others, who stay connected.
  await bob.close();
  await Promise.all([tileOf(ada, 'bob').waitFor({ state: 'detached' }), tileOf(cat, 'bob').waitFor({ state: 'detached' })]);
  await assertFlowing([{ page: ada, from: ['cat'] }, { page: cat, from: ['ada'] }]);
  for (const page of [ada, cat]) assert.deepEqual(page.problems, [], `${page.label}: ${page.problems}`);
});
