// Records a clip's frames from a `<video>` as SPEC §7 asks: ten JPEGs, 200 ms apart (two
// seconds), each the centre of the picture cropped to 200×200 at quality 0.4. The server
// turns them into the GIF.
import { grabJpeg } from './camera.js';

export const FRAMES = 10;
const FRAME_GAP_MS = 200;
const SIDE = 200;
const QUALITY = 0.4;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class ClipRecorder {
  constructor(video) {
    this.video = video;
    /** Drawn on and encoded for every frame; one is enough, as the encoder copies it. */
    this.canvas = document.createElement('canvas');
    this.canvas.width = SIDE;
    this.canvas.height = SIDE;
  }

  /**
   * Resolves to the frames (`ArrayBuffer`s of JPEG), calling `onFrame(taken)` as each is
   * taken. Frames are taken on a schedule from the start, so a slow encode does not
   * stretch the clip.
   */
  async record(onFrame) {
    const start = performance.now();
    const frames = [];
    for (let index = 0; index < FRAMES; index += 1) {
      await sleep(start + index * FRAME_GAP_MS - performance.now());
      frames.push(grabJpeg(this.video, this.canvas, QUALITY));
      onFrame(index + 1);
    }
    return Promise.all(frames);
  }
}
