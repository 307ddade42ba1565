// The live room page (SPEC §3, §7): everyone in the room as a tile, one picture a second.
//
// Joining is automatic and watch-only; "Go live" adds your camera. A tile is made the first
// time someone is seen (in the join reply, `live:joined`, or a frame) and removed on
// `live:left`. Tiles are per connection (`id`), and carry the user id (`user`) that the
// identicon is drawn from and that muting hides.
import {
  CameraSwitch, cameraProblem, grabJpeg, openCamera, videoReady,
} from './camera.js';
import { ClipMotion } from './clip-motion.js';
import { connect } from './connection.js';
import { identicon } from './identicon.js';
import { MutedUsers, mountMutedList, muteLabel } from './mute.js';

const WIDTH = 320;
const HEIGHT = 240;
const QUALITY = 0.5;
const FRAME_EVERY_MS = 1000;
/** How long to wait before asking to join again after a join went unanswered. */
const JOIN_RETRY_MS = 3000;
/** A tile whose picture is older than this is shown as paused rather than frozen. */
const STALE_AFTER_MS = 4000;

const LIVE_ERRORS = {
  not_joined: 'You are not in the room yet, so your picture was not shown. Rejoining…',
  rate_limited: 'Your pictures arrived too quickly; the extra ones were dropped.',
  frame_too_large: 'A picture from your camera was too large to send.',
  bad_frame: 'A picture from your camera could not be read.',
  bad_dimensions: 'Your camera pictures came out at an unexpected size.',
  banned: 'A moderator has blocked you, so nobody sees your pictures.',
};

const $ = (id) => document.getElementById(id);
const grid = $('tiles');
const template = $('tile-template');
const goLiveButton = $('go-live');
const stopButton = $('stop');
const status = $('live-status');
const notice = $('live-notice');
const empty = $('live-empty');
const announcer = $('announcer');

const announce = (text) => { announcer.textContent = text; };
const muted = new MutedUsers();
const mutedList = mountMutedList(muted, announce);
const { socket, me, onRefusal } = connect({ muted });
/** For tests and the curious: `loopchat.socket` is the live connection. */
window.loopchat = { socket };

/**
 * The page's pause button: while held, others' tiles keep the picture they show, and the
 * frames that arrive are dropped (the next one is a second away once it is released).
 * The same choice as the chat page's "Pause clips"; the system's reduced-motion setting
 * does not hold a picture that changes once a second.
 */
const motion = new ClipMotion({
  toggle: $('motion'),
  labels: { pause: 'Pause pictures', play: 'Play pictures' },
  followReducedMotion: false,
});

const canvas = document.createElement('canvas');
canvas.width = WIDTH;
canvas.height = HEIGHT;

/** @type {Map<string, { item: HTMLLIElement, picture: HTMLImageElement, url: string | null, lastFrame: number, seq: number }>} */
const tiles = new Map();
let myId = null;
let joined = false;
let stream = null;
let camera = null;
let sender = null;
let grabbing = false;

// ---- tiles ---------------------------------------------------------------------------

function setTileState(tile, state, words) {
  tile.item.dataset.state = state;
  tile.item.querySelector('.tile-state').textContent = words;
}

/** Another tab of this browser is you too, but it is its own tile. */
function isMe(user) {
  return Boolean(user) && user === me()?.id;
}

/** Hides the tile of someone you muted; yours and your other tabs' never. */
function decorate(tile) {
  const { user, name } = tile.item.dataset;
  const mine = isMe(user);
  const mute = tile.item.querySelector('.tile-mute');
  mute.hidden = mine || !user;
  // The name is right beside it; the label says it for screen readers.
  mute.textContent = 'Mute';
  mute.setAttribute('aria-label', muteLabel('Mute', { id: user, name }));
  tile.item.hidden = !mine && muted.has(user);
}

/** The tile of participant `id` (a connection) of user `user`, made on first sight. */
function tileFor({ id, user, name }) {
  let tile = tiles.get(id);
  if (!tile) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.dataset.id = id;
    tile = { item, picture: item.querySelector('.tile-picture'), url: null, lastFrame: 0, seq: -1 };
    tiles.set(id, tile);
    if (id === myId) {
      item.classList.add('mine');
      grid.prepend(item);
    } else {
      grid.append(item);
    }
    setTileState(tile, 'watching', 'watching');
  }
  const { dataset } = tile.item;
  const changed = (user && user !== dataset.user) || (name && name !== dataset.name);
  if (user) dataset.user = user;
  if (name) dataset.name = name;
  if (changed) {
    const shown = dataset.name ?? '';
    const label = id === myId ? `${shown} (you)` : shown;
    tile.item.querySelector('.tile-name').textContent = label;
    tile.item.querySelector('.tile-identicon').replaceChildren(identicon(dataset.user, shown));
    tile.item.querySelector('.tile-avatar').replaceChildren(identicon(dataset.user, shown));
    tile.item.setAttribute('aria-label', label);
    tile.picture.alt = `${shown}’s camera`;
  }
  decorate(tile);
  updateEmpty();
  return tile;
}

function decorateAll() {
  for (const tile of tiles.values()) decorate(tile);
}

muted.onChange(decorateAll);

grid.addEventListener('click', (event) => {
  if (!event.target.closest('.tile-mute')) return;
  const { user, name } = event.target.closest('li.tile').dataset;
  if (user) mutedList.mute({ id: user, name });
});

function removeTile(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  if (tile.url) URL.revokeObjectURL(tile.url);
  tile.item.remove();
  tiles.delete(id);
  updateEmpty();
}

function updateEmpty() {
  const others = [...tiles.keys()].filter((id) => id !== myId).length;
  empty.hidden = !joined || others > 0;
  if (joined) {
    status.textContent = stream
      ? `You are live. ${others === 1 ? 'One other person is' : `${others} other people are`} in the room.`
      : `You are watching. ${others === 1 ? 'One other person is' : `${others} other people are`} in the room.`;
  }
}

function showFrame(meta, jpeg) {
  if (!meta?.from || meta.from === myId) return;
  const tile = tileFor({ id: meta.from, user: meta.user, name: meta.name });
  // Muted: nothing to draw. After an unmute the next picture is a second away.
  if (tile.item.hidden) return;
  // A joiner's cached frame and a fresh relay can cross on the way; never step back.
  if (Number.isInteger(meta.seq) && meta.seq <= tile.seq) return;
  tile.seq = meta.seq ?? tile.seq;
  // Held: the tile still counts as live, its picture stays. A tile with no picture yet
  // gets its first, so that nobody is a blank square.
  if (motion.held && !tile.picture.hidden) {
    tile.lastFrame = Date.now();
    return;
  }
  const previous = tile.url;
  const url = URL.createObjectURL(new Blob([jpeg], { type: 'image/jpeg' }));
  tile.url = url;
  tile.lastFrame = Date.now();
  // The old picture stays on screen until the new one has loaded; then it can go.
  const release = () => { if (previous) URL.revokeObjectURL(previous); };
  tile.picture.addEventListener('load', release, { once: true });
  tile.picture.addEventListener('error', release, { once: true });
  tile.picture.src = url;
  tile.picture.hidden = false;
  setTileState(tile, 'live', 'live');
}

/** Someone whose pictures stopped coming is shown as paused, not as a frozen face. */
function markStale() {
  const now = Date.now();
  for (const [id, tile] of tiles) {
    if (id !== myId && tile.item.dataset.state === 'live' && now - tile.lastFrame > STALE_AFTER_MS) {
      setTileState(tile, 'paused', 'paused');
    }
  }
}

// ---- the room ------------------------------------------------------------------------

async function join() {
  // Tiles from before this join (an earlier connection) that the reply does not list are
  // gone. Tiles made while the reply is on its way are people who just joined: keep them.
  const earlier = new Set(tiles.keys());
  try {
    const reply = await socket.timeout(10000).emitWithAck('live:join');
    if (!reply?.ok) throw new Error('refused');
    joined = true;
    myId = reply.you.id;
    const present = new Set([myId, ...reply.participants.map((participant) => participant.id)]);
    for (const id of earlier) if (!present.has(id)) removeTile(id);
    const mine = tileFor({ user: me()?.id, ...reply.you });
    if (camera) showOwnCamera(mine);
    for (const participant of reply.participants) tileFor(participant);
    goLiveButton.disabled = false;
    updateEmpty();
  } catch {
    // No answer in time (a busy server) or a refusal: try again while connected; joining
    // twice is harmless. A reconnect joins again by itself.
    if (!socket.connected) return;
    status.textContent = 'Could not join the live room yet. Trying again…';
    setTimeout(() => { if (socket.connected && !joined) join(); }, JOIN_RETRY_MS);
  }
}

/**
 * Resolves once the server has taken us out of the room: the server handles each event
 * in its own task, so joining again before the ack could race the leave.
 */
async function leave() {
  if (!joined) return;
  joined = false;
  await socket.timeout(5000).emitWithAck('live:leave').catch(() => {});
}

socket.on('connect', () => {
  joined = false;
  join();
});
socket.on('disconnect', () => {
  joined = false;
  status.textContent = 'Disconnected from the live room. Reconnecting…';
});
// The server refuses this page's connection (SPEC §13): the page is out of the room until
// it is let in again (the banner says why, and the reconnect joins by itself). Nobody sees
// your camera meanwhile, so its light goes off, and the tiles of a room this page no
// longer hears from go too.
onRefusal((refusal) => {
  if (!refusal) return;
  joined = false;
  if (stream) {
    stopCamera();
    stopButton.hidden = true;
    goLiveButton.hidden = false;
  }
  goLiveButton.disabled = true;
  for (const id of [...tiles.keys()]) removeTile(id);
  empty.hidden = true;
  status.textContent = 'You are not in the room: the server does not let this page connect just now.';
});
socket.on('live:joined', (participant) => tileFor(participant));
socket.on('live:frame', showFrame);
socket.on('live:left', ({ id }) => removeTile(id));
socket.on('welcome', decorateAll);
socket.on('live:error', (error) => {
  // A ban's own message may say until when.
  const words = error?.code === 'banned' && error.message
    ? `${error.message[0].toUpperCase()}${error.message.slice(1)}.`
    : LIVE_ERRORS[error?.code] ?? error?.message ?? 'Something went wrong in the live room.';
  notice.textContent = words;
  notice.hidden = false;
  if (error?.code === 'not_joined' && socket.connected) join();
});

// ---- your camera ---------------------------------------------------------------------

function showOwnCamera(tile) {
  tile.item.querySelector('.tile-frame').prepend(camera);
  setTileState(tile, 'live', 'live');
}

async function sendFrame() {
  if (!joined || grabbing || !socket.connected) return;
  grabbing = true;
  try {
    const jpeg = await grabJpeg(camera, canvas, QUALITY);
    // Volatile: a picture that cannot go now is worthless later, so it is not queued.
    socket.volatile.emit('live:frame', jpeg);
  } catch {
    // One missed picture; the next one comes in a second.
  } finally {
    grabbing = false;
  }
}

const cameraSwitch = new CameraSwitch($('camera-select'), $('camera-choice'), switchCamera);

const CAMERA_CONSTRAINTS = { width: { ideal: WIDTH }, height: { ideal: HEIGHT }, facingMode: 'user' };

/** Another camera chosen while live: the new one's pictures follow at once. */
async function switchCamera() {
  if (!stream) return;
  let next;
  try {
    next = await openCamera(CAMERA_CONSTRAINTS);
  } catch (error) {
    notice.textContent = `${cameraProblem(error)} Your picture stays on the camera you had.`;
    notice.hidden = false;
    return;
  }
  if (!stream) {
    // Stopped while the new camera was starting.
    next.getTracks().forEach((track) => track.stop());
    return;
  }
  stream.getTracks().forEach((track) => track.stop());
  stream = next;
  camera.srcObject = next;
  await camera.play().catch(() => {});
  cameraSwitch.refresh(next);
}

async function goLive() {
  goLiveButton.disabled = true;
  notice.hidden = true;
  status.textContent = 'Starting your camera…';
  try {
    stream = await openCamera(CAMERA_CONSTRAINTS);
    camera = document.createElement('video');
    camera.className = 'tile-camera';
    camera.muted = true;
    camera.playsInline = true;
    camera.srcObject = stream;
    await camera.play();
    await videoReady(camera);
  } catch (error) {
    stopCamera();
    notice.textContent = `${cameraProblem(error)} You can keep watching everyone else.`;
    notice.hidden = false;
    goLiveButton.disabled = false;
    updateEmpty();
    return;
  }
  // Only once the camera is allowed does the browser name the cameras there are.
  cameraSwitch.refresh(stream);
  if (myId && tiles.has(myId)) showOwnCamera(tiles.get(myId));
  sender = setInterval(sendFrame, FRAME_EVERY_MS);
  sendFrame();
  goLiveButton.hidden = true;
  stopButton.hidden = false;
  stopButton.focus();
  updateEmpty();
}

function stopCamera() {
  clearInterval(sender);
  sender = null;
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  camera?.remove();
  camera = null;
  const mine = myId && tiles.get(myId);
  if (mine) setTileState(mine, 'watching', 'watching');
}

/** Stops the camera and leaves, so the others drop your last picture; then watches on. */
async function stopLive() {
  stopCamera();
  const left = leave();
  stopButton.hidden = true;
  goLiveButton.hidden = false;
  goLiveButton.disabled = false;
  goLiveButton.focus();
  status.textContent = 'You stopped. Rejoining as a watcher…';
  await left;
  if (socket.connected) join();
}

goLiveButton.addEventListener('click', goLive);
stopButton.addEventListener('click', stopLive);

window.addEventListener('pagehide', () => {
  stopCamera();
  leave();
});
window.addEventListener('pageshow', (event) => {
  if (event.persisted && socket.connected && !joined) join();
});

setInterval(markStale, 1000);
// A browser that allowed the camera before lists the cameras at once.
cameraSwitch.refresh();
