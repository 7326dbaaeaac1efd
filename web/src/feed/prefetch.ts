// Warms the browser cache for upcoming videos, exactly as the feed's `prefetch[]` says: every
// object the start rung's first frame needs (master, media playlist(s), init and first
// segment(s)), for at most `prefetch_cap` videos not yet watched. The feed calls `warm` only
// once the current video shows its first frame; requests go one at a time at low priority, so
// the current video's own segments keep the link.
import type { FeedPage, PrefetchHint } from '../types';

export class Prefetcher {
  /** Videos warmed and not yet reached by the viewer. */
  private readonly pending = new Set<string>();
  private readonly done = new Set<string>();
  private queue: Promise<void> = Promise.resolve();

  warm(page: FeedPage, isUpcoming: (videoId: string) => boolean): void {
    for (const hint of page.prefetch) {
      if (this.pending.size >= page.prefetch_cap) return;
      if (this.done.has(hint.video_id) || !isUpcoming(hint.video_id)) continue;
      this.done.add(hint.video_id);
      this.pending.add(hint.video_id);
      this.queue = this.queue.then(() => warmOne(hint));
    }
  }

  /** The viewer reached this video: it no longer counts against the cap. */
  reached(videoId: string): void {
    this.done.add(videoId);
    this.pending.delete(videoId);
  }
}

async function warmOne(hint: PrefetchHint): Promise<void> {
  const urls = hint.objects?.length ? hint.objects.map((o) => o.url) : [hint.manifest_url, hint.init_url, hint.first_segment_url];
  for (const url of urls) {
    try {
      const response = await fetch(url, { mode: 'cors', credentials: 'omit', priority: 'low' });
      await response.arrayBuffer(); // read it fully so the cache keeps a complete entry
    } catch {
      // Warming is best effort: playback fetches whatever is missing.
    }
  }
}
