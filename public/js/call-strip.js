// The strip of snapshots (SPEC §9): every snapshot you sent or received, newest first, each
// with who sent it and a Save link that downloads the JPEG as it arrived.
import { identicon } from './identicon.js';

/** Older snapshots go, so a long call does not keep every picture in memory. */
const KEEP = 12;

export class SnapStrip {
  constructor(section, list, template) {
    this.section = section;
    this.list = list;
    this.template = template;
  }

  /** Adds the JPEG `bytes` from `{ user, name }` (`mine` for your own), saved as `file`. */
  add({ bytes, file, user, name, mine }) {
    const url = URL.createObjectURL(new Blob([bytes], { type: 'image/jpeg' }));
    const item = this.template.content.firstElementChild.cloneNode(true);
    item.classList.toggle('mine', Boolean(mine));
    item.dataset.size = String(bytes.byteLength);
    const from = mine ? 'you' : name || 'someone';
    const picture = item.querySelector('.snap-picture');
    picture.src = url;
    picture.alt = `Snapshot from ${from}`;
    item.querySelector('.snap-identicon').replaceChildren(identicon(user, name));
    item.querySelector('.snap-from').textContent = mine ? 'You' : from;
    const now = new Date();
    const time = item.querySelector('.snap-time');
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const save = item.querySelector('.snap-save');
    save.href = url;
    save.download = file;
    save.setAttribute('aria-label', `Save the snapshot from ${from}`);
    this.list.prepend(item);
    this.section.hidden = false;
    for (const old of [...this.list.children].slice(KEEP)) {
      URL.revokeObjectURL(old.querySelector('.snap-save').href);
      old.remove();
    }
  }
}
