// The Report button under each clip that is not yours (SPEC §10): it puts the clip in front
// of the moderators, whose API lists the reported clips. The page remembers which clips it
// reported, so their buttons keep saying "Reported" rather than invite a second report.
const REPORT_TIMEOUT_MS = 15000;

/** Why a report was not taken, in words. */
const REPORT_ERRORS = {
  not_found: 'This clip is gone already.',
  rate_limited: 'Too many reports at once; try again in a moment.',
};

function showReported(item) {
  const button = item.querySelector('.clip-report');
  button.textContent = 'Reported';
  button.disabled = true;
  item.querySelector('.clip-status').textContent = '';
}

export class Reports {
  /** `announce(text)` tells screen-reader users that the report went through. */
  constructor(socket, announce) {
    this.socket = socket;
    this.announce = announce;
    /** Keys of clips this page reported. */
    this.reported = new Set();
  }

  /** Marks a newly drawn clip as reported if this page reported it before. */
  restore(item) {
    if (this.reported.has(item.dataset.key)) showReported(item);
  }

  /** Reports the clip `item`, with its button saying how that goes. */
  async report(item) {
    const { key } = item.dataset;
    const button = item.querySelector('.clip-report');
    const status = item.querySelector('.clip-status');
    button.disabled = true;
    button.textContent = 'Reporting…';
    status.textContent = '';
    let reply;
    try {
      reply = await this.socket.timeout(REPORT_TIMEOUT_MS).emitWithAck('report', { key });
    } catch {
      reply = { ok: false, error: { message: 'The server did not answer; try again.' } };
    }
    if (reply?.ok) {
      this.reported.add(key);
      showReported(item);
      this.announce('Reported. Thank you: the moderators will look at it.');
      return;
    }
    button.disabled = false;
    button.textContent = 'Report';
    const error = reply?.error;
    status.textContent = `Not reported: ${REPORT_ERRORS[error?.code] ?? error?.message ?? 'please try again.'}`;
  }
}
