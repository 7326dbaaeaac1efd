// Feed cells, one per screen: a ready video with its player, a processing placeholder that
// polls until the video is ready (and plays the preview as soon as it is playable), or a failed
// notice (placeholders only for the viewer's own). Posters load only when the feed primes a cell.
import { getVideo } from '../api';
import type { Beacon } from '../beacon';
import { formatMs, h } from '../dom';
import type { ProcessingVideo, ReadyVideo, VideoView } from '../types';
import { Player } from './player';

const SHOWN = Promise.resolve();

export interface Cell {
  readonly element: HTMLElement;
  readonly videoId: string;
  /** Loads the poster (only the current and next cells have one). */
  prime(): void;
  /** Resolves when the active cell shows its first frame (at once for cells without video). */
  started(): Promise<void>;
  activate(): void;
  deactivate(): void;
  /** Frees the decoder and buffers; the cell can be activated again later. */
  release(): void;
  destroy(): void;
}

export interface CellContext {
  beacon: Beacon;
  muted: () => boolean;
  /** A placeholder's video became ready: swap the cell in place. */
  replace: (old: Cell, video: VideoView) => void;
  /** Playlist texts the feed handed out inline, by URL. */
  inline: ReadonlyMap<string, string>;
}

export function makeCell(video: VideoView, ctx: CellContext): Cell {
  switch (video.status) {
    case 'ready':
      return new VideoCell(video, ctx);
    case 'processing':
      return new PlaceholderCell(video, ctx);
    case 'failed':
      return staticCell(video.video_id, 'failed', `failed: ${video.failed_reason}`);
  }
}

function frame(videoId: string, status: string, ...children: Node[]): HTMLElement {
  return h('section', { class: `cell ${status}`, 'data-video-id': videoId, 'data-status': status }, ...children);
}

class VideoCell implements Cell {
  readonly element: HTMLElement;
  readonly videoId: string;
  private readonly video: HTMLVideoElement;
  private player: Player | null = null;

  constructor(
    private readonly item: ReadyVideo,
    private readonly ctx: CellContext,
  ) {
    this.videoId = item.video_id;
    this.video = h('video', { playsinline: true, loop: true, preload: 'none' });
    const support = h('button', { class: 'support', type: 'button' }, '♥ Support');
    support.addEventListener('click', () => ctx.beacon.push({ type: 'support_click', video_id: item.video_id }));
    const caption = h('p', { class: 'caption' }, `@${item.creator_id} · ${formatMs(item.duration_ms)}`);
    this.element = frame(item.video_id, 'ready', this.video, h('div', { class: 'overlay' }, caption, support));
  }

  prime(): void {
    if (this.item.thumbnail_url && !this.video.poster) this.video.poster = this.item.thumbnail_url;
  }

  started(): Promise<void> {
    return this.player?.firstFrame ?? SHOWN;
  }

  activate(): void {
    this.prime();
    this.video.muted = this.ctx.muted();
    this.player ??= new Player(this.video, this.item, this.ctx.beacon, { inline: this.ctx.inline });
    this.player.play();
    this.element.dataset.active = 'true';
  }

  deactivate(): void {
    this.player?.pause();
    delete this.element.dataset.active;
  }

  release(): void {
    this.player?.destroy();
    this.player = null;
  }

  destroy(): void {
    this.release();
  }
}

class PlaceholderCell implements Cell {
  readonly element: HTMLElement;
  readonly videoId: string;
  private readonly stage: HTMLElement;
  private readonly poster: HTMLImageElement;
  private timer: number | undefined;
  private stopped = false;
  private active = false;
  private primed = false;
  private preview: Player | null = null;

  constructor(
    private item: ProcessingVideo,
    private readonly ctx: CellContext,
  ) {
    this.videoId = item.video_id;
    this.stage = h('p', { class: 'stage' });
    const text = h('div', { class: 'placeholder' }, h('p', {}, 'processing…'), this.stage);
    this.poster = h('img', { class: 'poster', alt: '', hidden: true });
    this.element = frame(item.video_id, 'processing', this.poster, text);
    this.show(item);
    this.schedule(item.poll_after_ms);
  }

  private show(item: ProcessingVideo): void {
    this.item = item;
    this.stage.textContent = `stage: ${item.stage ?? 'queued'} · ${formatMs(item.elapsed_ms)}`;
    if (this.primed) this.prime();
    if (this.active) this.startPreview();
  }

  /** The creator watches the start rungs as they grow, from the beginning (hls.js `startPosition: 0`). */
  private startPreview(): void {
    const url = this.item.playback_manifest_url;
    if (this.preview || !this.item.playable || !url) return;
    const video = h('video', { class: 'preview', playsinline: true, loop: true, preload: 'none' });
    video.muted = this.ctx.muted();
    this.element.dataset.playable = 'true';
    this.element.append(video);
    this.preview = new Player(video, { video_id: this.videoId, playback_manifest_url: url }, this.ctx.beacon, {
      startPosition: 0,
    });
    this.preview.play();
  }

  private schedule(ms: number | undefined): void {
    if (this.stopped) return;
    this.timer = window.setTimeout(() => void this.poll(), Math.min(Math.max(ms ?? 2000, 500), 15_000));
  }

  private async poll(): Promise<void> {
    try {
      const { video } = await getVideo(this.videoId);
      if (this.stopped) return;
      if (video.status === 'processing') {
        this.show(video);
        this.schedule(video.poll_after_ms);
      } else {
        this.ctx.replace(this, video);
      }
    } catch {
      this.schedule(5000);
    }
  }

  prime(): void {
    this.primed = true;
    const url = this.item.thumbnail_url;
    if (!url || this.poster.getAttribute('src') === url) return;
    this.poster.src = url;
    this.poster.hidden = false;
  }

  started(): Promise<void> {
    return this.preview?.firstFrame ?? SHOWN;
  }

  activate(): void {
    this.active = true;
    this.prime();
    this.startPreview();
    this.preview?.play();
    this.element.dataset.active = 'true';
  }

  deactivate(): void {
    this.active = false;
    this.preview?.pause();
    delete this.element.dataset.active;
  }

  release(): void {
    this.preview?.destroy();
    this.preview?.video.remove();
    this.preview = null;
  }

  destroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.release();
  }
}

function staticCell(videoId: string, status: string, text: string): Cell {
  const element = frame(videoId, status, h('div', { class: 'placeholder' }, h('p', {}, text)));
  return {
    element,
    videoId,
    prime: () => undefined,
    started: () => SHOWN,
    activate: () => void (element.dataset.active = 'true'),
    deactivate: () => void delete element.dataset.active,
    release: () => undefined,
    destroy: () => undefined,
  };
}
