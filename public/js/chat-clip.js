// How one clip looks in the feed (SPEC §7). The server renders the clips of the replay into
// the page (templates/chat.html); `renderClip` builds the same markup from the page's
// `<template>` for a clip that arrives later, so both kinds look and behave alike. How the
// clip itself is shown (today a looping GIF in an `<img>`) is decided here and nowhere else.
import { identicon } from './identicon.js';
import { linkify } from './links.js';

/**
 * Draws what server-rendered markup cannot: the author's identicon and clickable links.
 * For a clip the server rendered this is all the script adds; `renderClip` calls it too.
 */
export function hydrateClip(item) {
  const { authorId, author } = item.dataset;
  item.querySelector('.clip-avatar').replaceChildren(identicon(authorId, author));
  const text = item.querySelector('.clip-text');
  text.replaceChildren(linkify(text.textContent));
}

/**
 * The `li.clip` for a `Clip` (SPEC §5), cloned from `template` and hydrated. The author's
 * name and the message go in as text only, never as markup: they are other people's words.
 */
export function renderClip(template, clip) {
  const item = template.content.firstElementChild.cloneNode(true);
  item.dataset.key = clip.key;
  item.dataset.author = clip.author.name;
  item.dataset.authorId = clip.author.id;
  item.dataset.createdAt = String(clip.created_at);
  item.dataset.expiresAt = String(clip.expires_at);
  const gif = item.querySelector('.clip-gif');
  gif.src = clip.clip;
  gif.width = clip.width;
  gif.height = clip.height;
  gif.alt = `Looping clip from ${clip.author.name}`;
  item.querySelector('.clip-author').textContent = clip.author.name;
  item.querySelector('.clip-text').textContent = clip.message;
  const save = item.querySelector('.clip-save');
  save.href = clip.clip;
  save.download = `loopchat-${clip.key}.gif`;
  save.setAttribute('aria-label', `Save GIF from ${clip.author.name}`);
  item.querySelector('.clip-mute').textContent = `Mute ${clip.author.name}`;
  item.querySelector('.clip-report').setAttribute('aria-label', `Report the clip from ${clip.author.name}`);
  hydrateClip(item);
  return item;
}
