// Your own microphone and camera in a call (SPEC §9): opening them, muting the microphone,
// turning the camera off and on or switching it, and saying in words why there is nothing
// to send. The peers only ever see the two tracks kept here (`audio`, `video`).
import { openCamera } from './camera.js';

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' };

/** A device that is simply not there (or not usable as asked): try the other one alone. */
const MISSING = new Set(['NotFoundError', 'OverconstrainedError', 'NotReadableError', 'AbortError']);

/** Why neither camera nor microphone can be used, from the first getUserMedia failure. */
function bothProblem(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Your camera and microphone are blocked for this site, so the others can neither see nor hear you; you still see and hear them. To join in, allow them in your browser’s site settings, then press “Camera on” or “Unmute”.';
    case 'Unsupported':
      return 'This browser can’t use a camera or microphone here: they need a secure page, so open loopchat over HTTPS or on localhost. You can still see and hear the others.';
    default:
      return 'No camera or microphone could be started, so you joined to watch and listen only.';
  }
}

/** What is missing when one of the two worked: the call goes on with the other. */
function oneMissing(kind, error) {
  const blocked = error?.name === 'NotAllowedError' || error?.name === 'SecurityError';
  if (kind === 'video') {
    return blocked
      ? 'Your camera is blocked for this site: the others hear you but don’t see you.'
      : 'No camera could be started: the others hear you but don’t see you.';
  }
  return blocked
    ? 'Your microphone is blocked for this site: the others see you but don’t hear you.'
    : 'No microphone could be started: the others see you but don’t hear you.';
}

/** Why turning a device on again failed, for the notice under the controls. */
export function retryProblem(kind, error) {
  const device = kind === 'video' ? 'camera' : 'microphone';
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `Your ${device} is still blocked: allow it in your browser’s site settings, then try again.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${device} was found on this device.`;
    case 'NotReadableError':
    case 'AbortError':
      return `The ${device} is in use by another app or could not be started.`;
    default:
      return `The ${device} could not be started.`;
  }
}

async function openMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    const error = new Error('getUserMedia is not available');
    error.name = 'Unsupported';
    throw error;
  }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  return stream.getAudioTracks()[0];
}

/**
 * Your microphone and camera. `audio` and `video` are the tracks being sent (`null` when
 * there is none: no device, blocked, or the camera turned off); `stream` holds both, for
 * the preview. `onChange(listener)` calls `listener(kind)` whenever one of them changed
 * (`'audio'` or `'video'`, or `'mute'` when only the microphone's mute did).
 */
export class LocalMedia {
  constructor() {
    this.stream = new MediaStream();
    /** @type {MediaStreamTrack | null} */
    this.audio = null;
    /** @type {MediaStreamTrack | null} */
    this.video = null;
    this.listeners = [];
  }

  /** Sending sound: a microphone that is on and not muted. */
  get micOn() {
    return Boolean(this.audio?.enabled);
  }

  get cameraOn() {
    return this.video !== null;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  changed(kind) {
    for (const listener of this.listeners) listener(kind);
  }

  /**
   * Opens camera and microphone with one permission prompt; when one of them is missing,
   * tries each alone. Never rejects: resolves with a sentence saying what is missing and
   * why, or `null` when both work.
   */
  async start() {
    try {
      const stream = await openCamera(VIDEO, { audio: true });
      this.take('audio', stream.getAudioTracks()[0]);
      this.take('video', stream.getVideoTracks()[0]);
      return null;
    } catch (error) {
      if (!MISSING.has(error?.name)) return bothProblem(error);
    }
    const [video, audio] = await Promise.allSettled([
      openCamera(VIDEO).then((stream) => stream.getVideoTracks()[0]),
      openMicrophone(),
    ]);
    if (video.status === 'fulfilled') this.take('video', video.value);
    if (audio.status === 'fulfilled') this.take('audio', audio.value);
    if (this.video && this.audio) return null;
    if (this.video) return oneMissing('audio', audio.reason);
    if (this.audio) return oneMissing('video', video.reason);
    return bothProblem(video.reason);
  }

  /** Puts `track` in place of the current one of `kind` (stopping that one). */
  take(kind, track) {
    const current = this[kind];
    if (current) {
      current.stop();
      this.stream.removeTrack(current);
    }
    this[kind] = track ?? null;
    if (track) this.stream.addTrack(track);
  }

  /**
   * Mutes or unmutes the microphone (the track stays, sending silence). Without a
   * microphone, unmuting asks for one. Rejects when that fails (see `retryProblem`).
   */
  async setMic(on) {
    if (!this.audio) {
      if (!on) return;
      this.take('audio', await openMicrophone());
      this.changed('audio');
      return;
    }
    this.audio.enabled = on;
    this.changed('mute');
  }

  /**
   * Turns the camera off (the track is stopped, so its light goes out) or on again.
   * Rejects when it cannot be started (see `retryProblem`).
   */
  async setCamera(on) {
    if (on === this.cameraOn) return;
    if (!on) {
      this.take('video', null);
      this.changed('video');
      return;
    }
    const stream = await openCamera(VIDEO);
    this.take('video', stream.getVideoTracks()[0]);
    this.changed('video');
  }

  /** Another camera was chosen: open it in place of the current one, if the camera is on. */
  async switchCamera() {
    if (!this.video) return;
    const stream = await openCamera(VIDEO);
    this.take('video', stream.getVideoTracks()[0]);
    this.changed('video');
  }

  stop() {
    this.take('audio', null);
    this.take('video', null);
  }
}
