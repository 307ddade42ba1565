// Snapshots over the call's data channels (SPEC §9, the WebRTC codelab's snap-and-send):
// a still JPEG of your camera, sent peer to peer, never through the server.
//
// On the channel a snapshot is one JSON text message, `{"snap":{"size":<bytes>,"name":<file
// name>}}`, then its bytes in binary messages of at most 16 KiB. The sender waits for
// `bufferedamountlow` whenever more than 256 KiB is queued, so a large picture never fills
// the channel's buffer (Chromium closes a channel whose buffer overflows).

const CHUNK_BYTES = 16 * 1024;
const LOW_WATER = 64 * 1024;
const HIGH_WATER = 256 * 1024;
/** A snapshot larger than this is refused by the receiver (a full-HD JPEG is ~1 MB). */
const MAX_SNAP_BYTES = 8 * 1024 * 1024;
/** A stalled channel gives up rather than hold a snapshot forever. */
const DRAIN_TIMEOUT_MS = 20_000;
const QUALITY = 0.85;

/** A still JPEG of what `video` shows, at its full size. */
export async function grabStill(video) {
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', QUALITY));
  if (!blob) throw new Error('the browser could not encode a JPEG');
  return blob.arrayBuffer();
}

/** Resolves once `channel` has sent enough of its queue; rejects if it closes or stalls. */
function drained(channel) {
  return new Promise((resolve, reject) => {
    const done = (settle) => (value) => {
      clearTimeout(timer);
      channel.removeEventListener('bufferedamountlow', onLow);
      channel.removeEventListener('close', onClose);
      settle(value);
    };
    const onLow = done(resolve);
    const onClose = done(() => reject(new Error('the channel closed')));
    const timer = setTimeout(done(() => reject(new Error('the channel stalled'))), DRAIN_TIMEOUT_MS);
    channel.addEventListener('bufferedamountlow', onLow);
    channel.addEventListener('close', onClose);
  });
}

/** Sends the JPEG `bytes` (an ArrayBuffer) as `name` over an open `channel`. */
export async function sendSnap(channel, bytes, name) {
  channel.bufferedAmountLowThreshold = LOW_WATER;
  channel.send(JSON.stringify({ snap: { size: bytes.byteLength, name } }));
  for (let offset = 0; offset < bytes.byteLength; offset += CHUNK_BYTES) {
    if (channel.readyState !== 'open') throw new Error('the channel closed');
    if (channel.bufferedAmount > HIGH_WATER) await drained(channel);
    channel.send(bytes.slice(offset, offset + CHUNK_BYTES));
  }
}

/** A file name the receiver may save under: letters, digits, `-`, `_`, `.`; a `.jpg`. */
function safeName(name) {
  const base = String(name ?? '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '').slice(0, 80);
  return /\.jpe?g$/i.test(base) ? base : `${base || 'snapshot'}.jpg`;
}

/**
 * Takes the messages of one peer's channel and calls `onSnap({ bytes, name })` for each
 * snapshot that arrived whole. A header announcing too much, bytes without a header or
 * beyond its size, and a snapshot cut short by the next header are dropped.
 */
export class SnapReceiver {
  constructor(onSnap) {
    this.onSnap = onSnap;
    this.current = null;
  }

  take(data) {
    if (typeof data === 'string') {
      this.current = null;
      let header;
      try {
        header = JSON.parse(data)?.snap;
      } catch {
        return;
      }
      const size = header?.size;
      if (!Number.isInteger(size) || size <= 0 || size > MAX_SNAP_BYTES) return;
      this.current = { bytes: new Uint8Array(size), received: 0, name: safeName(header.name) };
      return;
    }
    const snap = this.current;
    if (!snap || !(data instanceof ArrayBuffer)) return;
    if (snap.received + data.byteLength > snap.bytes.byteLength) {
      this.current = null;
      return;
    }
    snap.bytes.set(new Uint8Array(data), snap.received);
    snap.received += data.byteLength;
    if (snap.received === snap.bytes.byteLength) {
      this.current = null;
      this.onSnap({ bytes: snap.bytes.buffer, name: snap.name });
    }
  }
}
