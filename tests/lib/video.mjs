// Checks of a clip's MP4 and poster (SPEC §12) with the tools a reader's player would trust
// more than ours: ffprobe for what the file claims, ffmpeg for what it decodes to. Shared by
// the single-node and the cluster suites. The server never runs either; only tests do.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './cleanup.mjs';

const run = promisify(execFile);

/** `buffer` written to a fresh temporary file named `name`; returns its path. */
async function asFile(buffer, name) {
  const path = join(await tempDir('video-'), name);
  await writeFile(path, buffer);
  return path;
}

/** ffprobe's view of a media file: `{ streams, format }`, frames counted by decoding. */
export async function probe(buffer, name = 'clip.mp4') {
  const path = await asFile(buffer, name);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-show_format', '-of', 'json', path]);
  return JSON.parse(stdout);
}

/**
 * Every frame of a picture or video file, decoded by ffmpeg to RGB: `{ frames: [Buffer],
 * width, height }`. A folder of JPEGs (the frames a client sent) decodes the same way.
 */
export async function decodeFrames(buffer, { width, height, name = 'clip.mp4' }) {
  const path = await asFile(buffer, name);
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  const size = width * height * 3;
  const frames = [];
  for (let at = 0; at + size <= stdout.length; at += size) frames.push(stdout.subarray(at, at + size));
  return { frames, width, height };
}

/** The top-level boxes of an ISO-BMFF file, in order (their 4-character types). */
export function topLevelBoxes(buffer) {
  const types = [];
  for (let at = 0; at + 8 <= buffer.length;) {
    let size = buffer.readUInt32BE(at);
    const type = buffer.toString('latin1', at + 4, at + 8);
    if (size === 1) size = Number(buffer.readBigUInt64BE(at + 8));
    if (size === 0) size = buffer.length - at;
    types.push(type);
    if (size < 8) break;
    at += size;
  }
  return types;
}

/**
 * Peak signal-to-noise ratio of `a` against `b` (RGB, the same size), in dB over every
 * channel: what "close to the source" means below.
 */
export function psnr(a, b) {
  let squares = 0;
  for (let i = 0; i < a.length; i += 1) {
    const d = a[i] - b[i];
    squares += d * d;
  }
  const mse = squares / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** `frame` (RGB, `width` pixels a row) cut to its top-left `w`×`h`. */
export function crop(frame, width, w, h) {
  const rows = [];
  for (let y = 0; y < h; y += 1) rows.push(frame.subarray(y * width * 3, (y * width + w) * 3));
  return Buffer.concat(rows);
}

/**
 * Everything SPEC §12 promises of a clip's MP4, fetched from `url`: served as `video/mp4`
 * with ranges, the same caching as the GIF, fast start, one H.264 track (constrained
 * baseline or main, yuv420p, 8-bit), no audio, `frames` frames over `frames × delay_ms`,
 * even sides (an odd side loses a row or column), and frames close to `sourceJpegs`.
 * Returns the MP4's bytes.
 */
export async function assertVideo(assert, url, clip, { sourceJpegs, minPsnr = 30 }) {
  assert.equal(clip.video, `/clips/${clip.key}.mp4`);
  const response = await fetch(new URL(clip.video, url));
  assert.equal(response.status, 200, `GET ${clip.video}`);
  assert.equal(response.headers.get('content-type'), 'video/mp4');
  assert.equal(response.headers.get('accept-ranges'), 'bytes', 'the video says it answers ranges');
  assert.match(response.headers.get('cache-control') ?? '', /^public, max-age=\d+, immutable$/);
  assert.ok(response.headers.get('etag'), 'an ETag');
  const mp4 = Buffer.from(await response.arrayBuffer());
  assert.equal(mp4.length, clip.video_bytes, 'Clip.video_bytes is the MP4 size');

  const boxes = topLevelBoxes(mp4);
  assert.equal(boxes[0], 'ftyp', `starts with ftyp: ${boxes}`);
  assert.ok(boxes.indexOf('moov') >= 0 && boxes.indexOf('moov') < boxes.indexOf('mdat'), `moov before mdat (fast start): ${boxes}`);

  const { streams, format } = await probe(mp4);
  assert.equal(streams.length, 1, `one stream, no audio: ${streams.map((s) => s.codec_type)}`);
  const [video] = streams;
  assert.equal(video.codec_name, 'h264');
  assert.ok(['Constrained Baseline', 'Baseline', 'Main'].includes(video.profile), `profile ${video.profile}`);
  assert.equal(video.pix_fmt, 'yuv420p');
  assert.equal(Number(video.nb_read_frames), clip.frames, 'every frame is in the video');
  const [evenWidth, evenHeight] = [Math.max(16, clip.width & ~1), Math.max(16, clip.height & ~1)];
  assert.equal(video.width, evenWidth, 'even width, at least 16: an odd one loses its last column');
  assert.equal(video.height, evenHeight, 'even height, at least 16: an odd one loses its last row');
  const seconds = (clip.frames * clip.delay_ms) / 1000;
  assert.ok(Math.abs(Number(format.duration) - seconds) < 0.01, `lasts ${seconds} s: ${format.duration}`);

  const decoded = await decodeFrames(mp4, { width: evenWidth, height: evenHeight });
  assert.equal(decoded.frames.length, clip.frames);
  for (const [index, jpeg] of sourceJpegs.entries()) {
    const source = await decodeFrames(jpeg, { width: clip.width, height: clip.height, name: 'frame.jpg' });
    if (evenWidth > clip.width || evenHeight > clip.height) continue; // grown, not cropped: nothing to compare pixel for pixel
    const expected = crop(source.frames[0], clip.width, evenWidth, evenHeight);
    const quality = psnr(decoded.frames[index], expected);
    assert.ok(quality >= minPsnr, `frame ${index + 1} of the video is close to the one sent: ${quality.toFixed(1)} dB`);
  }
  return mp4;
}

/**
 * The poster (SPEC §12): a JPEG of the first frame at the clip's size, made by the server.
 * Returns its bytes.
 */
export async function assertPoster(assert, url, clip, { firstJpeg, minPsnr = 30 }) {
  assert.equal(clip.poster, `/clips/${clip.key}.jpg`);
  const response = await fetch(new URL(clip.poster, url));
  assert.equal(response.status, 200, `GET ${clip.poster}`);
  assert.equal(response.headers.get('content-type'), 'image/jpeg');
  assert.match(response.headers.get('cache-control') ?? '', /^public, max-age=\d+, immutable$/);
  const poster = Buffer.from(await response.arrayBuffer());
  assert.deepEqual([...poster.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
  const [stream] = (await probe(poster, 'poster.jpg')).streams;
  assert.deepEqual([stream.width, stream.height], [clip.width, clip.height], 'the clip\'s size');
  const [shown] = (await decodeFrames(poster, { width: clip.width, height: clip.height, name: 'poster.jpg' })).frames;
  const [sent] = (await decodeFrames(firstJpeg, { width: clip.width, height: clip.height, name: 'first.jpg' })).frames;
  const quality = psnr(shown, sent);
  assert.ok(quality >= minPsnr, `the poster is the first frame: ${quality.toFixed(1)} dB`);
  return poster;
}
