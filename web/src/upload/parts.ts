// Sends an upload's parts, three at a time, retrying transient failures.
import { ApiError, isReelUrl, putPart, registerParts } from '../api';
import type { PartReceipt, PartTarget, UploadSession } from '../types';

const PARALLEL = 3;
const ATTEMPTS = 3;

async function sha256Hex(blob: Blob): Promise<string | undefined> {
  // Web Crypto exists only in secure contexts (https, localhost); the checksum is optional.
  if (!globalThis.crypto?.subtle) return undefined;
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function sliceFor(file: File, session: UploadSession, target: PartTarget): Blob {
  const start = (target.part_number - 1) * session.part_size;
  return file.slice(start, start + target.size_bytes);
}

function transient(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 0 || error.status === 429 || error.status >= 500);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sendOne(
  file: File,
  session: UploadSession,
  target: PartTarget,
  onProgress: (sent: number) => void,
): Promise<PartReceipt> {
  const body = sliceFor(file, session, target);
  const sha = await sha256Hex(body);
  for (let attempt = 1; ; attempt++) {
    try {
      return await putPart(target, body, { sha256Hex: sha, onProgress });
    } catch (error) {
      onProgress(0);
      if (attempt >= ATTEMPTS || !transient(error)) throw error;
      await sleep(500 * 2 ** attempt);
    }
  }
}

/**
 * Uploads every part target of the session; reports total bytes sent so far. Parts PUT to
 * presigned bucket URLs are registered with reel afterwards (reel's own URLs need no step).
 */
export async function uploadParts(
  file: File,
  session: UploadSession,
  onBytes: (sentBytes: number) => void,
): Promise<void> {
  const sent = new Map<number, number>();
  const report = () => onBytes([...sent.values()].reduce((sum, bytes) => sum + bytes, 0));
  const queue = [...session.parts];
  const direct: PartReceipt[] = [];

  async function worker(): Promise<void> {
    for (let target = queue.shift(); target; target = queue.shift()) {
      const part = target.part_number;
      const receipt = await sendOne(file, session, target, (bytes) => {
        sent.set(part, bytes);
        report();
      });
      sent.set(part, target.size_bytes);
      report();
      if (!isReelUrl(target.url)) direct.push(receipt);
    }
  }

  await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
  if (direct.length > 0) await registerParts(session.upload_id, direct);
}
