// Who is who on the pages (SPEC §7, §10): identicons from the stable user id, muting by
// that id, who's here with join and leave lines, clickable links and the camera switch.
// Each browser context is another person's browser: its own localStorage, so its own token.
import assert from 'node:assert/strict';
import { loadFrames, sendGoodClip } from '../e2e/helpers.mjs';
import {
  browserTest, clipFor, connected, readyToSend, sendFromPage, userId,
} from './browser.mjs';

const USER_ID = /^[a-z2-7]{20}$/;

/** The identicon beside the author of clip `key`: its user id and its picture. */
async function clipIdenticon(page, key) {
  const svg = clipFor(page, key).locator('.clip-avatar svg.identicon');
  return {
    user: await svg.getAttribute('data-user'),
    label: await svg.getAttribute('aria-label'),
    picture: await svg.evaluate((node) => node.innerHTML),
  };
}

function tile(page, name) {
  return page.locator('#tiles li.tile', { has: page.locator('.tile-name', { hasText: new RegExp(`^${name}$`) }) });
}

async function joined(page) {
  await connected(page);
  await page.locator('#go-live:enabled').waitFor();
}

async function openPeople(page) {
  const panel = page.locator('#people-panel');
  if (!(await panel.evaluate((node) => node.open))) await page.click('#people-panel summary');
  await page.locator('#people').waitFor();
}

/** The names in the who's-here list, as shown (identicon labels aside). */
function peopleNames(page) {
  return page.$$eval('#people li.person', (items) => items.map((item) => item.querySelector('.person-name').textContent).sort());
}

browserTest('every clip carries an identicon of its author\'s id, the same after a reload; a borrowed name gets another', async (t, b) => {
  await b.start();
  // Every address the first browser asks for, sockets included.
  const addresses = [];
  const watchAddresses = (context) => {
    context.on('request', (request) => addresses.push(request.url()));
    context.on('page', (page) => page.on('websocket', (socket) => addresses.push(socket.url())));
  };
  const first = await b.open('/', { name: 'sam', label: 'sam-1', prepare: watchAddresses });
  const second = await b.open('/', { name: 'sam', label: 'sam-2' });
  await readyToSend(first);
  await readyToSend(second);

  const tokens = await Promise.all([first, second].map((page) => page.evaluate(() => localStorage.getItem('loopchat.token'))));
  for (const token of tokens) assert.match(token, /^[A-Za-z0-9_-]{43}$/, 'a 32-byte token in base64url');
  assert.notEqual(tokens[0], tokens[1], 'each browser has its own token');
  for (const [index, page] of [first, second].entries()) {
    assert.equal((await page.content()).includes(tokens[index]), false, `${page.label}: the token is nowhere in the page`);
  }

  const mine = await sendFromPage(first, 'from the first sam');
  const theirs = await sendFromPage(second, 'from the second sam');
  await clipFor(first, theirs).waitFor();

  const myId = await userId(first);
  assert.match(myId, USER_ID);
  const own = await clipIdenticon(first, mine);
  const other = await clipIdenticon(first, theirs);
  assert.equal(own.user, myId, 'my clip is drawn from my user id');
  assert.equal(other.user, await userId(second));
  assert.notEqual(own.user, other.user, 'same name, another person');
  assert.notEqual(own.picture, other.picture, 'and another picture');
  assert.match(own.label, new RegExp(`^sam, id ${myId.slice(0, 8)}$`), 'the label tells the two apart');
  assert.equal(await clipFor(first, mine).locator('.clip-author').textContent(), 'sam');
  assert.equal(await clipFor(first, theirs).locator('.clip-author').textContent(), 'sam');
  assert.equal(await clipFor(first, theirs).getAttribute('class'), 'clip', 'the other sam\'s clip is not mine');

  // The same browser is the same person after a reload: same id, same picture, and the
  // clip it sent before is still its own (as the server rendered it and as replayed).
  await first.reload();
  await connected(first);
  assert.equal(await userId(first), myId);
  assert.deepEqual(await clipIdenticon(first, mine), own);
  assert.deepEqual(await clipIdenticon(first, theirs), other);
  await first.waitForFunction((key) => document.querySelector(`li.clip[data-key="${key}"]`).classList.contains('mine'), mine);
  assert.equal(await clipFor(first, theirs).locator('.clip-mute').isVisible(), true);
  assert.equal(await clipFor(first, mine).locator('.clip-mute').isHidden(), true);
  assert.equal(await first.evaluate(() => localStorage.getItem('loopchat.token')), tokens[0], 'the token is kept');
  assert.ok(addresses.some((address) => address.includes('/socket.io/')), 'the socket\'s addresses were watched');
  assert.deepEqual(addresses.filter((address) => address.includes(tokens[0])), [], 'the token is in no address');
});

browserTest('muting by user id hides that person\'s clips now, later and after a reload, and nobody else with their name', async (t, b) => {
  const url = await b.start();
  const loud = await b.open('/', { name: 'loud', label: 'loud' });
  const namesake = await b.open('/', { name: 'loud', label: 'namesake' });
  const reader = await b.open('/', { name: 'reader' });
  await readyToSend(loud);
  await readyToSend(namesake);
  await connected(reader);
  const noisy = await sendFromPage(loud, 'LOOK AT ME');
  const calm = await sendFromPage(namesake, 'I am a different loud');
  await clipFor(reader, noisy).waitFor();
  await clipFor(reader, calm).waitFor();

  await clipFor(reader, noisy).locator('.clip-mute').click();
  await clipFor(reader, noisy).waitFor({ state: 'hidden' });
  assert.equal(await clipFor(reader, calm).isVisible(), true, 'the namesake is not muted');
  const chips = reader.locator('#muted-names [data-unmute]');
  assert.equal(await chips.count(), 1);
  assert.equal(await chips.getAttribute('data-unmute'), await userId(loud));
  assert.equal(await chips.locator('svg.identicon').getAttribute('data-user'), await userId(loud));

  // "Undo" right after takes it back; mute again for the rest.
  await reader.click('#mute-undo');
  await clipFor(reader, noisy).waitFor({ state: 'visible' });
  assert.equal(await reader.locator('#muted-list').isHidden(), true);
  await clipFor(reader, noisy).locator('.clip-mute').click();
  await clipFor(reader, noisy).waitFor({ state: 'hidden' });

  // Their next clip is hidden as it arrives, also from their next visit.
  await loud.reload();
  await readyToSend(loud);
  const later = await sendFromPage(loud, 'still here');
  await clipFor(reader, later).waitFor({ state: 'attached' });
  assert.equal(await clipFor(reader, later).isHidden(), true, 'a new clip from the muted user is hidden');

  await reader.reload();
  await connected(reader);
  for (const key of [noisy, later]) {
    await clipFor(reader, key).waitFor({ state: 'attached' });
    assert.equal(await clipFor(reader, key).isHidden(), true, 'still muted after a reload');
  }
  assert.equal(await clipFor(reader, calm).isVisible(), true);

  // A Node client with the same name is yet another user: not muted either.
  const stranger = await b.client(url, 'loud');
  const fromStranger = await sendGoodClip(stranger.socket, { message: 'a third loud', frames: loadFrames() });
  await clipFor(reader, fromStranger.key).waitFor({ state: 'visible' });

  await reader.getByRole('button', { name: 'Unmute loud' }).click();
  await clipFor(reader, noisy).waitFor({ state: 'visible' });
  await clipFor(reader, later).waitFor({ state: 'visible' });
  assert.equal(await reader.locator('#muted-list').isHidden(), true);
});

browserTest('the live room shows identicons, and a mute there hides the tile and holds on the chat page too', async (t, b) => {
  await b.start();
  const streamer = await b.open('/live', { name: 'streamer' });
  const viewer = await b.open('/live', { name: 'viewer', camera: 'denied' });
  await joined(streamer);
  await joined(viewer);
  await streamer.click('#go-live');
  await streamer.locator('#stop:visible').waitFor();

  const streamerTile = tile(viewer, 'streamer');
  await streamerTile.locator('img.tile-picture').waitFor({ state: 'visible' });
  const streamerId = await userId(streamer);
  assert.equal(await streamerTile.getAttribute('data-user'), streamerId);
  assert.equal(await streamerTile.locator('.tile-identicon svg').getAttribute('data-user'), streamerId);
  assert.equal(await tile(viewer, 'viewer \\(you\\)').locator('.tile-identicon svg').getAttribute('data-user'), await userId(viewer));
  assert.equal(await tile(viewer, 'viewer \\(you\\)').locator('.tile-mute').isHidden(), true, 'nobody mutes themselves');

  await streamerTile.locator('.tile-mute').click();
  await streamerTile.waitFor({ state: 'hidden' });

  // The chat page in the same browser lists the mute; unmuting there brings the tile back
  // on the live page, which is still open in the other tab.
  const chat = await viewer.context().newPage();
  await chat.goto(new URL('/', b.server.url).href);
  await connected(chat);
  const chip = chat.locator('#muted-names [data-unmute]');
  assert.equal(await chip.getAttribute('data-unmute'), streamerId);
  await chip.click();
  await streamerTile.waitFor({ state: 'visible' });
  await chat.close();
});

browserTest('who\'s here lists both people with identicons, and the chat says quietly who joined and left', async (t, b) => {
  await b.start();
  const alice = await b.open('/', { name: 'alice' });
  await connected(alice);
  const bob = await b.open('/', { name: 'bob' });
  await connected(bob);

  for (const page of [alice, bob]) {
    await openPeople(page);
    await page.waitForFunction(() => document.querySelectorAll('#people li.person').length === 2);
    assert.deepEqual(await peopleNames(page), ['alice', 'bob']);
    assert.equal(await page.locator('#people li.person.mine').getAttribute('data-user'), await userId(page));
  }
  const bobEntry = alice.locator(`#people li.person[data-user="${await userId(bob)}"]`);
  assert.equal(await bobEntry.locator('svg.identicon').getAttribute('data-user'), await userId(bob));

  const joinedLine = alice.locator('#clips li.presence-line', { hasText: 'bob joined' });
  await joinedLine.waitFor();
  assert.equal(await bob.locator('#clips li.presence-line').count(), 0, 'nothing for who was here on arrival, nor for yourself');

  await bob.close();
  await alice.locator('#clips li.presence-line', { hasText: 'bob left' }).waitFor();
  await alice.waitForFunction(() => document.querySelectorAll('#people li.person').length === 1);
  assert.deepEqual(await peopleNames(alice), ['alice']);
});

browserTest('web links in a clip are clickable and open safely; anything else stays text', async (t, b) => {
  const url = await b.start();
  const reader = await b.open('/', { name: 'reader' });
  await connected(reader);
  const writer = await b.client(url, 'writer');
  const message = 'see https://example.com/a_(b). or (http://example.org/?q=1&r=2) but not javascript:alert(1) nor <a href="https://evil.test">x</a>';
  const clip = await sendGoodClip(writer.socket, { message, frames: loadFrames() });

  const check = async (page, how) => {
    const text = clipFor(page, clip.key).locator('.clip-text');
    await text.waitFor();
    assert.equal(await text.textContent(), message, `${how}: the text is all there, as sent`);
    const links = await text.locator('a').evaluateAll((nodes) => nodes.map((node) => ({
      href: node.getAttribute('href'), text: node.textContent, target: node.target, rel: node.rel,
    })));
    const safe = { target: '_blank', rel: 'noopener noreferrer nofollow' };
    assert.deepEqual(links, [
      { href: 'https://example.com/a_(b)', text: 'https://example.com/a_(b)', ...safe },
      { href: 'http://example.org/?q=1&r=2', text: 'http://example.org/?q=1&r=2', ...safe },
      { href: 'https://evil.test/', text: 'https://evil.test', ...safe },
    ], `${how}: only the web addresses are links`);
    assert.equal(await page.locator('a[href^="javascript:"]').count(), 0);
  };
  await check(reader, 'live');
  await reader.reload();
  await connected(reader);
  await check(reader, 'server-rendered');
});

browserTest('the camera switch lists the cameras, switches, and keeps the choice on both pages', async (t, b) => {
  await b.start(undefined, { cameras: 2 });
  const page = await b.open('/', { name: 'switcher' });
  await readyToSend(page);
  const select = page.locator('#camera-select');
  await select.waitFor();
  const options = await select.locator('option').evaluateAll((nodes) => nodes.map((node) => ({ value: node.value, label: node.textContent })));
  assert.deepEqual(options.map((option) => option.label), ['fake_device_0', 'fake_device_1']);
  const inUse = () => page.evaluate(() => document.getElementById('preview').srcObject?.getVideoTracks()[0]?.getSettings().deviceId);
  const first = await inUse();
  assert.equal(await select.inputValue(), first, 'the camera in use is the one selected');

  const other = options.find((option) => option.value !== first).value;
  await select.selectOption(other);
  await page.waitForFunction((wanted) => document.getElementById('preview').srcObject?.getVideoTracks()[0]?.getSettings().deviceId === wanted, other);
  await page.locator('#text:enabled').waitFor();
  await sendFromPage(page, 'from the other camera');

  await page.reload();
  await readyToSend(page);
  assert.equal(await inUse(), other, 'the chosen camera is used after a reload');
  assert.equal(await select.inputValue(), other);

  const live = await page.context().newPage();
  await live.goto(new URL('/live', b.server.url).href);
  await joined(live);
  await live.click('#go-live');
  await live.locator('#stop:visible').waitFor();
  const liveSelect = live.locator('#camera-select');
  await liveSelect.waitFor();
  assert.equal(await liveSelect.inputValue(), other, 'the live room uses the same choice');
  assert.equal(
    await live.evaluate(() => document.querySelector('video.tile-camera').srcObject.getVideoTracks()[0].getSettings().deviceId),
    other,
  );
  await live.close();

  // A remembered camera that is gone (unplugged, say): the default one is used.
  const forgetful = await b.open('/', {
    name: 'unplugged',
    prepare: (context) => context.addInitScript(() => localStorage.setItem('loopchat.camera', 'no-such-camera')),
  });
  await readyToSend(forgetful);
  assert.equal(await forgetful.locator('#camera-notice').isHidden(), true, 'no camera problem is reported');
  const fallback = await forgetful.evaluate(() => document.getElementById('preview').srcObject.getVideoTracks()[0].getSettings().deviceId);
  // Camera ids differ from one browser to the next, so this one's own list is the reference.
  const listed = await forgetful.locator('#camera-select option').evaluateAll((nodes) => nodes.map((node) => node.value));
  assert.equal(listed.length, 2);
  assert.ok(listed.includes(fallback), `a listed camera is in use: ${fallback}`);
  assert.equal(await forgetful.locator('#camera-select').inputValue(), fallback);
});
