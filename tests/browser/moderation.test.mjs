// Moderation as the pages show it (SPEC §7, §10): Report, a clip a moderator removes,
// refusals for profanity and bans, and the Content-Security-Policy the pages run under.
import assert from 'node:assert/strict';
import { eventually, loadFrames, sendGoodClip } from '../e2e/helpers.mjs';
import {
  admin, browserTest, clipFor, connected, readyToSend, sendFromPage, userId,
} from './browser.mjs';

const ADMIN_TOKEN = 'browser-suite-admin-token';
const MODERATED = ['--admin-token', ADMIN_TOKEN];

async function reports(url) {
  const { status, json } = await admin(url, ADMIN_TOKEN, 'GET', '/admin/reports');
  assert.equal(status, 200, 'GET /admin/reports');
  return json.map(({ key, reports: count }) => ({ key, reports: count }));
}

async function report(page, key) {
  const button = clipFor(page, key).locator('.clip-report');
  assert.equal(await button.textContent(), 'Report');
  await button.click();
  await clipFor(page, key).locator('.clip-report', { hasText: /^Reported$/ }).waitFor();
  assert.equal(await button.isDisabled(), true, 'reported once from this page');
}

browserTest('Report flags a clip for the moderators, once per person however often they press it', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await b.client(url, 'writer');
  const clip = await sendGoodClip(writer.socket, { message: 'report me', frames: loadFrames() });
  const reader = await b.open('/', { name: 'reader' });
  const other = await b.open('/', { name: 'other reader' });
  await connected(reader);
  await connected(other);

  await report(reader, clip.key);
  assert.deepEqual(await reports(url), [{ key: clip.key, reports: 1 }]);

  // After a reload the page has forgotten, but the server has not: the same person again.
  await reader.reload();
  await connected(reader);
  await report(reader, clip.key);
  assert.deepEqual(await reports(url), [{ key: clip.key, reports: 1 }], 'the same browser counts once');

  await report(other, clip.key);
  assert.deepEqual(await reports(url), [{ key: clip.key, reports: 2 }], 'another browser counts');
});

browserTest('Report is not offered on your own clips, and a clip that is gone says so', async (t, b) => {
  const url = await b.start({ args: [...MODERATED, '--clip-ttl', '5s'] });
  const page = await b.open('/', { name: 'author' });
  await readyToSend(page);
  const mine = await sendFromPage(page, 'my own');
  assert.equal(await clipFor(page, mine).locator('.clip-report').isHidden(), true);

  // A clip that expires on the server while this page still shows it (its countdown is
  // moved on so that it stays): Report says it is gone rather than "Reported".
  const writer = await b.client(url, 'writer');
  const clip = await sendGoodClip(writer.socket, { message: 'about to go', frames: loadFrames() });
  await clipFor(page, clip.key).waitFor();
  await page.evaluate((key) => {
    document.querySelector(`li.clip[data-key="${key}"]`).dataset.expiresAt = String(Date.now() + 3_600_000);
  }, clip.key);
  await eventually(async () => (await fetch(new URL(clip.clip, url))).status === 404, 'the clip to expire', 20_000, 250);
  await clipFor(page, clip.key).locator('.clip-report').click();
  await clipFor(page, clip.key).locator('.clip-status', { hasText: 'gone' }).waitFor();
  assert.equal(await clipFor(page, clip.key).locator('.clip-report').textContent(), 'Report', 'not marked reported');
  assert.equal(await clipFor(page, clip.key).locator('.clip-report').isEnabled(), true, 'and can be tried again');
});

browserTest('a clip a moderator removes vanishes from open pages, and one removed while a page was away goes on its return', async (t, b) => {
  const url = await b.start({ args: MODERATED });
  const writer = await b.client(url, 'writer');
  const keys = [];
  for (const text of ['one', 'two', 'three', 'four']) {
    keys.push((await sendGoodClip(writer.socket, { message: text, frames: loadFrames() })).key);
  }
  const page = await b.open('/', { name: 'reader' });
  await connected(page);
  for (const key of keys) await clipFor(page, key).waitFor();

  assert.equal((await admin(url, ADMIN_TOKEN, 'DELETE', `/admin/clips/${keys[1]}`)).status, 204);
  await clipFor(page, keys[1]).waitFor({ state: 'detached' });
  for (const key of [keys[0], keys[2], keys[3]]) assert.equal(await clipFor(page, key).count(), 1);

  // Away (disconnected) while the third is removed: the replay on return lacks it.
  await page.evaluate(() => window.loopchat.socket.disconnect());
  assert.equal((await admin(url, ADMIN_TOKEN, 'DELETE', `/admin/clips/${keys[2]}`)).status, 204);
  await page.evaluate(() => window.loopchat.socket.connect());
  await connected(page);
  await clipFor(page, keys[2]).waitFor({ state: 'detached' });
  assert.deepEqual(
    await page.$$eval('#clips li.clip', (items) => items.map((item) => item.dataset.key)),
    [keys[0], keys[3]],
  );

  await page.reload();
  await connected(page);
  assert.deepEqual(
    await page.$$eval('#clips li.clip', (items) => items.map((item) => item.dataset.key)),
    [keys[0], keys[3]],
    'gone from the server-rendered page too',
  );
});

browserTest('profanity and a ban are refused in words, on the chat page and in the live room', async (t, b) => {
  const url = await b.start({ args: [...MODERATED, '--filter-profanity'] });
  const page = await b.open('/', { name: 'sender' });
  await readyToSend(page);

  await page.fill('#text', 'what the fuck');
  await page.press('#text', 'Enter');
  const error = page.locator('#send-error');
  await error.waitFor();
  assert.match(await error.textContent(), /words this chat does not allow/);
  await page.locator('#text:enabled').waitFor();
  assert.equal(await page.inputValue('#text'), 'what the fuck', 'the text is kept to rephrase');

  await sendFromPage(page, 'what a lovely day');
  assert.equal(await error.isHidden(), true, 'clean text goes through');

  const user = await userId(page);
  const ban = await admin(url, ADMIN_TOKEN, 'POST', '/admin/bans', { user, minutes: 30, reason: 'browser test' });
  assert.equal(ban.status, 201, ban.text);
  await page.fill('#text', 'am I still here?');
  await page.press('#text', 'Enter');
  await page.locator('#send-error', { hasText: /not sent: .*blocked.* until/ }).waitFor();
  assert.equal(await page.locator('#clips li.clip', { hasText: 'am I still here?' }).count(), 0);

  const live = await page.context().newPage();
  await live.goto(new URL('/live', url).href);
  await connected(live);
  await live.locator('#go-live:enabled').waitFor();
  await live.click('#go-live');
  await live.locator('#live-notice', { hasText: /moderator has blocked you/ }).waitFor();
  await live.close();
});

browserTest('the pages carry a Content-Security-Policy, work under it, and an injected inline script does not run', async (t, b) => {
  const url = await b.start();
  for (const path of ['/', '/live']) {
    const response = await fetch(new URL(path, url));
    const policy = response.headers.get('content-security-policy') ?? '';
    assert.match(policy, /script-src 'self'(;|$)/, `${path}: scripts only from the server: ${policy}`);
    assert.match(policy, /style-src 'self'(;|$)/, `${path}: styles only from the server`);
    assert.match(policy, /connect-src 'self'(;|$)/, `${path}: sockets only to the server`);
    assert.match(policy, /frame-ancestors 'none'/, `${path}: not in anyone's frame`);
    assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval|\*/, `${path}: no loopholes`);
  }

  // Every violation on the page is recorded from before its own scripts run.
  const watchViolations = (context) => context.addInitScript(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.violations.push({ directive: event.effectiveDirective, blocked: event.blockedURI, sample: event.sample });
    });
  });
  const chat = await b.open('/', { name: 'careful', prepare: watchViolations });
  await readyToSend(chat);
  await sendFromPage(chat, 'sent under the policy');
  await chat.click('#people-panel summary');
  const live = await chat.context().newPage();
  await live.goto(new URL('/live', url).href);
  await connected(live);
  await live.locator('#go-live:enabled').waitFor();
  await live.click('#go-live');
  await live.locator('#stop:visible').waitFor();
  for (const page of [chat, live]) {
    assert.deepEqual(await page.evaluate(() => window.violations), [], 'the page itself breaks no rule');
  }

  for (const page of [chat, live]) {
    const outcome = await page.evaluate(async () => {
      const script = document.createElement('script');
      script.textContent = 'window.injected = 1;';
      document.body.append(script);
      const handler = document.createElement('img');
      handler.setAttribute('src', 'data:,');
      handler.setAttribute('onerror', 'window.injected = 2;');
      document.body.append(handler);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return { injected: window.injected ?? null, directives: window.violations.map((violation) => violation.directive) };
    });
    assert.equal(outcome.injected, null, 'neither the script nor the handler ran');
    assert.ok(outcome.directives.includes('script-src-elem'), `the inline script was reported: ${outcome.directives}`);
    assert.ok(outcome.directives.includes('script-src-attr'), `the inline handler was reported: ${outcome.directives}`);
  }
  await live.close();
});
