// The Socket.IO connection both pages share: who you are, how many are online, and a
// banner that says when the connection is lost and when it is back.
import { io } from '/vendor/socket.io.esm.min.js';

const NAME_KEY = 'loopchat.name';

/**
 * The name this browser asked for last time, so that the server gives it again: names are
 * how others recognise (and mute) you, while socket ids change with every connection.
 */
function rememberedName() {
  try {
    return localStorage.getItem(NAME_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

function rememberName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Private browsing without storage: the server picks a new name next time.
  }
}

/**
 * Connects to the server and keeps the header (your name, online count) and the
 * connection banner up to date. Returns the socket and a `me()` getter for the identity
 * of the current connection (`null` until `welcome`).
 */
export function connect() {
  const name = rememberedName();
  const socket = io({ auth: name ? { name } : {} });
  let me = null;

  const banner = document.getElementById('connection');
  const bannerText = document.getElementById('connection-text');
  const online = document.getElementById('online');
  const onlineCount = document.getElementById('online-count');
  let hideBanner;
  let wasConnected = false;

  const show = (state, text) => {
    clearTimeout(hideBanner);
    banner.dataset.state = state;
    bannerText.textContent = text;
  };

  const showOnline = (count) => {
    if (typeof count !== 'number') return;
    onlineCount.textContent = count === 1 ? 'just you online' : `${count} online`;
    online.hidden = false;
  };

  socket.on('connect', () => {
    if (wasConnected) {
      show('restored', 'Back online.');
      hideBanner = setTimeout(() => { banner.dataset.state = 'connected'; }, 3000);
    } else {
      banner.dataset.state = 'connected';
    }
    wasConnected = true;
  });

  socket.on('disconnect', (reason) => {
    if (reason === 'io client disconnect') return;
    // socket.io-client reconnects by itself after a lost transport (what a server restart
    // looks like: 'transport close'), but not after the server ended the session with a
    // DISCONNECT packet. loopchat sends none today; should it, the page still comes back
    // and takes the replay rather than sit disconnected.
    if (reason === 'io server disconnect') socket.connect();
    show('lost', 'Connection lost. Reconnecting…');
  });

  socket.on('connect_error', () => {
    if (!socket.active) {
      show('lost', 'The server refused the connection. Reload the page to try again.');
    } else if (wasConnected) {
      show('lost', 'Connection lost. Reconnecting…');
    } else {
      show('lost', 'Can’t reach the server. Retrying…');
    }
  });

  socket.on('welcome', ({ you, online: count }) => {
    me = you;
    rememberName(you.name);
    // Reconnections reuse `auth`, so this connection's name survives them too.
    socket.auth = { name: you.name };
    document.getElementById('my-name').textContent = you.name;
    document.getElementById('me').hidden = false;
    showOnline(count);
  });

  socket.on('presence', ({ online: count }) => showOnline(count));

  return { socket, me: () => me };
}

/** Prefixes the tab title with a count, e.g. `(3) loopchat — chat`; 0 removes it. */
export function setTitleCount(count) {
  const base = document.title.replace(/^\(\d+\) /, '');
  document.title = count > 0 ? `(${count}) ${base}` : base;
}

/** Why the camera can't be used, in words, from a getUserMedia failure. */
export function cameraProblem(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera access is blocked: allow it for this site in your browser’s settings.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found on this device.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera is in use by another app or could not be started. Close the other app, then try again.';
    case 'Unsupported':
      return 'This browser can’t use the camera here. Cameras need a secure page: open loopchat over HTTPS or on localhost.';
    default:
      return 'The camera could not be started.';
  }
}

/** Asks for the camera; rejects with an error whose `name` `cameraProblem` understands. */
export async function openCamera(constraints) {
  if (!navigator.mediaDevices?.getUserMedia) {
    const error = new Error('getUserMedia is not available');
    error.name = 'Unsupported';
    throw error;
  }
  return navigator.mediaDevices.getUserMedia({ audio: false, video: constraints });
}

/**
 * Draws the centre of `video` that has the aspect ratio of `canvas` onto it (a centre
 * crop, like CSS `object-fit: cover`) and encodes it as a JPEG.
 */
export async function grabJpeg(video, canvas, quality) {
  const context = canvas.getContext('2d');
  const { videoWidth: width, videoHeight: height } = video;
  const scale = Math.min(width / canvas.width, height / canvas.height);
  const cropWidth = canvas.width * scale;
  const cropHeight = canvas.height * scale;
  context.drawImage(
    video,
    (width - cropWidth) / 2, (height - cropHeight) / 2, cropWidth, cropHeight,
    0, 0, canvas.width, canvas.height,
  );
  // toBlob copies the canvas before it returns, so the canvas may be drawn on again at once.
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  if (!blob) throw new Error('the browser could not encode a JPEG');
  return blob.arrayBuffer();
}

/** Resolves once `video` has a frame to draw. */
export function videoReady(video) {
  if (video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && video.videoWidth > 0) {
    return Promise.resolve();
  }
  return new Promise((resolve) => video.addEventListener('loadeddata', resolve, { once: true }));
}
