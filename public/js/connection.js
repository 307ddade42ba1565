// The Socket.IO connection both pages share: who you are (the browser's token, SPEC §10),
// who is here, and a banner that says when the connection is lost and when it is back.
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
 * (`{ id, name, conn }`, `null` until `welcome`; `id` is the user id), and
 * `onPeople(listener)`: `listener(people, { welcome })` is called with `[{ id, name }]`
 * on every `welcome` (`welcome: true`) and `presence`.
 */
export function connect({ muted } = {}) {
  const name = rememberedName();
  const token = browserToken();
  const socket = io({ auth: name ? { name, token } : { token }, query: { lb: stickyKey() } });
  let me = null;
  let people = [];
  const peopleListeners = [];

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

  socket.on('connect', () => {
    if (wasConnected) {
      show('restored', 'Back online.');
      hideBanner = setTimeout(() => { banner.dataset.state = 'connected'; }, 3000);
    } else {
      banner.dataset.state = 'connected';
    }
    wasConnected = true;
  });

  socket.on('disconnect', (reason) => {
    if (reason === 'io client disconnect') return;
    // socket.io-client reconnects by itself after a lost transport (what a server restart
    // looks like: 'transport close'), but not after the server ended the session with a
    // DISCONNECT packet. loopchat sends none today; should it, the page still comes back
    // and takes the replay rather than sit disconnected.
    if (reason === 'io server disconnect') socket.connect();
    show('lost', 'Connection lost. Reconnecting…');
  });

  socket.on('connect_error', () => {
    if (!socket.active) {
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
  };
}

/** Prefixes the tab title with a count, e.g. `(3) loopchat — chat`; 0 removes it. */
export function setTitleCount(count) {
  const base = document.title.replace(/^\(\d+\) /, '');
  document.title = count > 0 ? `(${count}) ${base}` : base;
}
