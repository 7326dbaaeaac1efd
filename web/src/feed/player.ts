// One feed video's player: hls.js on MSE (native HLS only where MSE is missing), started on the
// lowest rung with conservative ABR, plus the playback telemetry for that video.
import Hls from 'hls.js/light';
import type { Beacon } from '../beacon';
import type { ReadyVideo } from '../types';

/** Start low and step up cautiously; drop fast when the network weakens. */
const HLS_CONFIG: Partial<Hls['config']> = {
  startLevel: 0, // the lowest rung: fastest first frame on any network
  capLevelToPlayerSize: true,
  abrEwmaDefaultEstimate: 500_000, // assume a weak link until measured
  abrEwmaFastVoD: 2, // react to a slowdown within about two seconds of samples
  abrEwmaSlowVoD: 8,
  abrBandWidthFactor: 0.8, // switch down when the estimate falls below 1.25× the rung's bitrate
  abrBandWidthUpFactor: 0.5, // switch up only with twice the next rung's bitrate
  abrMaxWithRealBitrate: true,
  maxBufferLength: 10, // short videos: keep the buffer (and wasted bytes on swipe) small
  maxMaxBufferLength: 20,
  backBufferLength: 10,
};

const PROGRESS_EVERY_MS = 5000;

export class Player {
  private hls: Hls | null = null;
  private attached = false;
  private playRequestedAt: number | null = null;
  private startupReported = false;
  private waitingSince: number | null = null;
  private completed = false;
  private lastProgressAt = 0;

  constructor(
    readonly video: HTMLVideoElement,
    private readonly item: ReadyVideo,
    private readonly beacon: Beacon,
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
    if (Hls.isSupported()) {
      this.hls = new Hls(HLS_CONFIG);
      this.hls.loadSource(url);
      this.hls.attachMedia(this.video);
    } else {
      this.video.src = url; // Safari on iOS without MSE: the platform player does ABR
    }
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
