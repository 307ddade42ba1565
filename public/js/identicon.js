// A small picture drawn from a user id (SPEC §7, §10): the same id always gives the same
// picture, so two people who chose the same name still look different.
//
// A 5×5 grid mirrored left to right, in one colour, like GitHub's identicons. The id is
// already the start of an HMAC and so looks random, but it is hashed again here so that
// any string (an old clip's socket id, say) still spreads over every picture.

const SVG = 'http://www.w3.org/2000/svg';
const GRID = 5;
/** How many characters of the id a person is shown, enough to tell two ids apart. */
const SHORT_ID = 8;

/** The first characters of a user id, for labels: `7k3p9q2x`. */
export function shortId(id) {
  return String(id ?? '').slice(0, SHORT_ID);
}

/** 32-bit FNV-1a of the string, then a xorshift generator seeded with it. */
function generator(text) {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  let state = hash || 1;
  return () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state;
  };
}

/**
 * An inline SVG identicon for user `id`, labelled with the id's first characters (and
 * `name`, when given). `id` may be missing, for a clip that has no author id: then the
 * picture is an empty grey square.
 */
export function identicon(id, name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'identicon');
  svg.setAttribute('viewBox', `-0.5 -0.5 ${GRID + 1} ${GRID + 1}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('shape-rendering', 'crispEdges');
  const label = id
    ? `${name ? `${name}, ` : ''}id ${shortId(id)}`
    : `${name ? `${name}, ` : ''}no id`;
  svg.setAttribute('aria-label', label);
  svg.dataset.user = id ?? '';
  const title = document.createElementNS(SVG, 'title');
  title.textContent = label;
  svg.append(title);

  const background = document.createElementNS(SVG, 'rect');
  background.setAttribute('class', 'identicon-background');
  background.setAttribute('x', '-0.5');
  background.setAttribute('y', '-0.5');
  background.setAttribute('width', String(GRID + 1));
  background.setAttribute('height', String(GRID + 1));
  background.setAttribute('rx', '1');
  svg.append(background);
  if (!id) return svg;

  const next = generator(String(id));
  const hue = next() % 360;
  const saturation = 50 + (next() % 25);
  const lightness = 42 + (next() % 16);
  const colour = `hsl(${hue} ${saturation}% ${lightness}%)`;
  const half = Math.ceil(GRID / 2);
  let cells = 0;
  for (let row = 0; row < GRID; row += 1) {
    for (let column = 0; column < half; column += 1) {
      if (next() % 2 === 0) continue;
      cells += 1;
      for (const x of new Set([column, GRID - 1 - column])) svg.append(cell(x, row, colour));
    }
  }
  // An empty grid would look like "no id"; give it a centre instead.
  if (cells === 0) svg.append(cell(Math.floor(GRID / 2), Math.floor(GRID / 2), colour));
  return svg;
}

function cell(x, y, colour) {
  const square = document.createElementNS(SVG, 'rect');
  square.setAttribute('x', String(x));
  square.setAttribute('y', String(y));
  square.setAttribute('width', '1');
  square.setAttribute('height', '1');
  square.setAttribute('fill', colour);
  return square;
}
