// The chat page (SPEC §7): record a clip with Enter, see everyone's clips live.
//
// The server renders the current replay into the page; this script makes those items
// live (identicon, links, time left, mute, report) and adds the clips that arrive
// afterwards. Every clip is one `li[data-key]`, so a clip that arrives twice (replay after
// a reconnect, or both the ack and `messageack` for your own) is shown once; a clip a
// moderator removed is dropped and never shown again. Between the clips, quiet lines say
// who joined and left while the room is small.
import {
  CameraSwitch, cameraProblem, grabJpeg, openCamera, videoReady,
} from './camera.js';
import { hydrateClip, renderClip } from './chat-clip.js';
import { showTimeLeft } from './chat-time-left.js';
import { connect, setTitleCount } from './connection.js';
import { identicon } from './identicon.js';
import { MutedUsers, mountMutedList } from './mute.js';

const FRAMES = 10;
const FRAME_GAP_MS = 200;
const SIDE = 200;
const QUALITY = 0.4;
const ACK_TIMEOUT_MS = 15000;
/** How close to the bottom (in pixels) still counts as reading the newest clips. */
const BOTTOM_SLACK = 48;
/** Join and leave lines are shown only while fewer people than this are here. */
const QUIET_ROOM = 20;
/** A join or leave line goes after this long, as clips do. */
const PRESENCE_LINE_MS = 10 * 60_000;

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
  profanity: 'Your clip was not sent: its text contains words this chat does not allow. Please rephrase it.',
  unavailable: 'The server could not store your clip just now. Please try again.',
  internal: 'Something went wrong on the server. Please try again.',
};

/** Why a report was not taken, in words. */
const REPORT_ERRORS = {
  not_found: 'This clip is gone already.',
  rate_limited: 'Too many reports at once; try again in a moment.',
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
const cameraSelect = $('camera-select');
const progress = $('progress');
const statusText = $('status-text');
const cameraNotice = $('camera-notice');
const sendError = $('send-error');
const announcer = $('announcer');
const presenceTemplate = $('presence-template');

const announce = (text) => { announcer.textContent = text; };
const muted = new MutedUsers();
const mutedList = mountMutedList(muted, announce);
const { socket, me, onPeople } = connect({ muted });
/** For tests and the curious: `loopchat.socket` is the live connection. */
window.loopchat = { socket };

const canvas = document.createElement('canvas');
canvas.width = SIDE;
canvas.height = SIDE;

let cameraReady = false;
let sending = false;
let unread = 0;
let stickToBottom = true;
let stream = null;
const idleStatus = statusText.textContent;
/** Keys of clips a moderator removed: a replay or broadcast already on its way must not bring one back. */
const removed = new Set();
/** Keys of clips this page reported: their buttons say "Reported". */
const reported = new Set();

// ---- clips -------------------------------------------------------------------------

function clipItem(key) {
  return list.querySelector(`li.clip[data-key="${CSS.escape(key)}"]`);
}

function clipItems() {
  return list.querySelectorAll('li.clip');
}

/** Yours if it came from this browser (any tab): the same user id. */
function isMine(item) {
  const you = me();
  return you !== null && item.dataset.authorId === you.id;
}

/** Marks a clip this page reported, wherever it is drawn. */
function restoreReported(item) {
  if (reported.has(item.dataset.key)) showReported(item);
}

/** Applies what depends on who you are and whom you muted. */
function decorate(item) {
  const mine = isMine(item);
  item.classList.toggle('mine', mine);
  item.querySelector('.clip-mute').hidden = mine;
  item.querySelector('.clip-report').hidden = mine;
  item.hidden = !mine && muted.has(item.dataset.authorId);
}

function tickAll() {
  const now = Date.now();
  for (const item of [...list.children]) {
    if (item.classList.contains('clip')) showTimeLeft(item, now);
    else if (!(Number(item.dataset.expiresAt) > now)) item.remove();
  }
  empty.hidden = clipItems().length > 0;
}

/**
 * Inserts in key order: keys are UUIDv7, so key order is creation order; a join or leave
 * line has a key made the same way from the time it was seen (see `timeKey`).
 */
function insertInOrder(item) {
  let after = list.lastElementChild;
  while (after && after.dataset.key > item.dataset.key) after = after.previousElementSibling;
  if (after) after.after(item);
  else list.prepend(item);
}

/** A string that sorts among UUIDv7 keys as a key made at `ms` would: its first 48 bits. */
function timeKey(ms) {
  const hex = Math.floor(ms).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-~`;
}

/**
 * Shows a clip unless it is already shown or already expired. `live` is true for a clip
 * that was just made (not a replay), which is announced and counted as unread.
 */
function addClip(clip, { live }) {
  if (!clip?.key || removed.has(clip.key) || clipItem(clip.key) || !(clip.expires_at > Date.now())) return;
  const item = renderClip(template, clip);
  restoreReported(item);
  decorate(item);
  showTimeLeft(item, Date.now());
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

// ---- muting and reporting ------------------------------------------------------------

function refreshAll() {
  for (const item of clipItems()) decorate(item);
  for (const line of list.querySelectorAll('li.presence-line')) line.hidden = muted.has(line.dataset.user);
  tickAll();
}

muted.onChange(refreshAll);

function showReported(item) {
  const button = item.querySelector('.clip-report');
  button.textContent = 'Reported';
  button.disabled = true;
  item.querySelector('.clip-status').textContent = '';
}

async function report(item) {
  const { key } = item.dataset;
  const button = item.querySelector('.clip-report');
  const status = item.querySelector('.clip-status');
  button.disabled = true;
  button.textContent = 'Reporting…';
  status.textContent = '';
  let reply;
  try {
    reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('report', { key });
  } catch {
    reply = { ok: false, error: { message: 'The server did not answer; try again.' } };
  }
  if (reply?.ok) {
    reported.add(key);
    showReported(item);
    announce('Reported. Thank you: the moderators will look at it.');
    return;
  }
  button.disabled = false;
  button.textContent = 'Report';
  const error = reply?.error;
  status.textContent = `Not reported: ${REPORT_ERRORS[error?.code] ?? error?.message ?? 'please try again.'}`;
}

list.addEventListener('click', (event) => {
  const item = event.target.closest('li.clip');
  if (!item) return;
  if (event.target.closest('.clip-mute')) {
    mutedList.mute({ id: item.dataset.authorId, name: item.dataset.author });
  } else if (event.target.closest('.clip-report')) {
    report(item);
  }
});

/** A moderator took the clip down: it goes from this page and does not come back. */
function removeClip(key) {
  if (typeof key !== 'string') return;
  removed.add(key);
  clipItem(key)?.remove();
  tickAll();
}

/**
 * A replay is the newest clips in a row, so a clip shown here that falls between its
 * oldest and newest but is not in it was removed while this page was not connected.
 */
function dropMissingFromReplay(clips) {
  const keys = new Set(clips.map((clip) => clip?.key).filter((key) => typeof key === 'string'));
  if (keys.size === 0) return;
  const sorted = [...keys].sort();
  const [oldest, newest] = [sorted[0], sorted.at(-1)];
  for (const item of [...clipItems()]) {
    const { key } = item.dataset;
    if (key > oldest && key < newest && !keys.has(key)) removeClip(key);
  }
}

// ---- who joined and left ---------------------------------------------------------------

let lastPeople = null;

function presenceLine(person, verb) {
  const item = presenceTemplate.content.firstElementChild.cloneNode(true);
  const now = Date.now();
  item.dataset.key = timeKey(now);
  item.dataset.user = person.id;
  item.dataset.expiresAt = String(now + PRESENCE_LINE_MS);
  item.querySelector('.presence-avatar').replaceChildren(identicon(person.id, person.name));
  item.querySelector('.presence-text').textContent = `${person.name} ${verb}`;
  insertInOrder(item);
  if (stickToBottom) scrollToBottom();
}

/**
 * Compares who is here now with who was here at the last `presence`. A `welcome` (the
 * first, or after a reconnect, when everyone else is reconnecting too) only sets the
 * starting point.
 */
onPeople((people, { welcome }) => {
  const previous = lastPeople;
  lastPeople = new Map(people.map((person) => [person.id, person]));
  if (welcome || previous === null || people.length >= QUIET_ROOM) return;
  const you = me()?.id;
  const quiet = (person) => person.id === you || muted.has(person.id);
  for (const person of people) {
    if (!previous.has(person.id) && !quiet(person)) presenceLine(person, 'joined');
  }
  for (const person of previous.values()) {
    if (!lastPeople.has(person.id) && !quiet(person)) presenceLine(person, 'left');
  }
});

// ---- the camera ----------------------------------------------------------------------

function updateComposer() {
  input.disabled = sending || !cameraReady;
  sendButton.disabled = sending || !cameraReady;
  // Switching cameras mid-recording would cut the clip short.
  cameraSelect.disabled = sending;
  if (sending) return;
  if (cameraReady) input.placeholder = 'Type a message and press Enter';
  else if (camera.dataset.state === 'starting') input.placeholder = 'Starting camera…';
  else input.placeholder = 'Camera needed';
}

const cameraSwitch = new CameraSwitch(cameraSelect, $('camera-choice'), () => {
  if (!sending) startCamera();
});

async function startCamera() {
  cameraReady = false;
  camera.dataset.state = 'starting';
  cameraNotice.hidden = true;
  updateComposer();
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  try {
    const opened = await openCamera({
      width: { ideal: 320 }, height: { ideal: 240 }, facingMode: 'user',
    });
    stream = opened;
    preview.srcObject = opened;
    // A camera that is unplugged or taken away mid-session ends its track.
    opened.getVideoTracks()[0]?.addEventListener('ended', () => {
      if (stream !== opened) return;
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
  // Only once the camera is allowed does the browser name the cameras there are.
  cameraSwitch.refresh(stream);
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

/** A ban (`banned`) has no words here: the server's say until when. */
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
  if (!Array.isArray(clips)) return;
  dropMissingFromReplay(clips);
  for (const clip of clips) addClip(clip, { live: false });
});
socket.on('message', (clip) => addClip(clip, { live: true }));
socket.on('messageack', (clip) => addClip(clip, { live: true }));
socket.on('message:removed', (event) => removeClip(event?.key));

// ---- start ---------------------------------------------------------------------------

for (const item of clipItems()) {
  hydrateClip(item);
  restoreReported(item);
}
refreshAll();
scrollToBottom();
setInterval(tickAll, 1000);
startCamera();
