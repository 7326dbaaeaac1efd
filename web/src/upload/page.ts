// The Upload page: pick a file, watch it move through the state machine live, and watch the
// video itself as soon as it is playable (the growing preview, from its beginning).
import { Beacon } from '../beacon';
import { formatBytes, formatMs, h } from '../dom';
import { Player } from '../feed/player';
import { runUpload, type StateKind, type UploadState } from './machine';

const STEPS: StateKind[] = ['created', 'uploading', 'processing', 'ready'];

export function renderUpload(view: HTMLElement): void {
  const input = h('input', { type: 'file', id: 'upload-file', accept: 'video/*' });
  const button = h('button', { type: 'submit', id: 'upload-start' }, 'Upload');
  const list = h('div', { class: 'uploads', id: 'uploads' });
  const form = h('form', { class: 'upload-form' }, input, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = input.files?.[0];
    if (!file) return;
    input.value = '';
    const card = uploadCard(file);
    list.prepend(card.element);
    void runUpload(file, card.show);
  });
  view.replaceChildren(h('section', { class: 'page upload-page' }, h('h1', {}, 'Upload'), form, list));
}

interface Card {
  element: HTMLElement;
  show: (state: UploadState) => void;
}

function uploadCard(file: File): Card {
  const steps = h('ol', { class: 'steps' });
  const bar = h('progress', { max: 1, value: 0 });
  const detail = h('p', { class: 'detail' });
  const outcome = h('p', { class: 'outcome' });
  const element = h(
    'article',
    { class: 'upload-card', 'data-state': 'idle', 'data-history': '' },
    h('h2', {}, `${file.name} · ${formatBytes(file.size)}`),
    steps,
    bar,
    detail,
    outcome,
  );
  const history: StateKind[] = [];
  let preview: Player | null = null;
  const watch = (videoId: string, url: string) => {
    if (preview) return;
    const video = h('video', { class: 'own-preview', playsinline: true, controls: true, preload: 'none' });
    video.muted = true;
    element.append(video);
    element.dataset.playable = 'true';
    preview = new Player(video, { video_id: videoId, playback_manifest_url: url }, new Beacon(), { startPosition: 0 });
    preview.play();
  };

  const show = (state: UploadState) => {
    if (history[history.length - 1] !== state.kind) history.push(state.kind);
    element.dataset.state = state.kind;
    element.dataset.history = history.join(',');
    const videoId = state.kind === 'ready' ? state.video.video_id : 'videoId' in state ? state.videoId : null;
    if (videoId) element.dataset.videoId = videoId;
    steps.replaceChildren(...stepItems(state.kind, history));
    bar.value = progressOf(state);
    detail.textContent = detailOf(state);
    outcome.replaceChildren(...outcomeOf(state));
    if (state.kind === 'processing' && state.playbackUrl) watch(state.videoId, state.playbackUrl);
    if (state.kind === 'ready') watch(state.video.video_id, state.video.playback_manifest_url);
  };
  return { element, show };
}

function stepItems(kind: StateKind, history: StateKind[]): HTMLElement[] {
  const names = kind === 'failed' ? [...STEPS.filter((step) => history.includes(step)), 'failed' as const] : STEPS;
  return names.map((step) =>
    h('li', { class: step === kind ? `current ${step}` : history.includes(step) ? 'done' : 'todo' }, step),
  );
}

function progressOf(state: UploadState): number {
  switch (state.kind) {
    case 'created':
      return 0;
    case 'uploading':
      return state.totalBytes > 0 ? state.sentBytes / state.totalBytes : 1;
    default:
      return 1;
  }
}

function detailOf(state: UploadState): string {
  switch (state.kind) {
    case 'created':
      return `upload ${state.uploadId}: ${state.partCount} part(s)`;
    case 'uploading':
      return `${formatBytes(state.sentBytes)} of ${formatBytes(state.totalBytes)} sent`;
    case 'processing':
      return `processing… stage: ${state.stage ?? 'queued'} · ${formatMs(state.elapsedMs)}`;
    case 'ready':
      return `ready · ${state.video.width}×${state.video.height} · ${formatMs(state.video.duration_ms)}`;
    case 'failed':
      return state.videoId ? `video ${state.videoId}` : 'the upload did not finish';
  }
}

function outcomeOf(state: UploadState): Node[] {
  if (state.kind === 'ready') {
    const href = `/feed?video=${encodeURIComponent(state.video.video_id)}`;
    return [h('a', { href, 'data-route': true, class: 'watch' }, 'Watch in the feed →')];
  }
  if (state.kind === 'failed') {
    const retry = state.retryable === null ? '' : state.retryable ? ' (retryable)' : ' (not retryable)';
    return [h('span', { class: 'error' }, `Failed: ${state.reason}${retry}`)];
  }
  return [];
}
