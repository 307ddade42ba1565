// How one clip looks (SPEC §7), in the chat page's feed and on the moderator's page. The
// server renders the clips of the replay into the chat page (templates/chat.html);
// `renderClip` builds the same markup from the page's `<template>` for a clip that arrives
// later, so both kinds look and behave alike. How the clip's picture is shown is decided in
// clip-media.js, and whether it moves in clip-motion.js.
import { clipMedia, mediaIn } from './clip-media.js';
import { identicon } from './identicon.js';
import { linkify } from './links.js';

/**
 * Fills the parts of a clip's item that every page shows the same, from `clip` (a `Clip`,
 * SPEC §2): its data attributes, its picture (replacing the template's placeholder), the
 * author's name and the message. Names and messages go in as text only, never as markup:
 * they are other people's words.
 */
export function fillClip(item, clip) {
  item.dataset.key = clip.key;
  item.dataset.author = clip.author.name;
  item.dataset.authorId = clip.author.id;
  item.dataset.createdAt = String(clip.created_at);
  item.dataset.expiresAt = String(clip.expires_at);
  mediaIn(item).replaceWith(clipMedia(clip));
  item.querySelector('.clip-author').textContent = clip.author.name;
  item.querySelector('.clip-text').textContent = clip.message;
}

/**
 * Draws what server-rendered markup cannot: the author's identicon and clickable links;
 * and hands the clip's picture to `motion` (a `ClipMotion`), which starts or holds it. For
 * a clip the server rendered this is all the script adds; `renderClip` calls it too.
 */
export function hydrateClip(item, motion) {
  const { authorId, author } = item.dataset;
  item.querySelector('.clip-avatar').replaceChildren(identicon(authorId, author));
  const text = item.querySelector('.clip-text');
  text.replaceChildren(linkify(text.textContent));
  motion.adopt(mediaIn(item));
}

/** The chat page's `li.clip` for a `Clip`, cloned from `template` and hydrated. */
export function renderClip(template, clip, motion) {
  const item = template.content.firstElementChild.cloneNode(true);
  fillClip(item, clip);
  const save = item.querySelector('.clip-save');
  save.href = clip.clip;
  save.download = `loopchat-${clip.key}.gif`;
  save.setAttribute('aria-label', `Save GIF from ${clip.author.name}`);
  item.querySelector('.clip-mute').textContent = `Mute ${clip.author.name}`;
  item.querySelector('.clip-report').setAttribute('aria-label', `Report the clip from ${clip.author.name}`);
  hydrateClip(item, motion);
  return item;
}
