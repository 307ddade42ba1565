// Where the feed is scrolled. While you read the newest clips at the bottom, the feed keeps
// you there as clips arrive and as it changes height; once you scroll up to older ones it
// leaves you where you are and shows "New clips below" instead, which takes you back.

/** How close to the bottom (in pixels) still counts as reading the newest clips. */
const BOTTOM_SLACK = 48;

export class FeedScroll {
  /** `feed` is the scrolling element, `list` the clips in it, `jump` the "New clips below" button. */
  constructor(feed, list, jump) {
    this.feed = feed;
    this.jump = jump;
    /** Whether new clips should scroll into view: you are at the bottom, or were sent there. */
    this.following = true;

    feed.addEventListener('scroll', () => {
      this.following = this.atBottom();
      if (this.following) jump.hidden = true;
    }, { passive: true });

    // The feed changes height when the window or the on-screen keyboard does.
    new ResizeObserver(() => {
      if (this.following) feed.scrollTop = feed.scrollHeight;
    }).observe(feed);

    jump.addEventListener('click', () => {
      this.toBottom();
      list.lastElementChild?.querySelector('.clip-save')?.focus({ preventScroll: true });
    });
  }

  atBottom() {
    const { feed } = this;
    return feed.scrollHeight - feed.scrollTop - feed.clientHeight <= BOTTOM_SLACK;
  }

  /** Scrolls to the newest clip and follows new ones from now on. */
  toBottom() {
    this.feed.scrollTop = this.feed.scrollHeight;
    this.following = true;
    this.jump.hidden = true;
  }

  /** Says that there are new clips below, for someone reading older ones. */
  showJump() {
    this.jump.hidden = false;
  }
}
