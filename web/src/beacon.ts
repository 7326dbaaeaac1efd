// Batches playback events to `POST /v1/playback/events`: flushed every few seconds, when a
// batch fills, and (with keepalive) when the page goes away.
import { ApiError, sendPlaybackEvents } from './api';
import type { PlaybackEvent } from './types';

const FLUSH_MS = 3000;
const MAX_BATCH = 100; // the API accepts 1–100 events per request
const MAX_QUEUED = 500;

export class Beacon {
  private queue: PlaybackEvent[] = [];
  private timer: number | undefined;
  private readonly onPageHide = () => void this.flush(true);

  constructor() {
    addEventListener('pagehide', this.onPageHide);
  }

  push(event: PlaybackEvent): void {
    this.queue.push(event);
    if (this.queue.length > MAX_QUEUED) this.queue.splice(0, this.queue.length - MAX_QUEUED);
    if (this.queue.length >= MAX_BATCH) void this.flush();
    else this.timer ??= window.setTimeout(() => void this.flush(), FLUSH_MS);
  }

  async flush(keepalive = false): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await sendPlaybackEvents(batch, keepalive);
      } catch (error) {
        // A bad payload (400) would fail again; rate limits and network errors are retried later.
        const retry = !(error instanceof ApiError) || error.status === 0 || error.status === 429 || error.status >= 500;
        if (retry && !keepalive) {
          this.queue.unshift(...batch);
          this.timer = window.setTimeout(() => void this.flush(), FLUSH_MS * 3);
        }
        return;
      }
    }
  }

  close(): void {
    void this.flush(true);
    removeEventListener('pagehide', this.onPageHide);
  }
}
