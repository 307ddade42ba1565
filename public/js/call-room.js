// Being in a call room over the Socket.IO connection (SPEC §9): joining, and joining again
// after a reconnect; who is there; and handing each peer's `call:signal`s to its `Peer`.
//
// Peers are connections (`id`), not users: two tabs of one browser are two peers. On
// joining, the page offers to each peer the reply lists; peers who arrive later
// (`call:joined`) offer to it, and their `Peer` is made when that offer comes.
import { Peer } from './call-peer.js';

const JOIN_TIMEOUT_MS = 10_000;
const LEAVE_TIMEOUT_MS = 5_000;
/** After a join went unanswered (a busy server), how long until it is asked again. */
const JOIN_RETRY_MS = 3_000;
/** Signals kept from one sender while their first offer is on its way (a handful of candidates). */
const MAX_AHEAD = 50;

/**
 * The call room `room` on `socket`, sending `media` (a `LocalMedia`); `relay` forces
 * TURN. `hooks` hears about it all:
 * - `joined(reply)`, `refused(error)` (`{ code, message }`, e.g. `room_full`), `retrying()`;
 * - `ended(reason)` (`{ code, message }`) when the server took us out of the call (a ban);
 * - `arrived(info)` when someone is here (their tile can show before media flows),
 *   `change(peer, what)` for a peer's `'new'`, `'track'`, `'media'` or `'connection'`,
 *   `gone(id)` when they left or dropped;
 * - `channel(peer, dc)` with each peer's snapshot channel, `error(error)` for `call:error`;
 * - `dropped()` when the connection to the server is lost (every peer goes with it).
 */
export class CallRoom {
  constructor(socket, room, { media, relay, hooks }) {
    this.socket = socket;
    this.room = room;
    this.media = media;
    this.relay = relay;
    this.hooks = hooks;
    /** Whether the person wants to be in the call (not after Leave or a refusal). */
    this.wanted = false;
    this.joining = false;
    this.joined = false;
    /** `{ id, user, name }` of this connection in the call, from the join reply. */
    this.you = null;
    this.iceServers = [];
    /** @type {Map<string, Peer>} by connection id: everyone we are connected (or connecting) to. */
    this.peers = new Map();
    /** @type {Map<string, { id, user, name }>} everyone else in the call, with or without a `Peer`. */
    this.present = new Map();
    /** Signals that came before the join reply (whose ICE servers a `Peer` needs). */
    this.early = [];
    /**
     * @type {Map<string, object[]>} by sender: what came from someone before their first
     * offer, which it may overtake on the way; handled right after that offer.
     */
    this.ahead = new Map();

    socket.on('connect', () => { if (this.wanted) this.join(); });
    socket.on('disconnect', () => {
      // The server takes us out of the call, and the others drop their connections to us.
      // After the reconnect we join as a newcomer and offer to everyone again.
      this.joining = false;
      this.joined = false;
      this.dropAll();
      if (this.wanted) this.hooks.dropped();
    });
    socket.on('call:joined', (info) => this.arrive(info));
    socket.on('call:signal', (message) => this.signal(message));
    socket.on('call:left', ({ id } = {}) => this.drop(id));
    socket.on('call:error', (error) => {
      this.hooks.error(error);
      if (error?.code === 'not_in_call' && this.wanted && !this.joining) this.join();
    });
    // The server took us out (a moderator's ban); the others were told we left.
    socket.on('call:ended', (reason) => {
      if (!(this.joined || this.joining)) return;
      this.wanted = false;
      this.joined = false;
      this.joining = false;
      this.dropAll();
      this.hooks.ended(reason ?? {});
    });
  }

  /** Joins now if connected, else as soon as the connection is up. */
  async join() {
    this.wanted = true;
    if (this.joining || !this.socket.connected) return;
    this.joining = true;
    this.joined = false;
    this.early = [];
    this.ahead.clear();
    this.dropAll();
    let reply;
    try {
      reply = await this.socket.timeout(JOIN_TIMEOUT_MS).emitWithAck('call:join', { room: this.room });
    } catch {
      // No answer in time. Joining twice is harmless; a reconnect joins by itself.
      this.joining = false;
      if (!this.socket.connected) return;
      this.hooks.retrying();
      setTimeout(() => { if (this.wanted && !this.joined && this.socket.connected) this.join(); }, JOIN_RETRY_MS);
      return;
    }
    if (!this.joining) return; // disconnected meanwhile; the reconnect joins again
    this.joining = false;
    if (!reply?.ok) {
      this.wanted = false;
      this.hooks.refused(reply?.error ?? {});
      return;
    }
    this.joined = true;
    this.you = reply.you;
    this.iceServers = Array.isArray(reply.ice_servers) ? reply.ice_servers : [];
    this.hooks.joined(reply);
    for (const info of reply.peers ?? []) {
      this.arrive(info);
      this.connect(info, true);
    }
    const early = this.early;
    this.early = [];
    for (const message of early) this.signal(message);
  }

  /** Leaves the call; resolves once the server has taken us out. */
  async leave() {
    this.wanted = false;
    const wasIn = this.joined || this.joining;
    this.joined = false;
    this.joining = false;
    this.dropAll();
    if (wasIn && this.socket.connected) {
      await this.socket.timeout(LEAVE_TIMEOUT_MS).emitWithAck('call:leave').catch(() => {});
    }
  }

  arrive(info) {
    if (!(this.joined || this.joining) || typeof info?.id !== 'string') return;
    if (info.id === this.you?.id) return;
    this.present.set(info.id, info);
    this.hooks.arrived(info);
  }

  connect(info, offerer) {
    const peer = new Peer(info, {
      offerer,
      iceServers: this.iceServers,
      relay: this.relay,
      media: this.media,
      signal: (data) => this.socket.emit('call:signal', { to: info.id, data }),
      channel: (from, dc) => this.hooks.channel(from, dc),
      onChange: (from, what) => this.hooks.change(from, what),
    });
    this.peers.set(info.id, peer);
    this.hooks.change(peer, 'new');
    return peer;
  }

  signal(message) {
    const { from, data } = message ?? {};
    if (typeof from !== 'string' || typeof data !== 'object' || data === null) return;
    if (this.joining) {
      this.early.push(message);
      return;
    }
    if (!this.joined) return;
    let peer = this.peers.get(from);
    if (!peer) {
      // Only a newcomer's first offer makes a connection; what comes before it waits.
      if (data.description?.type !== 'offer') {
        const waiting = this.ahead.get(from) ?? [];
        if (waiting.length < MAX_AHEAD) waiting.push(data);
        this.ahead.set(from, waiting);
        return;
      }
      const info = this.present.get(from) ?? { id: from };
      this.arrive(info);
      peer = this.connect(info, false);
      peer.receive(data);
      for (const waiting of this.ahead.get(from) ?? []) peer.receive(waiting);
      this.ahead.delete(from);
      return;
    }
    peer.receive(data);
  }

  drop(id) {
    const peer = this.peers.get(id);
    peer?.close();
    this.peers.delete(id);
    this.ahead.delete(id);
    if (this.present.delete(id) || peer) this.hooks.gone(id);
  }

  dropAll() {
    for (const id of new Set([...this.peers.keys(), ...this.present.keys()])) this.drop(id);
  }

  /** Our microphone or camera changed (`kind` from `LocalMedia.onChange`): tell every peer. */
  mediaChanged(kind) {
    for (const peer of this.peers.values()) {
      if (kind === 'audio' || kind === 'video') {
        peer.setTrack(kind, this.media[kind]).catch((error) => console.warn('call: track not sent', error));
      }
      peer.sendMedia();
    }
  }
}
