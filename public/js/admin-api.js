// The moderation API (SPEC §10) as the moderator's page calls it: every request carries
// the admin token as `Authorization: Bearer`, never in the address, and every answer comes
// back as `{ ok, status, json }` or as `{ ok: false, status, reason }` with the reason in
// words, so the page never has to show a bare status code.
//
// After ten wrong tokens in a minute from one address the server answers every API
// request from it with 429 and `Retry-After` (SPEC §13), right token or not. Until then
// no request is sent at all: each answers 429 here, with the seconds still to wait, so
// neither the lists' polling nor a hurried moderator can stretch the wait.

/** Used when a 429 comes without a `Retry-After` this page can read: the server's window. */
const DEFAULT_RETRY_AFTER_S = 60;

/** When this address may call the API again (`Date.now()` ms), after a 429; 0 if it may. */
let blockedUntil = 0;

/** Seconds until the API may be called again after a 429, rounded up; 0 if it may now. */
export function blockedFor() {
  return Math.max(0, Math.ceil((blockedUntil - Date.now()) / 1000));
}

/** The page's words for a 429, `seconds` before it may try again. */
export function tooManyFailures(seconds) {
  return `Too many failed sign-ins from this address; try again in ${seconds === 1 ? '1 second' : `${seconds} seconds`}.`;
}

/** `Retry-After` in whole seconds (at least 1): a number of seconds, or an HTTP date. */
function retryAfterSeconds(header) {
  const value = header?.trim() ?? '';
  let seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) seconds = DEFAULT_RETRY_AFTER_S;
  return Math.max(1, Math.ceil(seconds));
}

/** The answer to a request made (or not sent) while the API refuses this address. */
function blockedAnswer(json) {
  const retryAfter = Math.max(1, blockedFor());
  return { ok: false, status: 429, json, retryAfter, reason: tooManyFailures(retryAfter) };
}

/** Why a request failed, for statuses every route may answer. */
function reasonFor(status, json) {
  if (status === 401) return 'The server does not accept this token.';
  if (status === 503) return 'The server cannot reach its clip store just now. Try again in a moment.';
  if (status >= 500) return 'Something went wrong on the server (its log says what). Try again.';
  if (typeof json?.error === 'string') return `The server says: ${json.error}.`;
  return `The server answered ${status}.`;
}

export class AdminApi {
  /** `token` is the admin token as the moderator typed it. */
  constructor(token) {
    this.token = token;
  }

  /**
   * One request. `status` is 0 when the server could not be reached at all (then
   * `unreachable` is true), or when the token cannot be sent in a header.
   */
  async request(method, path, body) {
    if (blockedFor() > 0) return blockedAnswer();
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        // Every answer is read fresh: these lists change from one second to the next.
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (error) {
      // fetch refuses a header value outside Latin-1 before sending anything.
      if (error instanceof TypeError && /header|ISO-8859-1|Latin/i.test(error.message)) {
        return { ok: false, status: 0, reason: 'That token has characters that cannot be sent in a request header: check it was copied whole and only it.' };
      }
      return { ok: false, status: 0, unreachable: true, reason: 'Can’t reach the server. Check your connection.' };
    }
    let json;
    try {
      const text = await response.text();
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (response.ok) return { ok: true, status: response.status, json };
    if (response.status === 429) {
      // Several requests may come back 429 together: the latest wait counts.
      blockedUntil = Math.max(blockedUntil, Date.now() + retryAfterSeconds(response.headers.get('retry-after')) * 1000);
      return blockedAnswer(json);
    }
    return { ok: false, status: response.status, json, reason: reasonFor(response.status, json) };
  }

  reports() {
    return this.request('GET', '/admin/reports');
  }

  clips(limit) {
    return this.request('GET', `/admin/clips?limit=${limit}`);
  }

  bans() {
    return this.request('GET', '/admin/bans');
  }

  remove(key) {
    return this.request('DELETE', `/admin/clips/${encodeURIComponent(key)}`);
  }

  /** `address: true` bans the addresses they connect from too (SPEC §10, §13). */
  ban({ user, minutes, reason, purge, address }) {
    return this.request('POST', '/admin/bans', {
      user, minutes, purge, ...(reason ? { reason } : {}), ...(address ? { address: true } : {}),
    });
  }

  lift(user) {
    return this.request('DELETE', `/admin/bans/${encodeURIComponent(user)}`);
  }
}
