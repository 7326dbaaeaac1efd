// One feed video's player: hls.js on MSE (native HLS only where MSE is missing), started on the
// lowest rung with conservative ABR, plus the playback telemetry for that video.
import Hls, { LoadStats } from 'hls.js/light';
import type { HlsConfig, Loader, LoaderCallbacks, LoaderConfiguration, PlaylistLoaderContext } from 'hls.js';
import type { Beacon } from '../beacon';
import type { Playable } from '../types';

/** Start low and step up cautiously; drop fast when the network weakens. */
const HLS_CONFIG: Partial<Hls['config']> = {
  startLevel: 0, // the lowest rung: fastest first frame on any network
  // Held on the start rung until the first frame (see `attach`): the first segments, often
  // prefetched, would otherwise read as a fast link and pull the next rung's playlist in first.
  capLevelToPlayerSize: false,
  abrEwmaDefaultEstimate: 500_000, // assume a weak link until measured
  abrEwmaFastVoD: 2, // react to a slowdown within about two seconds of samples
  abrEwmaSlowVoD: 8,
  abrBandWidthFactor: 0.8, // switch down when the estimate falls below 1.25× the rung's bitrate
  abrBandWidthUpFactor: 0.5, // switch up only with twice the next rung's bitrate
  abrMaxWithRealBitrate: true,
  // Continuity needs a few seconds ahead, not more: a longer buffer spends the link on bytes a
  // swipe throws away and starves the prefetch of the next videos on 3G.
  maxBufferLength: 8,
  maxMaxBufferLength: 8,
  maxBufferSize: 4 * 1000 * 1000,
  backBufferLength: 4,
};

/** Options of one player. */
export interface PlayerOptions {
  /** Playlist texts by URL, answered without a request (the feed's `inline_playlists`). */
  inline?: ReadonlyMap<string, string>;
  /** Where to start: 0 plays a growing `EVENT` playlist from its beginning, not its live edge. */
  startPosition?: number;
}

/** A playlist loader answering `inline` URLs from memory and everything else over the network. */
function inlineLoader(inline: ReadonlyMap<string, string>): new (config: HlsConfig) => Loader<PlaylistLoaderContext> {
  const Network = Hls.DefaultConfig.loader;
  return class InlineLoader implements Loader<PlaylistLoaderContext> {
    context: PlaylistLoaderContext | null = null;
    private answered: LoadStats | null = null;
    private readonly network: Loader<PlaylistLoaderContext>;

    get stats() {
      return this.answered ?? this.network.stats;
    }

    constructor(config: HlsConfig) {
      this.network = new Network(config) as Loader<PlaylistLoaderContext>;
    }

    load(context: PlaylistLoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<PlaylistLoaderContext>) {
      const text = inline.get(context.url);
      if (text === undefined) {
        this.answered = null;
        this.network.load(context, config, callbacks);
        return;
      }
      this.context = context;
      const stats = new LoadStats();
      const now = performance.now();
      Object.assign(stats.loading, { start: now, first: now, end: now });
      stats.loaded = stats.total = text.length;
      this.answered = stats;
      queueMicrotask(() => callbacks.onSuccess({ url: context.url, data: text }, stats, context, null));
    }

    abort() {
      this.network.abort();
    }

    destroy() {
      this.network.destroy();
    }
  };
}

const PROGRESS_EVERY_MS = 5000;

export class Player {
  private hls: Hls | null = null;
  private attached = false;
  private playRequestedAt: number | null = null;
  private startupReported = false;
  private waitingSince: number | null = null;
  private completed = false;
  private lastProgressAt = 0;
  private frameShown: () => void = () => undefined;
  /** Resolves when the first frame of this video is on screen. */
  readonly firstFrame = new Promise<void>((resolve) => (this.frameShown = resolve));

  constructor(
    readonly video: HTMLVideoElement,
    private readonly item: Playable,
    private readonly beacon: Beacon,
    private readonly options: PlayerOptions = {},
  ) {
    video.addEventListener('playing', this.onPlaying);
    video.addEventListener('waiting', this.onWaiting);
    video.addEventListener('timeupdate', this.onTimeUpdate);
    video.addEventListener('ended', this.onEnded);
  }

  /** Starts (or resumes) playback at once; the first call measures startup time. */
  play(): void {
    this.attach();
    this.completed = false;
    this.playRequestedAt ??= performance.now();
    this.video.play().catch(() => {
      // Autoplay with sound can be refused; retry muted, which browsers allow.
      this.video.muted = true;
      void this.video.play().catch(() => undefined);
    });
  }

  pause(): void {
    if (!this.video.paused) this.video.pause();
    this.reportProgress();
    this.waitingSince = null;
  }

  destroy(): void {
    this.pause();
    this.hls?.destroy();
    this.hls = null;
    this.attached = false;
    this.video.removeAttribute('src');
    this.video.load();
  }

  private attach(): void {
    if (this.attached) return;
    this.attached = true;
    const url = this.item.playback_manifest_url;
    this.watchFirstFrame();
    if (Hls.isSupported()) {
      const config: Partial<HlsConfig> = { ...HLS_CONFIG };
      if (this.options.inline?.size) config.pLoader = inlineLoader(this.options.inline);
      if (this.options.startPosition !== undefined) config.startPosition = this.options.startPosition;
      const hls = new Hls(config);
      this.hls = hls;
      hls.autoLevelCapping = 0;
      void this.firstFrame.then(() => {
        if (this.hls !== hls) return;
        hls.autoLevelCapping = -1;
        hls.capLevelToPlayerSize = true;
      });
      this.hls.loadSource(url);
      this.hls.attachMedia(this.video);
    } else {
      this.video.src = url; // Safari on iOS without MSE: the platform player does ABR
    }
  }

  private watchFirstFrame(): void {
    const shown = () => {
      this.video.dataset.firstFrameAt = String(Date.now());
      this.frameShown();
    };
    if (typeof this.video.requestVideoFrameCallback === 'function') this.video.requestVideoFrameCallback(shown);
    else this.video.addEventListener('playing', shown, { once: true });
  }

  private readonly onPlaying = () => {
    const now = performance.now();
    if (!this.startupReported && this.playRequestedAt !== null) {
      this.startupReported = true;
      const startup_ms = Math.round(now - this.playRequestedAt);
      this.video.dataset.startupMs = String(startup_ms);
      this.beacon.push({ type: 'startup', video_id: this.item.video_id, startup_ms });
    } else if (this.waitingSince !== null) {
      this.beacon.push({ type: 'rebuffer', video_id: this.item.video_id, duration_ms: Math.round(now - this.waitingSince) });
    }
    this.waitingSince = null;
  };

  private readonly onWaiting = () => {
    if (this.startupReported && !this.video.seeking) this.waitingSince = performance.now();
  };

  private readonly onTimeUpdate = () => {
    const { currentTime, duration } = this.video;
    if (!Number.isFinite(duration) || duration <= 0) return;
    // Videos loop, so `ended` never fires: count a view as complete near the end, once.
    if (!this.completed && currentTime >= duration - 0.35) this.onEnded();
    if (performance.now() - this.lastProgressAt >= PROGRESS_EVERY_MS) this.reportProgress();
  };

  private readonly onEnded = () => {
    if (this.completed) return;
    this.completed = true;
    this.beacon.push({ type: 'complete', video_id: this.item.video_id });
  };

  private reportProgress(): void {
    const { currentTime, duration } = this.video;
    if (!this.startupReported || !Number.isFinite(duration) || duration <= 0) return;
    this.lastProgressAt = performance.now();
    this.beacon.push({
      type: 'progress',
      video_id: this.item.video_id,
      position_ms: Math.round(currentTime * 1000),
      duration_ms: Math.round(duration * 1000),
    });
  }
}
