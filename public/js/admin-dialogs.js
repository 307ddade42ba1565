// The two questions the moderator's page asks before acting: remove this clip? and ban its
// author, for how long, with their clips or not, with their network address or not? Each
// is a modal <dialog>, so the keyboard stays inside it, Escape cancels, and focus returns
// to the button that opened it. Each says in words what will happen before anything does.
import { stillOf } from './clip-media.js';
import { identicon } from './identicon.js';
import { formatMoment, formatSpan } from './admin-render.js';

const $ = (id) => document.getElementById(id);

/** Opens `dialog` modally; resolves with the value it was closed with ('' for Escape). */
function ask(dialog) {
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true });
  });
}

const removeDialog = $('remove-dialog');
$('remove-cancel').addEventListener('click', () => removeDialog.close('cancel'));
$('remove-confirm').addEventListener('click', () => removeDialog.close('remove'));

/**
 * Asks whether to remove the clip shown by `item` (a list item of the page), showing the
 * clip itself so there is no doubt which one. Resolves true to go ahead.
 */
export async function confirmRemove(item) {
  const preview = $('remove-clip');
  const picture = stillOf(item);
  const who = document.createElement('p');
  who.className = 'admin-dialog-who';
  who.append(identicon(item.dataset.authorId, item.dataset.author), ` ${item.dataset.author}`);
  const text = document.createElement('p');
  text.className = 'clip-text';
  text.textContent = item.querySelector('.clip-text').textContent;
  const words = document.createElement('div');
  words.append(who, text);
  preview.replaceChildren(...(picture ? [picture] : []), words);
  $('remove-title').textContent = `Remove this clip from ${item.dataset.author}?`;
  return (await ask(removeDialog)) === 'remove';
}

const banDialog = $('ban-dialog');
const banForm = $('ban-form');
const minutesField = $('ban-minutes');
const reasonField = $('ban-reason');
const purgeField = $('ban-purge');
const addressField = $('ban-address');
const consequence = $('ban-what');
let banning = null;

/** What the ban about to be made will do, in words, from what the form says now. */
function describeBan() {
  const minutes = Number(minutesField.value);
  const until = Date.now() + minutes * 60_000;
  const lines = [
    `${banning.name} cannot send clips, go live or join calls until ${formatMoment(until)} (${formatSpan(minutes * 60_000)} from now); a call they are in ends at once.`,
    purgeField.checked
      ? 'Every clip of theirs that has not expired yet is removed from every page now.'
      : 'Their clips stay until they expire or you remove them.',
    // An address is shared (a school, an office, a phone network): the moderator must know
    // that others behind it are shut out too, and that the page will not show it.
    addressField.checked
      ? 'Their network address is banned too: every connection from it, theirs or anyone else’s there, closes now, and new ones are refused until the ban ends. The address itself is never shown, here or anywhere.'
      : 'Their network address is not banned: with a new id they could come back from it.',
  ];
  consequence.textContent = lines.join(' ');
}

minutesField.addEventListener('change', describeBan);
purgeField.addEventListener('change', describeBan);
addressField.addEventListener('change', describeBan);
$('ban-cancel').addEventListener('click', () => banDialog.close('cancel'));
banForm.addEventListener('submit', (event) => {
  event.preventDefault();
  banDialog.close('ban');
});

/**
 * Asks how to ban `author` (`{ id, name }`). Resolves with `{ minutes, reason, purge,
 * address }`, or null if the moderator cancelled.
 */
export async function askBan(author) {
  banning = author;
  $('ban-name').textContent = author.name;
  const name = document.createElement('span');
  name.textContent = author.name;
  const id = document.createElement('code');
  id.className = 'admin-id';
  id.textContent = author.id;
  const idLine = document.createElement('span');
  idLine.className = 'admin-dialog-id';
  idLine.append('id ', id);
  $('ban-who').replaceChildren(identicon(author.id, author.name), name, idLine);
  reasonField.value = '';
  purgeField.checked = false;
  addressField.checked = false;
  describeBan();
  const answer = await ask(banDialog);
  banning = null;
  if (answer !== 'ban') return null;
  return {
    minutes: Number(minutesField.value),
    reason: reasonField.value.trim(),
    purge: purgeField.checked,
    address: addressField.checked,
  };
}
