// hls.js ships no typings for its "light" build (no subtitles, alt audio or DRM); same API.
declare module 'hls.js/light' {
  export * from 'hls.js';
  export { default } from 'hls.js';
}
