// The moderation API (SPEC §10) as the moderator's page calls it: every request carries
// the admin token as `Authorization: Bearer`, never in the address, and every answer comes
// back as `{ ok, status, json }` or as `{ ok: false, status, reason }` with the reason in
// words, so the page never has to show a bare status code.

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

  ban({ user, minutes, reason, purge }) {
    return this.request('POST', '/admin/bans', { user, minutes, purge, ...(reason ? { reason } : {}) });
  }

  lift(user) {
    return this.request('DELETE', `/admin/bans/${encodeURIComponent(user)}`);
  }
}
