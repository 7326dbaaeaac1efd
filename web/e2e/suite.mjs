// The end-to-end checks, in order: uploads through the UI, the feed (playback, capped prefetch,
// swipe), the processing placeholder, Ops (failed video, Reprocess, latency percentiles).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { makeClips } from './clips.mjs';
import { assert, check, eventually, sleep } from './harness.mjs';
import { recordNetwork } from './network.mjs';
import { apiClient } from './reel.mjs';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function runSuite({ reel, chromium: executablePath, workDir, artifacts }) {
  const clipDir = join(workDir, 'clips');
  mkdirSync(clipDir);
  const clips = makeClips(clipDir);
  const tokens = { alice: reel.token('alice'), bob: reel.token('bob'), admin: reel.token('ops', '--admin') };
  const t = {
    reel,
    clips,
    tokens,
    artifacts,
    alice: apiClient(reel.base, tokens.alice),
    bob: apiClient(reel.base, tokens.bob),
    shot: (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) }),
  };

  // Other creators' videos, uploaded through the API so the feed has something to prefetch.
  t.feedIds = [];
  await check('setup: 3 portrait clips uploaded by another creator through the API', async () => {
    for (const clip of clips.feed) t.feedIds.push(await t.bob.upload(clip));
  });

  // A fresh profile (--user-data-dir) per run; Playwright passes --headless.
  const profile = mkdtempSync(join(tmpdir(), 'reel-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 420, height: 860 },
  });
  t.context = context;
  t.net = recordNetwork(context);
  t.pageErrors = [];
  context.on('weberror', (error) => t.pageErrors.push(String(error.error())));
  try {
    await uploadChecks(t);
    await feedChecks(t);
    await placeholderCheck(t);
    await opsChecks(t);
    await check('/ redirects to /feed', async () => {
      const page = await context.newPage();
      await page.goto(`${reel.base}/`);
      await page.waitForURL(`${reel.base}/feed`, { timeout: 10_000 });
      await page.close();
    });
    await check('no uncaught errors in the pages', async () => {
      assert(t.pageErrors.length === 0, `page errors: ${t.pageErrors.join(' | ')}`);
    });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// --- Upload page ---

async function uploadChecks(t) {
  const { reel, clips, tokens, net } = t;
  const page = await t.context.newPage();
  t.uploadPage = page;
  const card = page.locator('.upload-card').first();

  await check('upload page: a clip goes created → uploading → processing → ready', async () => {
    await page.goto(`${reel.base}/upload?token=${tokens.alice}`);
    assert(new URL(page.url()).search === '', `?token= should be removed from the address bar: ${page.url()}`);
    await page.setInputFiles('#upload-file', clips.big);
    await page.click('#upload-start');
    await page.waitForSelector('.upload-card[data-state="ready"], .upload-card[data-state="failed"]', { timeout: 180_000 });
    const state = await card.getAttribute('data-state');
    assert(state === 'ready', `ended ${state}: ${await card.innerText()}`);
    const history = await card.getAttribute('data-history');
    assert(history === 'created,uploading,processing,ready', `states shown: ${history}`);
    const href = await card.locator('a.watch').getAttribute('href');
    t.uiVideoId = new URLSearchParams(href.split('?')[1]).get('video');
    assert(t.uiVideoId, `the ready card links to the feed: ${href}`);
  });

  await check('upload page: 3 parts PUT at most 3 at a time, each with x-reel-checksum-sha256', async () => {
    const puts = net.all().filter((entry) => entry.method === 'PUT' && /\/parts\/\d+$/.test(entry.path));
    assert(puts.length === 3, `expected 3 part PUTs (12 MB, 5 MiB parts), saw ${puts.length}`);
    for (const put of puts) {
      const sha = put.request.headers()['x-reel-checksum-sha256'];
      assert(/^[0-9a-f]{64}$/.test(sha ?? ''), `part ${put.path} sent checksum ${sha}`);
    }
    const inFlight = net.maxPutsInFlight();
    assert(inFlight >= 2 && inFlight <= 3, `parts in flight at once: ${inFlight}`);
  });

  await check('upload page: a text file named .mp4 ends failed with its reason shown', async () => {
    await page.setInputFiles('#upload-file', clips.notVideo);
    await page.click('#upload-start');
    await page.waitForSelector('.upload-card[data-state="failed"]', { timeout: 120_000 });
    const failedCard = page.locator('.upload-card[data-state="failed"]').first();
    const text = await failedCard.locator('.error').innerText();
    t.failedVideoId = await failedCard.getAttribute('data-video-id');
    assert(t.failedVideoId, 'the failed card names its video');
    const video = await t.alice.call('GET', `/v1/videos/${t.failedVideoId}`);
    assert(video.status === 'failed', `API status ${video.status}`);
    assert(text.includes(`Failed: ${video.failed_reason}`), `shown "${text}", API reason "${video.failed_reason}"`);
    await t.shot(page, 'upload');
  });

  await check("upload page: the creator's own video plays on the page (from its start, as soon as playable)", async () => {
    const played = await eventually('the own video to show a frame', () =>
      page.evaluate(() => {
        const video = document.querySelector('.upload-card[data-state="ready"] video.own-preview');
        return video && video.currentTime > 0.3 && video.videoWidth > 0 ? video.closest('.upload-card').dataset.playable : null;
      }), { timeoutMs: 30_000 });
    assert(played === 'true', `card marked playable: ${played}`);
  });
  await page.close(); // its player would otherwise keep fetching beside the feed checks
}

// --- Feed ---

async function feedChecks(t) {
  const { reel, tokens, net } = t;
  await check('setup: every feed clip is ready', async () => {
    for (const id of t.feedIds) await t.bob.waitReady(id);
  });

  const page = await t.context.newPage();
  const origin = () => net.origin().filter((entry) => entry.page === page);
  const becameCurrent = new Map(); // video id → when it became the current cell
  const activeVideo = (selector = '.cell[data-active] video') =>
    page.evaluate((sel) => {
      const video = document.querySelector(sel);
      if (!video) return null;
      const cell = video.closest('.cell');
      return { id: cell.dataset.videoId, time: video.currentTime, width: video.videoWidth, paused: video.paused, startupMs: video.dataset.startupMs };
    }, selector);
  let feed;

  await check('feed: the first video plays (currentTime advances, a frame is decoded)', async () => {
    const feedResponse = page.waitForResponse((r) => r.url().includes('/v1/feed/videos'), { timeout: 30_000 });
    feedResponse.catch(() => undefined); // awaited below; never an unhandled rejection
    const opened = Date.now();
    await page.goto(`${reel.base}/feed?token=${tokens.alice}`);
    const response = await feedResponse;
    assert(response.ok(), `GET /v1/feed/videos answered ${response.status()}: ${(await response.text()).slice(0, 200)}`);
    feed = await response.json();
    assert(feed.items.length >= 4, `feed has ${feed.items.length} items`);
    assert(feed.items[0].status === 'ready', `first item is ${feed.items[0].status}`);
    becameCurrent.set(feed.items[0].video_id, opened);
    await page.waitForFunction(() => {
      const video = document.querySelector('.cell[data-active] video');
      return video && video.currentTime > 1 && video.videoWidth > 0 && !video.paused;
    }, null, { timeout: 30_000 });
    const first = await activeVideo();
    assert(first.id === feed.items[0].video_id, `active cell ${first.id}, expected ${feed.items[0].video_id}`);
    const later = await eventually('currentTime to advance', async () => {
      const now = await activeVideo();
      return now.time > first.time + 0.3 ? now : null;
    }, { timeoutMs: 5000 });
    console.log(`      first video ${later.width}px wide, startup ${later.startupMs} ms, t=${later.time.toFixed(2)} s`);
    await t.shot(page, 'feed');
  });

  await check('feed: prefetch warms ≤ prefetch_cap upcoming videos, only the objects prefetch[] names', async () => {
    assert(feed, 'the feed loaded');
    const cap = feed.prefetch_cap;
    assert(Number.isInteger(cap) && cap >= 1, `prefetch_cap ${cap}`);
    assert(feed.prefetch.length >= 1 && feed.prefetch.length <= cap, `prefetch[] has ${feed.prefetch.length} entries, cap ${cap}`);
    await sleep(2000); // let the low-priority warm-up finish
    const current = feed.items[0].video_id;
    const warmed = new Map();
    for (const entry of origin().filter((e) => e.videoId !== current)) {
      warmed.set(entry.videoId, [...(warmed.get(entry.videoId) ?? []), entry.url]);
    }
    assert(warmed.size <= cap, `${warmed.size} non-current videos fetched, cap ${cap}: ${[...warmed.keys()]}`);
    for (const hint of feed.prefetch) {
      assert(/seg-0*1\.m4s$/.test(hint.first_segment_url), `hint's first segment ${hint.first_segment_url}`);
      const allowed = hint.objects.map((object) => object.url);
      for (const url of [hint.manifest_url, hint.init_url, hint.first_segment_url]) assert(allowed.includes(url), `objects[] lacks ${url}`);
      const sum = hint.objects.reduce((total, object) => total + object.bytes, 0);
      assert(sum === hint.prefetch_bytes_total && sum > 0, `prefetch_bytes_total ${hint.prefetch_bytes_total}, objects sum to ${sum}`);
      const fetched = warmed.get(hint.video_id) ?? [];
      for (const url of allowed) assert(fetched.includes(url), `prefetch of ${hint.video_id} missed ${url}`);
      for (const url of fetched) assert(allowed.includes(url), `non-current ${hint.video_id} fetched ${url}, not in prefetch[]`);
    }
    for (const id of warmed.keys()) assert(feed.prefetch.some((h) => h.video_id === id), `${id} fetched but not in prefetch[]`);
  });

  await check('feed: ArrowDown pauses the previous video and the next one starts at once', async () => {
    assert(feed, 'the feed loaded');
    const previous = await activeVideo();
    const swiped = Date.now();
    await page.keyboard.press('ArrowDown');
    const next = await eventually('the next video to play', async () => {
      const now = await activeVideo();
      return now && now.id !== previous.id && now.time > 0.5 && !now.paused ? now : null;
    }, { timeoutMs: 15_000 });
    becameCurrent.set(next.id, swiped);
    const old = await activeVideo(`.cell[data-video-id="${previous.id}"] video`);
    assert(old.paused, 'the previous video is paused');
    assert(next.id === feed.items[1].video_id, `now playing ${next.id}, expected the second item`);
    console.log(`      next video started in ${next.startupMs} ms (prefetched: ${feed.prefetch.some((h) => h.video_id === next.id)})`);
  });

  await check("feed: the hints name every object hls.js requests before the second video's first frame", async () => {
    assert(feed, 'the feed loaded');
    const second = feed.items[1].video_id;
    const hint = feed.prefetch.find((h) => h.video_id === second);
    assert(hint, `prefetch[] has no hint for the second item ${second}`);
    const shownAt = Number(await page.evaluate((id) => document.querySelector(`.cell[data-video-id="${id}"] video`)?.dataset.firstFrameAt, second));
    assert(shownAt > 0, 'the second video recorded its first frame');
    // `firstFrameAt` is taken in the requestVideoFrameCallback, which runs at the display refresh
    // after the frame is presented (up to ~17 ms at 60 Hz): a request seen within that window may
    // already follow the frame (hls.js asks for the next rung's playlist as the first frame lands).
    const REFRESH_MS = 17;
    const before = origin().filter((e) => e.videoId === second && e.at < shownAt - REFRESH_MS).map((e) => e.url);
    assert(before.length > 0, 'requests for the second video were recorded');
    const hinted = hint.objects.map((object) => object.url);
    const missing = [...new Set(before)].filter((url) => !hinted.includes(url));
    const timeline = origin().filter((e) => e.videoId === second).map((e) => `${e.url.split('/hls/')[1]}@${e.at - shownAt}ms`);
    assert(missing.length === 0, `requested before the first frame but not hinted: ${missing.join(', ')} (timeline: ${timeline.join(', ')}; hinted: ${hinted.map((u) => u.split('/hls/')[1]).join(', ')})`);
    const after = origin().filter((e) => e.videoId === second && e.at >= shownAt).map((e) => `${e.url.split('/hls/')[1]}@+${e.at - shownAt}ms`);
    console.log(`      ${new Set(before).size} objects before the first frame, all among ${hinted.length} hinted (${hint.prefetch_bytes_total} B); next after it: ${after.slice(0, 3).join(', ')}`);
  });

  await check('feed: no segment after the first is fetched for a video before it is current', async () => {
    assert(feed, 'the feed loaded');
    await sleep(2000);
    const early = origin().filter((e) => e.segment !== null && e.segment > 1 && !(e.at >= (becameCurrent.get(e.videoId) ?? Infinity)));
    assert(early.length === 0, `fetched early: ${early.map((e) => e.url).join(', ')}`);
    const current = [...becameCurrent.keys()];
    const others = new Set(origin().filter((e) => !current.includes(e.videoId)).map((e) => e.videoId));
    assert(others.size <= feed.prefetch_cap, `${others.size} never-current videos fetched`);
  });

  await check('playback events: startup, progress and complete sent in batches, answered 202', async () => {
    assert(feed, 'the feed loaded');
    const [first, second] = [feed.items[0].video_id, feed.items[1].video_id];
    const seen = await eventually('startup, progress and complete events', async () => {
      const events = await beaconEvents(net);
      const has = (type, id) => events.some((e) => e.type === type && e.video_id === id && e.status === 202);
      return has('startup', first) && has('progress', first) && has('complete', second) ? events : null;
    }, { timeoutMs: 30_000, everyMs: 1000 });
    const startup = seen.find((e) => e.type === 'startup' && e.video_id === first);
    assert(startup.startup_ms > 0 && startup.startup_ms < 30_000, `startup_ms ${startup.startup_ms}`);
  });
  await page.close();
}

async function beaconEvents(net) {
  const events = [];
  for (const entry of net.all().filter((e) => e.method === 'POST' && e.path === '/v1/playback/events')) {
    const response = await entry.request.response().catch(() => null); // from a page closed since
    if (!response) continue;
    const body = JSON.parse(entry.request.postData() ?? '{}');
    for (const event of body.events ?? []) events.push({ ...event, status: response?.status() });
  }
  return events;
}

// --- Processing placeholder ---

async function placeholderCheck(t) {
  await check("feed: the viewer's own processing video is a placeholder, then plays when ready", async () => {
    const id = await t.alice.upload(t.clips.slow);
    const page = await t.context.newPage();
    await page.goto(`${t.reel.base}/feed?token=${t.tokens.alice}`);
    const cell = page.locator(`.cell[data-video-id="${id}"]`);
    await cell.locator('text=processing…').waitFor({ timeout: 15_000 });
    assert((await cell.getAttribute('data-status')) === 'processing', 'placeholder cell');
    await t.shot(page, 'feed-processing');
    const first = await page.waitForSelector(
      `.cell[data-video-id="${id}"][data-playable] video.preview, .cell[data-video-id="${id}"][data-status="ready"]`,
      { timeout: 180_000 },
    );
    const previewed = (await first.evaluate((el) => el.tagName)) === 'VIDEO';
    if (previewed) {
      await page.waitForFunction((videoId) => {
        const video = document.querySelector(`.cell[data-video-id="${videoId}"][data-status="processing"] video.preview`);
        return !video || (video.currentTime > 0.3 && video.videoWidth > 0);
      }, id, { timeout: 30_000 });
    }
    console.log(`      the placeholder ${previewed ? 'played the preview while processing' : 'went ready before it was seen playable'}`);
    await page.waitForSelector(`.cell[data-video-id="${id}"][data-status="ready"]`, { timeout: 180_000 });
    await page.waitForFunction((videoId) => {
      const video = document.querySelector(`.cell[data-video-id="${videoId}"] video`);
      return video && video.currentTime > 0.5 && video.videoWidth > 0;
    }, id, { timeout: 30_000 });
    await page.close();
  });
}

// --- Ops ---

async function opsChecks(t) {
  const page = await t.context.newPage();
  await page.setViewportSize({ width: 1100, height: 720 }); // Ops is a desktop table
  const row = () => page.locator(`#ops-failed tr[data-video-id="${t.failedVideoId}"]`);

  await check('ops: the failed upload is listed with its reason, stage, attempts and age', async () => {
    assert(t.failedVideoId, 'a failed video exists (upload check)');
    await page.goto(`${t.reel.base}/ops?token=${t.tokens.admin}`);
    await row().waitFor({ timeout: 15_000 });
    const reason = await row().locator('.reason').innerText();
    const video = await t.alice.call('GET', `/v1/videos/${t.failedVideoId}`);
    assert(reason.includes(video.failed_reason), `reason "${reason}" vs API "${video.failed_reason}"`);
  });

  await check('ops: pipeline latency percentiles computed from /metrics', async () => {
    const metric = page.locator('#ops-latency tr[data-metric="complete_to_ready_ms"]');
    await metric.waitFor({ timeout: 10_000 });
    await t.shot(page, 'ops');
    const cells = await metric.locator('td').allInnerTexts();
    assert(Number(cells[1]) >= 4, `complete_to_ready_ms count ${cells[1]}`);
    assert(cells.slice(2).every((text) => /\d/.test(text)), `p50/p90/p99: ${cells.slice(2)}`);
    const stages = await page.locator('#ops-latency tr[data-metric^="pipeline_stage_ms"]').count();
    assert(stages >= 3, `${stages} per-stage rows (probe, transcode, publish_ready)`);
  });

  await check('ops: Reprocess calls POST /v1/ops/videos/{id}/reprocess (202)', async () => {
    const answer = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/v1/ops/videos/${t.failedVideoId}/reprocess`));
    answer.catch(() => undefined); // awaited below; never an unhandled rejection
    await row().locator('button.reprocess').click();
    const response = await answer;
    assert(response.status() === 202, `reprocess answered ${response.status()}`);
    await row().locator('.result', { hasText: 'generation 2' }).waitFor({ timeout: 5000 });
  });
  await page.close();
}
