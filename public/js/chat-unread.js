// How many clips arrived while the tab was in the background, as a count in its title,
// e.g. "(3) loopchat — chat", so that you see there is something new from another tab.
// Looking at the tab again clears it.
import { setTitleCount } from './connection.js';

export class UnreadCount {
  constructor() {
    this.count = 0;
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) {
        this.count = 0;
        setTitleCount(0);
      }
    });
  }

  /** Counts a newly arrived clip, unless the tab is being looked at. */
  add() {
    if (document.hidden) {
      this.count += 1;
      setTitleCount(this.count);
    }
  }
}
