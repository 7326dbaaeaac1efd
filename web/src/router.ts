// Client-side routes: `/upload`, `/feed`, `/ops`; `/` and anything else go to `/feed`.
// Each page is its own chunk, so Upload and Ops never download hls.js.

type Cleanup = (() => void) | void;
type Render = (view: HTMLElement, params: URLSearchParams) => Cleanup;

const ROUTES: Record<string, () => Promise<Render>> = {
  '/feed': async () => (await import('./feed/page')).renderFeed,
  '/upload': async () => (await import('./upload/page')).renderUpload,
  '/ops': async () => (await import('./ops/page')).renderOps,
};

let cleanup: Cleanup;
let rendering = 0;

export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  void render();
}

export async function render(): Promise<void> {
  const view = document.getElementById('view')!;
  const route = ROUTES[location.pathname];
  if (!route) return navigate('/feed' + location.search, true);
  cleanup?.();
  cleanup = undefined;
  const ticket = ++rendering;
  const page = await route();
  if (ticket !== rendering) return; // a later navigation won
  document.body.dataset.route = location.pathname.slice(1);
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    link.classList.toggle('active', link.pathname === location.pathname);
  }
  cleanup = page(view, new URLSearchParams(location.search));
}

/** Same-origin links marked `data-route` navigate without a page load. */
export function interceptLinks(): void {
  document.addEventListener('click', (event) => {
    const link = (event.target as Element).closest?.('a[data-route]');
    if (!(link instanceof HTMLAnchorElement) || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(link.pathname + link.search);
  });
  addEventListener('popstate', () => void render());
}
