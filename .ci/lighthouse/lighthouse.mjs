// Runs Lighthouse (mobile, performance only, its default simulated
// throttling) on the canvas page and an election page of a running
// platform, and prints each score with the metrics behind it; then how
// much CPU the canvas page takes while it sits idle (an endless animation
// once kept a core 15-25% busy).
//
//   node lighthouse.mjs BASE_URL ADMIN_USER ADMIN_PASSWORD
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';
import puppeteer from 'puppeteer-core';

const [base, adminUser, adminPassword] = process.argv.slice(2);
const min = Number(process.env.LIGHTHOUSE_MIN || 0);

async function call(method, path, body, token) {
  const res = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function ready() {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${base}/readyz never answered 200`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// CPU seconds used so far by process pid and all its descendants (Linux
// /proc): the browser, its renderers and its GPU process, where a
// compositor animation would show.
function treeCPU(pid) {
  const tick = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  const procs = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / tick });
    } catch { /* gone meanwhile */ }
  }
  const mine = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, { ppid }] of procs) if (!mine.has(p) && mine.has(ppid)) { mine.add(p); grew = true; }
  }
  let sum = 0;
  for (const p of mine) sum += procs.has(p) ? procs.get(p).cpu : 0;
  return sum;
}

// The canvas page, live and then left alone: the share of a core its main
// thread and the whole browser use over `seconds`.
async function idleCPU(port, pid, url, seconds) {
  const browser = await puppeteer.connect({ browserURL: `http://127.0.0.1:${port}`, defaultViewport: null });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 412, height: 823, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await page.goto(url);
    await page.waitForFunction(() => document.querySelector('#canvas-live') && document.querySelector('#canvas-live').dataset.state === 'live', { timeout: 30000 });
    await sleep(2000); // the first frames and the look-back batch are not idle
    const cdp = await page.createCDPSession();
    await cdp.send('Performance.enable');
    const busy = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
    const t0 = Date.now(); const main0 = await busy(); const all0 = treeCPU(pid);
    await sleep(seconds * 1000);
    const wall = (Date.now() - t0) / 1000; const main1 = await busy(); const all1 = treeCPU(pid);
    await page.close();
    return { main: (100 * (main1 - main0)) / wall, all: (100 * (all1 - all0)) / wall, wall };
  } finally {
    await browser.disconnect();
  }
}

await ready();
// An open election with a vote, and a few pixels on the board: pages with
// something to show, as people see them.
const admin = (await call('POST', '/api/v1/auth/login', { username: adminUser, password: adminPassword })).session.accessToken;
const { electionId } = await call('POST', '/api/v1/elections', {
  title: 'Best colour',
  candidates: [{ candidateId: 'red', name: 'Red' }, { candidateId: 'blue', name: 'Blue' }, { candidateId: 'green', name: 'Green' }],
}, admin);
await call('POST', `/api/v1/elections/${electionId}:open`, {}, admin);
const voter = (await call('POST', '/api/v1/auth/register', { username: 'lighthouse_voter', password: 'lighthouse-voter-1' })).session.accessToken;
await call('POST', '/api/v1/votes', { electionId, candidateId: 'red' }, voter);
for (let i = 0; i < 5; i++) {
  const guest = (await call('POST', '/api/v1/auth/guest')).session.accessToken;
  await call('POST', '/api/v1/canvas/pixels', { x: 100 + i, y: 100, color: 3 + i }, guest);
}

const pages = [
  ['canvas', `${base}/app/#/canvas`],
  ['election', `${base}/app/#/vote/${encodeURIComponent(electionId)}`],
];
const chrome = await chromeLauncher.launch({
  chromePath: process.env.CHROME_PATH,
  chromeFlags: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let failed = false;
try {
  for (const [name, url] of pages) {
    // LIGHTHOUSE_PAGES=canvas runs one page only.
    if (process.env.LIGHTHOUSE_PAGES && !process.env.LIGHTHOUSE_PAGES.split(',').includes(name)) continue;
    const { lhr } = await lighthouse(url, {
      port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: ['performance'],
    }, { extends: 'lighthouse:default' });
    if (lhr.runtimeError) throw new Error(`${name}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
    const score = Math.round(lhr.categories.performance.score * 100);
    const metric = (id) => lhr.audits[id].displayValue;
    console.log(`${name.padEnd(9)} performance ${score}  FCP ${metric('first-contentful-paint')}  LCP ${metric('largest-contentful-paint')}  TBT ${metric('total-blocking-time')}  CLS ${metric('cumulative-layout-shift')}  SI ${metric('speed-index')}  (${url.replace(base, '')})`);
    if (process.env.LIGHTHOUSE_VERBOSE) {
      for (const a of Object.values(lhr.audits)) {
        if (a.score !== null && a.score < 0.9 && a.scoreDisplayMode !== 'informative') console.log(`    ${a.id}: ${a.score} ${a.displayValue || ''}`);
      }
      for (const id of ['layout-shifts', 'long-tasks', 'bootup-time', 'mainthread-work-breakdown', 'largest-contentful-paint-element']) {
        const items = (lhr.audits[id] && lhr.audits[id].details && lhr.audits[id].details.items) || [];
        console.log(`    ${id}: ${JSON.stringify(items.slice(0, 6), (k, v) => (k === 'snippet' || k === 'selector' || k === 'nodeLabel' || typeof v !== 'string' || v.length < 200 ? v : undefined))}`);
      }
    }
    if (score < min) failed = true;
  }
  const idle = await idleCPU(chrome.port, chrome.pid, pages[0][1], 10);
  console.log(`canvas    idle: main thread ${idle.main.toFixed(1)}% of a core, the whole browser ${idle.all.toFixed(1)}%, over ${idle.wall.toFixed(0)} s`);
  // The browser's own CPU time hardly moves with the machine's load, so
  // this limit always holds (an endless pulse took 17%).
  if (idle.all > 5) {
    console.error('an idle canvas page keeps the browser over 5% busy');
    failed = true;
  }
} finally {
  await chrome.kill();
}
if (failed) {
  console.error(`a score is under LIGHTHOUSE_MIN=${min}`);
  process.exit(1);
}
