#!/usr/bin/env node
// Startup benchmark (issue 10): reel's web app and plain hls.js players on emulated 3G and 4G in
// Debian's headless Chromium, fresh profile per trial, medians over the trials of each cell.
//
//   node bench/startup/run.mjs                 # as root it apt-installs chromium when missing
//   BENCH_TRIALS=7 BENCH_NETWORKS=3g node bench/startup/run.mjs
//
// Setup: `cargo build --locked`, `npm run build` (web/dist), three generated 12 s 540×960 clips
// (noisy lavfi sources + a sine), two throwaway `reel serve` (SQLite + local objects): one with
// the default packaging (muxed audio), one with `pipeline.ladder.audio = "separate"`. Each gets
// the three clips through the API and waits until every ladder is complete. An ffmpeg-default
// ladder (360p + 540p, x264 and hls muxer defaults, fMP4 so reel's origin serves it) of the same
// clips is written into the first reel's object store and served by the same origin.
//
// Cells (every cell on every network):
// - app, inline on / off: reel's `/feed` (the app is loaded at `/upload` first, then the link is
//   throttled, then the app routes to `/feed?inline=1|0`, so the feed chunk, API calls, posters
//   and video all share the emulated link);
// - player, reel muxed / reel separate / ffmpeg default: a bare page with hls.js (full build,
//   default config) playing the first video's master; after its first frame it warms what the
//   feed's `prefetch[]` names for the next video (nothing for the ffmpeg ladder, which has no
//   hints); the "swipe" plays the next video's master in a new element.
//
// Per trial: first frame (play() → first requestVideoFrameCallback), stalls (`waiting`) in the
// 6 s after it, swipe at first frame + 6 s (ArrowDown in the app) → next first frame, bytes on
// the wire (CDP encodedDataLength) from throttling to the swipe, and bytes fetched before the
// swipe for each upcoming video. Prints Markdown tables and writes bench/startup/results.json.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiClient, startReel } from '../../web/e2e/reel.mjs';
import { eventually, sleep } from '../../web/e2e/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const webDir = join(repo, 'web');
const requireWeb = createRequire(join(webDir, 'package.json'));
const { chromium } = requireWeb('playwright-core');
const HLS_JS = requireWeb.resolve('hls.js/dist/hls.min.js');
const CHROMIUM = process.env.REEL_E2E_CHROMIUM ?? '/usr/bin/chromium';
const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const WATCH_MS = 6000;

const NETWORKS = {
  '3g': { latency: 150, downloadThroughput: 1.6e6 / 8, uploadThroughput: 0.75e6 / 8 },
  '4g': { latency: 60, downloadThroughput: 9e6 / 8, uploadThroughput: 3e6 / 8 },
};
const networks = (process.env.BENCH_NETWORKS ?? '3g,4g').split(',');
const CELLS = (process.env.BENCH_CELLS ?? 'app-inline,app-plain,player-muxed,player-separate,player-ffmpeg').split(',');

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

function run(cmd, args, cwd = repo) {
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
}

function makeClip(path, source, tone) {
  execFileSync('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `${source}=size=540x960:rate=30:duration=12,noise=alls=4:allf=t`,
    '-f', 'lavfi', '-i', `sine=frequency=${tone}:sample_rate=48000:duration=12`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '128k', '-shortest', path,
  ]);
  return path;
}

/** The ffmpeg-default ladder: x264 and hls muxer defaults, lowest rung first, audio muxed. */
function ffmpegLadder(clip, dir) {
  mkdirSync(dir, { recursive: true });
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-i', clip,
    '-filter_complex', '[0:v]split=2[a][b];[a]scale=360:640[v0];[b]scale=540:960[v1]',
    '-map', '[v0]', '-map', '0:a', '-map', '[v1]', '-map', '0:a',
    '-c:v', 'libx264', '-c:a', 'aac',
    '-f', 'hls', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
    '-var_stream_map', 'v:0,a:0,name:ff360p v:1,a:1,name:ff540p',
    '-master_pl_name', 'ffmaster.m3u8',
    '-hls_fmp4_init_filename', 'init.mp4',
    '-hls_segment_filename', join(dir, '%v', 'seg-%05d.m4s'),
    join(dir, '%v', 'index.m3u8'),
  ]);
}

async function waitLadder(client, videoId) {
  return eventually(`video ${videoId} with its whole ladder`, async () => {
    const video = await client.call('GET', `/v1/videos/${videoId}`);
    if (video.status === 'failed') throw Object.assign(new Error(`${videoId} failed: ${video.failed_reason}`), { fatal: true });
    return video.status === 'ready' && video.ladder_complete ? video : null;
  }, { timeoutMs: 900_000, everyMs: 1000 });
}

/** A page serving only the bare player (hls.js full build, default config). */
function playerServer() {
  const hls = readFileSync(HLS_JS, 'utf8');
  const html = `<!doctype html><meta charset="utf-8"><title>player</title>
<style>video{width:360px;height:640px;background:#000}</style><body>
<script>${hls}</script>
<script>
window.__play = (url, id) => {
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true; video.dataset.benchId = id;
  document.body.append(video);
  for (const old of window.__players ?? []) { old.video.pause(); old.hls.stopLoad(); }
  const hls = new Hls();
  window.__players = [{ video, hls }];
  hls.loadSource(url); hls.attachMedia(video);
  video.play().catch(() => {});
};
window.__warm = async (urls) => {
  for (const url of urls) { try { await (await fetch(url, { priority: 'low' })).arrayBuffer(); } catch {} }
};
</script>`;
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
    res.end(html);
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ server, url: `http://127.0.0.1:${server.address().port}/player.html` })));
}

/** Installed in every page before its scripts: first frames, stalls and swipes. */
function instrument() {
  const bench = (window.__bench = { frames: [], stalls: [], swipeAt: null });
  const idOf = (v) => v.closest?.('.cell')?.dataset.videoId ?? v.dataset.benchId ?? '?';
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    const video = this;
    if (video instanceof HTMLVideoElement && video.__benchPlayAt === undefined) {
      video.__benchPlayAt = performance.now();
      video.requestVideoFrameCallback(() => {
        const frame = performance.now();
        bench.frames.push({ id: idOf(video), play: video.__benchPlayAt, frame });
        let waitingAt = null;
        video.addEventListener('waiting', () => {
          if (!video.seeking && !video.paused) waitingAt = performance.now();
        });
        video.addEventListener('playing', () => {
          if (waitingAt !== null) bench.stalls.push({ id: idOf(video), start: waitingAt, end: performance.now() });
          waitingAt = null;
        });
      });
    }
    return play.apply(this, args);
  };
  addEventListener('keydown', () => (bench.swipeAt ??= performance.now()), true);
}

const median = (values) => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function trial({ cell, network, reels, player }) {
  const profile = mkdtempSync(join(tmpdir(), 'reel-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 420, height: 860 },
  });
  try {
    await context.addInitScript(instrument);
    const page = context.pages()[0] ?? (await context.newPage());
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const urls = new Map();
    const finished = [];
    let throttledAt = Infinity;
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
    cdp.on('Network.loadingFinished', (e) => finished.push({ url: urls.get(e.requestId) ?? '', bytes: e.encodedDataLength, at: Date.now() }));
    const throttle = async () => {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, ...NETWORKS[network] });
      throttledAt = Date.now();
    };

    const app = cell.startsWith('app');
    const reel = cell === 'player-separate' ? reels.separate : reels.muxed;
    let first;
    let next;
    if (app) {
      await page.goto(`${reel.base}/upload?token=${reel.viewerToken}`);
      await page.waitForSelector('#upload-file');
      await throttle();
      await page.evaluate((inline) => {
        history.pushState(null, '', `/feed?inline=${inline}`);
        dispatchEvent(new PopStateEvent('popstate'));
      }, cell === 'app-inline' ? '1' : '0');
    } else {
      await page.goto(player.url);
      await throttle();
      const ff = cell === 'player-ffmpeg';
      first = ff ? reel.ffmpegMasters[0] : reel.feed.items[0].playback_manifest_url;
      next = ff ? reel.ffmpegMasters[1] : reel.feed.items[1].playback_manifest_url;
      await page.evaluate(([url]) => window.__play(url, 'first'), [first]);
    }
    const frames = () => page.evaluate(() => window.__bench.frames);
    const [shown] = await eventually('the first frame', async () => {
      const f = await frames();
      return f.length >= 1 ? f : null;
    }, { timeoutMs: 60_000, everyMs: 50 });
    if (!app && cell !== 'player-ffmpeg') {
      const hint = reel.feed.prefetch.find((h) => h.video_id === reel.feed.items[1].video_id);
      await page.evaluate((warm) => void window.__warm(warm), hint.objects.map((o) => o.url));
    }
    const now = await page.evaluate(() => performance.now());
    await sleep(Math.max(0, shown.frame + WATCH_MS - now));
    const swipedAt = Date.now();
    if (app) await page.keyboard.press('ArrowDown');
    else await page.evaluate(([url]) => { window.__bench.swipeAt = performance.now(); window.__play(url, 'next'); }, [next]);
    const all = await eventually('the next first frame', async () => {
      const f = await frames();
      return f.length >= 2 ? f : null;
    }, { timeoutMs: 60_000, everyMs: 50 });
    const bench = await page.evaluate(() => window.__bench);
    const stalls = bench.stalls.filter((s) => s.id === shown.id && s.start <= shown.frame + WATCH_MS);
    const beforeSwipe = finished.filter((f) => f.at >= throttledAt && f.at <= swipedAt);
    const currentId = app ? shown.id : null;
    const perVideo = new Map();
    for (const f of beforeSwipe) {
      const m = /\/origin\/packaged\/([^/]+)\/hls\/(.*)$/.exec(new URL(f.url || 'http://x/').pathname);
      if (!m || m[2].endsWith('.jpg')) continue;
      const firstUrlVideo = app ? currentId : /\/packaged\/([^/]+)\//.exec(first)?.[1];
      if (m[1] === firstUrlVideo) continue;
      perVideo.set(m[1], (perVideo.get(m[1]) ?? 0) + f.bytes);
    }
    const upcoming = [...perVideo.values()];
    return {
      first_frame_ms: shown.frame - shown.play,
      stalls: stalls.length,
      stall_ms: stalls.reduce((t, s) => t + (s.end - s.start), 0),
      swipe_ms: all[1].frame - (bench.swipeAt ?? all[1].play),
      bytes_before_swipe: beforeSwipe.reduce((t, f) => t + f.bytes, 0),
      prefetched_videos: upcoming.length,
      bytes_per_upcoming: upcoming.length ? upcoming.reduce((a, b) => a + b, 0) / upcoming.length : 0,
    };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function main() {
  if (!existsSync(CHROMIUM)) {
    if (process.getuid?.() !== 0) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
    run('apt-get', ['install', '-y', '-qq', 'chromium']);
  }
  run('cargo', ['build', '--locked']);
  run('npm', ['run', 'build'], webDir);
  const binary = join(repo, 'target', 'debug', 'reel');
  const workDir = mkdtempSync(join(tmpdir(), 'reel-bench-startup-'));
  const clips = [
    makeClip(join(workDir, 'a.mp4'), 'testsrc2', 330),
    makeClip(join(workDir, 'b.mp4'), 'smptehdbars', 440),
    makeClip(join(workDir, 'c.mp4'), 'rgbtestsrc', 550),
  ];
  const started = [];
  const { server, url } = await playerServer();
  try {
    const reels = {};
    const instances = [['muxed', {}], ['separate', { REEL_PIPELINE__LADDER__AUDIO: 'separate' }]];
    for (const [name, env] of instances.filter(([name]) => name === 'muxed' || CELLS.includes('player-separate'))) {
      const dir = join(workDir, name);
      mkdirSync(dir);
      const reel = await startReel({
        binary,
        workDir: dir,
        webDir: join(webDir, 'dist'),
        logPath: join(dir, 'reel.log'),
        env: { REEL_PIPELINE__LADDER__SEGMENT_SECONDS: '4', ...env },
      });
      started.push(reel);
      const creator = apiClient(reel.base, reel.token('creator'));
      const ids = [];
      for (const clip of clips) {
        // SQLite on a loaded shared disk may answer "database is locked" (500): try again.
        ids.push(await eventually(`upload of ${clip}`, () => creator.upload(clip), { timeoutMs: 300_000, everyMs: 3000 }));
      }
      for (const id of ids) await waitLadder(creator, id);
      reel.viewerToken = reel.token('viewer');
      reel.feed = await apiClient(reel.base, reel.viewerToken).call('GET', '/v1/feed/videos?limit=10');
      reels[name] = reel;
      console.log(`reel ${name}: ${reel.base}, 3 videos ready`);
    }
    // The ffmpeg-default ladder of the clips behind the feed's first two videos, beside reel's own.
    const muxed = reels.muxed;
    const byClip = [...muxed.feed.items].reverse(); // uploaded a, b, c; the feed is newest first
    muxed.ffmpegMasters = [];
    for (const index of [2, 1]) {
      const id = byClip[index].video_id;
      const root = join(workDir, 'muxed', 'objects', 'packaged', id, 'hls');
      ffmpegLadder(clips[index], root);
      muxed.ffmpegMasters.push(`${muxed.base}/origin/packaged/${id}/hls/ffmaster.m3u8`);
    }
    const results = {};
    for (const network of networks) {
      for (let t = 0; t < TRIALS; t++) {
        for (const cell of CELLS) {
          const key = `${network} ${cell}`;
          try {
            const r = await trial({ cell, network, reels, player: { url } });
            (results[key] ??= []).push(r);
            console.log(`${key} #${t + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v)])))}`);
          } catch (error) {
            (results[key] ??= []).push({ error: String(error) });
            console.log(`${key} #${t + 1}: ERROR ${error}`);
          }
        }
      }
    }
    writeFileSync(join(here, 'results.json'), JSON.stringify({ trials: TRIALS, results }, null, 1));
    console.log('\n| network | cell | first frame (ms) | stalls in 6 s | swipe → first frame (ms) | KB before swipe | KB per upcoming video | trials ok |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [key, rows] of Object.entries(results)) {
      const ok = rows.filter((r) => !r.error);
      const m = (field) => median(ok.map((r) => r[field]));
      const [network, cell] = key.split(' ');
      console.log(`| ${network} | ${cell} | ${Math.round(m('first_frame_ms'))} | ${m('stalls')} | ${Math.round(m('swipe_ms'))} | ${Math.round(m('bytes_before_swipe') / 1000)} | ${Math.round(m('bytes_per_upcoming') / 1000)} | ${ok.length}/${rows.length} |`);
    }
  } finally {
    for (const reel of started) await reel.stop();
    server.close();
    if (!process.env.BENCH_KEEP) rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
