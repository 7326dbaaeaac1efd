import { defineConfig } from 'vite';

// `npm run dev` proxies API, origin and metrics calls to a running `reel serve`
// (REEL_URL, default http://127.0.0.1:8080); production builds are served by reel itself.
const reel = process.env.REEL_URL ?? 'http://127.0.0.1:8080';
const proxied = ['/v1', '/origin', '/metrics', '/healthz', '/readyz'];

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: { proxy: Object.fromEntries(proxied.map((path) => [path, reel])) },
});
