// Shapes of reel's HTTP API (see API-CONTRACT.md). Only the fields the web app reads.

export interface ApiErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface PartTarget {
  part_number: number;
  size_bytes: number;
  method: string;
  url: string;
  headers: Record<string, string>;
}

export interface UploadSession {
  upload_id: string;
  status: 'created' | 'uploading' | 'completed' | 'aborted' | 'expired';
  part_size: number;
  part_count: number;
  video_id: string | null;
  parts: PartTarget[];
}

export interface PartReceipt {
  part_number: number;
  etag: string;
  sha256?: string;
}

export interface Rendition {
  profile: string;
  width: number;
  height: number;
  bitrate_kbps: number;
  codecs: string;
}

interface VideoBase {
  video_id: string;
  creator_id: string;
  created_at: string;
}

export interface ReadyVideo extends VideoBase {
  status: 'ready';
  published_at: string;
  duration_ms: number;
  width: number;
  height: number;
  playback_manifest_url: string;
  thumbnail_url: string | null;
  renditions: Rendition[];
}

export interface ProcessingVideo extends VideoBase {
  status: 'processing';
  stage: 'probe' | 'transcode' | 'publish_ready' | null;
  elapsed_ms: number;
  poll_after_ms: number;
  thumbnail_url: string | null;
  /** The first start-rung segment is stored: the creator can already watch it. */
  playable: boolean;
  /** The preview master (growing `EVENT` playlists), once playable. */
  playback_manifest_url?: string;
}

export interface FailedVideo extends VideoBase {
  status: 'failed';
  failed_reason: string;
  retryable: boolean;
}

export type VideoView = ReadyVideo | ProcessingVideo | FailedVideo;

export interface PrefetchObject {
  kind: 'master' | 'playlist' | 'init' | 'segment';
  url: string;
  bytes: number;
  audio: boolean;
}

export interface PrefetchHint {
  video_id: string;
  manifest_url: string;
  init_url: string;
  first_segment_url: string;
  /** Every object the start rung's first frame needs, in fetch order. */
  objects: PrefetchObject[];
  prefetch_bytes_total: number;
}

export interface InlinePlaylist {
  video_id: string;
  url: string;
  text: string;
}

export interface FeedPage {
  items: VideoView[];
  next_cursor: string | null;
  prefetch_cap: number;
  prefetch: PrefetchHint[];
  inline_playlists?: InlinePlaylist[];
}

/** What a player needs: the video and where its master is. */
export interface Playable {
  video_id: string;
  playback_manifest_url: string;
}

export interface OpsVideo {
  video_id: string;
  creator_id: string;
  status: string;
  generation: number;
  failed_reason: string | null;
  retryable: boolean | null;
  stage: string | null;
  stage_status: string | null;
  attempts: number | null;
  last_error: string | null;
  value_score: number | null;
  created_at: string;
  age_ms: number;
  processing_ms: number | null;
}

export type PlaybackEvent =
  | { type: 'startup'; video_id: string; startup_ms: number }
  | { type: 'rebuffer'; video_id: string; duration_ms: number }
  | { type: 'progress'; video_id: string; position_ms: number; duration_ms: number }
  | { type: 'complete'; video_id: string }
  | { type: 'support_click'; video_id: string };
