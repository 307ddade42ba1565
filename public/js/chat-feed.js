// The feed (SPEC §7): the list of clips, with quiet join and leave lines between them, in
// the order they were made. Every clip is one `li[data-key]`, so a clip that arrives twice
// (the replay after a reconnect, or both the ack and `messageack` for your own) is shown
// once; a clip a moderator removed is dropped and never shown again. What depends on who
// you are and whom you muted is applied here, and every line goes when its time is up.
//
// The feed only keeps the list; where the page scrolls and what is announced when a clip
// arrives is up to the caller (chat.js).
import { hydrateClip, renderClip } from './chat-clip.js';
import { showTimeLeft } from './chat-time-left.js';

export class Feed {
  /**
   * `list` is the `<ol>`, `empty` the note shown while it has no clips, `template` the
   * `<template>` of one clip. `muted` is the `MutedUsers`, `me()` who you are (`null` until
   * `welcome`), `reports` the `Reports`, which marks clips this page reported, `motion`
   * the `ClipMotion` that plays or holds each clip's picture.
   */
  constructor({ list, empty, template }, { muted, me, reports, motion }) {
    this.list = list;
    this.empty = empty;
    this.template = template;
    this.muted = muted;
    this.me = me;
    this.reports = reports;
    this.motion = motion;
    /** Keys of clips a moderator removed: a replay or broadcast already on its way must not bring one back. */
    this.removed = new Set();
  }

  item(key) {
    return this.list.querySelector(`li.clip[data-key="${CSS.escape(key)}"]`);
  }

  items() {
    return this.list.querySelectorAll('li.clip');
  }

  /** Makes the clips the server rendered into the page live, once, at the start. */
  hydrateRendered() {
    for (const item of this.items()) {
      hydrateClip(item, this.motion);
      this.reports.restore(item);
    }
  }

  /** Yours if it came from this browser (any tab): the same user id. */
  isMine(item) {
    const you = this.me();
    return you !== null && item.dataset.authorId === you.id;
  }

  /** Applies what depends on who you are and whom you muted. */
  decorate(item) {
    const mine = this.isMine(item);
    item.classList.toggle('mine', mine);
    item.querySelector('.clip-mute').hidden = mine;
    item.querySelector('.clip-report').hidden = mine;
    item.hidden = !mine && this.muted.has(item.dataset.authorId);
  }

  /**
   * Adds a clip unless it is already shown, was removed or has expired. Returns its new
   * `li` (hidden if its author is muted; `mine` if yours), or `null` when nothing was added.
   */
  add(clip) {
    if (!clip?.key || this.removed.has(clip.key) || this.item(clip.key) || !(clip.expires_at > Date.now())) return null;
    const item = renderClip(this.template, clip, this.motion);
    this.reports.restore(item);
    this.decorate(item);
    showTimeLeft(item, Date.now());
    this.insert(item);
    this.empty.hidden = true;
    return item;
  }

  /**
   * Inserts a clip or a join/leave line in key order: keys are UUIDv7, so key order is
   * creation order; a join or leave line has a key made the same way from the time it was
   * seen (see chat-presence.js).
   */
  insert(item) {
    let after = this.list.lastElementChild;
    while (after && after.dataset.key > item.dataset.key) after = after.previousElementSibling;
    if (after) after.after(item);
    else this.list.prepend(item);
  }

  /** A moderator took the clip down: it goes from this page and does not come back. */
  remove(key) {
    if (typeof key !== 'string') return;
    this.removed.add(key);
    this.item(key)?.remove();
    this.tick();
  }

  /**
   * A replay is the newest clips in a row, so a clip shown here that falls between its
   * oldest and newest but is not in it was removed while this page was not connected.
   */
  dropMissingFromReplay(clips) {
    const keys = new Set(clips.map((clip) => clip?.key).filter((key) => typeof key === 'string'));
    if (keys.size === 0) return;
    const sorted = [...keys].sort();
    const [oldest, newest] = [sorted[0], sorted.at(-1)];
    for (const item of [...this.items()]) {
      const { key } = item.dataset;
      if (key > oldest && key < newest && !keys.has(key)) this.remove(key);
    }
  }

  /** Updates every countdown and removes what has expired; run every second. */
  tick() {
    const now = Date.now();
    for (const item of [...this.list.children]) {
      if (item.classList.contains('clip')) showTimeLeft(item, now);
      else if (!(Number(item.dataset.expiresAt) > now)) item.remove();
    }
    this.empty.hidden = this.items().length > 0;
  }

  /** Applies who you are and whom you muted to everything shown: after `welcome`, and after a mute or unmute. */
  refresh() {
    for (const item of this.items()) this.decorate(item);
    for (const line of this.list.querySelectorAll('li.presence-line')) line.hidden = this.muted.has(line.dataset.user);
    this.tick();
  }
}
