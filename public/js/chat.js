// The chat page (SPEC §7): record a clip with Enter, see everyone's clips live.
//
// The server renders the current replay into the page; this script makes those items
// live (time left, mute) and adds the clips that arrive afterwards. Every clip is one
// `li[data-key]`, so a clip that arrives twice (replay after a reconnect, or both the ack
// and `messageack` for your own) is shown once.
import {
  cameraProblem, connect, grabJpeg, openCamera, setTitleCount, videoReady,
} from './connection.js';

const FRAMES = 10;
const FRAME_GAP_MS = 200;
const SIDE = 200;
const QUALITY = 0.4;
const ACK_TIMEOUT_MS = 15000;
/** How close to the bottom (in pixels) still counts as reading the newest clips. */
const BOTTOM_SLACK = 48;
/**
 * Muted authors, by name. Author ids are socket ids and change with every connection,
 * so an id-based mute would be forgotten at the author's next reload; names stay the same
 * because each browser asks for its previous name again (see connection.js). The cost:
 * someone else who picks the same name is muted too.
 */
const MUTED_KEY = 'loopchat.muted';

/** SPEC §5 codes in words a person can act on. */
const ERRORS = {
  invalid_payload: 'The server could not read that clip. Reload the page and try again.',
  bad_frame_count: 'That clip did not have the right number of frames. Please try again.',
  frame_too_large: 'That clip was too large to send. Try again, perhaps with a less busy background.',
  bad_frame: 'The camera pictures could not be read. Please try again.',
  bad_dimensions: 'The camera pictures came out at an unexpected size. Reload the page and try again.',
  text_too_long: 'Your message is too long: keep it to 250 characters.',
  rate_limited: 'You are sending clips too quickly. Wait a few seconds, then try again.',
  busy: 'The server is busy making other clips. Try again in a moment.',
  internal: 'Something went wrong on the server. Please try again.',
};

const $ = (id) => document.getElementById(id);
const feed = $('feed');
const list = $('clips');
const empty = $('empty');
const jump = $('jump');
const template = $('clip-template');
const form = $('composer');
const input = $('text');
const sendButton = $('send');
const camera = $('camera');
const preview = $('preview');
const progress = $('progress');
const statusText = $('status-text');
const cameraNotice = $('camera-notice');
const sendError = $('send-error');
const mutedList = $('muted-list');
const mutedNames = $('muted-names');
const announcer = $('announcer');

const { socket, me } = connect();
/** For tests and the curious: `loopchat.socket` is the live connection. */
window.loopchat = { socket };

const canvas = document.createElement('canvas');
canvas.width = SIDE;
canvas.height = SIDE;

let cameraReady = false;
let sending = false;
let unread = 0;
let stickToBottom = true;
const muted = new Set(loadMuted());
const idleStatus = statusText.textContent;

// ---- clips -------------------------------------------------------------------------

function clipItem(key) {
  return list.querySelector(`li[data-key="${CSS.escape(key)}"]`);
}

function isMine(item) {
  const you = me();
  return you !== null && item.dataset.author === you.name;
}

/** Builds the same markup the server renders, from a `Clip`. Text goes in as text only. */
function renderClip(clip) {
  const item = template.content.firstElementChild.cloneNode(true);
  item.dataset.key = clip.key;
  item.dataset.author = clip.author.name;
  item.dataset.authorId = clip.author.id;
  item.dataset.createdAt = String(clip.created_at);
  item.dataset.expiresAt = String(clip.expires_at);
  const gif = item.querySelector('.clip-gif');
  gif.src = clip.clip;
  gif.width = clip.width;
  gif.height = clip.height;
  gif.alt = `Looping clip from ${clip.author.name}`;
  item.querySelector('.clip-author').textContent = clip.author.name;
  item.querySelector('.clip-text').textContent = clip.message;
  const save = item.querySelector('.clip-save');
  save.href = clip.clip;
  save.download = `loopchat-${clip.key}.gif`;
  save.setAttribute('aria-label', `Save GIF from ${clip.author.name}`);
  item.querySelector('.clip-mute').textContent = `Mute ${clip.author.name}`;
  return item;
}

/** Applies what depends on who you are and whom you muted. */
function decorate(item) {
  const mine = isMine(item);
  item.classList.toggle('mine', mine);
  item.querySelector('.clip-mute').hidden = mine;
  item.hidden = !mine && muted.has(item.dataset.author);
}

function formatLeft(ms) {
  if (ms >= 60_000) return `${Math.ceil(ms / 60_000)} min left`;
  return `${Math.ceil(ms / 1000)} s left`;
}

/** Updates an item's countdown; removes it once expired. Returns whether it is still there. */
function tick(item, now) {
  const expiresAt = Number(item.dataset.expiresAt);
  const left = expiresAt - now;
  if (!(left > 0)) {
    item.remove();
    return false;
  }
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

function tickAll() {
  const now = Date.now();
  for (const item of [...list.children]) tick(item, now);
  empty.hidden = list.children.length > 0;
}

/** Inserts in key order: keys are UUIDv7, so key order is creation order. */
function insertInOrder(item) {
  let after = list.lastElementChild;
  while (after && after.dataset.key > item.dataset.key) after = after.previousElementSibling;
  if (after) after.after(item);
  else list.prepend(item);
}

/**
 * Shows a clip unless it is already shown or already expired. `live` is true for a clip
 * that was just made (not a replay), which is announced and counted as unread.
 */
function addClip(clip, { live }) {
  if (!clip?.key || clipItem(clip.key) || !(clip.expires_at > Date.now())) return;
  const item = renderClip(clip);
  decorate(item);
  tick(item, Date.now());
  insertInOrder(item);
  empty.hidden = true;

  const mine = item.classList.contains('mine');
  if (mine && live) {
    scrollToBottom();
    return;
  }
  if (stickToBottom) {
    scrollToBottom();
  } else if (!item.hidden) {
    jump.hidden = false;
  }
  if (live && !item.hidden) {
    announcer.textContent = clip.message
      ? `New clip from ${clip.author.name}: ${clip.message}`
      : `New clip from ${clip.author.name}`;
    if (document.hidden) {
      unread += 1;
      setTitleCount(unread);
    }
  }
}

// ---- scrolling -----------------------------------------------------------------------

function atBottom() {
  return feed.scrollHeight - feed.scrollTop - feed.clientHeight <= BOTTOM_SLACK;
}

function scrollToBottom() {
  feed.scrollTop = feed.scrollHeight;
  stickToBottom = true;
  jump.hidden = true;
}

feed.addEventListener('scroll', () => {
  stickToBottom = atBottom();
  if (stickToBottom) jump.hidden = true;
}, { passive: true });

// The feed changes height when the window or the on-screen keyboard does.
new ResizeObserver(() => {
  if (stickToBottom) feed.scrollTop = feed.scrollHeight;
}).observe(feed);

jump.addEventListener('click', () => {
  scrollToBottom();
  list.lastElementChild?.querySelector('.clip-save')?.focus({ preventScroll: true });
});

// ---- unread count in the title -------------------------------------------------------

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) {
    unread = 0;
    setTitleCount(0);
  }
});

// ---- muting --------------------------------------------------------------------------

function loadMuted() {
  try {
    const stored = JSON.parse(localStorage.getItem(MUTED_KEY) ?? '[]');
    return Array.isArray(stored) ? stored.filter((name) => typeof name === 'string') : [];
  } catch {
    return [];
  }
}

function saveMuted() {
  try {
    localStorage.setItem(MUTED_KEY, JSON.stringify([...muted]));
  } catch {
    // Without storage the mute lasts until the page is closed.
  }
}

function renderMuted() {
  mutedNames.replaceChildren(...[...muted].sort().map((name) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'chip';
    button.dataset.unmute = name;
    button.textContent = name;
    button.setAttribute('aria-label', `Unmute ${name}`);
    button.title = `Unmute ${name}`;
    return button;
  }));
  mutedList.hidden = muted.size === 0;
}

function refreshAll() {
  for (const item of list.children) decorate(item);
  renderMuted();
  tickAll();
}

list.addEventListener('click', (event) => {
  const button = event.target.closest('.clip-mute');
  if (!button) return;
  const name = button.closest('li.clip').dataset.author;
  muted.add(name);
  saveMuted();
  refreshAll();
  announcer.textContent = `Muted ${name}. Their clips are hidden; unmute them below the message box.`;
  mutedNames.querySelector(`[data-unmute="${CSS.escape(name)}"]`)?.focus();
});

mutedNames.addEventListener('click', (event) => {
  const name = event.target.closest('[data-unmute]')?.dataset.unmute;
  if (name === undefined) return;
  muted.delete(name);
  saveMuted();
  refreshAll();
  announcer.textContent = `Unmuted ${name}.`;
  input.focus();
});

// ---- the camera ----------------------------------------------------------------------

function updateComposer() {
  input.disabled = sending || !cameraReady;
  sendButton.disabled = sending || !cameraReady;
  if (sending) return;
  if (cameraReady) input.placeholder = 'Type a message and press Enter';
  else if (camera.dataset.state === 'starting') input.placeholder = 'Starting camera…';
  else input.placeholder = 'Camera needed';
}

async function startCamera() {
  camera.dataset.state = 'starting';
  cameraNotice.hidden = true;
  updateComposer();
  try {
    const stream = await openCamera({
      width: { ideal: 320 }, height: { ideal: 240 }, facingMode: 'user',
    });
    preview.srcObject = stream;
    // A camera that is unplugged or taken away mid-session ends its track.
    stream.getVideoTracks()[0]?.addEventListener('ended', () => {
      cameraReady = false;
      camera.dataset.state = 'blocked';
      showCameraNotice('The camera stopped.');
      updateComposer();
    });
    await preview.play();
    await videoReady(preview);
    cameraReady = true;
    camera.dataset.state = 'ready';
    statusText.textContent = idleStatus;
  } catch (error) {
    cameraReady = false;
    camera.dataset.state = 'blocked';
    showCameraNotice(cameraProblem(error));
  }
  updateComposer();
}

function showCameraNotice(problem) {
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.className = 'link-button';
  retry.textContent = 'Try the camera again';
  retry.addEventListener('click', startCamera);
  const strong = document.createElement('strong');
  strong.textContent = 'You can’t send clips without a camera,';
  cameraNotice.replaceChildren(
    strong, ' but everyone else’s still arrive here. ', problem, ' ', retry,
  );
  cameraNotice.hidden = false;
  statusText.textContent = '';
}

// ---- sending -------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function newId() {
  return crypto.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Ten JPEGs, 200 ms apart, centre-cropped to 200×200, with the progress shown. */
async function record() {
  camera.dataset.state = 'recording';
  progress.hidden = false;
  progress.value = 0;
  camera.style.setProperty('--progress', '0');
  statusText.textContent = 'Recording… hold that pose.';
  const start = performance.now();
  const frames = [];
  try {
    for (let index = 0; index < FRAMES; index += 1) {
      await sleep(start + index * FRAME_GAP_MS - performance.now());
      frames.push(grabJpeg(preview, canvas, QUALITY));
      progress.value = index + 1;
      camera.style.setProperty('--progress', String((index + 1) / FRAMES));
    }
    return await Promise.all(frames);
  } finally {
    camera.dataset.state = cameraReady ? 'ready' : 'blocked';
  }
}

function showError(text) {
  sendError.textContent = text;
  sendError.hidden = false;
}

function describeFailure(error) {
  if (error?.code && ERRORS[error.code]) return ERRORS[error.code];
  if (error?.message) return `The clip was not sent: ${error.message}`;
  return 'The clip was not sent. Please try again.';
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (sending || !cameraReady) return;
  if (!socket.connected) {
    showError('You are offline. Your clip can be sent once the connection is back.');
    return;
  }
  sending = true;
  sendError.hidden = true;
  updateComposer();
  const text = input.value;
  let sent = false;
  try {
    let frames;
    try {
      frames = await record();
    } catch {
      showError('The camera pictures could not be taken. Try again, or reload the page.');
      return;
    }
    progress.removeAttribute('value');
    statusText.textContent = 'Sending…';
    let reply;
    try {
      reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('message', { id: newId(), message: text, frames });
    } catch {
      showError('The server did not answer in time, so the clip may not have been sent. Check your connection and try again.');
      return;
    }
    if (reply?.ok) {
      sent = true;
      addClip(reply.message, { live: true });
      input.value = '';
    } else {
      showError(describeFailure(reply?.error));
    }
  } finally {
    sending = false;
    progress.hidden = true;
    camera.style.removeProperty('--progress');
    statusText.textContent = sent ? 'Sent. It loops for everyone for the next ten minutes.' : idleStatus;
    updateComposer();
    input.focus();
  }
});

// ---- events from the server ----------------------------------------------------------

socket.on('welcome', () => refreshAll());
socket.on('messages', (clips) => {
  if (Array.isArray(clips)) for (const clip of clips) addClip(clip, { live: false });
});
socket.on('message', (clip) => addClip(clip, { live: true }));
socket.on('messageack', (clip) => addClip(clip, { live: true }));

// ---- start ---------------------------------------------------------------------------

renderMuted();
refreshAll();
scrollToBottom();
setInterval(tickAll, 1000);
startCamera();
