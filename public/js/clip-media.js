// How a clip's picture is shown (SPEC §7, §12), on the chat page and the moderator's page
// alike: the clip's MP4 in a `<video>` when it has one and the browser plays H.264, else
// its GIF in an `<img>`; a video that fails to load becomes the GIF.
//
// A clip with a video is rendered (by the server, or by `clipMedia` for a clip that arrives
// later) as a `<video class="clip-video">` with its poster but no source: the source is set
// here, by the script that knows whether the browser plays H.264 (one that does not never
// downloads the MP4) and that decides, before the video can start, whether the clip moves
// (clip-motion.js).

/** H.264 constrained baseline, the least any encoder of SPEC §12 makes. */
const H264 = 'video/mp4; codecs="avc1.42E01E"';

let playsH264;
/** Whether this browser plays the clips' MP4s; asked once per page. */
export function canPlayVideo() {
  if (playsH264 === undefined) {
    try {
      playsH264 = document.createElement('video').canPlayType(H264) !== '';
    } catch {
      playsH264 = false;
    }
  }
  return playsH264;
}

function altText(clip) {
  return `Looping clip from ${clip.author.name}`;
}

/** The GIF's `<img>`, as templates/chat.html renders it for a clip without a video. */
function gifImage({ src, width, height, alt, poster }) {
  const image = document.createElement('img');
  image.className = 'clip-gif';
  image.src = src;
  image.width = width;
  image.height = height;
  image.alt = alt;
  image.dataset.gif = src;
  // A still for when motion is held (clip-motion.js); clips made before videos have none.
  if (poster) image.dataset.poster = poster;
  return image;
}

/**
 * The element that shows `clip` (a `Clip`, SPEC §2), the same as templates/chat.html
 * renders: a source-less `<video>` that `prepareMedia` finishes, or the GIF.
 */
export function clipMedia(clip) {
  const alt = altText(clip);
  if (typeof clip.video !== 'string') {
    return gifImage({ src: clip.clip, width: clip.width, height: clip.height, alt, poster: clip.poster });
  }
  const video = document.createElement('video');
  video.className = 'clip-video';
  // The attributes, as the server renders them (`defaultMuted` is the `muted` attribute);
  // Firefox has no `playsInline` property to set.
  video.muted = true;
  video.defaultMuted = true;
  video.loop = true;
  video.autoplay = true;
  video.setAttribute('playsinline', '');
  if (typeof clip.poster === 'string') video.poster = clip.poster;
  video.width = clip.width;
  video.height = clip.height;
  video.setAttribute('aria-label', alt);
  video.dataset.video = clip.video;
  video.dataset.gif = clip.clip;
  return video;
}

/**
 * Turns the source-less `<video>` of `clipMedia` (or the server's) into what this browser
 * shows: the video with its source, or the GIF when it cannot play H.264. Returns the
 * element now shown. `onReplace(gif)` is called if a video is later swapped for its GIF
 * because it failed to load or to decode.
 */
export function prepareMedia(element, onReplace) {
  if (!element.matches('video.clip-video') || element.dataset.prepared) return element;
  if (!canPlayVideo()) {
    const gif = gifFor(element);
    element.replaceWith(gif);
    return gif;
  }
  element.dataset.prepared = 'true';
  element.addEventListener('error', () => {
    const gif = gifFor(element);
    element.replaceWith(gif);
    onReplace?.(gif);
  }, { once: true });
  // `preload="auto"` fetches the whole two seconds at once, so the first loop does not
  // stall; the file is a few tens of kilobytes.
  element.preload = 'auto';
  element.src = element.dataset.video;
  return element;
}

function gifFor(video) {
  return gifImage({
    src: video.dataset.gif,
    width: video.width,
    height: video.height,
    alt: video.getAttribute('aria-label') ?? '',
    poster: video.getAttribute('poster'),
  });
}

/** A clip's picture inside `root` (a list item): its video or its GIF. */
export function mediaIn(root) {
  return root.querySelector('.clip-video, .clip-gif');
}

/**
 * A still of the clip in `root` for a small preview that must not move (the moderator's
 * confirmation): the poster, else a copy of the GIF.
 */
export function stillOf(root) {
  const media = mediaIn(root);
  if (!media) return null;
  const poster = media.getAttribute('poster') ?? media.dataset.poster;
  const image = document.createElement('img');
  image.className = 'clip-gif';
  image.width = media.width;
  image.height = media.height;
  image.alt = media.getAttribute('aria-label') ?? media.alt ?? '';
  image.src = poster || media.dataset.gif;
  return image;
}
