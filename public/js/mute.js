// Muting by user id (SPEC §7, §10), shared by both pages and every tab of this browser.
//
// A user id is stable for one browser and cannot be taken by anyone without its token, so
// muting someone mutes exactly them: not whoever else picks the same name, and not them
// again under a new name. The name is kept beside the id only to list whom you muted.
import { identicon, shortId } from './identicon.js';

const MUTED_KEY = 'loopchat.muted-users';
/** Mutes by name from before user ids; a name cannot be turned into an id, so they go. */
const OLD_MUTED_KEY = 'loopchat.muted';
/** How long the "Undo" beside the muted list stays after a mute. */
const UNDO_FOR_MS = 15_000;

/** The muted users, `{ id → name }`, kept in `localStorage` and followed across tabs. */
export class MutedUsers {
  constructor() {
    /** @type {Map<string, string>} */
    this.users = this.load();
    this.listeners = [];
    try {
      localStorage.removeItem(OLD_MUTED_KEY);
    } catch {
      // No storage: nothing old to forget either.
    }
    // Another tab (the other page, say) muted or unmuted someone.
    window.addEventListener('storage', (event) => {
      if (event.key !== MUTED_KEY && event.key !== null) return;
      this.users = this.load();
      this.changed();
    });
  }

  load() {
    try {
      const stored = JSON.parse(localStorage.getItem(MUTED_KEY) ?? '[]');
      if (!Array.isArray(stored)) return new Map();
      return new Map(stored
        .filter((user) => typeof user?.id === 'string' && user.id !== '')
        .map((user) => [user.id, typeof user.name === 'string' ? user.name : '']));
    } catch {
      return new Map();
    }
  }

  save() {
    try {
      localStorage.setItem(MUTED_KEY, JSON.stringify([...this.users].map(([id, name]) => ({ id, name }))));
    } catch {
      // Without storage the mute lasts until the page is closed.
    }
  }

  has(id) {
    return typeof id === 'string' && this.users.has(id);
  }

  add({ id, name }) {
    if (!id) return;
    this.users.set(id, name ?? '');
    this.save();
    this.changed();
  }

  delete(id) {
    if (!this.users.delete(id)) return;
    this.save();
    this.changed();
  }

  /** `[{ id, name }]`, by name. */
  list() {
    return [...this.users]
      .map(([id, name]) => ({ id, name }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** Calls `listener()` after every change, from this tab or another. */
  onChange(listener) {
    this.listeners.push(listener);
  }

  changed() {
    for (const listener of this.listeners) listener();
  }
}

/** "Mute alice" for a button; the id's start tells two alices apart for screen readers. */
export function muteLabel(verb, { id, name }) {
  return `${verb} ${name || 'this person'} (id ${shortId(id)})`;
}

/**
 * Keeps the page's muted list (`#muted-list`, with `#muted-names` for the chips and
 * `#mute-undo`) in step with `muted`: one chip per muted user, with their identicon, that
 * unmutes them; and an "Undo" for the latest mute. `announce(text)` tells screen readers.
 */
export function mountMutedList(muted, announce) {
  const list = document.getElementById('muted-list');
  const names = document.getElementById('muted-names');
  const undo = document.getElementById('mute-undo');
  let lastMuted = null;
  let hideUndo;

  const render = () => {
    names.replaceChildren(...muted.list().map((user) => {
      const chip = document.createElement('button');
      chip.type = 'button';
      chip.className = 'chip';
      chip.dataset.unmute = user.id;
      chip.title = muteLabel('Unmute', user);
      chip.setAttribute('aria-label', muteLabel('Unmute', user));
      const name = document.createElement('span');
      name.textContent = user.name || shortId(user.id);
      chip.append(identicon(user.id), name);
      return chip;
    }));
    if (lastMuted && !muted.has(lastMuted.id)) lastMuted = null;
    undo.hidden = lastMuted === null;
    list.hidden = muted.users.size === 0;
  };

  names.addEventListener('click', (event) => {
    const id = event.target.closest('[data-unmute]')?.dataset.unmute;
    if (id === undefined) return;
    const name = muted.users.get(id);
    muted.delete(id);
    announce(`Unmuted ${name || 'them'}.`);
  });

  undo.addEventListener('click', () => {
    if (!lastMuted) return;
    const { id, name } = lastMuted;
    lastMuted = null;
    muted.delete(id);
    announce(`Unmuted ${name || 'them'}.`);
  });

  muted.onChange(render);
  render();

  return {
    /** Mutes `user` here, with the Undo offered for a while. */
    mute(user) {
      lastMuted = user;
      clearTimeout(hideUndo);
      hideUndo = setTimeout(() => { lastMuted = null; render(); }, UNDO_FOR_MS);
      muted.add(user);
      announce(`Muted ${user.name || 'them'}. Their clips are hidden; unmute them from the muted list.`);
      undo.focus();
    },
  };
}
