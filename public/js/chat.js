// The chat page (SPEC §7): record a clip with Enter, see everyone's clips live.
//
// The server renders the current replay into the page; this script makes those clips live
// (identicon, links, time left, mute, report) and adds the clips that arrive afterwards.
// It only connects the parts, each in a module of its own:
//
//   chat-feed.js      the list of clips and join/leave lines: no clip twice, none removed
//   chat-clip.js      how one clip is drawn
//   clip-media.js     its picture: the video, or the GIF where the video cannot play
//   clip-motion.js    which clips move: on screen only, and "Pause clips"
//   chat-time-left.js the countdown on each clip
//   chat-scroll.js    following the newest clips, and "New clips below"
//   chat-unread.js    the count of new clips in the tab's title
//   chat-report.js    the Report button
//   chat-presence.js  the "… joined" / "… left" lines
//   chat-camera.js    the camera preview, and why there is none
//   chat-recorder.js  recording a clip's ten frames
//   chat-composer.js  the text box: record, send, and say what went wrong
//   connection.js     the connection, and why the server refuses it, if it does
import { PreviewCamera } from './chat-camera.js';
import { Composer } from './chat-composer.js';
import { Feed } from './chat-feed.js';
import { PresenceLines } from './chat-presence.js';
import { Reports } from './chat-report.js';
import { FeedScroll } from './chat-scroll.js';
import { UnreadCount } from './chat-unread.js';
import { ClipMotion } from './clip-motion.js';
import { connect } from './connection.js';
import { MutedUsers, mountMutedList } from './mute.js';

const $ = (id) => document.getElementById(id);
const list = $('clips');
const announcer = $('announcer');

const announce = (text) => { announcer.textContent = text; };
const muted = new MutedUsers();
const mutedList = mountMutedList(muted, announce);
const { socket, me, onPeople, onRefusal } = connect({ muted });
/** For tests and the curious: `loopchat.socket` is the live connection. */
window.loopchat = { socket };

const reports = new Reports(socket, announce);
const motion = new ClipMotion({ toggle: $('motion') });
const feed = new Feed(
  { list, empty: $('empty'), template: $('clip-template') },
  { muted, me, reports, motion },
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

// The composer records from the camera, so it follows the camera's state (the camera calls
// back when it changes) and locks the camera switch while a clip records.
const camera = new PreviewCamera({
  box: $('camera'),
  preview: $('preview'),
  select: $('camera-select'),
  choice: $('camera-choice'),
  notice: $('camera-notice'),
}, () => composer.cameraChanged());
/** For tests: `loopchat.camera.stream` is the open camera, if any. */
window.loopchat.camera = camera;
const composer = new Composer({
  form: $('composer'),
  input: $('text'),
  sendButton: $('send'),
  progress: $('progress'),
  status: $('status-text'),
  error: $('send-error'),
}, { socket, camera, onSent: (clip) => showClip(clip, { live: true }) });

// While the server refuses this page's connection (SPEC §13) nothing arrives and nothing
// can be sent: the empty feed must not invite a hello that the text box cannot send. The
// banner above says why and that the page tries again by itself.
const empty = $('empty');
const emptyWords = empty.textContent;
onRefusal((refusal) => {
  empty.textContent = refusal
    ? 'No clips to show: this page is not connected, so new clips cannot arrive and yours cannot be sent.'
    : emptyWords;
  composer.connectionRefused(Boolean(refusal));
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
camera.start();
