// HTTPS in the browser (SPEC §11): a page that another machine opens by name is a secure
// context only over TLS, and only then gets the camera. `loopchat.test` is mapped to the
// loopback, so it is not `localhost` (which browsers treat as secure over plain HTTP too).
import assert from 'node:assert/strict';
import { browserTest, clipPicture, connected } from './browser.mjs';

const HOST = 'loopchat.test';
const CHROMIUM_ARGS = [
  `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
  // The server's self-signed certificate, which a person would accept after comparing
  // its fingerprint; the certificate itself is checked by the e2e suite.
  '--ignore-certificate-errors',
];

/** The server's URL with `HOST` for its host. */
function named(url) {
  const named = new URL(url);
  named.hostname = HOST;
  return named.href;
}

browserTest('over HTTPS the page is secure, the camera starts and a clip reaches another page', async (t, b) => {
  const url = await b.start(
    { args: ['--tls-self-signed', '--tls-name', HOST] },
    { chromiumArgs: CHROMIUM_ARGS },
  );
  assert.match(url, /^https:/);
  const alice = await b.open(named(url), { name: 'alice' });
  const bob = await b.open(named(url), { name: 'bob' });
  assert.equal(new URL(alice.url()).hostname, HOST);
  assert.equal(await alice.evaluate(() => window.isSecureContext), true, 'a secure context');

  await connected(alice);
  await connected(bob);
  await alice.locator('#text:enabled').waitFor(); // the camera is running
  assert.equal(await alice.isHidden('#camera-notice'), true, 'no camera notice');
  assert.equal(await alice.evaluate(() => window.loopchat.socket.io.engine.transport.name), 'websocket', 'over wss://');

  await alice.fill('#text', 'hello over https');
  await alice.press('#text', 'Enter');
  const own = alice.locator('#clips li.clip.mine', { has: alice.locator('.clip-text', { hasText: 'hello over https' }) });
  await own.waitFor();
  const key = await own.getAttribute('data-key');

  const seen = bob.locator(`#clips li.clip[data-key="${key}"]`);
  await seen.waitFor();
  const picture = await clipPicture(bob, seen);
  assert.match(picture.src, new RegExp(`^https://${HOST.replace('.', '\\.')}:\\d+/clips/${key}\\.(mp4|gif)$`));
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
});

browserTest('the same page over plain HTTP by name is not secure and says cameras need HTTPS', async (t, b) => {
  const url = await b.start(undefined, { chromiumArgs: CHROMIUM_ARGS });
  assert.match(url, /^http:/);
  const page = await b.open(named(url), { name: 'insecure' });
  assert.equal(await page.evaluate(() => window.isSecureContext), false, 'not a secure context');

  const notice = page.locator('#camera-notice');
  await notice.waitFor();
  assert.match(await notice.textContent(), /Cameras need a secure page: open loopchat over HTTPS/);
  assert.equal(await page.isDisabled('#text'), true, 'no camera, no sending');
});
