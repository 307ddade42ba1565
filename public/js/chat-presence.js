// Quiet lines between the clips that say who joined and who left (SPEC §7). Only while the
// room is small: in a busy room they would bury the clips. Not for you, nor for people you
// muted.
import { identicon } from './identicon.js';

/** Join and leave lines are shown only while fewer people than this are here. */
const QUIET_ROOM = 20;
/** A join or leave line goes after this long, as clips do. */
const PRESENCE_LINE_MS = 10 * 60_000;

/**
 * A string that sorts among UUIDv7 keys as a key made at `ms` would: its first 48 bits.
 * The feed keeps its lines in key order, so a join or leave line lands among the clips
 * made at the same time.
 */
function timeKey(ms) {
  const hex = Math.floor(ms).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-~`;
}

export class PresenceLines {
  /**
   * `template` is the `<template>` of one line; lines go into `feed` (a `Feed`) and, while
   * `scroll` (a `FeedScroll`) follows the newest clips, into view. `me()` and `muted` say
   * whose comings and goings stay quiet.
   */
  constructor(template, { feed, scroll, me, muted }) {
    this.template = template;
    this.feed = feed;
    this.scroll = scroll;
    this.me = me;
    this.muted = muted;
    /** Who was here at the last `welcome` or `presence`, by user id; `null` before the first. */
    this.last = null;
  }

  /**
   * Compares who is here now with who was here at the last `presence`. A `welcome` (the
   * first, or after a reconnect, when everyone else is reconnecting too) only sets the
   * starting point. Takes what `connect`'s `onPeople` gives its listeners.
   */
  update(people, { welcome }) {
    const previous = this.last;
    this.last = new Map(people.map((person) => [person.id, person]));
    if (welcome || previous === null || people.length >= QUIET_ROOM) return;
    const you = this.me()?.id;
    const quiet = (person) => person.id === you || this.muted.has(person.id);
    for (const person of people) {
      if (!previous.has(person.id) && !quiet(person)) this.add(person, 'joined');
    }
    for (const person of previous.values()) {
      if (!this.last.has(person.id) && !quiet(person)) this.add(person, 'left');
    }
  }

  add(person, verb) {
    const item = this.template.content.firstElementChild.cloneNode(true);
    const now = Date.now();
    item.dataset.key = timeKey(now);
    item.dataset.user = person.id;
    item.dataset.expiresAt = String(now + PRESENCE_LINE_MS);
    item.querySelector('.presence-avatar').replaceChildren(identicon(person.id, person.name));
    item.querySelector('.presence-text').textContent = `${person.name} ${verb}`;
    this.feed.insert(item);
    if (this.scroll.following) this.scroll.toBottom();
  }
}
