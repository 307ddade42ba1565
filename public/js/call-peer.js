// One other person in the call: the RTCPeerConnection to them and its negotiation over
// `call:signal` (SPEC §9).
//
// The newcomer offers first: it makes the connection at once, with an audio and a video
// transceiver and the snapshot channel, and sends the offer. Whoever was already there
// makes its connection only when that offer arrives, so two first offers never cross
// (Chromium was seen to leave a pair stuck for good when they did; see WEBRTC.md). Every
// later negotiation (a camera started late, an ICE restart) follows the "perfect
// negotiation" pattern, with whoever was there first as the polite side.
//
// What goes over `call:signal` (`data`): `{ description }` (an SDP offer or answer),
// `{ candidate }` (an ICE candidate), or `{ media: { mic, camera, seq } }` (whether they
// send sound and picture, for the muted-mic badge and the "camera off" tile; numbered,
// because signals can overtake each other on the way).

const KINDS = ['audio', 'video'];

export class Peer {
  /**
   * `info` is `{ id, user, name }` from the server; `offerer` is true for the newcomer's
   * side. `options`: `iceServers` and `relay` (force TURN) for the connection, the
   * `LocalMedia` to send, `signal(data)` to send to this peer, and `channel(peer, dc)`,
   * called once with the snapshot data channel. `onChange(peer, what)` is told about
   * `'track'`, `'media'` and `'connection'`.
   */
  constructor(info, { offerer, iceServers, relay, media, signal, channel, onChange }) {
    this.info = info;
    this.media = media;
    this.signal = signal;
    this.channel = channel;
    this.onChange = onChange;
    this.polite = !offerer;
    /** Sound and picture from them, as one stream for their tile's `<video>`. */
    this.stream = new MediaStream();
    /** What they say they send; until they say, assume both. */
    this.remote = { mic: true, camera: true };
    /** Numbers our `media` messages, and theirs seen last: an overtaken one is stale. */
    this.mediaSeq = 0;
    this.remoteSeq = -1;
    /** @type {Record<string, RTCRtpTransceiver>} one per kind, once negotiated. */
    this.transceivers = {};
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.closed = false;
    /** Whether they have had a description from us: until then they would drop anything else. */
    this.described = false;
    /** Candidates gathered before that, sent right after it. */
    this.unsent = [];
    /** Signals are handled one at a time, in the order they came. */
    this.queue = Promise.resolve();
    /**
     * Candidates that came before the description they belong to: signals can overtake
     * each other on the way (the server relays each in its own task).
     */
    this.early = [];

    const pc = new RTCPeerConnection({
      iceServers,
      iceTransportPolicy: relay ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
    });
    this.pc = pc;
    pc.addEventListener('track', ({ track }) => {
      this.stream.addTrack(track);
      this.onChange(this, 'track');
    });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate) return;
      if (this.described) this.signal({ candidate: candidate.toJSON() });
      else this.unsent.push(candidate.toJSON());
    });
    pc.addEventListener('negotiationneeded', () => this.offer());
    pc.addEventListener('connectionstatechange', () => this.onChange(this, 'connection'));
    pc.addEventListener('iceconnectionstatechange', () => {
      // A network change (Wi-Fi to mobile, say) leaves ICE failed; new candidates can fix it.
      if (pc.iceConnectionState === 'failed') pc.restartIce();
    });

    if (offerer) {
      for (const kind of KINDS) {
        const track = media[kind];
        this.transceivers[kind] = track
          ? pc.addTransceiver(track, { direction: 'sendrecv', streams: [media.stream] })
          : pc.addTransceiver(kind, { direction: 'recvonly' });
      }
      this.openChannel();
    }
  }

  /** `connecting`, `connected`, `failed`, … as the tile shows it. */
  get state() {
    return this.pc.connectionState;
  }

  /** Tells them what we send, e.g. after the microphone was muted. */
  sendMedia() {
    if (!this.described) return;
    this.mediaSeq += 1;
    this.signal({ media: { mic: this.media.micOn, camera: this.media.cameraOn, seq: this.mediaSeq } });
  }

  /** Sends our current local description; the first one is followed by what we send. */
  sendDescription() {
    this.signal({ description: this.pc.localDescription.toJSON() });
    if (this.described) return;
    this.described = true;
    for (const candidate of this.unsent) this.signal({ candidate });
    this.unsent = [];
    this.sendMedia();
  }

  /** The snapshot channel: negotiated with a fixed id, so both sides simply make it. */
  openChannel() {
    const dc = this.pc.createDataChannel('snap', { negotiated: true, id: 0 });
    dc.binaryType = 'arraybuffer';
    this.dc = dc;
    this.channel?.(this, dc);
  }

  async offer() {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.sendDescription();
    } catch (error) {
      console.warn('call: offer failed', error);
    } finally {
      this.makingOffer = false;
    }
  }

  /** A `call:signal` from them. */
  receive(data) {
    this.queue = this.queue
      .then(() => this.handle(data))
      .catch((error) => console.warn('call: signal not applied', error));
  }

  async handle({ description, candidate, media }) {
    if (this.closed) return;
    if (media) {
      const seq = Number.isInteger(media.seq) ? media.seq : this.remoteSeq + 1;
      if (seq <= this.remoteSeq) return;
      this.remoteSeq = seq;
      this.remote = { mic: Boolean(media.mic), camera: Boolean(media.camera) };
      this.onChange(this, 'media');
      return;
    }
    const { pc } = this;
    if (description) {
      const collision = description.type === 'offer'
        && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      await pc.setRemoteDescription(description);
      if (description.type === 'offer') {
        if (!this.dc) this.answerFirstOffer();
        await pc.setLocalDescription();
        this.sendDescription();
      }
      const early = this.early;
      this.early = [];
      for (const waiting of early) await this.addCandidate(waiting);
    } else if (candidate) {
      if (pc.remoteDescription) await this.addCandidate(candidate);
      else this.early.push(candidate);
    }
  }

  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // A candidate of an offer we ignored is expected to fail.
      if (!this.ignoreOffer) throw error;
    }
  }

  /**
   * Between their first offer and our answer: our tracks go on the transceivers their
   * offer made, and the snapshot channel is made, so the answer carries all of it and
   * nothing needs negotiating again.
   */
  answerFirstOffer() {
    for (const transceiver of this.pc.getTransceivers()) {
      const { kind } = transceiver.receiver.track;
      if (this.transceivers[kind]) continue;
      this.transceivers[kind] = transceiver;
      const track = this.media[kind];
      if (track) {
        transceiver.sender.replaceTrack(track).catch((error) => console.warn('call: track not sent', error));
        transceiver.sender.setStreams(this.media.stream);
        transceiver.direction = 'sendrecv';
      }
    }
    this.openChannel();
  }

  /**
   * Sends `track` (or nothing, `null`) as our `kind`. Replacing a track needs no
   * negotiation; a first track where there was none (a camera allowed late) does.
   */
  async setTrack(kind, track) {
    const transceiver = this.transceivers[kind];
    if (!transceiver || this.closed) return;
    await transceiver.sender.replaceTrack(track);
    if (track) {
      transceiver.sender.setStreams(this.media.stream);
      if (transceiver.direction !== 'sendrecv') transceiver.direction = 'sendrecv';
    }
  }

  close() {
    this.closed = true;
    this.dc?.close();
    this.pc.close();
    for (const track of this.stream.getTracks()) track.stop();
  }
}
