// What the moderator's page shows: a clip as the chat page shows it (the same classes, so
// the same look), with its author's id, its report count and the moderator's buttons; a
// ban in force with Lift; and lists kept in step with the API without redrawing what is
// already there, so a playing clip does not restart and the focused button keeps focus.
import { identicon } from './identicon.js';
import { linkify } from './links.js';

const clipTemplate = document.getElementById('clip-template');
const banTemplate = document.getElementById('ban-template');

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

/**
 * The clip's picture: its video when it has one (SPEC §12; not served yet), falling back
 * to the GIF, else the GIF. Muted, looping and inline, as every browser needs to play it
 * by itself.
 */
function media(clip) {
  const alt = `Looping clip from ${clip.author.name}`;
  const gif = () => {
    const image = document.createElement('img');
    image.className = 'clip-gif';
    image.src = clip.clip;
    image.width = clip.width;
    image.height = clip.height;
    image.alt = alt;
    return image;
  };
  if (typeof clip.video !== 'string') return gif();
  const video = document.createElement('video');
  video.className = 'clip-gif';
  video.muted = true;
  video.defaultMuted = true;
  video.loop = true;
  video.autoplay = true;
  video.playsInline = true;
  if (typeof clip.poster === 'string') video.poster = clip.poster;
  video.width = clip.width;
  video.height = clip.height;
  video.setAttribute('aria-label', alt);
  video.src = clip.video;
  video.addEventListener('error', () => video.replaceWith(gif()), { once: true });
  return video;
}

/** A new list item for `entry` (`{ key, reports, clip }` from the API), with the moderator's buttons. */
export function renderClip(entry) {
  const { clip } = entry;
  const item = clipTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.key = entry.key;
  item.dataset.author = clip.author.name;
  item.dataset.authorId = clip.author.id;
  item.dataset.createdAt = String(clip.created_at);
  item.dataset.expiresAt = String(clip.expires_at);
  item.querySelector('.admin-media').append(media(clip));
  item.querySelector('.clip-avatar').append(identicon(clip.author.id, clip.author.name));
  item.querySelector('.clip-author').textContent = clip.author.name;
  item.querySelector('.admin-id').textContent = clip.author.id;
  item.querySelector('.clip-text').append(linkify(clip.message));
  item.querySelector('.admin-remove').setAttribute('aria-label', `Remove the clip from ${clip.author.name}`);
  item.querySelector('.admin-ban').setAttribute('aria-label', `Ban author ${clip.author.name}`);
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


/** A ban in force (`{ user, until, reason? }`); `name` is the user's name if a clip showed it. */
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
