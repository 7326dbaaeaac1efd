// Test media, generated with ffmpeg's lavfi sources (no media is committed).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function lavfi(path, source, { seconds = 6, tone = 440, filter = '', videoArgs = ['-preset', 'veryfast', '-crf', '23'] } = {}) {
  execFileSync('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `${source}:rate=30:duration=${seconds}${filter}`,
    '-f', 'lavfi', '-i', `sine=frequency=${tone}:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', ...videoArgs, '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-shortest', '-movflags', '+faststart', path,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  return path;
}

/** Portrait 360×640 clips with audio. `big` is noisy and ~12 MB so it spans three 5 MiB parts. */
export function makeClips(dir) {
  const size = 'size=360x640';
  return {
    feed: [
      lavfi(join(dir, 'feed-1.mp4'), `testsrc2=${size}`, { tone: 330 }),
      lavfi(join(dir, 'feed-2.mp4'), `smptehdbars=${size}`, { tone: 440 }),
      lavfi(join(dir, 'feed-3.mp4'), `rgbtestsrc=${size}`, { tone: 550 }),
    ],
    big: lavfi(join(dir, 'portrait-360x640.mp4'), `testsrc2=${size}`, {
      tone: 660,
      filter: ',noise=alls=40:allf=t',
      videoArgs: ['-preset', 'ultrafast', '-b:v', '16M', '-maxrate', '16M', '-bufsize', '16M'],
    }),
    slow: lavfi(join(dir, 'long-20s.mp4'), `testsrc=${size}`, { seconds: 20, tone: 770 }),
    notVideo: writeText(join(dir, 'notes.mp4'), 'this is a text file, not a video\n'.repeat(64)),
  };
}

function writeText(path, text) {
  writeFileSync(path, text);
  return path;
}
