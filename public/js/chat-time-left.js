// The countdown on each clip (a clip lasts ten minutes), so that nobody is
// surprised when one goes: it says how long it has left, its `--life` (1 when new, 0 when
// gone) fills the countdown's background as a bar, and it looks `expiring` in its last
// minute.

/** "4 min left" down to the last minute, then seconds. */
function formatLeft(ms) {
  if (ms >= 60_000) return `${Math.ceil(ms / 60_000)} min left`;
  return `${Math.ceil(ms / 1000)} s left`;
}

/**
 * Updates a clip's countdown for the time `now`, or removes the clip once its time is up.
 * Returns whether it is still there.
 */
export function showTimeLeft(item, now) {
  if (updateTimeLeft(item, now)) return true;
  item.remove();
  return false;
}

/**
 * Updates a clip's countdown for the time `now`; false once its time is up, for a page that
 * takes the clip out its own way (the moderator's page).
 */
export function updateTimeLeft(item, now) {
  const expiresAt = Number(item.dataset.expiresAt);
  const left = expiresAt - now;
  if (!(left > 0)) return false;
  const ttl = item.querySelector('.clip-ttl');
  const text = formatLeft(left);
  if (ttl.textContent !== text) {
    ttl.textContent = text;
    ttl.title = `Disappears at ${new Date(expiresAt).toLocaleTimeString()}`;
  }
  const lifetime = expiresAt - Number(item.dataset.createdAt);
  item.style.setProperty('--life', lifetime > 0 ? String(Math.min(1, left / lifetime)) : '0');
  item.classList.toggle('expiring', left < 60_000);
  return true;
}
