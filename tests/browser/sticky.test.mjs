// The pages' sticky key for a cluster's balancer (SPEC §8): every Socket.IO request of a tab,
// long-polling and the WebSocket upgrade, carries `?lb=<key>`; the key is the tab's (the same
// after a reload, another in a new tab), on the chat page and the live page alike.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WAIT_MS, browserTest, connected } from './browser.mjs';

const KEY = /^[A-Za-z0-9_-]{16}$/;

/** Records the URL of every Socket.IO request and WebSocket of every page of `context`. */
function recordSocketUrls(context) {
  const urls = new Map(); // page -> [url]
  const add = (page, url) => {
    if (new URL(url).pathname.startsWith('/socket.io/')) urls.set(page, [...(urls.get(page) ?? []), url]);
  };
  context.on('page', (page) => {
    page.on('request', (request) => add(page, request.url()));
    page.on('websocket', (socket) => add(page, socket.url()));
  });
  return urls;
}

/** Waits until `page` has made a WebSocket to /socket.io/ (the upgrade), returns every URL. */
async function untilUpgraded(urls, page, from = 0) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const mine = (urls.get(page) ?? []).slice(from);
    if (mine.some((url) => url.startsWith('ws'))) return mine;
    if (Date.now() > deadline) assert.fail(`no WebSocket upgrade; requests: ${JSON.stringify(mine)}`);
    await sleep(50);
  }
}

const keysOf = (urls) => [...new Set(urls.map((url) => new URL(url).searchParams.get('lb')))];

browserTest('every Socket.IO request of a tab carries its sticky key, kept over a reload, another in a new tab', async (t, b) => {
  await b.start();
  let urls;
  const chat = await b.open('/', { name: 'sticky', prepare: (context) => { urls = recordSocketUrls(context); } });
  await connected(chat);
  const first = await untilUpgraded(urls, chat);
  assert.ok(first.some((url) => url.startsWith('http')), 'the page starts with long-polling');
  const [key, ...others] = keysOf(first);
  assert.deepEqual(others, [], `one key for every request: ${JSON.stringify(first)}`);
  assert.match(key ?? '', KEY, `?lb= on every request: ${JSON.stringify(first)}`);
  assert.equal(await chat.evaluate(() => sessionStorage.getItem('loopchat.lb')), key, 'kept in the tab\'s sessionStorage');

  const seen = urls.get(chat).length;
  await chat.reload();
  await connected(chat);
  assert.deepEqual(keysOf(await untilUpgraded(urls, chat, seen)), [key], 'the same key after a reload');

  // Another tab of the same browser (same localStorage, same user): its own key.
  const live = await chat.context().newPage();
  await live.goto(new URL('/live', b.server.url).href);
  await connected(live);
  const liveKeys = keysOf(await untilUpgraded(urls, live));
  assert.equal(liveKeys.length, 1, `one key on the live page: ${liveKeys}`);
  assert.match(liveKeys[0] ?? '', KEY);
  assert.notEqual(liveKeys[0], key, 'a new tab has a key of its own');
  assert.equal(
    await live.evaluate(() => window.loopchat.socket.io.opts.query.lb),
    liveKeys[0],
    'the live page\'s socket passes it as its query',
  );
  await live.close();
});
