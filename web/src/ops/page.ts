// The Ops page (admin token): stuck and failed videos with one-click Reprocess, and pipeline
// latency percentiles computed from `/metrics`.
import { ApiError, metricsText, opsVideos, reprocess } from '../api';
import { formatMs, h } from '../dom';
import type { OpsVideo } from '../types';
import { mergeHistograms, parseHistograms, quantile, type Histogram } from './metrics';

export function renderOps(view: HTMLElement): void {
  const body = h('div', { class: 'ops-body' }, h('p', {}, 'loading…'));
  const refresh = h('button', { type: 'button', id: 'ops-refresh' }, 'Refresh');
  const load = () => void loadOps(body, load);
  refresh.addEventListener('click', load);
  view.replaceChildren(h('section', { class: 'page ops-page' }, h('h1', {}, 'Ops ', refresh), body));
  load();
}

async function loadOps(body: HTMLElement, reload: () => void): Promise<void> {
  const [failed, processing, metrics] = await Promise.allSettled([
    opsVideos('failed'),
    opsVideos('processing'),
    metricsText(),
  ]);
  body.replaceChildren(
    h('h2', {}, 'Failed'),
    videosTable(failed, reload, 'ops-failed'),
    h('h2', {}, 'Processing'),
    videosTable(processing, reload, 'ops-processing'),
    h('h2', {}, 'Pipeline latency'),
    metrics.status === 'fulfilled' ? latencyTable(metrics.value) : errorText(metrics.reason),
  );
}

function errorText(error: unknown): HTMLElement {
  const hint = error instanceof ApiError && (error.status === 401 || error.status === 403) ? ' (an admin token is needed)' : '';
  return h('p', { class: 'error' }, `${error instanceof Error ? error.message : String(error)}${hint}`);
}

function videosTable(result: PromiseSettledResult<OpsVideo[]>, reload: () => void, id: string): HTMLElement {
  if (result.status === 'rejected') return errorText(result.reason);
  if (result.value.length === 0) return h('p', { class: 'empty', id }, 'none');
  const head = h('tr', {}, ...['video', 'creator', 'reason / last error', 'stage', 'attempts', 'age', ''].map((t) => h('th', {}, t)));
  return h('table', { class: 'ops-table', id }, h('thead', {}, head), h('tbody', {}, ...result.value.map((v) => videoRow(v, reload))));
}

function videoRow(video: OpsVideo, reload: () => void): HTMLElement {
  const reason = video.failed_reason ?? video.last_error ?? '';
  const retry = video.retryable === null ? '' : video.retryable ? ' · retryable' : ' · not retryable';
  const stage = [video.stage, video.stage_status].filter(Boolean).join(' / ') || '–';
  return h(
    'tr',
    { 'data-video-id': video.video_id },
    h('td', { class: 'mono' }, video.video_id, h('br'), h('small', {}, `generation ${video.generation}`)),
    h('td', {}, video.creator_id),
    h('td', { class: 'reason' }, reason + (video.status === 'failed' ? retry : '')),
    h('td', {}, stage),
    h('td', {}, String(video.attempts ?? '–')),
    h('td', {}, formatMs(video.age_ms)),
    h('td', {}, reprocessButton(video, reload)),
  );
}

function reprocessButton(video: OpsVideo, reload: () => void): HTMLElement {
  const result = h('span', { class: 'result' });
  const button = h('button', { type: 'button', class: 'reprocess', disabled: video.status === 'processing' }, 'Reprocess');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const answer = await reprocess(video.video_id);
      result.textContent = `queued as generation ${answer.generation}`;
      setTimeout(reload, 1500);
    } catch (error) {
      result.textContent = error instanceof Error ? error.message : String(error);
      button.disabled = false;
    }
  });
  return h('span', {}, button, ' ', result);
}

const LATENCIES = ['ingest_to_complete_ms', 'complete_to_ready_ms', 'first_play_startup_ms'];

function latencyRows(text: string): Histogram[] {
  const all = parseHistograms(text);
  const rows = LATENCIES.map((name) => mergeHistograms(name, {}, all.filter((hist) => hist.name === name)));
  const stages = [...new Set(all.filter((hist) => hist.name === 'pipeline_stage_ms').map((hist) => hist.labels.stage))];
  for (const stage of stages.sort()) {
    const parts = all.filter((hist) => hist.name === 'pipeline_stage_ms' && hist.labels.stage === stage);
    rows.push(mergeHistograms('pipeline_stage_ms', { stage }, parts));
  }
  return rows;
}

function latencyTable(text: string): HTMLElement {
  const head = h('tr', {}, ...['metric', 'count', 'p50', 'p90', 'p99'].map((t) => h('th', {}, t)));
  const rows = latencyRows(text).map((hist) => {
    const label = hist.labels.stage ? `${hist.name}{stage="${hist.labels.stage}"}` : hist.name;
    return h(
      'tr',
      { 'data-metric': label },
      h('td', { class: 'mono' }, label),
      h('td', {}, String(hist.count)),
      ...[0.5, 0.9, 0.99].map((q) => h('td', { class: 'quantile' }, formatMs(quantile(hist, q)))),
    );
  });
  return h('table', { class: 'ops-table', id: 'ops-latency' }, h('thead', {}, head), h('tbody', {}, ...rows));
}
