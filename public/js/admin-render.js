// What the moderator's page shows: a clip as the chat page shows it (the same classes, so
// the same look), with its author's id, its report count and the moderator's buttons; a
// ban in force with Lift; and lists kept in step with the API without redrawing what is
// already there, so a playing clip does not restart and the focused button keeps focus.
import { fillClip, hydrateClip } from './chat-clip.js';
import { ClipMotion } from './clip-motion.js';
import { identicon } from './identicon.js';

const clipTemplate = document.getElementById('clip-template');
const banTemplate = document.getElementById('ban-template');
/** Clips move here as on the chat page: only on screen, and held for reduced motion. */
const motion = new ClipMotion();

/** A stretch of time in the largest unit that fits: "45 min", "23 h", "30 days". */
export function formatSpan(ms) {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

/** A moment as a person reads it: "Mon 3 Mar, 14:05" in their own language and zone. */
export function formatMoment(ms) {
  return new Date(ms).toLocaleString([], {
    weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  });
}

function reportsText(count) {
  if (count === 0) return 'Not reported';
  return count === 1 ? 'Reported by 1 person' : `Reported by ${count} people`;
}

/** A new list item for `entry` (`{ key, reports, clip }` from the API), with the moderator's buttons. */
export function renderClip(entry) {
  const { clip } = entry;
  const item = clipTemplate.content.firstElementChild.cloneNode(true);
  fillClip(item, { ...clip, key: entry.key });
  item.querySelector('.admin-id').textContent = clip.author.id;
  item.querySelector('.admin-remove').setAttribute('aria-label', `Remove the clip from ${clip.author.name}`);
  item.querySelector('.admin-ban').setAttribute('aria-label', `Ban author ${clip.author.name}`);
  hydrateClip(item, motion);
  updateClip(item, entry, new Set());
  return item;
}

/** What may change while a clip is shown: its report count and whether its author is banned. */
export function updateClip(item, entry, banned) {
  const reports = item.querySelector('.admin-reports');
  const text = reportsText(entry.reports);
  if (reports.textContent !== text) reports.textContent = text;
  reports.dataset.count = String(entry.reports);
  item.querySelector('.admin-banned').hidden = !banned.has(item.dataset.authorId);
}


/**
 * A ban in force (`{ user, until, reason?, address }`; `address` is true when it covers
 * their network address too, which the API never shows); `name` is the user's name if a
 * clip showed it.
 */
export function renderBan(ban, name) {
  const item = banTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.key = ban.user;
  item.querySelector('.ban-avatar').append(identicon(ban.user, name));
  updateBan(item, ban, name);
  return item;
}

/** `name` is undefined for someone none of whose clips this page has seen. */
export function updateBan(item, ban, name) {
  const who = name ?? 'someone';
  item.dataset.name = who;
  item.querySelector('.ban-name').textContent = name ?? 'Name unknown';
  item.querySelector('.ban-id').textContent = ban.user;
  item.querySelector('.ban-until').textContent = `Until ${formatMoment(ban.until)} (${formatSpan(ban.until - Date.now())} from now)`;
  const reason = item.querySelector('.ban-reason');
  reason.textContent = ban.reason ? `Reason: ${ban.reason}` : '';
  item.querySelector('.ban-address').hidden = ban.address !== true;
  item.dataset.address = String(ban.address === true);
  item.querySelector('.ban-lift').setAttribute('aria-label', `Lift the ban on ${who}, id ${ban.user}`);
}

/**
 * Makes `list`'s items those of `entries`, in that order: an item already shown (same
 * `key`) is kept and updated in place, a new one is made, one no longer listed is removed
 * (see `dropItem` for where focus goes then). Focus stays where it was.
 */
export function reconcile(list, entries, { key, make, update, fallback }) {
  const shown = new Map([...list.children].map((item) => [item.dataset.key, item]));
  const wanted = entries.map((entry) => {
    const item = shown.get(key(entry));
    if (!item) return make(entry);
    update(item, entry);
    return item;
  });
  const keep = new Set(wanted);
  for (const item of shown.values()) {
    if (!keep.has(item)) dropItem(item, fallback, (other) => keep.has(other));
  }
  const active = document.activeElement;
  wanted.forEach((item, index) => {
    const there = list.children[index] ?? null;
    if (there !== item) list.insertBefore(item, there);
  });
  // Moving an element takes focus from it; give it back.
  if (active?.isConnected && document.activeElement !== active) active.focus({ preventScroll: true });
}

/**
 * Removes `item` from its list. If focus was in it, it moves to the first button of the
 * nearest item after it that stays (`stays`), else before it, else to `fallback`, so a
 * keyboard user is not thrown back to the top of the page.
 */
export function dropItem(item, fallback, stays = () => true) {
  const hadFocus = item.contains(document.activeElement);
  let next = null;
  if (hadFocus) {
    for (const step of ['nextElementSibling', 'previousElementSibling']) {
      for (let sibling = item[step]; sibling && !next; sibling = sibling[step]) {
        if (stays(sibling)) next = sibling.querySelector('button');
      }
    }
  }
  item.remove();
  if (hadFocus) (next ?? fallback)?.focus({ preventScroll: true });
}
