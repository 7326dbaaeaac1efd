// Feed cells, one per screen: a ready video with its player, a processing placeholder that
// polls until the video is ready, or a failed notice (placeholders only for the viewer's own).
import { getVideo } from '../api';
import type { Beacon } from '../beacon';
import { formatMs, h } from '../dom';
import type { ProcessingVideo, ReadyVideo, VideoView } from '../types';
import { Player } from './player';

export interface Cell {
  readonly element: HTMLElement;
  readonly videoId: string;
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
    this.video = h('video', { playsinline: true, loop: true, preload: 'none', poster: item.thumbnail_url });
    const support = h('button', { class: 'support', type: 'button' }, '♥ Support');
    support.addEventListener('click', () => ctx.beacon.push({ type: 'support_click', video_id: item.video_id }));
    const caption = h('p', { class: 'caption' }, `@${item.creator_id} · ${formatMs(item.duration_ms)}`);
    this.element = frame(item.video_id, 'ready', this.video, h('div', { class: 'overlay' }, caption, support));
  }

  activate(): void {
    this.video.muted = this.ctx.muted();
    this.player ??= new Player(this.video, this.item, this.ctx.beacon);
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
  private timer: number | undefined;
  private stopped = false;

  constructor(
    item: ProcessingVideo,
    private readonly ctx: CellContext,
  ) {
    this.videoId = item.video_id;
    this.stage = h('p', { class: 'stage' });
    const text = h('div', { class: 'placeholder' }, h('p', {}, 'processing…'), this.stage);
    const poster = item.thumbnail_url ? [h('img', { class: 'poster', src: item.thumbnail_url, alt: '' })] : [];
    this.element = frame(item.video_id, 'processing', ...poster, text);
    this.show(item);
    this.schedule(item.poll_after_ms);
  }

  private show(item: ProcessingVideo): void {
    this.stage.textContent = `stage: ${item.stage ?? 'queued'} · ${formatMs(item.elapsed_ms)}`;
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

  activate(): void {
    this.element.dataset.active = 'true';
  }

  deactivate(): void {
    delete this.element.dataset.active;
  }

  release(): void {}

  destroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

function staticCell(videoId: string, status: string, text: string): Cell {
  const element = frame(videoId, status, h('div', { class: 'placeholder' }, h('p', {}, text)));
  return {
    element,
    videoId,
    activate: () => void (element.dataset.active = 'true'),
    deactivate: () => void delete element.dataset.active,
    release: () => undefined,
    destroy: () => undefined,
  };
}
