// The Socket.IO connection the pages share: who you are (the browser's token, SPEC §10),
// who is here, and a banner that says when the connection is lost and when it is back, or
// why the server will not have it (too many connections from this address, or a ban on
// it: SPEC §13) and that the page asks again later by itself.
import { io } from '/vendor/socket.io.esm.min.js';
import { identicon } from './identicon.js';

const NAME_KEY = 'loopchat.name';
const TOKEN_KEY = 'loopchat.token';
const STICKY_KEY = 'loopchat.lb';
/** 32 random bytes in unpadded base64url. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** 12 random bytes in unpadded base64url. */
const STICKY_PATTERN = /^[A-Za-z0-9_-]{16}$/;
/** The server lists at most this many people (SPEC §2). */
const PEOPLE_LISTED = 50;

/**
 * Handshakes the server refuses for this page's address (SPEC §13), by `connect_error`
 * message: what the banner says, and how long until the page asks again. socket.io-client
 * gives up after such a refusal, so without a retry the page would stay out for good; a
 * retry every second would only be refused again (and, for too many connections, count
 * against the address's limit of new ones a minute).
 */
const REFUSALS = {
  too_many_connections: {
    words: 'Too many connections from your network right now. Close some tabs, or wait a minute; we will try again.',
    retryMs: 30_000,
  },
  // A moderator's ban lasts minutes at least: asking every few minutes notices its end.
  banned: {
    words: 'This network is banned from the chat for now.',
    retryMs: 5 * 60_000,
  },
};
/**
 * Up to this share of a retry's wait is added at random, so that the tabs of one classroom
 * refused together do not all ask again in the same second.
 */
const RETRY_SPREAD = 0.25;
/**
 * After the server closed the connection (an address ban does, SPEC §10), how long until
 * the page asks again: long enough not to race the ban's own bookkeeping, short enough that
 * the refusal (and its words) follows at once. A second close within `CLOSED_AGAIN_MS` of
 * the first waits as long as too many connections do, so a server that keeps closing is
 * not hammered.
 */
const CLOSED_RETRY_MS = 1_500;
const CLOSED_AGAIN_MS = 60_000;

/** `ms`, plus up to `RETRY_SPREAD` of it at random. */
function spread(ms) {
  return Math.round(ms * (1 + Math.random() * RETRY_SPREAD));
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * This browser's secret token: the server turns it into the user id that others see
 * (and mute) the same on every page, tab and visit. It goes only into the handshake, never
 * into the page, a URL or a log. Without storage it lasts for this page only, and the
 * next visit is someone new.
 */
function browserToken() {
  try {
    const stored = localStorage.getItem(TOKEN_KEY);
    if (stored && TOKEN_PATTERN.test(stored)) return stored;
  } catch {
    // No storage: a token for this page only.
  }
  const token = base64url(crypto.getRandomValues(new Uint8Array(32)));
  try {
    localStorage.setItem(TOKEN_KEY, token);
    // Another tab opened at the same moment may have stored its token first; use that
    // one, so that both tabs are the same person.
    return localStorage.getItem(TOKEN_KEY) ?? token;
  } catch {
    return token;
  }
}

let tabStickyKey;

/**
 * This tab's key for the balancer in front of a cluster (SPEC §8), sent as `?lb=` on every
 * Socket.IO request. The balancer sends all requests with one key to one node, which
 * long-polling needs, and different keys to different nodes, so that people behind one
 * address (an office, a phone network) still spread over the nodes. Kept in sessionStorage:
 * the same over reloads and reconnections of this tab, a new one for a new tab. It
 * identifies nobody: it is random, and not the token. Every page that opens a socket passes
 * it: `io({ query: { lb: stickyKey() } })`.
 */
export function stickyKey() {
  if (tabStickyKey) return tabStickyKey;
  try {
    const stored = sessionStorage.getItem(STICKY_KEY);
    if (stored && STICKY_PATTERN.test(stored)) {
      tabStickyKey = stored;
      return tabStickyKey;
    }
  } catch {
    // No storage: a key for this page only.
  }
  tabStickyKey = base64url(crypto.getRandomValues(new Uint8Array(12)));
  try {
    sessionStorage.setItem(STICKY_KEY, tabStickyKey);
  } catch {
    // As above: the next page of this tab may land on another node, which is harmless.
  }
  return tabStickyKey;
}

/** The name this browser asked for last time, so that the server gives it again. */
function rememberedName() {
  try {
    return localStorage.getItem(NAME_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

function rememberName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Private browsing without storage: the server picks a new name next time.
  }
}

/**
 * Connects to the server and keeps the header (you, who's here) and the connection banner
 * up to date. `muted` (a `MutedUsers`) marks the muted in the list of who's here.
 *
 * Returns the socket, a `me()` getter for `welcome.you` of the current connection
 * (`{ id, name, conn }`, `null` until `welcome`; `id` is the user id),
 * `onPeople(listener)`: `listener(people, { welcome })` is called with `[{ id, name }]`
 * on every `welcome` (`welcome: true`) and `presence`, and `onRefusal(listener)`:
 * `listener({ code, words })` when the server refuses this page's connection
 * (`too_many_connections` or `banned`), and `listener(null)` once it is connected again.
 * While refused, nothing can be sent: a page should say so rather than offer it.
 */
export function connect({ muted } = {}) {
  const name = rememberedName();
  const token = browserToken();
  const socket = io({ auth: name ? { name, token } : { token }, query: { lb: stickyKey() } });
  let me = null;
  let people = [];
  const peopleListeners = [];
  const refusalListeners = [];
  /** `{ code, words }` while the server refuses the connection, else null. */
  let refusal = null;
  let retryTimer;
  /** When the server last closed the connection (`io server disconnect`), or 0. */
  let lastClosed = 0;

  const banner = document.getElementById('connection');
  const bannerText = document.getElementById('connection-text');
  const online = document.getElementById('people-panel');
  const onlineCount = document.getElementById('online-count');
  const peopleList = document.getElementById('people');
  const peopleNote = document.getElementById('people-note');
  let hideBanner;
  let wasConnected = false;

  const show = (state, text) => {
    clearTimeout(hideBanner);
    banner.dataset.state = state;
    bannerText.textContent = text;
  };

  const showOnline = (count) => {
    if (typeof count !== 'number') return;
    onlineCount.textContent = count === 1 ? 'just you online' : `${count} online`;
    online.hidden = false;
  };

  const showPeople = () => {
    peopleList.replaceChildren(...people.map((person) => {
      const item = document.createElement('li');
      item.className = 'person';
      item.dataset.user = person.id;
      const mine = person.id === me?.id;
      const isMuted = !mine && muted?.has(person.id);
      item.classList.toggle('mine', mine);
      item.classList.toggle('muted', Boolean(isMuted));
      const label = document.createElement('span');
      label.className = 'person-name';
      label.textContent = person.name;
      item.append(identicon(person.id, person.name), label);
      if (mine || isMuted) {
        const note = document.createElement('span');
        note.className = 'person-note';
        note.textContent = mine ? 'you' : 'muted';
        item.append(note);
      }
      return item;
    }));
    peopleNote.hidden = people.length < PEOPLE_LISTED;
  };

  const takePeople = (list, welcome) => {
    if (!Array.isArray(list)) return;
    people = list.filter((person) => typeof person?.id === 'string' && typeof person.name === 'string');
    showPeople();
    for (const listener of peopleListeners) listener(people, { welcome });
  };
  muted?.onChange(showPeople);

  /** Asks the server again in `ms`, unless the socket is connected or trying by then. */
  const retryIn = (ms) => {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (!socket.connected && !socket.active) socket.connect();
    }, ms);
  };

  const setRefusal = (next) => {
    // A refusal repeated at the next retry changes nothing the page shows.
    if ((next?.code ?? null) === (refusal?.code ?? null)) return;
    refusal = next;
    for (const listener of refusalListeners) listener(refusal);
  };

  socket.on('connect', () => {
    clearTimeout(retryTimer);
    const wasRefused = refusal !== null;
    if (wasConnected || wasRefused) {
      show('restored', wasConnected ? 'Back online.' : 'Connected.');
      hideBanner = setTimeout(() => { banner.dataset.state = 'connected'; }, 3000);
    } else {
      banner.dataset.state = 'connected';
    }
    wasConnected = true;
    setRefusal(null);
  });

  socket.on('disconnect', (reason) => {
    if (reason === 'io client disconnect') return;
    // socket.io-client reconnects by itself after a lost transport (what a server restart
    // looks like: 'transport close'), but not after the server ended the session with a
    // DISCONNECT packet, as it does to every connection from an address it bans. The page
    // asks again shortly: a ban then refuses the handshake, which says why (above), and a
    // close for any other reason comes back and takes the replay rather than sit
    // disconnected.
    if (reason === 'io server disconnect') {
      const now = Date.now();
      const again = now - lastClosed < CLOSED_AGAIN_MS;
      lastClosed = now;
      retryIn(spread(again ? REFUSALS.too_many_connections.retryMs : CLOSED_RETRY_MS));
      show('lost', again
        ? 'The server closed the connection again. We will try again in a minute.'
        : 'The server closed the connection. Reconnecting…');
      return;
    }
    show('lost', 'Connection lost. Reconnecting…');
  });

  socket.on('connect_error', (error) => {
    const refused = REFUSALS[error?.message];
    // A refusal of this address ends socket.io-client's own retries (`active` is false):
    // the page asks again, after a wait that suits the reason.
    if (refused && !socket.active) {
      show('refused', refused.words);
      // Who was here when the page was last connected is no longer known.
      online.hidden = true;
      retryIn(spread(refused.retryMs));
      setRefusal({ code: error.message, words: refused.words });
    } else if (!socket.active) {
      show('lost', 'The server refused the connection. Reload the page to try again.');
    } else if (wasConnected) {
      show('lost', 'Connection lost. Reconnecting…');
    } else {
      show('lost', 'Can’t reach the server. Retrying…');
    }
  });

  socket.on('welcome', ({ you, online: count, people: list }) => {
    me = you;
    rememberName(you.name);
    // Reconnections reuse `auth`, so this connection's name survives them too.
    socket.auth = { name: you.name, token };
    document.getElementById('my-name').textContent = you.name;
    document.getElementById('my-identicon').replaceChildren(identicon(you.id, you.name));
    document.getElementById('me').hidden = false;
    showOnline(count);
    takePeople(list, true);
  });

  socket.on('presence', ({ online: count, people: list }) => {
    showOnline(count);
    takePeople(list, false);
  });

  return {
    socket,
    me: () => me,
    onPeople: (listener) => { peopleListeners.push(listener); },
    onRefusal: (listener) => { refusalListeners.push(listener); },
  };
}

/** Prefixes the tab title with a count, e.g. `(3) loopchat — chat`; 0 removes it. */
export function setTitleCount(count) {
  const base = document.title.replace(/^\(\d+\) /, '');
  document.title = count > 0 ? `(${count}) ${base}` : base;
}
