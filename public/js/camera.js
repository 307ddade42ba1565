// The camera, as both pages use it: opening the one this browser chose last time, the
// switch that lists the others (SPEC §7), grabbing JPEGs, and saying in words what went wrong.

const CAMERA_KEY = 'loopchat.camera';

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

function chosenCamera() {
  try {
    return localStorage.getItem(CAMERA_KEY) || null;
  } catch {
    return null;
  }
}

function chooseCamera(deviceId) {
  try {
    localStorage.setItem(CAMERA_KEY, deviceId);
  } catch {
    // Without storage the choice holds until the page is closed.
  }
}

/**
 * Asks for the camera this browser chose last time (`deviceId` exact), or for the default
 * one (`constraints`, e.g. the front camera) when none was chosen or the chosen one is gone;
 * with `audio: true` the microphone too, in the same permission prompt (the call page).
 * Rejects with an error whose `name` `cameraProblem` understands.
 */
export async function openCamera(constraints, { audio = false } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) {
    const error = new Error('getUserMedia is not available');
    error.name = 'Unsupported';
    throw error;
  }
  const chosen = chosenCamera();
  if (chosen) {
    // The chosen camera replaces the facing mode the default would be picked by.
    const { facingMode, ...rest } = constraints;
    try {
      return await navigator.mediaDevices.getUserMedia({ audio, video: { ...rest, deviceId: { exact: chosen } } });
    } catch (error) {
      // Unplugged, or another browser profile's id: the default camera will do. The choice
      // is kept, so that the camera is used again once it is back.
      if (error?.name !== 'OverconstrainedError' && error?.name !== 'NotFoundError') throw error;
    }
  }
  return navigator.mediaDevices.getUserMedia({ audio, video: constraints });
}

/**
 * The camera switch: a `<select>` (inside `wrapper`, hidden until there is something to
 * choose) listing the video inputs the browser reports. Choosing one remembers it and calls
 * `onChoose()`, which should open the camera again (`openCamera` then takes the choice).
 */
export class CameraSwitch {
  constructor(select, wrapper, onChoose) {
    this.select = select;
    this.wrapper = wrapper;
    select.addEventListener('change', () => {
      if (!select.value) return;
      chooseCamera(select.value);
      onChoose();
    });
    navigator.mediaDevices?.addEventListener?.('devicechange', () => this.refresh());
  }

  /**
   * Lists the cameras again, with `stream`'s camera (or the remembered one) selected.
   * Before the camera is allowed, browsers list cameras without ids or names; then the
   * switch stays hidden.
   */
  async refresh(stream = this.stream) {
    this.stream = stream;
    let cameras = [];
    try {
      cameras = (await navigator.mediaDevices.enumerateDevices())
        .filter((device) => device.kind === 'videoinput' && device.deviceId);
    } catch {
      // No list: no switch.
    }
    const active = stream?.getVideoTracks()[0]?.getSettings().deviceId ?? chosenCamera();
    this.select.replaceChildren(...cameras.map((device, index) => {
      const option = document.createElement('option');
      option.value = device.deviceId;
      option.textContent = device.label || `Camera ${index + 1}`;
      option.selected = device.deviceId === active;
      return option;
    }));
    this.wrapper.hidden = cameras.length === 0;
  }
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
