// The call page (SPEC §9): a video call with sound between the browsers in one room, peer
// to peer; loopchat only passes the signalling along.
//
// The page opens camera and microphone first (or explains why it can't, and joins to watch
// and listen), then joins the room named in its URL and stays in it across reconnects
// until Leave. `?relay=1` makes every connection use TURN only (`iceTransportPolicy:
// 'relay'`): a switch for testing a TURN server, which changes nothing else.
import { CameraSwitch } from './camera.js';
import { LocalMedia, retryProblem } from './call-media.js';
import { CallRoom } from './call-room.js';
import { SnapStrip } from './call-strip.js';
import { SnapReceiver, grabStill, sendSnap } from './call-snap.js';
import { Tiles } from './call-tiles.js';
import { connect } from './connection.js';

/** Why the server would not let us in (`call:join`), in words. */
const REFUSALS = {
  room_full: 'This call is full: it already has as many people as one call can take. Try again when someone leaves, or start a new call from the Call tab.',
  invalid_room: 'This call link is not valid. Start a new call from the Call tab.',
  invalid_payload: 'The server could not read the request to join. Reload the page to try again.',
  banned: 'A moderator has blocked you, so you can’t join calls.',
};

/** `call:error` codes in words. */
const CALL_ERRORS = {
  not_in_call: 'You were no longer in the call. Joining again…',
  rate_limited: 'Your browser sent the others too many connection messages at once; some were dropped.',
  signal_too_large: 'A connection message was too large to send to the others.',
  invalid_payload: 'The server could not read a connection message from this page.',
};

const COPIED_FOR_MS = 2500;

const $ = (id) => document.getElementById(id);
const status = $('call-status');
const notice = $('call-notice');
const empty = $('call-empty');
const micButton = $('mic');
const cameraButton = $('camera');
const snapButton = $('snap');
const leaveButton = $('leave');
const rejoinButton = $('rejoin');
const copyButton = $('copy-link');
const inviteField = $('invite-field');
const inviteLink = $('invite-link');
const soundNotice = $('sound-notice');
const announcer = $('announcer');
const ownVideo = $('own-video');
const section = $('call');

const roomName = section.dataset.room
  || decodeURIComponent(location.pathname.split('/')[2] ?? '');
const relay = new URLSearchParams(location.search).get('relay') === '1';
const inviteUrl = `${location.origin}/call/${encodeURIComponent(roomName)}`;

const announce = (text) => { announcer.textContent = text; };
const showNotice = (text) => {
  notice.textContent = text;
  notice.hidden = !text;
};

const { socket, me, onRefusal } = connect();
const media = new LocalMedia();
const tiles = new Tiles($('call-tiles'), $('peer-template'), $('own-tile'));
const strip = new SnapStrip($('snaps'), $('snap-strip'), $('snap-template'));
/** What `media.start()` said is missing, kept beside later notices. */
let mediaProblem = null;
/** Out of the call by choice or refusal, until "Join again". */
let out = false;

const call = new CallRoom(socket, roomName, {
  media,
  relay,
  hooks: {
    joined(reply) {
      tiles.showSelf(reply.you, media);
      showNotice(relayProblem(reply.ice_servers) ?? mediaProblem ?? '');
      updateStatus();
    },
    refused(error) {
      outOfCall(refusalWords(error) ?? 'The server would not let you join this call.');
    },
    ended(reason) {
      outOfCall(refusalWords(reason) ?? 'The server took you out of the call.');
    },
    retrying() {
      status.textContent = 'Could not join the call yet. Trying again…';
    },
    dropped() {
      status.textContent = 'Disconnected from the call. Reconnecting…';
    },
    arrived(info) {
      tiles.tile(info);
      updateStatus();
    },
    change(peer, what) {
      tiles.update(peer);
      if (what === 'connection' && peer.state === 'connected') announce(`${peer.info.name ?? 'Someone'} is connected.`);
      updateStatus();
    },
    gone(id) {
      tiles.remove(id);
      updateStatus();
    },
    channel(peer, dc) {
      const receiver = new SnapReceiver(({ bytes, name }) => {
        strip.add({ bytes, file: name, user: peer.info.user, name: peer.info.name });
        announce(`Snapshot from ${peer.info.name ?? 'someone'}.`);
      });
      dc.addEventListener('message', (event) => receiver.take(event.data));
    },
    error(error) {
      if (error?.code === 'not_in_room') return; // they left while a message was on its way
      showNotice(CALL_ERRORS[error?.code] ?? error?.message ?? 'Something went wrong in the call.');
    },
  },
});
// The server refuses this page's connection (SPEC §13; the banner says why). Too many
// connections from this address passes within a minute, and the call is joined again
// by itself once connected. A ban on the address lasts: the page leaves the call and lets
// go of camera and microphone, as for a ban of the person, until "Join again".
const REFUSED_STATUS = 'You are not in the call: the server does not let this page connect just now. This page tries again by itself.';
/** Whether the server refuses the connection just now. */
let refused = false;
onRefusal((refusal) => {
  refused = Boolean(refusal);
  if (!refusal || out) return;
  if (refusal.code === 'banned') {
    call.leave();
    outOfCall(refusal.words);
  } else {
    status.textContent = REFUSED_STATUS;
  }
});
/** For tests and the curious: the connection, the call (`call.peers`) and your media. */
window.loopchat = { socket, call, media };
// Your name and identicon on your tile as soon as the server said who you are.
socket.on('welcome', () => updateControls());

/** `?relay=1` with no TURN server to relay through can connect nobody: say so. */
function relayProblem(iceServers) {
  if (!relay) return null;
  const urls = (iceServers ?? []).flatMap((server) => [server.urls ?? server.url ?? []].flat());
  return urls.some((url) => /^turns?:/.test(url))
    ? null
    : 'This page was opened with ?relay=1 (TURN only), but the server lists no TURN server, so nobody can connect.';
}

function updateStatus() {
  if (!call.joined) return;
  const others = tiles.size;
  empty.hidden = others > 0;
  status.textContent = others === 0
    ? 'You are in the call.'
    : `You are in the call with ${others === 1 ? 'one other person' : `${others} other people`}.`;
}

function setControl(button, text, label) {
  button.querySelector('.control-text').textContent = text;
  button.setAttribute('aria-label', label);
}

function updateControls() {
  const inCall = !out;
  section.dataset.inCall = String(inCall);
  micButton.disabled = !inCall;
  cameraButton.disabled = !inCall;
  leaveButton.disabled = !inCall;
  micButton.dataset.on = String(media.micOn);
  cameraButton.dataset.on = String(media.cameraOn);
  if (!media.audio) setControl(micButton, 'Microphone', 'Turn your microphone on');
  else if (media.micOn) setControl(micButton, 'Mute', 'Mute your microphone');
  else setControl(micButton, 'Unmute', 'Unmute your microphone');
  if (media.cameraOn) setControl(cameraButton, 'Camera off', 'Turn your camera off');
  else setControl(cameraButton, 'Camera on', 'Turn your camera on');
  snapButton.disabled = !inCall || !media.cameraOn;
  const you = me();
  tiles.showSelf(call.you ?? { user: you?.id, name: you?.name }, media);
}

media.onChange((kind) => {
  call.mediaChanged(kind);
  updateControls();
  if (kind === 'video') cameraSwitch.refresh(media.stream);
});

const cameraSwitch = new CameraSwitch($('camera-select'), $('camera-choice'), () => {
  media.switchCamera().catch((error) => showNotice(`${retryProblem('video', error)} Your picture stays on the camera you had.`));
});

micButton.addEventListener('click', async () => {
  micButton.disabled = true;
  try {
    await media.setMic(!media.micOn);
    showNotice('');
    announce(media.micOn ? 'Microphone on.' : 'Microphone muted.');
  } catch (error) {
    showNotice(retryProblem('audio', error));
  } finally {
    updateControls();
  }
});

cameraButton.addEventListener('click', async () => {
  cameraButton.disabled = true;
  try {
    await media.setCamera(!media.cameraOn);
    showNotice('');
    announce(media.cameraOn ? 'Camera on.' : 'Camera off.');
  } catch (error) {
    showNotice(retryProblem('video', error));
  } finally {
    updateControls();
  }
});

snapButton.addEventListener('click', async () => {
  let bytes;
  try {
    bytes = await grabStill(ownVideo);
  } catch {
    showNotice('Your camera gave no picture to send. Try again in a moment.');
    return;
  }
  const file = `loopchat-${(call.you?.name ?? 'snapshot').replace(/[^A-Za-z0-9-]+/g, '-')}-${Date.now()}.jpg`;
  strip.add({ bytes, file, user: call.you?.user, name: call.you?.name, mine: true });
  const open = [...call.peers.values()].filter((peer) => peer.dc?.readyState === 'open');
  const results = await Promise.allSettled(open.map((peer) => sendSnap(peer.dc, bytes, file)));
  const sent = results.filter((result) => result.status === 'fulfilled').length;
  announce(sent === 0 ? 'Snapshot taken; nobody is connected to send it to.' : `Snapshot sent to ${sent === 1 ? 'one person' : `${sent} people`}.`);
});

/** Why the server keeps us out, in words: its own message says until when for a ban. */
function refusalWords(error) {
  if (error.code === 'banned' && error.message) return `${error.message[0].toUpperCase()}${error.message.slice(1)}.`;
  return REFUSALS[error.code] ?? error.message;
}

/** Out of the call by the server's word: says why and lets go of camera and microphone. */
function outOfCall(words) {
  tiles.clear();
  empty.hidden = true;
  showNotice(words);
  status.textContent = 'You are not in the call.';
  // Nobody sees the camera now, so its light should not be on.
  media.stop();
  showJoinAgain();
}

function showJoinAgain() {
  out = true;
  leaveButton.hidden = true;
  rejoinButton.hidden = false;
  updateControls();
}

leaveButton.addEventListener('click', async () => {
  const left = call.leave();
  media.stop();
  tiles.clear();
  empty.hidden = true;
  showJoinAgain();
  status.textContent = 'You left the call.';
  rejoinButton.focus();
  await left;
});

rejoinButton.addEventListener('click', async () => {
  out = false;
  rejoinButton.hidden = true;
  leaveButton.hidden = false;
  await start();
  leaveButton.focus();
});

copyButton.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(inviteUrl);
    copyButton.textContent = 'Link copied';
    announce('Invite link copied.');
    setTimeout(() => { copyButton.textContent = 'Copy invite link'; }, COPIED_FOR_MS);
  } catch {
    // No clipboard (an insecure page, or the browser refused): the link to copy by hand.
    inviteField.hidden = false;
    inviteLink.value = inviteUrl;
    inviteLink.focus();
    inviteLink.select();
  }
});

soundNotice.querySelector('#sound-on').addEventListener('click', () => {
  tiles.playAll();
  soundNotice.hidden = true;
});
tiles.onBlocked = () => { soundNotice.hidden = false; };

/** Opens camera and microphone (or explains why not), then joins. */
async function start() {
  status.textContent = 'Starting your camera and microphone…';
  mediaProblem = await media.start();
  showNotice(mediaProblem ?? '');
  // The person may have left while the camera was starting.
  if (out) {
    media.stop();
    return;
  }
  cameraSwitch.refresh(media.stream);
  status.textContent = refused ? REFUSED_STATUS : 'Joining the call…';
  updateControls();
  await call.join();
  updateControls();
}

window.addEventListener('pagehide', () => {
  call.leave();
  media.stop();
});

start();
