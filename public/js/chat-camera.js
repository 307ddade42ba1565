// The camera preview beside the text box (SPEC §7). Opens the camera, or says in words why
// it can't, with a button to try again: without a camera you can still read the chat, so
// the page must not look dead. Follows the camera switch, and notices a camera that is
// unplugged mid-session. While the page is hidden (another tab, a locked phone) the camera
// is off, its light too, and it opens again when the page is shown. The `data-state` of the
// preview's box (`starting`, `ready`, `blocked`, `recording`, `off`) is what the stylesheet
// shows; the ring around it fills as a clip records.
import { CameraSwitch, cameraProblem, openCamera, videoReady } from './camera.js';

export class PreviewCamera {
  /**
   * `box` holds the `preview` `<video>`; `select` inside `choice` is the camera switch;
   * `notice` is where a problem is explained. `onChange()` is called whenever the camera
   * starts opening, is ready or fails (read `ready` and `state`).
   */
  constructor({ box, preview, select, choice, notice }, onChange) {
    this.box = box;
    this.preview = preview;
    this.select = select;
    this.notice = notice;
    this.onChange = onChange;
    /** Whether a clip can be recorded now. */
    this.ready = false;
    /** The open camera, or `null`. */
    this.stream = null;
    /** Whether choosing another camera waits (see `lock`). */
    this.locked = false;
    /** Whether the camera was turned off because the page is hidden, to open again when shown. */
    this.asleep = false;
    /** Counts the opening attempts: one overtaken by a newer one or by `sleep` lets go of its camera. */
    this.attempt = 0;
    this.cameraSwitch = new CameraSwitch(select, choice, () => {
      if (!this.locked) this.start();
    });
    document.addEventListener('visibilitychange', () => this.visibilityChanged());
  }

  get state() {
    return this.box.dataset.state;
  }

  /** While a clip records and sends, the camera must stay: switching would cut it short. */
  lock(locked) {
    this.locked = locked;
    this.select.disabled = locked;
    // Hidden while a clip was being recorded or sent: off now that it is done.
    if (!locked && document.visibilityState === 'hidden') this.sleep();
  }

  visibilityChanged() {
    if (document.visibilityState === 'hidden') {
      // A clip being recorded or sent keeps its camera until it is done (see `lock`).
      if (!this.locked) this.sleep();
    } else if (this.asleep) {
      this.asleep = false;
      this.start();
    }
  }

  /** Turns the camera off while nobody sees the page, unless it is off already or failed. */
  sleep() {
    if (!this.stream && this.state !== 'starting') return;
    this.asleep = true;
    this.attempt += 1;
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.preview.srcObject = null;
    this.ready = false;
    this.box.dataset.state = 'off';
    this.onChange();
  }

  /** Opens the camera (again), closing the one that was open. */
  async start() {
    this.attempt += 1;
    const attempt = this.attempt;
    const overtaken = () => attempt !== this.attempt;
    this.ready = false;
    this.box.dataset.state = 'starting';
    this.notice.hidden = true;
    this.onChange();
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    // A page opened in a background tab opens its camera only once it is shown.
    if (document.visibilityState === 'hidden' && !this.locked) {
      this.sleep();
      return;
    }
    try {
      const opened = await openCamera({
        width: { ideal: 320 }, height: { ideal: 240 }, facingMode: 'user',
      });
      if (overtaken()) {
        // Hidden, or asked to open again, while the camera was opening.
        opened.getTracks().forEach((track) => track.stop());
        return;
      }
      this.stream = opened;
      this.preview.srcObject = opened;
      // A camera that is unplugged or taken away mid-session ends its track.
      opened.getVideoTracks()[0]?.addEventListener('ended', () => {
        if (this.stream !== opened) return;
        this.ready = false;
        this.box.dataset.state = 'blocked';
        this.showProblem('The camera stopped.');
        this.onChange();
      });
      await this.preview.play();
      await videoReady(this.preview);
      if (overtaken()) return;
      this.ready = true;
      this.box.dataset.state = 'ready';
    } catch (error) {
      if (overtaken()) return;
      this.ready = false;
      this.box.dataset.state = 'blocked';
      this.showProblem(cameraProblem(error));
    }
    // Only once the camera is allowed does the browser name the cameras there are.
    this.cameraSwitch.refresh(this.stream);
    this.onChange();
  }

  /** Explains, with `problem` in words, that clips need a camera, and offers to try again. */
  showProblem(problem) {
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'link-button';
    retry.textContent = 'Try the camera again';
    retry.addEventListener('click', () => this.start());
    const strong = document.createElement('strong');
    strong.textContent = 'You can’t send clips without a camera,';
    this.notice.replaceChildren(
      strong, ' but everyone else’s still arrive here. ', problem, ' ', retry,
    );
    this.notice.hidden = false;
  }

  /** Shows that a clip is being recorded, or (`false`) that it is done. */
  showRecording(recording) {
    if (recording) this.box.dataset.state = 'recording';
    else this.box.dataset.state = this.ready ? 'ready' : 'blocked';
  }

  /** Fills the ring around the preview to `fraction` (0 to 1); `null` empties it. */
  fillRing(fraction) {
    if (fraction === null) this.box.style.removeProperty('--progress');
    else this.box.style.setProperty('--progress', String(fraction));
  }
}
