// The call's tiles (SPEC §9): yours, with your preview (muted, mirrored), and one per peer
// with their video, name, identicon, a muted-mic badge, "camera off" and how the
// connection is doing. Tiles are per connection (`id`); the identicon is drawn from the
// user id, so a borrowed name still looks like someone else.
import { identicon } from './identicon.js';

const CONNECTION_WORDS = {
  new: 'Connecting…',
  connecting: 'Connecting…',
  disconnected: 'Connection interrupted…',
  failed: 'Could not connect',
};

/**
 * Runs `show()` once the page has loaded. A `<video>` given a stream before its first frame
 * holds up the document's load event until that frame comes, which may be never (a peer
 * that cannot connect): the tab would look like it is still loading.
 */
function afterLoad(show) {
  if (document.readyState === 'complete') show();
  else window.addEventListener('load', show, { once: true });
}

export class Tiles {
  constructor(list, template, ownTile) {
    this.list = list;
    this.template = template;
    this.own = ownTile;
    /** @type {Map<string, HTMLLIElement>} */
    this.items = new Map();
    /** Called with a `<video>` whose sound the browser would not play without a click. */
    this.onBlocked = () => {};
  }

  get size() {
    return this.items.size;
  }

  /** Your tile: your name and identicon once the server said who you are, your preview. */
  showSelf({ user, name }, media) {
    label(this.own, user, name ? `${name} (you)` : 'You');
    const video = this.own.querySelector('video');
    // A new camera track (camera on again, another camera) is shown from a fresh start.
    const track = media.video?.id ?? '';
    if (video.dataset.track !== track) {
      video.dataset.track = track;
      afterLoad(() => {
        if (video.dataset.track !== track) return;
        video.srcObject = media.video ? new MediaStream([media.video]) : null;
      });
    }
    this.own.dataset.camera = media.cameraOn ? 'on' : 'off';
    this.own.dataset.mic = media.micOn ? 'on' : 'off';
    this.own.querySelector('.call-state').textContent = media.cameraOn ? '' : 'camera off';
  }

  /** The tile of peer `id`, made on first sight. */
  tile({ id, user, name }) {
    let item = this.items.get(id);
    if (!item) {
      item = this.template.content.firstElementChild.cloneNode(true);
      item.dataset.id = id;
      this.items.set(id, item);
      this.list.append(item);
    }
    if (user !== undefined && item.dataset.user !== user) item.dataset.user = user;
    if (name !== undefined && item.dataset.name !== name) item.dataset.name = name;
    label(item, item.dataset.user, item.dataset.name || 'Someone');
    return item;
  }

  /** Shows `peer`'s stream, what they send, and the state of the connection to them. */
  update(peer) {
    const item = this.tile(peer.info);
    const video = item.querySelector('video');
    if (!video.dataset.stream && peer.stream.getTracks().length > 0) {
      video.dataset.stream = peer.stream.id;
      afterLoad(() => {
        if (!item.isConnected) return;
        video.srcObject = peer.stream;
        video.play().catch((error) => {
          if (error?.name === 'NotAllowedError') this.onBlocked(video);
        });
      });
    }
    const { mic, camera } = peer.remote;
    const who = item.dataset.name || 'Someone';
    item.dataset.mic = mic ? 'on' : 'off';
    item.dataset.camera = camera ? 'on' : 'off';
    item.querySelector('.call-mic-off').setAttribute('aria-label', `${who}’s microphone is off`);
    video.setAttribute('aria-label', `${who}’s camera`);
    const state = peer.state;
    item.dataset.connection = state === 'connected' ? 'connected' : state;
    item.querySelector('.call-connection').textContent = CONNECTION_WORDS[state] ?? '';
    item.querySelector('.call-state').textContent = [
      mic ? '' : 'muted',
      camera ? '' : 'camera off',
    ].filter(Boolean).join(' · ');
  }

  remove(id) {
    const item = this.items.get(id);
    if (!item) return;
    const video = item.querySelector('video');
    video.srcObject = null;
    item.remove();
    this.items.delete(id);
  }

  clear() {
    for (const id of [...this.items.keys()]) this.remove(id);
  }

  /** Plays every peer's sound; called from a click, which browsers accept as consent. */
  playAll() {
    for (const item of this.items.values()) item.querySelector('video').play().catch(() => {});
  }
}

function label(item, user, shown) {
  const name = item.querySelector('.call-name');
  if (name.textContent === shown && item.querySelector('.call-identicon svg')?.dataset.user === (user ?? '')) return;
  name.textContent = shown;
  item.setAttribute('aria-label', shown);
  item.querySelector('.call-identicon').replaceChildren(identicon(user, shown));
  item.querySelector('.call-avatar').replaceChildren(identicon(user, shown));
}
