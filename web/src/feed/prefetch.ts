// Warms the CDN/browser cache for upcoming videos, exactly as the feed's `prefetch[]` says:
// master playlist, the start rendition's init segment and its FIRST media segment, for at most
// `prefetch_cap` videos not yet watched. Nothing else is fetched ahead of playback.
import type { FeedPage, PrefetchHint } from '../types';

export class Prefetcher {
  /** Videos warmed and not yet reached by the viewer. */
  private readonly pending = new Set<string>();
  private readonly done = new Set<string>();

  warm(page: FeedPage, isUpcoming: (videoId: string) => boolean): void {
    for (const hint of page.prefetch) {
      if (this.pending.size >= page.prefetch_cap) return;
      if (this.done.has(hint.video_id) || !isUpcoming(hint.video_id)) continue;
      this.done.add(hint.video_id);
      this.pending.add(hint.video_id);
      void warmOne(hint);
    }
  }

  /** The viewer reached this video: it no longer counts against the cap. */
  reached(videoId: string): void {
    this.done.add(videoId);
    this.pending.delete(videoId);
  }
}

async function warmOne(hint: PrefetchHint): Promise<void> {
  const get = async (url: string) => {
    const response = await fetch(url, { mode: 'cors', credentials: 'omit', priority: 'low' });
    await response.arrayBuffer(); // read it fully so the cache keeps a complete entry
  };
  try {
    await Promise.all([get(hint.manifest_url), get(hint.init_url), get(hint.first_segment_url)]);
  } catch {
    // Warming is best effort: playback fetches whatever is missing.
  }
}
