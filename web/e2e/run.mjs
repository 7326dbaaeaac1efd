#!/usr/bin/env node
// End-to-end tests of the web app in real headless Chromium against a real `reel serve`.
//
// Provisions everything and tears it down: Debian's chromium (apt-get when missing and root;
// otherwise a clear error), `cargo build --locked`, web/dist (built when missing), a reel on a
// free port with a temp SQLite database and object store, tokens from `reel token`.
// Prints `N passed, M failed` last and exits non-zero on any failure. Nothing is skipped.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail, summary } from './harness.mjs';
import { startReel } from './reel.mjs';
import { runSuite } from './suite.mjs';

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(webDir, '..');
const artifacts = join(webDir, 'e2e', 'artifacts');
const CHROMIUM = process.env.REEL_E2E_CHROMIUM ?? '/usr/bin/chromium';

function step(text) {
  console.log(`\n== e2e: ${text}`);
}

function run(cmd, args, cwd = repo) {
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
}

function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (sudo apt-get install chromium) or run as root`);
  }
  run('apt-get', ['update', '-qq']);
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing`);
}

async function main() {
  step('chromium');
  ensureChromium();
  console.log(execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim());

  step('reel (cargo build --locked)');
  run('cargo', ['build', '--locked']);
  const binary = join(repo, 'target', 'debug', 'reel');

  if (!existsSync(join(webDir, 'dist', 'index.html'))) {
    step('web/dist is missing: npm run build');
    run('npm', ['run', 'build'], webDir);
  }

  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), 'reel-e2e-'));
  let reel;
  try {
    step('starting reel');
    reel = await startReel({ binary, workDir, webDir: join(webDir, 'dist'), logPath: join(artifacts, 'reel.log') });
    console.log(`reel on ${reel.base} (log: ${reel.logPath})`);
    step('checks');
    await runSuite({ reel, chromium: CHROMIUM, workDir, artifacts });
  } finally {
    await reel?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

process.on('unhandledRejection', (error) => fail('unhandled rejection', error));
try {
  await main();
} catch (error) {
  fail('e2e setup', error);
}
const { failed, line } = summary();
console.log(`\n${line}`);
process.exit(failed === 0 ? 0 : 1);
