// Clip text with its web links made clickable (SPEC §7). The text stays text: it becomes
// text nodes and `<a>` elements built here, never markup, and only `http:` and `https:`
// addresses become links (a `javascript:` one stays words on the screen).

/** A run that starts like a web address and goes on until a space or a quote. */
const CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/giu;
/** Punctuation that ends a sentence more often than an address. */
const TRAILING = /[.,;:!?…]+$/u;
const CLOSERS = { ')': '(', ']': '[', '}': '{' };

const count = (text, character) => text.split(character).length - 1;

/**
 * Drops trailing punctuation and a closing bracket that the address did not open, so that
 * "(see https://example.com/a_(b))." links to `https://example.com/a_(b)`.
 */
function trim(candidate) {
  let text = candidate;
  for (;;) {
    const before = text;
    text = text.replace(TRAILING, '');
    const last = text.at(-1);
    const opener = CLOSERS[last];
    if (opener && count(text, opener) < count(text, last)) text = text.slice(0, -1);
    if (text === before) return text;
  }
}

function webAddress(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

/** `text` as a fragment of text nodes and links to open in a new tab. */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let from = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const candidate = trim(match[0]);
    const url = webAddress(candidate);
    if (!url) continue;
    if (match.index > from) fragment.append(text.slice(from, match.index));
    const link = document.createElement('a');
    link.href = url.href;
    link.target = '_blank';
    link.rel = 'noopener noreferrer nofollow';
    link.textContent = candidate;
    fragment.append(link);
    from = match.index + candidate.length;
  }
  if (from < text.length) fragment.append(text.slice(from));
  return fragment;
}
