// Web dashboard figures: the built front end's size gzipped, and how fast the first page is
// interactive and fully drawn on loopback (headless chromium, demo ledger, `aifinops serve`).
// Usage: AIFINOPS=build/release/aifinops node bench/web_bench.mjs [runs]

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { PAGES, WEB_DIR, launchBrowser, requireChromium, startServer } from '../tests/web/harness.mjs';

requireChromium();
const runs = Number(process.argv[2] ?? 5);

function files(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}
let raw = 0, gz = 0;
for (const f of files(WEB_DIR)) {
  const b = fs.readFileSync(f);
  raw += b.length;
  gz += zlib.gzipSync(b, { level: 9 }).length;
}
console.log(`built front end (${WEB_DIR}): ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped (-9)`);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const server = await startServer();
const browser = await launchBrowser();
try {
  const interactive = [], ready = [], detail = [];
  for (let i = 0; i < runs; i++) {
    // A new context each run: empty cache, as a first visit.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${server.url}/#token=${server.admin}`);
    await page.waitForFunction(() => document.body.dataset.ready === 'overview', null, { timeout: 30_000 });
    const wall = Date.now() - t0;
    const nav = await page.evaluate(() => performance.getEntriesByType('navigation')[0].toJSON());
    const res = await page.evaluate(() => performance.getEntriesByType('resource').map((r) => ({ name: r.name, start: r.startTime, end: r.responseEnd })));
    const scriptEnd = Math.max(...res.filter((r) => /\.js$/.test(r.name)).map((r) => r.end));
    const apiEnd = Math.max(...res.filter((r) => r.name.includes('/api/')).map((r) => r.end));
    const apiSlowest = Math.max(...res.filter((r) => r.name.includes('/api/')).map((r) => r.end - r.start));
    interactive.push(nav.domInteractive);
    ready.push(wall);
    detail.push(`script loaded ${scriptEnd.toFixed(0)} ms, last API answer ${apiEnd.toFixed(0)} ms (slowest call ${apiSlowest.toFixed(0)} ms, ${res.filter((r) => r.name.includes('/api/')).length} calls), drawn ${wall} ms`);
    await context.close();
  }
  for (const d of detail) console.log('  ' + d);
  console.log(`first page (overview), ${runs} cold loads: domInteractive median ${median(interactive).toFixed(0)} ms ` +
    `(max ${Math.max(...interactive).toFixed(0)}), all charts drawn median ${median(ready)} ms (max ${Math.max(...ready)})`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/#token=${server.admin}`);
  await page.waitForFunction(() => document.body.dataset.ready === 'overview', null, { timeout: 30_000 });
  const perPage = [];
  for (const id of PAGES) {
    const t0 = Date.now();
    await page.evaluate((p) => { location.hash = '#/' + p; }, id);
    await page.waitForFunction((p) => document.body.dataset.ready === p, id, { timeout: 30_000 });
    perPage.push(`${id} ${Date.now() - t0} ms`);
  }
  console.log('each page, first visit in one session: ' + perPage.join(', '));
  await context.close();
} finally {
  await browser.close();
  await server.stop();
}
