// Runs a throwaway `reel serve` (SQLite + local objects in a temp dir) and talks to its API.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { eventually, sleep } from './harness.mjs';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function startReel({ binary, workDir, webDir, logPath, env: extra = {} }) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    REEL_SERVER__BIND: `127.0.0.1:${port}`,
    REEL_SERVER__PUBLIC_URL: base,
    REEL_SERVER__WEB_DIR: webDir,
    REEL_DATABASE__URL: `sqlite://${join(workDir, 'reel.db')}`,
    REEL_STORAGE__LOCAL_ROOT: join(workDir, 'objects'),
    REEL_AUTH__JWT_SECRET: 'e2e-secret-at-least-32-bytes-long-' + port,
    REEL_PIPELINE__LADDER__SEGMENT_SECONDS: '1',
    REEL_PIPELINE__WORK_DIR: join(workDir, 'work'),
    REEL_UPLOADS__PART_SIZE_BYTES: String(5 * 1024 * 1024),
    ...extra,
  };
  const log = createWriteStream(logPath);
  const child = spawn(binary, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? code));
  await eventually('reel to answer /healthz', async () => {
    if (exited !== null) throw new Error(`reel exited (${exited}); see ${logPath}`);
    return (await fetch(`${base}/healthz`)).ok;
  }, { timeoutMs: 60_000 });

  const token = (user, ...flags) =>
    execFileSync(binary, ['token', '--user', user, ...flags], { env, encoding: 'utf8' }).trim();

  async function stop() {
    if (exited !== null) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 100 && exited === null; i++) await sleep(100);
    if (exited === null) child.kill('SIGKILL');
    log.end();
  }
  return { base, token, stop, logPath };
}

/** A small HTTP client for test setup (uploads that do not go through the UI). */
export function apiClient(base, token) {
  async function call(method, path, body, headers = {}) {
    const response = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body instanceof Uint8Array ? body : body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} → ${response.status}: ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  }

  async function upload(path, { contentType = 'video/mp4' } = {}) {
    const bytes = readFileSync(path);
    const session = await call('POST', '/v1/videos/uploads', {
      filename: path.split('/').pop(),
      content_type: contentType,
      size_bytes: statSync(path).size,
    });
    for (const part of session.parts) {
      const start = (part.part_number - 1) * session.part_size;
      const chunk = new Uint8Array(bytes.subarray(start, start + part.size_bytes));
      const response = await fetch(part.url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, ...part.headers }, body: chunk });
      if (!response.ok) throw new Error(`PUT part ${part.part_number} → ${response.status}`);
    }
    const done = await call('POST', `/v1/videos/uploads/${session.upload_id}/complete`);
    return done.video_id;
  }

  /** Waits until the video is ready (or fails the check when it fails). */
  async function waitReady(videoId, timeoutMs = 180_000) {
    return eventually(`video ${videoId} to be ready`, async () => {
      const video = await call('GET', `/v1/videos/${videoId}`);
      if (video.status === 'failed') throw Object.assign(new Error(`video ${videoId} failed: ${video.failed_reason}`), { fatal: true });
      return video.status === 'ready' ? video : null;
    }, { timeoutMs, everyMs: 500 });
  }

  return { call, upload, waitReady };
}
