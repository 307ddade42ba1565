// The chat page (SPEC §7): record a clip with Enter, see everyone's clips live.
//
// The server renders the current replay into the page; this script makes those clips live
// (identicon, links, time left, mute, report) and adds the clips that arrive afterwards.
// It connects the parts of the feed, each in a module of its own, and runs the camera and
// the sending of clips itself (below):
//
//   chat-feed.js      the list of clips and join/leave lines: no clip twice, none removed
//   chat-clip.js      how one clip is drawn
//   chat-time-left.js the countdown on each clip
//   chat-scroll.js    following the newest clips, and "New clips below"
//   chat-unread.js    the count of new clips in the tab's title
//   chat-report.js    the Report button
//   chat-presence.js  the "… joined" / "… left" lines
import {
  CameraSwitch, cameraProblem, grabJpeg, openCamera, videoReady,
} from './camera.js';
import { Feed } from './chat-feed.js';
import { PresenceLines } from './chat-presence.js';
import { Reports } from './chat-report.js';
import { FeedScroll } from './chat-scroll.js';
import { UnreadCount } from './chat-unread.js';
import { connect } from './connection.js';
import { MutedUsers, mountMutedList } from './mute.js';

const FRAMES = 10;
const FRAME_GAP_MS = 200;
const SIDE = 200;
const QUALITY = 0.4;
const ACK_TIMEOUT_MS = 15000;

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

const $ = (id) => document.getElementById(id);
const list = $('clips');
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

const announce = (text) => { announcer.textContent = text; };
const muted = new MutedUsers();
const mutedList = mountMutedList(muted, announce);
const { socket, me, onPeople } = connect({ muted });
/** For tests and the curious: `loopchat.socket` is the live connection. */
window.loopchat = { socket };

const reports = new Reports(socket, announce);
const feed = new Feed(
  { list, empty: $('empty'), template: $('clip-template') },
  { muted, me, reports },
);
const scroll = new FeedScroll($('feed'), list, $('jump'));
const unread = new UnreadCount();
muted.onChange(() => feed.refresh());

/**
 * Shows a clip unless it is already shown or already expired. `live` is true for a clip
 * that was just made (not a replay), which is announced and counted as unread.
 */
function showClip(clip, { live }) {
  const item = feed.add(clip);
  if (!item) return;
  // Your own new clip: you want to see it, wherever you had scrolled to, and need no
  // announcement of it.
  if (item.classList.contains('mine') && live) {
    scroll.toBottom();
    return;
  }
  if (scroll.following) {
    scroll.toBottom();
  } else if (!item.hidden) {
    scroll.showJump();
  }
  if (live && !item.hidden) {
    announce(clip.message
      ? `New clip from ${clip.author.name}: ${clip.message}`
      : `New clip from ${clip.author.name}`);
    unread.add();
  }
}

// One listener for the buttons of every clip, including those not there yet.
list.addEventListener('click', (event) => {
  const item = event.target.closest('li.clip');
  if (!item) return;
  if (event.target.closest('.clip-mute')) {
    mutedList.mute({ id: item.dataset.authorId, name: item.dataset.author });
  } else if (event.target.closest('.clip-report')) {
    reports.report(item);
  }
});

const presence = new PresenceLines($('presence-template'), { feed, scroll, me, muted });
onPeople((people, options) => presence.update(people, options));

const canvas = document.createElement('canvas');
canvas.width = SIDE;
canvas.height = SIDE;

let cameraReady = false;
let sending = false;
let stream = null;
const idleStatus = statusText.textContent;

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
      showClip(reply.message, { live: true });
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

socket.on('welcome', () => feed.refresh());
socket.on('messages', (clips) => {
  if (!Array.isArray(clips)) return;
  feed.dropMissingFromReplay(clips);
  for (const clip of clips) showClip(clip, { live: false });
});
socket.on('message', (clip) => showClip(clip, { live: true }));
socket.on('messageack', (clip) => showClip(clip, { live: true }));
socket.on('message:removed', (event) => feed.remove(event?.key));

// ---- start ---------------------------------------------------------------------------

feed.hydrateRendered();
feed.refresh();
scroll.toBottom();
setInterval(() => feed.tick(), 1000);
startCamera();
