// The composer (SPEC §7): type a message and press Enter, and the camera records a clip
// that goes to the server with the text; the server makes the GIF and sends it to
// everyone. The text box is disabled until the server has answered, and every failure is
// shown in words a person can act on.
import { ClipRecorder, FRAMES } from './chat-recorder.js';

/** How long to wait for the server's answer, which comes once the GIF is made and stored (SPEC §2). */
const SEND_TIMEOUT_MS = 15000;

/** SPEC §5 codes in words a person can act on. */
const ERRORS = {
  invalid_payload: 'The server could not read that clip. Reload the page and try again.',
  bad_frame_count: 'That clip did not have the right number of frames. Please try again.',
  frame_too_large: 'That clip was too large to send. Try again, perhaps with a less busy background.',
  bad_frame: 'The camera pictures could not be read. Please try again.',
  bad_dimensions: 'The camera pictures came out at an unexpected size. Reload the page and try again.',
  text_too_long: 'Your message is too long: keep it to 250 characters.',
  rate_limited: 'You are sending clips too quickly. Wait a few seconds, then try again.',
  busy: 'The server is busy making other clips. Try again in a moment.',
  profanity: 'Your clip was not sent: its text contains words this chat does not allow. Please rephrase it.',
  unavailable: 'The server could not store your clip just now. Please try again.',
  internal: 'Something went wrong on the server. Please try again.',
};

/** The status line while the server refuses the connection; the banner says why. */
const REFUSED_STATUS = 'You can send clips again once this page is connected.';

/** A ban (`banned`) has no words here: the server's say until when. */
function describeFailure(error) {
  if (error?.code && ERRORS[error.code]) return ERRORS[error.code];
  if (error?.message) return `The clip was not sent: ${error.message}`;
  return 'The clip was not sent. Please try again.';
}

/** The `id` sent with a clip (SPEC §2), with a fallback for browsers without `randomUUID`. */
function newId() {
  return crypto.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

export class Composer {
  /**
   * The elements are the page's form, text box, Send button, recording `progress`, status
   * line and error line. `camera` is the `PreviewCamera`; `onSent(clip)` gets the clip the
   * server made of yours, to show it without waiting for the broadcast.
   */
  constructor({ form, input, sendButton, progress, status, error }, { socket, camera, onSent }) {
    this.input = input;
    this.sendButton = sendButton;
    this.progress = progress;
    this.status = status;
    this.error = error;
    this.socket = socket;
    this.camera = camera;
    this.onSent = onSent;
    this.recorder = new ClipRecorder(camera.preview);
    /** Whether a clip is being recorded or sent: one at a time. */
    this.sending = false;
    /** Whether the server refuses this page's connection (SPEC §13): nothing can be sent. */
    this.refused = false;
    /** What the status line says while nothing is happening: the page's own words. */
    this.idleStatus = status.textContent;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
  }

  /** Enables what can be used now, and says in the text box what it waits for. */
  update() {
    const { input } = this;
    const usable = !this.sending && this.camera.ready && !this.refused;
    input.disabled = !usable;
    this.sendButton.disabled = !usable;
    this.camera.lock(this.sending);
    if (this.sending) return;
    // The connection banner says why; the text box only that it cannot be used.
    if (this.refused) input.placeholder = 'Not connected, so nothing can be sent';
    else if (this.camera.ready) input.placeholder = 'Type a message and press Enter';
    else if (this.camera.state === 'starting') input.placeholder = 'Starting camera…';
    else if (this.camera.state === 'off') input.placeholder = 'Camera off while the page is hidden';
    else input.placeholder = 'Camera needed';
  }

  /** The camera started opening, is ready or failed (`PreviewCamera`'s `onChange`). */
  cameraChanged() {
    this.showIdleStatus();
    this.update();
  }

  /**
   * The server refused this page's connection (`refused` true) or took it at last
   * (`connection.js`'s `onRefusal`): a text box that cannot send is not offered meanwhile.
   */
  connectionRefused(refused) {
    this.refused = refused;
    this.showIdleStatus();
    this.update();
  }

  /** What the status line says while no clip is under way. */
  showIdleStatus() {
    if (this.sending) return;
    // While refused, it says when sending comes back. Once the camera is ready it says
    // how to send; without one, the camera's notice says why not, and it keeps quiet.
    if (this.refused) this.status.textContent = REFUSED_STATUS;
    else if (this.camera.state === 'ready') this.status.textContent = this.idleStatus;
    else if (this.camera.state === 'blocked') this.status.textContent = '';
    else if (this.status.textContent === REFUSED_STATUS) this.status.textContent = this.idleStatus;
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  /** Records the frames with the progress shown, on the bar and around the preview. */
  async record() {
    const { camera, progress } = this;
    camera.showRecording(true);
    progress.hidden = false;
    progress.value = 0;
    camera.fillRing(0);
    this.status.textContent = 'Recording… hold that pose.';
    try {
      return await this.recorder.record((taken) => {
        progress.value = taken;
        camera.fillRing(taken / FRAMES);
      });
    } finally {
      camera.showRecording(false);
    }
  }

  /** Records and sends a clip with the text typed, if the camera is ready and nothing is under way. */
  async send() {
    if (this.sending || !this.camera.ready || this.refused) return;
    if (!this.socket.connected) {
      this.showError('You are offline. Your clip can be sent once the connection is back.');
      return;
    }
    this.sending = true;
    this.error.hidden = true;
    this.update();
    const text = this.input.value;
    let sent = false;
    try {
      let frames;
      try {
        frames = await this.record();
      } catch {
        this.showError('The camera pictures could not be taken. Try again, or reload the page.');
        return;
      }
      this.progress.removeAttribute('value');
      this.status.textContent = 'Sending…';
      let reply;
      try {
        reply = await this.socket.timeout(SEND_TIMEOUT_MS).emitWithAck('message', { id: newId(), message: text, frames });
      } catch {
        this.showError('The server did not answer in time, so the clip may not have been sent. Check your connection and try again.');
        return;
      }
      if (reply?.ok) {
        sent = true;
        this.onSent(reply.message);
        this.input.value = '';
      } else {
        this.showError(describeFailure(reply?.error));
      }
    } finally {
      this.sending = false;
      this.progress.hidden = true;
      this.camera.fillRing(null);
      this.status.textContent = sent ? 'Sent. It loops for everyone for the next ten minutes.' : this.idleStatus;
      // Refused while this clip was on its way: say so rather than invite the next one.
      if (this.refused) this.showIdleStatus();
      this.update();
      this.input.focus();
    }
  }
}
