// The Feed page: one video per screen, vertical swipe (scroll snap, wheel, touch, ArrowUp /
// ArrowDown). The current cell plays; the one left behind pauses at once.
import { getFeed } from '../api';
import { Beacon } from '../beacon';
import { h } from '../dom';
import type { FeedPage } from '../types';
import { makeCell, type Cell, type CellContext } from './cells';
import { Prefetcher } from './prefetch';

const PAGE_SIZE = 10;
const KEEP_PLAYERS = 1; // players kept alive on each side of the current cell

export function renderFeed(view: HTMLElement, params: URLSearchParams): () => void {
  // `?inline=0` turns the inline playlists off (the startup benchmark compares both).
  const feed = new Feed(params.get('video'), params.get('inline') !== '0');
  view.replaceChildren(feed.element);
  void feed.loadMore();
  return () => feed.destroy();
}

class Feed {
  readonly element: HTMLElement;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;
  private cells: Cell[] = [];
  private current = -1;
  private cursor: string | null = null;
  private exhausted = false;
  private loading = false;
  private muted = true;
  private readonly beacon = new Beacon();
  private readonly prefetcher = new Prefetcher();
  private readonly observer: IntersectionObserver;
  private readonly ctx: CellContext;
  private readonly inline = new Map<string, string>();

  constructor(
    private startAt: string | null,
    private readonly inlinePlaylists: boolean,
  ) {
    this.list = h('div', { class: 'feed', id: 'feed', tabindex: 0 });
    this.status = h('p', { class: 'feed-status' }, 'loading…');
    const mute = h('button', { class: 'mute', type: 'button' }, 'sound off · tap for sound');
    mute.addEventListener('click', () => this.toggleMute(mute));
    this.element = h('section', { class: 'page feed-page' }, this.list, mute, this.status);
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), {
      root: this.list,
      threshold: 0.6,
    });
    this.ctx = {
      beacon: this.beacon,
      muted: () => this.muted,
      replace: (old, video) => this.replace(old, video),
      inline: this.inline,
    };
    document.addEventListener('keydown', this.onKey);
  }

  async loadMore(): Promise<void> {
    if (this.loading || this.exhausted) return;
    this.loading = true;
    try {
      const first = this.cursor === null && this.cells.length === 0;
      const page = await getFeed(this.cursor, PAGE_SIZE, first && this.inlinePlaylists && !this.startAt);
      this.append(page);
      this.status.textContent = this.cells.length === 0 ? 'No videos yet. Upload one!' : '';
    } catch (error) {
      this.status.textContent = `Could not load the feed: ${error instanceof Error ? error.message : error}`;
    } finally {
      this.loading = false;
    }
  }

  private append(page: FeedPage): void {
    this.cursor = page.next_cursor;
    this.exhausted = page.next_cursor === null;
    for (const playlist of page.inline_playlists ?? []) this.inline.set(playlist.url, playlist.text);
    for (const video of page.items) {
      if (this.cells.some((cell) => cell.videoId === video.video_id)) continue;
      const cell = makeCell(video, this.ctx);
      this.cells.push(cell);
      this.list.append(cell.element);
      this.observer.observe(cell.element);
    }
    this.jumpToStart();
    // Nothing competes with the current video until its first frame; then warm the next ones.
    void this.afterFirstFrame(() =>
      this.prefetcher.warm(page, (videoId) => this.indexOf(videoId) > Math.max(this.current, 0)),
    );
  }

  /** Runs `then` once the current cell shows its first frame. */
  private async afterFirstFrame(then: () => void): Promise<void> {
    const cell = this.cells[Math.max(this.current, 0)];
    await cell?.started();
    then();
  }

  /** `/feed?video=ID` (the Upload page's link) opens at that video. */
  private jumpToStart(): void {
    const index = this.startAt ? this.indexOf(this.startAt) : -1;
    this.startAt = null;
    if (index > 0) this.cells[index].element.scrollIntoView({ behavior: 'instant' });
    else if (this.current < 0 && this.cells.length > 0) this.activate(0);
  }

  private indexOf(videoId: string): number {
    return this.cells.findIndex((cell) => cell.videoId === videoId);
  }

  private onIntersect(entries: IntersectionObserverEntry[]): void {
    for (const entry of entries) {
      if (!entry.isIntersecting || entry.intersectionRatio < 0.6) continue;
      const index = this.cells.findIndex((cell) => cell.element === entry.target);
      if (index >= 0) this.activate(index);
    }
  }

  /** Pauses the previous cell and starts this one in the same tick. */
  private activate(index: number): void {
    if (index === this.current) return;
    this.cells[this.current]?.deactivate();
    this.current = index;
    const cell = this.cells[index];
    this.prefetcher.reached(cell.videoId);
    cell.activate();
    void cell.started().then(() => {
      if (this.current === index) this.cells[index + 1]?.prime(); // posters: current and next only
    });
    this.cells.forEach((other, i) => {
      if (Math.abs(i - index) > KEEP_PLAYERS) other.release();
    });
    if (index >= this.cells.length - 3) void this.loadMore();
  }

  private readonly onKey = (event: KeyboardEvent) => {
    if (event.target instanceof HTMLInputElement) return;
    const step = event.key === 'ArrowDown' ? 1 : event.key === 'ArrowUp' ? -1 : 0;
    const next = this.current + step;
    if (step === 0 || next < 0 || next >= this.cells.length) return;
    event.preventDefault();
    this.activate(next); // start at once; the scroll follows
    this.cells[next].element.scrollIntoView({ behavior: 'smooth' });
  };

  private replace(old: Cell, video: FeedPage['items'][number]): void {
    const index = this.cells.indexOf(old);
    if (index < 0) return;
    old.destroy();
    const cell = makeCell(video, this.ctx);
    this.cells[index] = cell;
    this.observer.unobserve(old.element);
    old.element.replaceWith(cell.element);
    this.observer.observe(cell.element);
    if (Math.abs(index - this.current) <= 1) cell.prime();
    if (index === this.current) cell.activate();
  }

  private toggleMute(button: HTMLButtonElement): void {
    this.muted = !this.muted;
    button.textContent = this.muted ? 'sound off · tap for sound' : 'sound on';
    for (const video of this.list.querySelectorAll('video')) video.muted = this.muted;
  }

  destroy(): void {
    document.removeEventListener('keydown', this.onKey);
    this.observer.disconnect();
    for (const cell of this.cells) cell.destroy();
    this.beacon.close();
  }
}
