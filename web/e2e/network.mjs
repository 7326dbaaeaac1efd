// Records every request the browser makes (all pages of the context), for assertions about
// what was fetched and when.

const ORIGIN = /\/origin\/packaged\/([^/]+)\/hls\/(.*)$/;

export function recordNetwork(context) {
  const requests = [];
  let putsInFlight = 0;
  let maxPutsInFlight = 0;
  context.on('request', (request) => {
    const url = new URL(request.url());
    const origin = ORIGIN.exec(url.pathname);
    const segment = origin ? /seg-(\d+)\.m4s$/.exec(origin[2]) : null;
    let page = null;
    try {
      page = request.frame().page();
    } catch {
      // a service worker's request has no frame
    }
    requests.push({
      request,
      page,
      url: request.url(),
      path: url.pathname,
      method: request.method(),
      at: Date.now(),
      videoId: origin?.[1] ?? null,
      segment: segment ? Number(segment[1]) : null,
    });
    if (request.method() === 'PUT') maxPutsInFlight = Math.max(maxPutsInFlight, ++putsInFlight);
  });
  const finished = (request) => {
    if (request.method() === 'PUT') putsInFlight--;
  };
  context.on('requestfinished', finished);
  context.on('requestfailed', finished);

  return {
    all: () => requests,
    /** Requests for packaged HLS media (`/origin/packaged/{video}/hls/...`); posters are images, not prefetch. */
    origin: () => requests.filter((entry) => entry.videoId !== null && !entry.path.endsWith('.jpg')),
    posters: () => requests.filter((entry) => entry.videoId !== null && entry.path.endsWith('.jpg')),
    maxPutsInFlight: () => maxPutsInFlight,
  };
}
