// Limits and bans by client address (SPEC §13, §10) as the pages show them, in Chromium
// against the real server: a chat page refused for too many connections from its address
// says so, cannot send, waits rather than hammers, and connects by itself once there is
// room; a ban with "Also ban their network address" from the moderator's page closes the
// banned person's chat page, which says so, until the ban is lifted; and the moderator's
// page after ten wrong tokens from its address (429) says how long to wait and sends
// nothing until then.
//
// Every page and client here comes from 127.0.0.1, so they all share one address. The
// pages' retries are tens of seconds to minutes apart: Playwright's fake clock
// (`clock.install`, which lets time flow as usual until told to jump) skips the wait.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  browserTest, connected, readyToSend, sendFromPage,
} from './browser.mjs';

const TOKEN = 'address-limits-moderator-token';
const TOO_MANY = 'Too many connections from your network right now. Close some tabs, or wait a minute; we will try again.';
const BANNED = 'This network is banned from the chat for now.';
/** Longer than any retry after too many connections (30 s and a little at random). */
const PAST_TOO_MANY_RETRY = '00:40';
/** Longer than any retry after a ban (5 min and a little at random). */
const PAST_BANNED_RETRY = '07:00';
/** How long to watch a refused page for a retry it must not make yet. */
const QUIET_MS = 3000;
/**
 * How long a refused page may take to get in once there is room, in real time. The place
 * a closed connection held is free at once; whether the page's refused handshake counted
 * against the address's new connections a minute is the server's business, so the page
 * may be refused once more, until a minute after the holder connected.
 */
const ROOM_WAIT_MS = 80_000;

/** Handshakes a page starts (Socket.IO's first request of a connection has no `sid`). */
function countHandshakes(context, into) {
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith('/socket.io/') && !url.searchParams.has('sid')) into.push(url.href);
  });
}

/** Counts, from now on, every connection attempt of the page's socket that ended, either way. */
function watchOutcomes(page) {
  return page.evaluate(() => {
    window.outcomes = 0;
    const { socket } = window.loopchat;
    socket.on('connect', () => { window.outcomes += 1; });
    socket.on('connect_error', () => { window.outcomes += 1; });
  });
}

/** Moves the page's clock past its next retry and waits until that retry ended, either way. */
async function skipToRetry(page, past) {
  const before = await page.evaluate(() => window.outcomes);
  await page.clock.fastForward(past);
  await page.waitForFunction((count) => window.outcomes > count, before);
}

/** The chat page's connection banner, saying `words` in state `state`. */
function banner(page, state, words) {
  return page.locator(`#connection[data-state="${state}"]`, { hasText: words });
}

/** Asserts what a refused chat page offers: the reason, and no text box that cannot send. */
async function assertRefusedPage(page, words) {
  assert.equal((await page.textContent('#connection-text')).trim(), words);
  assert.equal(await page.isVisible('#connection'), true);
  assert.equal(await page.evaluate(() => window.loopchat.socket.connected), false);
  assert.equal(await page.isDisabled('#text'), true, 'the text box is disabled');
  assert.equal(await page.isDisabled('#send'), true, 'and Send');
  assert.match(await page.getAttribute('#text', 'placeholder'), /^Not connected/);
  assert.match(await page.textContent('#status-text'), /once this page is connected/);
  assert.equal(await page.isHidden('#people-panel'), true, 'no count of who is online it cannot know');
}

browserTest('a page refused for too many connections from its address says so, cannot send, waits, and connects by itself once there is room', async (t, b) => {
  const url = await b.start({ args: ['--max-connections-per-address', '1'] });
  const holder = await b.client(url, 'holder');
  const handshakes = [];
  const page = await b.open('/', {
    name: 'latecomer',
    prepare: async (context) => {
      countHandshakes(context, handshakes);
      await context.clock.install();
    },
  });
  await banner(page, 'refused', TOO_MANY).waitFor();
  await watchOutcomes(page);
  // The camera works: what keeps the text box disabled is the refusal alone.
  await page.locator('#camera[data-state="ready"]').waitFor();
  await assertRefusedPage(page, TOO_MANY);
  const empty = await page.textContent('#empty');
  assert.equal(await page.isVisible('#empty'), true);
  assert.doesNotMatch(empty, /No clips yet|Say hello/, 'no invitation to send what cannot be sent');
  assert.match(empty, /not connected/);
  assert.equal(await page.getAttribute('#connection', 'role'), 'status', 'said to a screen reader too');

  // It waits: no handshake in a tight loop.
  await sleep(QUIET_MS);
  assert.equal(handshakes.length, 1, `one handshake, no retry yet: ${handshakes.join(' ')}`);
  // Nor after a few more (fake) seconds.
  await page.clock.fastForward('00:10');
  await sleep(500);
  assert.equal(handshakes.length, 1, 'no retry ten seconds later either');
  assert.equal(await page.evaluate(() => window.outcomes), 0);

  // Still refused while the holder holds the place: the retry comes, and is refused again.
  await skipToRetry(page, PAST_TOO_MANY_RETRY);
  assert.equal(handshakes.length, 2, 'one retry');
  await assertRefusedPage(page, TOO_MANY);

  holder.close();
  const deadline = Date.now() + ROOM_WAIT_MS;
  while (!(await page.evaluate(() => window.loopchat.socket.connected))) {
    assert.ok(Date.now() < deadline, `still refused ${ROOM_WAIT_MS} ms after the holder closed`);
    await skipToRetry(page, PAST_TOO_MANY_RETRY);
  }
  // Said for three seconds, then the banner goes.
  await banner(page, 'restored', 'Connected.').waitFor();
  await readyToSend(page);
  assert.equal(await page.getAttribute('#text', 'placeholder'), 'Type a message and press Enter');
  assert.match(await page.textContent('#empty'), /No clips yet/, 'the invitation is back');
  await page.locator('#people-panel').waitFor();
  await sendFromPage(page, 'in at last');
  assert.deepEqual(page.problems.filter((problem) => problem.startsWith('uncaught')), []);
});

browserTest('a ban with their network address closes the banned person\'s chat page, which says so, until the ban is lifted', async (t, b) => {
  const url = await b.start({ args: ['--admin-token', TOKEN] });
  const troll = await b.open('/', { name: 'troll', prepare: (context) => context.clock.install() });
  await readyToSend(troll);
  const key = await sendFromPage(troll, 'flood');
  await watchOutcomes(troll);

  // The moderator's page comes from 127.0.0.1 too: an address ban closes Socket.IO
  // connections, not the moderation API.
  const bans = [];
  const moderator = await b.open('/admin', {
    prepare: (context) => context.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/admin/bans') bans.push(request.postDataJSON());
    }),
  });
  await moderator.fill('#token', TOKEN);
  await moderator.press('#token', 'Enter');
  const clip = moderator.locator(`#newest li.clip[data-key="${key}"]`);
  await clip.locator('.admin-ban').click();
  await moderator.locator('#ban-dialog').waitFor();
  await moderator.check('#ban-address');
  assert.match(
    await moderator.textContent('#ban-what'),
    /Their network address is banned too: every connection from it, theirs or anyone else’s there, closes now, and new ones are refused until the ban ends\. The address itself is never shown, here or anywhere\./,
  );
  await moderator.click('#ban-confirm');
  await moderator.locator('#message-text', { hasText: /^Banned troll until .*\. Their network address is banned too: its connections were closed\.$/ }).waitFor();
  assert.deepEqual(bans.map(({ address }) => address), [true], 'the page asked for the address');

  // The troll's page: closed by the server, and refused when it asks again.
  await banner(troll, 'refused', BANNED).waitFor();
  await assertRefusedPage(troll, BANNED);

  // The moderator's page marks the ban, shows no address, and keeps working.
  const user = await clip.getAttribute('data-author-id');
  const ban = moderator.locator(`#bans li.ban[data-key="${user}"]`);
  await ban.locator('.ban-address', { hasText: 'Their network address too' }).waitFor();
  assert.ok(!(await moderator.content()).includes('127.0.0.1'), 'no address in the moderator\'s page');
  assert.equal(await moderator.getAttribute('#connection', 'data-state'), 'connected', 'its own requests are not refused');

  // Asked again in five minutes (and not before): still banned.
  const before = await troll.evaluate(() => window.outcomes);
  await troll.clock.fastForward('04:00');
  await sleep(500);
  assert.equal(await troll.evaluate(() => window.outcomes), before, 'no retry within four minutes');
  await skipToRetry(troll, '03:15');
  await assertRefusedPage(troll, BANNED);

  await ban.locator('.ban-lift').click();
  await moderator.locator('#message-text', { hasText: /Their network address is no longer banned\.$/ }).waitFor();
  await skipToRetry(troll, PAST_BANNED_RETRY);
  // It was connected before the ban, so it is back.
  await banner(troll, 'restored', 'Back online.').waitFor();
  await connected(troll);
  await troll.locator('#text:enabled').waitFor();
  assert.deepEqual(troll.problems.filter((problem) => problem.startsWith('uncaught')), []);
});

browserTest('after ten wrong tokens the moderator\'s page says how long to wait, and sends nothing until then', async (t, b) => {
  const url = await b.start({ args: ['--admin-token', TOKEN] });
  const apiRequests = (into) => (context) => context.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/admin/')) into.push(request.url());
  });

  // A moderator signed in already, on the same address.
  const seenBySignedIn = [];
  const signedIn = await b.open('/admin', { prepare: apiRequests(seenBySignedIn) });
  await signedIn.fill('#token', TOKEN);
  await signedIn.press('#token', 'Enter');
  await signedIn.locator('#desk').waitFor();

  const seen = [];
  const page = await b.open('/admin', {
    prepare: async (context) => {
      apiRequests(seen)(context);
      await context.clock.install();
    },
  });
  await page.locator('#sign-in').waitFor();
  for (let attempt = 1; attempt <= 10; attempt += 1) {
    await page.fill('#token', `wrong-token-${attempt}`);
    await page.press('#token', 'Enter');
    await page.locator('#sign-in-error', { hasText: 'not this server’s admin token' }).waitFor();
    await page.locator('#sign-in-button:enabled').waitFor();
  }
  await page.fill('#token', 'wrong-token-11');
  await page.press('#token', 'Enter');
  const error = page.locator('#sign-in-error', { hasText: 'Too many failed sign-ins' });
  await error.waitFor();
  const [, seconds] = (await error.textContent()).match(/^Too many failed sign-ins from this address; try again in (\d+) seconds?\.$/) ?? [];
  assert.ok(Number(seconds) >= 1 && Number(seconds) <= 60, `the wait in seconds, from Retry-After: ${await error.textContent()}`);
  assert.equal(await page.isDisabled('#sign-in-button'), true, 'Sign in waits');
  assert.match(await page.textContent('#sign-in-button'), /^Sign in \(\d+ s\)$/);
  assert.equal(await page.getAttribute('#token', 'aria-invalid'), null, 'the token was not checked, so not marked wrong');
  assert.equal(seen.length, 11);

  // The server agrees, for every API request from this address, the right token too.
  const direct = await fetch(new URL('/admin/bans', url), { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(direct.status, 429);
  assert.ok(Number(direct.headers.get('retry-after')) >= 1);

  // Enter in the token field sends nothing while it waits.
  await page.fill('#token', TOKEN);
  await page.press('#token', 'Enter');
  await sleep(500);
  assert.equal(seen.length, 11, 'nothing sent while waiting');

  // The signed-in page's next read is refused too: it says so, stays signed in, and asks
  // nothing more until the wait is over.
  const banner = signedIn.locator('#connection[data-state="lost"]', { hasText: /Too many failed sign-ins from this address; try again in \d+ seconds?\. Until then the lists may be out of date/ });
  await banner.waitFor();
  assert.equal(await signedIn.isVisible('#desk'), true, 'still signed in');
  assert.equal(await signedIn.isHidden('#sign-in'), true);
  const asked = seenBySignedIn.length;
  await sleep(QUIET_MS);
  assert.equal(seenBySignedIn.length, asked, 'no request while waiting (the lists are read every 2 s otherwise)');

  // Past the wait (on this page's clock), Sign in comes back without sending anything.
  await page.clock.fastForward((Number(seconds) + 1) * 1000);
  await page.locator('#sign-in-button:enabled', { hasText: /^Sign in$/ }).waitFor();
  await page.locator('#sign-in-error', { hasText: 'You can try signing in again now.' }).waitFor();
  assert.equal(seen.length, 11);
  // The server's minute is not over (its clock is real): the right token is refused with
  // 429 again, and the page says so again.
  await page.press('#token', 'Enter');
  await error.waitFor();
  assert.equal(seen.length, 12);
  assert.equal(await page.isDisabled('#sign-in-button'), true);
});
