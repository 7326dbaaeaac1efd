// reel's HTTP API client: one function per endpoint the web app calls.
import { getToken } from './token';
import type {
  ApiErrorBody,
  FeedPage,
  OpsVideo,
  PartReceipt,
  PartTarget,
  PlaybackEvent,
  UploadSession,
  VideoView,
} from './types';

/** The API lives on the same origin that serves the app (`reel serve`, or Vite's dev proxy). */
export const apiBase = location.origin;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as ApiErrorBody;
    return new ApiError(response.status, body.error.code, body.error.message, body.error.details);
  } catch {
    return new ApiError(response.status, 'http_' + response.status, text || response.statusText);
  }
}

async function request(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<Response> {
  const headers: Record<string, string> = { ...authHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(apiBase + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    ...init,
  });
  if (!response.ok) throw await errorFrom(response);
  return response;
}

async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
  return (await (await request(method, path, body)).json()) as T;
}

// --- uploads ---

export function createUpload(file: File): Promise<UploadSession> {
  return json('POST', '/v1/videos/uploads', {
    filename: file.name,
    content_type: file.type || 'application/octet-stream',
    size_bytes: file.size,
  });
}

/** A part URL on reel itself needs our bearer token; anything else is a presigned bucket URL. */
export function isReelUrl(url: string): boolean {
  return url.startsWith(apiBase + '/');
}

export interface PutPartOptions {
  sha256Hex?: string;
  onProgress?: (sentBytes: number) => void;
}

/**
 * PUTs one part with XMLHttpRequest (fetch cannot report upload progress). Resolves with the
 * receipt: reel answers it as JSON; a bucket answers with an `ETag` header.
 */
export function putPart(target: PartTarget, body: Blob, options: PutPartOptions = {}): Promise<PartReceipt> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(target.method || 'PUT', target.url);
    for (const [name, value] of Object.entries(target.headers ?? {})) xhr.setRequestHeader(name, value);
    const reel = isReelUrl(target.url);
    if (reel) {
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      if (options.sha256Hex) xhr.setRequestHeader('x-reel-checksum-sha256', options.sha256Hex);
    }
    xhr.upload.onprogress = (event) => options.onProgress?.(event.loaded);
    xhr.onerror = () => reject(new ApiError(0, 'network_error', `part ${target.part_number}: network error`));
    xhr.onload = () => {
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(xhrError(xhr, target.part_number));
      } else if (reel) {
        resolve(JSON.parse(xhr.responseText) as PartReceipt);
      } else {
        const etag = xhr.getResponseHeader('etag');
        if (!etag) reject(new ApiError(0, 'missing_etag', `part ${target.part_number}: bucket sent no ETag (CORS ExposeHeaders?)`));
        else resolve({ part_number: target.part_number, etag, sha256: options.sha256Hex });
      }
    };
    xhr.send(body);
  });
}

function xhrError(xhr: XMLHttpRequest, part: number): ApiError {
  try {
    const body = JSON.parse(xhr.responseText) as ApiErrorBody;
    return new ApiError(xhr.status, body.error.code, `part ${part}: ${body.error.message}`, body.error.details);
  } catch {
    return new ApiError(xhr.status, 'http_' + xhr.status, `part ${part}: HTTP ${xhr.status}`);
  }
}

export function registerParts(uploadId: string, parts: PartReceipt[]): Promise<unknown> {
  return json('POST', `/v1/videos/uploads/${uploadId}/parts`, { parts });
}

export function completeUpload(uploadId: string): Promise<{ video_id: string; status: string }> {
  return json('POST', `/v1/videos/uploads/${uploadId}/complete`);
}

// --- videos and feed ---

export interface VideoPoll {
  video: VideoView;
  /** `Retry-After` in milliseconds, when the server sent one. */
  retryAfterMs: number | null;
}

export async function getVideo(videoId: string): Promise<VideoPoll> {
  const response = await request('GET', `/v1/videos/${encodeURIComponent(videoId)}`);
  const retryAfter = Number(response.headers.get('retry-after'));
  return {
    video: (await response.json()) as VideoView,
    retryAfterMs: retryAfter > 0 ? retryAfter * 1000 : null,
  };
}

export function getFeed(cursor: string | null, limit = 10, inlinePlaylists = false): Promise<FeedPage> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set('cursor', cursor);
  if (inlinePlaylists) query.set('inline_playlists', 'true');
  return json('GET', `/v1/feed/videos?${query}`);
}

/** Sends a batch of playback events; `keepalive` lets the last batch outlive the page. */
export async function sendPlaybackEvents(events: PlaybackEvent[], keepalive = false): Promise<void> {
  await request('POST', '/v1/playback/events', { events }, { keepalive });
}

// --- ops ---

export async function opsVideos(status: 'failed' | 'processing'): Promise<OpsVideo[]> {
  const body = await json<{ videos: OpsVideo[] }>('GET', `/v1/ops/videos?status=${status}`);
  return body.videos;
}

export function reprocess(videoId: string): Promise<{ video_id: string; generation: number; status: string }> {
  return json('POST', `/v1/ops/videos/${encodeURIComponent(videoId)}/reprocess`);
}

export async function metricsText(): Promise<string> {
  return (await request('GET', '/metrics')).text();
}
