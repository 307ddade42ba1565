// The moderator's page (SPEC §10): sign in with the admin token, then see the reported and
// the newest clips and the bans in force, and remove clips, ban authors and lift bans.
//
// The token is kept in this tab's sessionStorage (gone when the tab closes, never shared
// with another tab or sent as a cookie) and goes only into the `Authorization` header of
// the API calls (admin-api.js). Nothing is shown before the server has accepted it.
//
// The page keeps itself current by asking the API again every two seconds rather than
// listening on a socket: the API is where the token is checked, any node of a cluster
// answers it from the shared store, a lost connection shows up as a failed request, and
// three small reads every two seconds cost a server nothing next to a chat's clips. That
// is well within the five seconds in which new clips and reports must appear and removed
// ones vanish, whoever removed them.
//
// Ten wrong tokens in a minute from this address, from this page or anywhere else, and the
// server refuses every API request from it for a while (429, SPEC §13): the page says so,
// with how long, and sends nothing until then (admin-api.js holds the requests back).
import { AdminApi, blockedFor, tooManyFailures } from './admin-api.js';
import { updateTimeLeft } from './chat-time-left.js';
import { askBan, confirmRemove } from './admin-dialogs.js';
import {
  dropItem, formatMoment, reconcile, renderBan, renderClip, updateBan, updateClip,
} from './admin-render.js';

const TOKEN_KEY = 'loopchat.admin-token';
const SIGN_IN = 'Sign in';
/** How often the lists are read again. */
const POLL_MS = 2000;
/** How many of the newest clips are listed (the API allows up to 200). */
const NEWEST = 50;
/** How long "Back online." stays before the banner hides. */
const RESTORED_MS = 3000;

const $ = (id) => document.getElementById(id);
const signInForm = $('sign-in');
const tokenField = $('token');
const signInButton = $('sign-in-button');
const signInError = $('sign-in-error');
const signOutButton = $('sign-out');
const desk = $('desk');
const lists = {
  reported: { list: $('reported'), empty: $('reported-empty'), count: $('reported-count'), heading: $('reported-title') },
  newest: { list: $('newest'), empty: $('newest-empty'), count: $('newest-count'), heading: $('newest-title') },
  bans: { list: $('bans'), empty: $('bans-empty'), count: $('bans-count'), heading: $('bans-title') },
};
const message = $('message');
const messageText = $('message-text');
const announcer = $('announcer');
const banner = $('connection');
const bannerText = $('connection-text');

/** The API with the accepted token, or null while signed out. */
let api = null;
let pollTimer = null;
/** Keys removed from this page: a read already on its way must not bring one back. */
const removed = new Set();
/** Names of the users whose clips this page has shown, for the bans list. */
const names = new Map();
/** The user ids banned as of the last read. */
let banned = new Set();
let reachable = true;
let hideBanner;
/** Until when (ms) the banner's sentence about a 429 holds, so it is said once, not every poll. */
let bannerBlockedUntil = 0;
let blockTimer;

// ---- the token -------------------------------------------------------------------------

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // No storage: the token lasts as long as this page.
  }
}

// ---- words for the moderator -----------------------------------------------------------

/** Says how an action went, on the page and to a screen reader. */
function tell(text, kind = 'done') {
  messageText.textContent = text;
  message.dataset.kind = kind;
  message.hidden = false;
  announcer.textContent = text;
}

$('message-dismiss').addEventListener('click', () => {
  message.hidden = true;
});

/** Shows whether the last read worked: `failed` is the answer that did not, if any. */
function showConnection(failed) {
  if (!failed && reachable) return;
  clearTimeout(hideBanner);
  if (!failed) {
    reachable = true;
    banner.dataset.state = 'restored';
    bannerText.textContent = 'Back online. The lists are current again.';
    hideBanner = setTimeout(() => { banner.dataset.state = 'connected'; }, RESTORED_MS);
    return;
  }
  reachable = false;
  banner.dataset.state = 'lost';
  if (failed.status === 429) {
    // The wait is said when it starts; repeating it at every poll would have a screen
    // reader announce the banner every two seconds.
    const until = Date.now() + failed.retryAfter * 1000;
    if (until - bannerBlockedUntil > 1500) {
      bannerBlockedUntil = until;
      bannerText.textContent = `${failed.reason} Until then the lists may be out of date; this page reads them again by itself.`;
    }
    return;
  }
  bannerBlockedUntil = 0;
  bannerText.textContent = failed.unreachable
    ? 'Connection lost: the lists may be out of date. Retrying…'
    : `The lists could not be read: they may be out of date. ${failed.reason} Retrying…`;
}

// ---- signing in and out ----------------------------------------------------------------

function showSignIn(error) {
  api = null;
  clearTimeout(pollTimer);
  desk.hidden = true;
  signOutButton.hidden = true;
  // Nothing of what was shown stays in the page once signed out.
  for (const { list } of Object.values(lists)) list.replaceChildren();
  message.hidden = true;
  banner.dataset.state = 'connected';
  reachable = true;
  signInForm.hidden = false;
  signInError.textContent = error ?? '';
  signInError.hidden = !error;
  // A token refused for being wrong is marked; one the server did not check (429) is not.
  if (error && blockedFor() === 0) tokenField.setAttribute('aria-invalid', 'true');
  else tokenField.removeAttribute('aria-invalid');
  signInButton.disabled = false;
  if (blockedFor() > 0) waitOutBlock();
  tokenField.focus();
}

/**
 * After a 429: Sign in stays disabled, counting down on the button (the sentence above it
 * says the wait once; a screen reader would announce it anew every second), and comes back
 * when the wait is over. A token this tab kept is tried again then by itself.
 */
function waitOutBlock() {
  clearInterval(blockTimer);
  const tick = () => {
    const seconds = blockedFor();
    if (seconds > 0) {
      signInButton.disabled = true;
      signInButton.textContent = `${SIGN_IN} (${seconds} s)`;
      return;
    }
    clearInterval(blockTimer);
    signInButton.disabled = false;
    signInButton.textContent = SIGN_IN;
    if (signInForm.hidden) return;
    const saved = storedToken();
    if (saved) {
      signIn(saved);
    } else {
      signInError.textContent = 'You can try signing in again now.';
      signInError.hidden = false;
    }
  };
  tick();
  blockTimer = setInterval(tick, 1000);
}

/** Why a token was not accepted, in words. */
function refusal(answer) {
  if (answer.status === 429) return answer.reason;
  if (answer.status === 401) {
    return 'That is not this server’s admin token, so nothing is shown. Check the token it was started with (--admin-token or ADMIN_TOKEN) and try again.';
  }
  if (answer.status === 404) {
    return 'This server has moderation turned off: it was started without --admin-token.';
  }
  return `Not signed in: ${answer.reason}`;
}

/** Tries `token`: on success the desk is shown and kept current; else the reason is given. */
async function signIn(token) {
  const candidate = new AdminApi(token);
  signInButton.disabled = true;
  signInError.hidden = true;
  const answer = await candidate.bans();
  if (!answer.ok) {
    // The server did not check the token during a 429: a token this tab kept may be
    // right, and is tried again once the wait is over.
    if (answer.status !== 429) storeToken(null);
    showSignIn(refusal(answer));
    return;
  }
  storeToken(token);
  api = candidate;
  tokenField.value = '';
  // The lists are read before they are shown, so that an empty one means empty.
  await refresh();
  if (api !== candidate) return;
  signInForm.hidden = true;
  signOutButton.hidden = false;
  desk.hidden = false;
  // The form that had focus is gone; the first list is where the work starts.
  lists.reported.heading.focus();
  announcer.textContent = 'Signed in. The lists keep themselves current.';
  schedule();
}

signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = tokenField.value.trim();
  if (!token) {
    showSignIn('Type or paste the admin token first.');
    return;
  }
  signIn(token);
});

signOutButton.addEventListener('click', () => {
  storeToken(null);
  showSignIn();
  announcer.textContent = 'Signed out. This tab no longer holds the token.';
});

// ---- keeping the lists current ---------------------------------------------------------

function schedule() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    await refresh();
    if (api) schedule();
  }, POLL_MS);
}

let reading = null;
let readAgain = false;

/**
 * Reads the three lists and shows them. A call while a read is on its way waits for one
 * more read that starts after it, so what an action changed is shown when this resolves.
 */
function refresh() {
  if (reading) {
    readAgain = true;
    return reading;
  }
  reading = (async () => {
    do {
      readAgain = false;
      await readOnce();
    } while (readAgain && api);
  })().finally(() => { reading = null; });
  return reading;
}

async function readOnce() {
  const asked = api;
  if (!asked) return;
  const [reported, newest, bans] = await Promise.all([asked.reports(), asked.clips(NEWEST), asked.bans()]);
  // Signed out (or in again) while the answers were on their way: they are not for now.
  if (api !== asked) return;
  const answers = [reported, newest, bans];
  if (answers.some((answer) => answer.status === 401)) {
    storeToken(null);
    showSignIn('The server no longer accepts this token (was it restarted with another?). Sign in again.');
    return;
  }
  const failed = answers.find((answer) => !answer.ok);
  showConnection(failed);
  if (failed) return;
  showBans(bans.json);
  showClips(lists.reported, reported.json);
  showClips(lists.newest, newest.json);
}

function showClips({ list, empty, count, heading }, entries) {
  const now = Date.now();
  const shown = entries.filter((entry) => !removed.has(entry.key) && entry.clip.expires_at > now);
  for (const { clip } of shown) names.set(clip.author.id, clip.author.name);
  reconcile(list, shown, {
    key: (entry) => entry.key,
    make: (entry) => {
      const item = renderClip(entry);
      updateClip(item, entry, banned);
      updateTimeLeft(item, now);
      return item;
    },
    update: (item, entry) => updateClip(item, entry, banned),
    fallback: heading,
  });
  empty.hidden = shown.length > 0;
  count.textContent = shown.length ? `(${shown.length})` : '';
}

function showBans(bans) {
  const { list, empty, count, heading } = lists.bans;
  const now = Date.now();
  const inForce = bans.filter((ban) => ban.until > now);
  banned = new Set(inForce.map((ban) => ban.user));
  reconcile(list, inForce, {
    key: (ban) => ban.user,
    make: (ban) => renderBan(ban, names.get(ban.user)),
    update: (item, ban) => updateBan(item, ban, names.get(ban.user)),
    fallback: heading,
  });
  empty.hidden = inForce.length > 0;
  count.textContent = inForce.length ? `(${inForce.length})` : '';
}

/** Counts every clip down; a clip whose time is up goes, as it has on the server. */
function tickAll() {
  const now = Date.now();
  for (const which of [lists.reported, lists.newest]) {
    for (const item of [...which.list.children]) {
      if (!updateTimeLeft(item, now)) dropItem(item, which.heading, (other) => updateTimeLeft(other, now));
    }
    which.empty.hidden = which.list.children.length > 0;
  }
}

// ---- acting ----------------------------------------------------------------------------

/** Every item, in either list, that shows clip `key`. */
function itemsFor(key) {
  return document.querySelectorAll(`#desk li.clip[data-key="${CSS.escape(key)}"]`);
}

async function remove(item) {
  const { key, author } = item.dataset;
  if (!(await confirmRemove(item))) {
    tell('Nothing removed.');
    return;
  }
  const answer = await api.remove(key);
  if (answer.ok || answer.status === 404) {
    removed.add(key);
    for (const shown of itemsFor(key)) dropItem(shown, heading(shown.parentElement));
    tell(answer.ok
      ? `Removed the clip from ${author}. It is gone from every page.`
      : 'That clip was gone already: another moderator removed it, or its time ran out.');
  } else {
    tell(`The clip was not removed. ${answer.reason}`, 'failed');
  }
  await refresh();
}

function heading(list) {
  return Object.values(lists).find((which) => which.list === list)?.heading;
}

async function ban(item) {
  const author = { id: item.dataset.authorId, name: item.dataset.author };
  const choice = await askBan(author);
  if (!choice) {
    tell(`${author.name} was not banned.`);
    return;
  }
  const answer = await api.ban({ user: author.id, ...choice });
  if (answer.ok) {
    const { until, purged, address } = answer.json;
    const clips = purged === 1 ? '1 clip of theirs was' : `${purged} clips of theirs were`;
    let network = '';
    if (choice.address) {
      // The server bans the addresses it knows for them: where they are connected from and
      // where their last clip came from. It may know none.
      network = address === true
        ? ' Their network address is banned too: its connections were closed.'
        : ' Their network address is not known (they are not connected and sent no clip lately), so only their id is banned.';
    }
    tell(`Banned ${author.name} until ${formatMoment(until)}.${choice.purge ? ` ${clips} removed.` : ''}${network}`);
  } else {
    tell(`${author.name} was not banned. ${answer.reason}`, 'failed');
  }
  await refresh();
}

async function lift(item) {
  const user = item.dataset.key;
  const who = item.dataset.name;
  const address = item.dataset.address === 'true';
  const answer = await api.lift(user);
  if (answer.ok) {
    tell(`Lifted the ban on ${who} (id ${user}): they can send clips, go live and join calls again.${address ? ' Their network address is no longer banned.' : ''}`);
  } else if (answer.status === 404) {
    tell(`The ban on ${who} had ended already, or another moderator lifted it.`);
  } else {
    tell(`The ban on ${who} was not lifted. ${answer.reason}`, 'failed');
  }
  await refresh();
}

/**
 * One action at a time per button: a second press while it runs does nothing. (Not by
 * disabling it: focus must be able to return to it when its dialog closes.)
 */
const busy = new WeakSet();
function acting(button, action) {
  if (busy.has(button)) return;
  busy.add(button);
  action().finally(() => busy.delete(button));
}

desk.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button || !api) return;
  const item = button.closest('li');
  if (button.classList.contains('admin-remove')) acting(button, () => remove(item));
  else if (button.classList.contains('admin-ban')) acting(button, () => ban(item));
  else if (button.classList.contains('ban-lift')) acting(button, () => lift(item));
});

// ---- start -----------------------------------------------------------------------------

setInterval(tickAll, 1000);
const saved = storedToken();
if (saved) signIn(saved);
else showSignIn();
