// Shared set-up for the browser tests and the web benchmark: a demo ledger, a policy with an
// admin and a restricted viewer token, `aifinops serve` on a free loopback port, and headless
// Debian chromium through playwright-core (no browser download).

import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
export const root = path.resolve(here, '../..');
export const AIFINOPS = process.env.AIFINOPS ?? path.join(root, 'build/release/aifinops');
export const WEB_SOURCE = process.env.AIFINOPS_WEB_SOURCE ?? path.join(root, 'web');
export const WEB_DIR = process.env.AIFINOPS_WEB_DIR ?? path.join(path.dirname(AIFINOPS), 'web');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Exits 77 (ctest: skipped) with the reason when chromium is not installed. */
export function requireChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`SKIPPED: ${CHROMIUM} not found; scripts/install-deps.sh installs Debian's chromium`);
    process.exit(77);
  }
}

export function sha256(s) { return crypto.createHash('sha256').update(s).digest('hex'); }

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function cli(args) {
  return execFileSync(AIFINOPS, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
}

/**
 * Builds the demo ledger and policy in a temporary directory, adds api_tokens (admin, and a
 * viewer restricted to one team), and starts `aifinops serve`. Returns the base URL, tokens,
 * the restricted team and the other teams, and stop(). opts.ingest: more inputs for the
 * ledger, each the arguments of one `aifinops ingest` (without --db); opts.noTelemetry: the
 * demo's bills only (its FOCUS file ingested into a fresh ledger, its GPU telemetry left out).
 */
export async function startServer(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aifinops-web-'));
  const db = path.join(dir, 'demo.db');
  if (opts.noTelemetry) {
    cli(['demo', '--db', path.join(dir, 'full.db'), '--keep', '--out-dir', dir]);
    cli(['ingest', '--db', db, '--format', 'focus', path.join(dir, 'demo_focus.csv')]);
  } else {
    cli(['demo', '--db', db]);
  }
  for (const args of opts.ingest ?? []) cli(['ingest', '--db', db, ...args]);
  const demoPolicy = fs.readdirSync(dir).find((f) => /\.ya?ml$/.test(f));
  // The demo's policy, less any api_tokens of its own (a top-level block up to the next key).
  const base = (demoPolicy ? fs.readFileSync(path.join(dir, demoPolicy), 'utf8') : '')
    .replace(/^api_tokens:.*\n(?:[ \t#-].*\n|\n)*/m, '');
  const teams = JSON.parse(cli(['report', '--db', db, ...(demoPolicy ? ['--config', path.join(dir, demoPolicy)] : []),
    '--by', 'team', '--format', 'json'])).rows.map((r) => r.team).filter((t) => t !== '(none)');
  // The restricted viewer's team: the smallest that has a budget of its own (so the budget
  // pages have something to show it), else the smallest.
  const budgets = (() => {
    try {
      return JSON.parse(cli(['budgets', 'status', '--db', db, ...(demoPolicy ? ['--config', path.join(dir, demoPolicy)] : []),
        '--format', 'json'])).budgets ?? [];
    } catch { return []; }
  })();
  const budgeted = new Set(budgets.map((b) => b.scope?.team).flat().filter(Boolean));
  const team = [...teams].reverse().find((t) => budgeted.has(t)) ?? teams[teams.length - 1];
  const admin = crypto.randomBytes(24).toString('hex');
  const viewer = crypto.randomBytes(24).toString('hex');
  const policy = path.join(dir, 'policy-web.yaml');
  fs.writeFileSync(policy, base.replace(/\n?$/, '\n') + [
    'api_tokens:',
    `  - {id: web-admin, token_sha256: "${sha256(admin)}", scope: admin}`,
    `  - {id: web-viewer, token_sha256: "${sha256(viewer)}", scope: viewer, restrict: {team: [${team}]}}`,
    ''].join('\n'));
  const port = await freePort();
  const args = ['serve', '--db', db, '--config', policy, '--listen', `127.0.0.1:${port}`];
  // The example business inputs (project value, training runs) match the demo organisation,
  // so the KPI page has ROI and time-to-value figures to show.
  const business = path.join(root, 'config/business.example.yaml');
  if (fs.existsSync(business)) args.push('--business', business);
  const help = (() => { try { return cli(['serve', '--help']); } catch { return ''; } })();
  const webFlag = ['--web-root', '--web', '--static', '--web-dir'].find((f) => help.includes(f + ' '));
  if (webFlag) args.push(webFlag, WEB_DIR);
  const proc = spawn(AIFINOPS, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`aifinops serve exited ${proc.exitCode}:\n${log}`);
    try {
      const r = await fetch(url + '/api/v1/report', { headers: { Authorization: 'Bearer ' + admin } });
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { proc.kill(); throw new Error('aifinops serve did not answer in 30 s:\n' + log); }
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async (p, token = admin) => {
    const r = await fetch(url + '/api/v1/' + p, { headers: { Authorization: 'Bearer ' + token } });
    if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
    return r.json();
  };
  return {
    url, admin, viewer, team, otherTeams: teams.filter((t) => t !== team), dir, api, log: () => log,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => { if (proc.exitCode !== null) r(); else { proc.once('exit', r); setTimeout(() => { proc.kill('SIGKILL'); r(); }, 5000); } });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headless chromium with a fresh profile, no network beyond loopback features. */
export async function launchBrowser() {
  const require = createRequire(path.join(WEB_SOURCE, 'package.json'));
  const { chromium } = require('playwright-core');
  // playwright-core creates a fresh temporary --user-data-dir for every launch itself.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
}

export const PAGES = ['overview', 'showback', 'ai', 'gpus', 'anomalies', 'budgets', 'forecasts',
  'recommendations', 'tags', 'kpis', 'maturity'];
