// Whether clips move (SPEC §12, WCAG 2.2.2): a clip loops only while it is on screen, and
// only if motion is not held. Motion is held when the person pressed "Pause clips" (kept in
// localStorage, so it holds on the next visit and in other tabs), or when they have not
// chosen and their system asks for reduced motion. A held clip shows a still (the poster,
// or the GIF's first frame) and moves while it is hovered, focused or tapped: it is then
// focusable, so a keyboard reaches it.
import { prepareMedia } from './clip-media.js';

const KEY = 'loopchat.motion';
const REDUCED = '(prefers-reduced-motion: reduce)';

function stored() {
  try {
    const value = localStorage.getItem(KEY);
    return value === 'paused' || value === 'playing' ? value : null;
  } catch {
    return null;
  }
}

function store(value) {
  try {
    localStorage.setItem(KEY, value);
  } catch {
    // Without storage the choice holds until the page is closed.
  }
}

export class ClipMotion {
  /**
   * `toggle` is the page's pause/play button (or none); `labels` its words for each state.
   * `followReducedMotion: false` ignores the system setting (the live page's pictures are
   * one a second, not an animation).
   */
  constructor({ toggle = null, labels = { pause: 'Pause clips', play: 'Play clips' }, followReducedMotion = true } = {}) {
    this.toggle = toggle;
    this.labels = labels;
    this.choice = stored();
    this.reduced = followReducedMotion ? window.matchMedia?.(REDUCED) ?? null : null;
    /** @type {WeakMap<Element, { visible: boolean, hovered: boolean, focused: boolean, tapped: boolean }>} */
    this.states = new WeakMap();
    this.observer = 'IntersectionObserver' in window
      ? new IntersectionObserver((entries) => this.seen(entries))
      : null;
    this.reduced?.addEventListener?.('change', () => this.changed());
    // Another tab pressed the button.
    window.addEventListener('storage', (event) => {
      if (event.key !== KEY) return;
      this.choice = stored();
      this.changed();
    });
    toggle?.addEventListener('click', () => this.setHeld(!this.held));
    this.renderToggle();
  }

  /** Whether clips stand still unless engaged with. */
  get held() {
    if (this.choice) return this.choice === 'paused';
    return Boolean(this.reduced?.matches);
  }

  /** Holds or releases every clip, and remembers it. */
  setHeld(held) {
    this.choice = held ? 'paused' : 'playing';
    store(this.choice);
    this.changed();
  }

  changed() {
    this.renderToggle();
    for (const element of document.querySelectorAll('.clip-video, .clip-gif')) {
      if (this.states.has(element)) this.update(element);
    }
  }

  renderToggle() {
    if (!this.toggle) return;
    const { held } = this;
    this.toggle.setAttribute('aria-pressed', String(held));
    this.toggle.textContent = held ? this.labels.play : this.labels.pause;
  }

  /**
   * Takes charge of a clip's picture (a `.clip-video` or `.clip-gif`, in the page): gives a
   * video its source, or the GIF instead (clip-media.js), and moves it or holds it still.
   */
  adopt(element) {
    const shown = prepareMedia(element, (gif) => this.watch(gif));
    this.watch(shown);
    return shown;
  }

  watch(element) {
    if (this.states.has(element)) return;
    // Until the observer has looked, a clip counts as out of view: nothing starts moving
    // before it is known to be wanted.
    const state = { visible: !this.observer, hovered: false, focused: false, tapped: false };
    this.states.set(element, state);
    const set = (name, value) => {
      state[name] = value;
      this.update(element);
    };
    element.addEventListener('pointerenter', (event) => {
      if (event.pointerType !== 'touch') set('hovered', true);
    });
    element.addEventListener('pointerleave', () => set('hovered', false));
    // Focus from the keyboard plays a clip; the focus a tap or click gives it does not, or
    // a second tap could not hold it again.
    element.addEventListener('focus', () => set('focused', element.matches(':focus-visible')));
    element.addEventListener('blur', () => set('focused', false));
    element.addEventListener('click', () => set('tapped', !state.tapped));
    this.observer?.observe(element);
    this.update(element);
  }

  seen(entries) {
    for (const entry of entries) {
      const state = this.states.get(entry.target);
      if (!state) continue;
      if (!entry.target.isConnected) {
        // Expired or removed: nothing more to watch.
        this.observer.unobserve(entry.target);
        continue;
      }
      state.visible = entry.isIntersecting;
      this.update(entry.target);
    }
  }

  /** Plays or holds one clip according to where it is and what the person wants. */
  update(element) {
    const state = this.states.get(element);
    const engaged = state.hovered || state.focused || state.tapped;
    const moving = state.visible && (engaged || !this.held);
    // A held clip can be focused to play it; one that moves by itself needs no tab stop.
    if (this.held) element.tabIndex = 0;
    else if (!state.focused) element.removeAttribute('tabindex');
    element.dataset.motion = moving ? 'playing' : 'still';
    if (element.matches('video')) {
      if (moving) element.play().catch(() => {});
      else element.pause();
    } else {
      // Browsers do not animate an image nobody sees: where it is does not matter here.
      this.showGif(element, engaged || !this.held);
    }
  }

  /**
   * A GIF cannot be paused: a still one shows the clip's poster or, for a clip made before
   * posters, a copy of the frame the GIF showed when it had loaded (its first).
   */
  showGif(image, animated) {
    const wanted = animated ? image.dataset.gif : this.stillFor(image);
    if (wanted && image.getAttribute('src') !== wanted) image.src = wanted;
  }

  stillFor(image) {
    if (image.dataset.poster) return image.dataset.poster;
    if (image.dataset.still) return image.dataset.still;
    if (image.complete && image.naturalWidth > 0 && image.getAttribute('src') === image.dataset.gif) {
      const canvas = document.createElement('canvas');
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      canvas.getContext('2d').drawImage(image, 0, 0);
      image.dataset.still = canvas.toDataURL('image/png');
      return image.dataset.still;
    }
    // Not loaded yet: look again once it is.
    if (!image.dataset.waiting) {
      image.dataset.waiting = 'true';
      image.addEventListener('load', () => {
        delete image.dataset.waiting;
        this.update(image);
      }, { once: true });
    }
    return null;
  }
}
