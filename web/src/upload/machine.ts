// The upload state machine: created → uploading → processing → ready | failed.
// `runUpload` drives one file through it and reports every state to a listener.
import { ApiError, completeUpload, createUpload, getVideo } from '../api';
import type { ReadyVideo } from '../types';
import { uploadParts } from './parts';

export type UploadState =
  | { kind: 'created'; uploadId: string; partCount: number; totalBytes: number }
  | { kind: 'uploading'; uploadId: string; sentBytes: number; totalBytes: number }
  | { kind: 'processing'; videoId: string; stage: string | null; elapsedMs: number; playbackUrl: string | null }
  | { kind: 'ready'; video: ReadyVideo }
  | { kind: 'failed'; reason: string; videoId: string | null; retryable: boolean | null };

export type StateKind = UploadState['kind'];

const NEXT: Record<StateKind, StateKind[]> = {
  created: ['uploading', 'failed'],
  uploading: ['uploading', 'processing', 'failed'],
  processing: ['processing', 'ready', 'failed'],
  ready: [],
  failed: [],
};

/** True when the machine may move from `from` to `to` (self-loops carry progress). */
export function canMove(from: StateKind | null, to: StateKind): boolean {
  return from === null ? to === 'created' || to === 'failed' : NEXT[from].includes(to);
}

const DEFAULT_POLL_MS = 1000;
const MAX_POLL_MS = 10_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

export async function runUpload(file: File, listener: (state: UploadState) => void): Promise<UploadState> {
  let current: StateKind | null = null;
  let videoId: string | null = null;
  const move = (state: UploadState): UploadState => {
    if (!canMove(current, state.kind)) throw new Error(`upload state ${current} → ${state.kind} is not allowed`);
    current = state.kind;
    listener(state);
    return state;
  };

  try {
    const session = await createUpload(file);
    const totalBytes = file.size;
    move({ kind: 'created', uploadId: session.upload_id, partCount: session.part_count, totalBytes });
    move({ kind: 'uploading', uploadId: session.upload_id, sentBytes: 0, totalBytes });
    await uploadParts(file, session, (sentBytes) =>
      move({ kind: 'uploading', uploadId: session.upload_id, sentBytes, totalBytes }),
    );
    videoId = (await completeUpload(session.upload_id)).video_id;
    move({ kind: 'processing', videoId, stage: null, elapsedMs: 0, playbackUrl: null });
    return await pollUntilSettled(videoId, move);
  } catch (error) {
    return move({ kind: 'failed', reason: describe(error), videoId, retryable: null });
  }
}

/** Polls the video, waiting `poll_after_ms` (or `Retry-After`) between requests. */
async function pollUntilSettled(videoId: string, move: (state: UploadState) => UploadState): Promise<UploadState> {
  for (;;) {
    const { video, retryAfterMs } = await getVideo(videoId);
    switch (video.status) {
      case 'ready':
        return move({ kind: 'ready', video });
      case 'failed':
        return move({ kind: 'failed', reason: video.failed_reason, videoId, retryable: video.retryable });
      case 'processing': {
        const playbackUrl = video.playable ? (video.playback_manifest_url ?? null) : null;
        move({ kind: 'processing', videoId, stage: video.stage, elapsedMs: video.elapsed_ms, playbackUrl });
        const wait = video.poll_after_ms ?? retryAfterMs ?? DEFAULT_POLL_MS;
        await sleep(Math.min(Math.max(wait, 200), MAX_POLL_MS));
      }
    }
  }
}
