// The moderator's page (SPEC §10, `GET /admin`) in Chromium: signing in with the admin
// token (a wrong one refused in words, with nothing shown), the reported and newest clips,
// Remove, Ban with purge (and with their network address, from the keyboard), Lift,
// keeping itself current while open, a lost connection, the token kept out of URLs,
// cookies and the log, a phone-sized screen, the keyboard alone, and an axe-core audit.
// What an address ban does to the banned person's page, and the page after too many wrong
// tokens (429), are in address-limits.test.mjs.
//
// Clips are sent by Node socket.io-client sockets (fast, and no camera needed) unless a
// chat page must be the one that shows them.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  connect, loadFrames, sendClip, sendGoodClip, startServer,
} from '../e2e/helpers.mjs';
import {
  PHONE, admin, browserTest, clipFor, connected, screenshot,
} from './browser.mjs';

const TOKEN = 'browser-suite-moderator-token';
const MODERATED = ['--admin-token', TOKEN];
const FRAMES = loadFrames();
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const identity = (seed) => Buffer.alloc(32, seed).toString('base64url');

/** A socket.io-client socket with its own identity, greeted and replayed. */
async function author(b, url, name, seed) {
  const client = connect(url, { name, token: identity(seed) });
  b.clients.push(client);
  return client.ready;
}

/** The moderator's page's item for clip `key` in `list` ('reported' or 'newest'). */
function item(page, list, key) {
  return page.locator(`#${list} li.clip[data-key="${key}"]`);
}

/** Signs in on the page with `token` and waits until the lists are shown. */
async function signIn(page, token = TOKEN) {
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.locator('#desk').waitFor();
  await page.locator('#sign-in').waitFor({ state: 'hidden' });
}

/** The sentence the page says after an action. */
async function told(page, pattern) {
  await page.locator('#message-text', { hasText: pattern }).waitFor();
}

/** Records every CSP violation on pages of `context`, from before their own scripts run. */
const watchViolations = (context) => context.addInitScript(() => {
  window.violations = [];
  document.addEventListener('securitypolicyviolation', (event) => {
    window.violations.push({ directive: event.effectiveDirective, blocked: event.blockedURI });
  });
});

browserTest('without --admin-token there is no moderator\'s page', async (t, b) => {
  const url = await b.start();
  for (const path of ['/admin', '/admin/']) {
    assert.equal((await fetch(new URL(path, url))).status, 404, path);
  }
  const page = await b.open('/favicon.svg');
  const response = await page.goto(new URL('/admin', url).href);
  assert.equal(response.status(), 404);
  assert.equal(await page.locator('#sign-in, #desk').count(), 0, 'no sign-in, no lists');
});

browserTest('a wrong token is refused in words and nothing is shown', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await author(b, url, 'writer', 1);
  const reader = await author(b, url, 'reader', 2);
  const clip = await sendGoodClip(writer.socket, { message: 'nobody may see this', frames: FRAMES });
  await reader.socket.timeout(10_000).emitWithAck('report', { key: clip.key });

  const gifs = [];
  const page = await b.open('/admin', {
    prepare: (context) => context.on('request', (request) => {
      if (request.url().includes('/clips/')) gifs.push(request.url());
    }),
  });
  await page.locator('#sign-in').waitFor();
  for (const wrong of ['not-the-token-at-all', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
    await page.fill('#token', wrong);
    await page.press('#token', 'Enter');
    const error = page.locator('#sign-in-error');
    await error.waitFor();
    assert.match(await error.textContent(), /not this server’s admin token, so nothing is shown/);
    assert.equal(await page.locator('#token').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.isHidden('#desk'), true, 'no lists');
    assert.equal(await page.locator('li.clip, li.ban').count(), 0, 'no clip or ban in the page');
    assert.equal(await page.locator('text=nobody may see this').count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'nothing kept');
    await page.locator('#sign-in-button:enabled').waitFor();
  }
  assert.deepEqual(gifs, [], 'no clip was loaded');

  await page.fill('#token', '   ');
  await page.press('#token', 'Enter');
  await page.locator('#sign-in-error', { hasText: 'Type or paste the admin token first' }).waitFor();
});

browserTest('signing in shows the reported clips, most reported first with their counts, and the newest clips, playing', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await author(b, url, 'writer', 1);
  const readers = await Promise.all([2, 3, 4].map((seed) => author(b, url, `reader-${seed}`, seed)));
  const once = await sendGoodClip(writer.socket, { message: 'reported once', frames: FRAMES });
  const twice = await sendGoodClip(writer.socket, { message: 'reported twice https://example.com/x', frames: FRAMES });
  const never = await sendGoodClip(writer.socket, { message: 'never reported', frames: FRAMES });
  const report = (reader, key) => reader.socket.timeout(10_000).emitWithAck('report', { key });
  await report(readers[0], once.key);
  await report(readers[1], twice.key);
  await report(readers[2], twice.key);

  const page = await b.open('/admin');
  await page.locator('#sign-in').waitFor();
  await signIn(page);
  await item(page, 'reported', once.key).waitFor();
  assert.deepEqual(
    await page.$$eval('#reported li.clip', (items) => items.map((li) => li.dataset.key)),
    [twice.key, once.key],
    'most reported first, and only the reported',
  );
  const first = item(page, 'reported', twice.key);
  assert.equal(await first.locator('.admin-reports').textContent(), 'Reported by 2 people');
  assert.equal(await item(page, 'reported', once.key).locator('.admin-reports').textContent(), 'Reported by 1 person');
  assert.equal(await first.locator('.clip-author').textContent(), 'writer');
  assert.equal(await first.locator('.admin-id').textContent(), writer.welcome.you.id);
  assert.equal(await first.locator('.clip-avatar svg.identicon').getAttribute('data-user'), writer.welcome.you.id);
  assert.equal(await first.locator('.clip-text').textContent(), 'reported twice https://example.com/x');
  assert.equal(await first.locator('.clip-text a').getAttribute('href'), 'https://example.com/x', 'links as on the chat page');
  assert.match(await first.locator('.clip-ttl').textContent(), /^\d+ (min|s) left$/);
  await page.waitForFunction((key) => {
    // The video where the server made one (SPEC §12), else the GIF.
    const media = document.querySelector(`#reported li[data-key="${key}"] :is(video.clip-video, img.clip-gif)`);
    if (media?.matches('video')) return media.readyState >= 2 && media.videoWidth === 200 && media.getAttribute('src') === `/clips/${key}.mp4`;
    return media?.complete && media.naturalWidth === 200 && media.getAttribute('src') === `/clips/${key}.gif`;
  }, twice.key);

  assert.deepEqual(
    await page.$$eval('#newest li.clip', (items) => items.map((li) => li.dataset.key)),
    [never.key, twice.key, once.key],
    'newest first',
  );
  assert.equal(await item(page, 'newest', never.key).locator('.admin-reports').textContent(), 'Not reported');
  assert.equal(await page.textContent('#reported-count'), '(2)');
  assert.equal(await page.textContent('#newest-count'), '(3)');
  await screenshot(page, 'admin-desktop');
});

browserTest('Remove asks first, then the clip vanishes from the page and from a chat page open beside it', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await author(b, url, 'writer', 1);
  const doomed = await sendGoodClip(writer.socket, { message: 'take me down', frames: FRAMES });
  const kept = await sendGoodClip(writer.socket, { message: 'keep me', frames: FRAMES });
  const chat = await b.open('/', { name: 'reader', prepare: watchViolations });
  await connected(chat);
  await clipFor(chat, doomed.key).waitFor();
  const page = await b.open('/admin', { prepare: watchViolations });
  await page.locator('#sign-in').waitFor();
  await signIn(page);
  const target = item(page, 'newest', doomed.key);
  await target.waitFor();

  // Cancelled: nothing happens, and the page says so.
  await target.locator('.admin-remove').click();
  const dialog = page.locator('#remove-dialog');
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Remove this clip from writer\?.*every open page.*cannot be undone/s);
  assert.equal(await dialog.locator('.clip-text').textContent(), 'take me down', 'the dialog shows which clip');
  await page.click('#remove-cancel');
  await told(page, 'Nothing removed.');
  assert.equal((await fetch(new URL(doomed.clip, url))).status, 200, 'still there');

  await target.locator('.admin-remove').click();
  await page.click('#remove-confirm');
  await told(page, 'Removed the clip from writer. It is gone from every page.');
  await target.waitFor({ state: 'detached' });
  await clipFor(chat, doomed.key).waitFor({ state: 'detached' });
  assert.equal(await clipFor(chat, kept.key).count(), 1, 'the other clip stays on the chat page');
  assert.equal(await item(page, 'newest', kept.key).count(), 1, 'and on the moderator\'s page');
  assert.equal((await fetch(new URL(doomed.clip, url))).status, 404);
  for (const shown of [page, chat]) {
    assert.deepEqual(await shown.evaluate(() => window.violations), [], 'no page broke the Content-Security-Policy');
  }
});

browserTest('Ban with purge removes the author\'s clips everywhere and refuses their next clip; Lift lets them send again', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const troll = await author(b, url, 'troll', 1);
  const bystander = await author(b, url, 'bystander', 2);
  const banRequests = [];
  const spam = [];
  for (const text of ['spam one', 'spam two']) spam.push(await sendGoodClip(troll.socket, { message: text, frames: FRAMES }));
  const innocent = await sendGoodClip(bystander.socket, { message: 'hello', frames: FRAMES });
  const chat = await b.open('/', { name: 'reader' });
  await connected(chat);
  for (const clip of [...spam, innocent]) await clipFor(chat, clip.key).waitFor();
  const page = await b.open('/admin', {
    prepare: (context) => context.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/admin/bans') banRequests.push(request.postDataJSON());
    }),
  });
  await page.locator('#sign-in').waitFor();
  await signIn(page);

  await item(page, 'newest', spam[0].key).locator('.admin-ban').click();
  const dialog = page.locator('#ban-dialog');
  await dialog.waitFor();
  assert.match(await page.textContent('#ban-who'), new RegExp(`troll\\s*id ${troll.welcome.you.id}`));
  await page.selectOption('#ban-minutes', '60');
  assert.match(await page.textContent('#ban-what'), /troll cannot send clips, go live or join calls until .* \(1 h from now\).*Their clips stay/);
  await page.check('#ban-purge');
  assert.match(await page.textContent('#ban-what'), /Every clip of theirs that has not expired yet is removed from every page now/);
  // Their address: unchecked to begin with, and the consequence says what it would do. Not
  // this time: it would close the reader's page too (address-limits.test.mjs shows that).
  assert.equal(await page.isChecked('#ban-address'), false);
  assert.match(await page.textContent('#ban-what'), /Their network address is not banned/);
  await page.check('#ban-address');
  assert.match(await page.textContent('#ban-what'), /Their network address is banned too: every connection from it, theirs or anyone else’s there, closes now, and new ones are refused until the ban ends\. The address itself is never shown/);
  await page.uncheck('#ban-address');
  assert.match(await page.textContent('#ban-what'), /Their network address is not banned/);
  await page.fill('#ban-reason', 'spam');
  await page.click('#ban-confirm');
  await told(page, /^Banned troll until .*\. 2 clips of theirs were removed\.$/);
  assert.deepEqual(banRequests.map((body) => Object.hasOwn(body, 'address')), [false], 'no address asked for');

  for (const clip of spam) {
    await clipFor(chat, clip.key).waitFor({ state: 'detached' });
    await item(page, 'newest', clip.key).waitFor({ state: 'detached' });
  }
  assert.equal(await clipFor(chat, innocent.key).count(), 1, 'only their clips went');
  const ban = page.locator(`#bans li.ban[data-key="${troll.welcome.you.id}"]`);
  await ban.waitFor();
  assert.match(await ban.textContent(), /troll.*Until .*Reason: spam/s);
  assert.equal(await ban.locator('.ban-address').isHidden(), true, 'not marked as an address ban');
  const bans = await admin(url, TOKEN, 'GET', '/admin/bans');
  assert.deepEqual(bans.json.map(({ user, reason, address }) => ({ user, reason, address })), [{ user: troll.welcome.you.id, reason: 'spam', address: false }]);
  assert.ok(bans.json[0].until > Date.now() + 50 * 60_000 && bans.json[0].until <= Date.now() + 60 * 60_000, 'for the hour chosen');
  const refused = await sendClip(troll.socket, { message: 'still here', frames: FRAMES });
  assert.equal(refused.reply.error?.code, 'banned');

  await ban.locator('.ban-lift').click();
  await told(page, `Lifted the ban on troll (id ${troll.welcome.you.id}): they can send clips, go live and join calls again.`);
  await ban.waitFor({ state: 'detached' });
  await page.locator('#bans-empty').waitFor();
  assert.deepEqual((await admin(url, TOKEN, 'GET', '/admin/bans')).json, []);
  const back = await sendGoodClip(troll.socket, { message: 'sorry', frames: FRAMES });
  await item(page, 'newest', back.key).waitFor();
});

browserTest('while open, the page shows new clips and reports and drops clips removed elsewhere, without a reload', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const page = await b.open('/admin');
  await page.locator('#sign-in').waitFor();
  await signIn(page);
  await page.locator('#newest-empty').waitFor();
  const loaded = await page.evaluate(() => performance.getEntriesByType('navigation').length);

  // SPEC §10 says within 5 s; the waits are longer so that a slow machine does not fail
  // them, and nothing here measures how long it took.
  const writer = await author(b, url, 'writer', 1);
  const reader = await author(b, url, 'reader', 2);
  const clip = await sendGoodClip(writer.socket, { message: 'arrived while you watched', frames: FRAMES });
  await item(page, 'newest', clip.key).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#reported li').count(), 0);

  await reader.socket.timeout(10_000).emitWithAck('report', { key: clip.key });
  await item(page, 'reported', clip.key).locator('.admin-reports', { hasText: 'Reported by 1 person' }).waitFor({ timeout: 30_000 });
  await item(page, 'newest', clip.key).locator('.admin-reports', { hasText: 'Reported by 1 person' }).waitFor({ timeout: 30_000 });

  // Another moderator, through the API.
  assert.equal((await admin(url, TOKEN, 'DELETE', `/admin/clips/${clip.key}`)).status, 204);
  await item(page, 'newest', clip.key).waitFor({ state: 'detached', timeout: 30_000 });
  await item(page, 'reported', clip.key).waitFor({ state: 'detached', timeout: 30_000 });
  assert.equal((await admin(url, TOKEN, 'POST', '/admin/bans', { user: writer.welcome.you.id, minutes: 5 })).status, 201);
  await page.locator(`#bans li.ban[data-key="${writer.welcome.you.id}"]`, { hasText: 'writer' }).waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), loaded, 'never reloaded');
});

browserTest('a lost connection is shown, and the page comes back by itself, still signed in', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const page = await b.open('/admin');
  await page.locator('#sign-in').waitFor();
  await signIn(page);
  assert.equal(await page.getAttribute('#connection', 'data-state'), 'connected');

  const old = b.server;
  await old.stop();
  b.stoppedServers.push(old);
  await page.locator('#connection[data-state="lost"]', { hasText: 'Connection lost' }).waitFor();
  assert.equal(await page.isVisible('#connection'), true);
  b.server = await startServer({ dataDir: old.dataDir, port: Number(new URL(url).port), args: MODERATED });

  const writer = await author(b, url, 'writer', 1);
  const clip = await sendGoodClip(writer.socket, { message: 'after the restart', frames: FRAMES });
  await page.locator('#connection[data-state="restored"]', { hasText: 'Back online' }).waitFor({ timeout: 30_000 });
  await item(page, 'newest', clip.key).waitFor({ timeout: 30_000 });
  assert.equal(await page.isHidden('#sign-in'), true, 'still signed in');
  await page.locator('#connection[data-state="connected"]').waitFor({ state: 'hidden' });
});

browserTest('the token is in no URL, no cookie and no line of the server\'s log; signing out forgets it', async (t, b) => {
  const url = await b.start({ args: MODERATED, env: { RUST_LOG: 'trace' } });
  const writer = await author(b, url, 'writer', 1);
  const clip = await sendGoodClip(writer.socket, { message: 'to remove', frames: FRAMES });
  const requests = [];
  const page = await b.open('/admin', { prepare: (context) => context.on('request', (request) => requests.push(request)) });
  await page.locator('#sign-in').waitFor();
  await signIn(page);
  await item(page, 'newest', clip.key).locator('.admin-remove').click();
  await page.click('#remove-confirm');
  await told(page, 'Removed the clip');

  // Kept by this tab: a reload is still signed in, without asking.
  await page.reload();
  await page.locator('#desk').waitFor();
  assert.equal(await page.isHidden('#sign-in'), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('loopchat.admin-token')), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

  const api = requests.filter((request) => new URL(request.url()).pathname.startsWith('/admin/'));
  assert.ok(api.some((request) => request.method() === 'DELETE'), 'the removal was one of them');
  for (const request of api) {
    assert.equal(request.headers().authorization, `Bearer ${TOKEN}`, `${request.method()} ${request.url()} carries the token as its bearer header`);
  }
  for (const request of requests) {
    assert.ok(!decodeURIComponent(request.url()).includes(TOKEN), `not in ${request.url()}`);
    assert.ok(!(request.postData() ?? '').includes(TOKEN), `not in the body of ${request.url()}`);
  }
  assert.ok(!decodeURIComponent(page.url()).includes(TOKEN));
  assert.ok((await page.context().cookies()).every((cookie) => !`${cookie.name}=${cookie.value}`.includes(TOKEN)), 'in no cookie');
  assert.equal(await page.evaluate(() => document.cookie), '');

  await page.click('#sign-out');
  await page.locator('#sign-in').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('loopchat.admin-token')), null, 'forgotten');
  assert.equal(await page.locator('li.clip, li.ban').count(), 0, 'and nothing shown');
  await page.reload();
  await page.locator('#sign-in').waitFor();
  assert.equal(await page.isHidden('#desk'), true, 'a reload asks again');

  const log = b.server.output();
  assert.match(log, /delete_clip/, 'the log was read (it holds the removal)');
  assert.ok(!log.includes(TOKEN), 'the token is in no log line');
});

/** Every visible control of the page (dialogs included) within the viewport's width. */
async function outsideTheWidth(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return [...document.querySelectorAll('button, input, select, a, summary')]
      .filter((control) => control.getClientRects().length > 0 && getComputedStyle(control).visibility !== 'hidden')
      .filter((control) => !control.classList.contains('skip-link'))
      .map((control) => ({ control, box: control.getBoundingClientRect() }))
      .filter(({ box }) => box.left < 0 || box.right > width + 0.5)
      .map(({ control, box }) => `${control.outerHTML.slice(0, 80)} at ${box.left}..${box.right} of ${width}`);
  });
}

async function scrollsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

browserTest('on a 390×844 screen every control is in view without scrolling sideways', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await author(b, url, 'Bartholomew Fortescue-Smythe the Third', 1);
  const reader = await author(b, url, 'reader', 2);
  const long = await sendGoodClip(writer.socket, {
    message: 'averyveryverylongwordwithoutanyspacesthatcouldpushthelayoutsideways https://example.com/a/very/long/path/that/goes/on/and/on',
    frames: FRAMES,
  });
  await reader.socket.timeout(10_000).emitWithAck('report', { key: long.key });
  const banned = await author(b, url, 'banned person with a long name too', 3);
  // With their address, so that the list shows its mark too (it closes these sockets: they
  // are done by now).
  await admin(url, TOKEN, 'POST', '/admin/bans', { user: banned.welcome.you.id, minutes: 525_600, reason: 'x'.repeat(120), address: true });

  const page = await b.open('/admin', { viewport: PHONE });
  await page.locator('#sign-in').waitFor();
  assert.deepEqual(await outsideTheWidth(page), [], 'signing in');
  assert.equal(await scrollsSideways(page), false);
  await signIn(page);
  await item(page, 'reported', long.key).waitFor();
  await page.locator('#bans li.ban').waitFor();
  await item(page, 'newest', long.key).locator('.admin-remove').click();
  await page.click('#remove-cancel');
  await told(page, 'Nothing removed.');
  assert.deepEqual(await outsideTheWidth(page), [], 'the lists, and the message');
  assert.equal(await scrollsSideways(page), false);
  await screenshot(page, 'admin-phone');

  for (const [button, dialog] of [['.admin-remove', '#remove-dialog'], ['.admin-ban', '#ban-dialog']]) {
    await item(page, 'reported', long.key).locator(button).click();
    await page.locator(dialog).waitFor();
    assert.deepEqual(await outsideTheWidth(page), [], dialog);
    assert.equal(await scrollsSideways(page), false, dialog);
    await screenshot(page, `admin-phone-${dialog.slice(1)}`);
    await page.keyboard.press('Escape');
    await page.locator(dialog).waitFor({ state: 'hidden' });
  }
});

browserTest('the keyboard alone signs in, removes a clip, bans its author and their address and lifts the ban', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await author(b, url, 'writer', 1);
  const first = await sendGoodClip(writer.socket, { message: 'first', frames: FRAMES });
  const second = await sendGoodClip(writer.socket, { message: 'second', frames: FRAMES });
  const banRequests = [];
  const page = await b.open('/admin', {
    prepare: (context) => context.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/admin/bans') banRequests.push(request.postDataJSON());
    }),
  });
  await page.locator('#sign-in').waitFor();

  const focused = () => page.evaluate(() => {
    const element = document.activeElement;
    return { id: element?.id, classes: [...(element?.classList ?? [])], key: element?.closest('li')?.dataset.key, list: element?.closest('ol, ul')?.id };
  });
  /** Presses Tab until `where(focused)` holds; fails after `most` presses. */
  const tabTo = async (where, what, most = 40) => {
    for (let presses = 0; presses < most; presses += 1) {
      if (where(await focused())) return;
      await page.keyboard.press('Tab');
    }
    assert.fail(`Tab never reached ${what}`);
  };

  assert.equal((await focused()).id, 'token', 'the token field has focus to begin with');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await item(page, 'newest', first.key).waitFor();

  await tabTo((at) => at.list === 'newest' && at.key === second.key && at.classes.includes('admin-remove'), 'Remove on the newest clip');
  await page.keyboard.press('Enter');
  await page.locator('#remove-dialog').waitFor();
  assert.equal((await focused()).id, 'remove-cancel', 'the dialog opens on Cancel');
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'remove-confirm');
  await page.keyboard.press('Enter');
  await told(page, 'Removed the clip from writer');
  await item(page, 'newest', second.key).waitFor({ state: 'detached' });
  const after = await focused();
  assert.equal(after.key, first.key, `focus moved to the next clip, not to the top: ${JSON.stringify(after)}`);

  await tabTo((at) => at.list === 'newest' && at.key === first.key && at.classes.includes('admin-ban'), 'Ban author on the other clip');
  await page.keyboard.press('Enter');
  await page.locator('#ban-dialog').waitFor();
  assert.equal((await focused()).id, 'ban-minutes', 'the dialog opens on the duration');
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'ban-reason');
  await page.keyboard.type('keyboard ban');
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'ban-purge');
  await page.keyboard.press('Space');
  assert.equal(await page.isChecked('#ban-purge'), true);
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'ban-address');
  await page.keyboard.press('Space');
  assert.equal(await page.isChecked('#ban-address'), true);
  assert.match(await page.textContent('#ban-what'), /Their network address is banned too/);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'ban-confirm');
  await page.keyboard.press('Enter');
  // The writer is connected (from 127.0.0.1, as every client here is), so the server knows
  // their address, and closes their connection.
  await told(page, /^Banned writer until .*\. 1 clip of theirs was removed\. Their network address is banned too: its connections were closed\.$/);
  assert.deepEqual(banRequests.map(({ purge, address }) => ({ purge, address })), [{ purge: true, address: true }]);
  await item(page, 'newest', first.key).waitFor({ state: 'detached' });
  const bans = (await admin(url, TOKEN, 'GET', '/admin/bans')).json;
  assert.deepEqual(bans.map(({ user, reason, address }) => ({ user, reason, address })), [{ user: writer.welcome.you.id, reason: 'keyboard ban', address: true }]);
  assert.ok(bans[0].until <= Date.now() + 60 * 60_000, 'ArrowUp chose the hour before the day');
  const ban = page.locator(`#bans li.ban[data-key="${writer.welcome.you.id}"]`);
  assert.equal(await ban.locator('.ban-address').textContent(), 'Their network address too');
  assert.equal(await ban.locator('.ban-address').isVisible(), true, 'marked as covering their address');
  assert.ok(!(await page.content()).includes('127.0.0.1'), 'the address is nowhere in the page');

  await tabTo((at) => at.classes.includes('ban-lift'), 'Lift');
  await page.keyboard.press('Enter');
  await told(page, /^Lifted the ban on writer .*Their network address is no longer banned\.$/);
  await page.locator('#bans-empty').waitFor();
  assert.notEqual((await focused()).id, undefined, 'focus is somewhere sensible, not lost');

  await tabTo((at) => at.id === 'sign-out', 'Sign out', 60);
  await page.keyboard.press('Enter');
  await page.locator('#sign-in').waitFor();
  assert.equal((await focused()).id, 'token', 'back at the token field');
});

/** axe-core's WCAG 2.0/2.1 A and AA rules on the page as it is now; returns the violations. */
async function audit(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const results = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return results.violations.map(({ id, help, nodes }) => ({ id, help, nodes: nodes.map((node) => node.target.join(' ')) }));
  });
}

browserTest('an axe-core audit finds no WCAG 2.1 A or AA violation, signed out, refused, signed in or asking', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await author(b, url, 'writer', 1);
  const reader = await author(b, url, 'reader', 2);
  const clip = await sendGoodClip(writer.socket, { message: 'audit me https://example.com', frames: FRAMES });
  await reader.socket.timeout(10_000).emitWithAck('report', { key: clip.key });
  // With their address, so that its mark in the list is audited too (it closes these
  // sockets: they are done by now).
  await admin(url, TOKEN, 'POST', '/admin/bans', { user: reader.welcome.you.id, minutes: 60, reason: 'for the audit', address: true });

  for (const scheme of ['light', 'dark']) {
    // The audit is a script of its own, which the page's policy would rightly refuse. With
    // reduced motion a clip that just arrived is not caught halfway through fading in.
    const page = await b.open('/admin', { contextOptions: { bypassCSP: true, colorScheme: scheme, reducedMotion: 'reduce' } });
    await page.locator('#sign-in').waitFor();
    assert.deepEqual(await audit(page), [], `${scheme}: signing in`);
    await page.fill('#token', 'wrong-token-wrong-token');
    await page.press('#token', 'Enter');
    await page.locator('#sign-in-error').waitFor();
    assert.deepEqual(await audit(page), [], `${scheme}: a wrong token`);
    await signIn(page);
    await item(page, 'reported', clip.key).waitFor();
    await page.locator('#bans li.ban .ban-address').waitFor();
    await item(page, 'newest', clip.key).locator('.admin-remove').click();
    await page.click('#remove-cancel');
    await told(page, 'Nothing removed.');
    assert.deepEqual(await audit(page), [], `${scheme}: the lists and a message`);
    await item(page, 'newest', clip.key).locator('.admin-ban').click();
    await page.locator('#ban-dialog').waitFor();
    await page.check('#ban-address');
    assert.deepEqual(await audit(page), [], `${scheme}: the ban dialog`);
    await page.keyboard.press('Escape');
    await item(page, 'newest', clip.key).locator('.admin-remove').click();
    await page.locator('#remove-dialog').waitFor();
    assert.deepEqual(await audit(page), [], `${scheme}: the remove dialog`);
  }
});
