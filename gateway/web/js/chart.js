// A small SVG bar chart (stacked: people and bots per day). It scales with
// its container through the viewBox and carries a text summary for screen
// readers; each bar has a <title> tooltip.

import { s } from './dom.js';

function niceMax(v) {
  if (v <= 4) return 4;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

/** days: [{date, humanClicks, botClicks}] (counts may be strings: int64). */
export function dayChart(days, { label = 'Clicks per day', width = 640 } = {}) {
  // Drawn at the container's width so text keeps its size on any screen.
  const W = Math.max(280, Math.round(width)); const H = 220; const L = 36; const R = 8; const T = 12; const B = 28;
  const rows = days.map((d) => ({ date: d.date, human: Number(d.humanClicks || 0), bot: Number(d.botClicks || 0) }));
  const max = niceMax(Math.max(0, ...rows.map((r) => r.human + r.bot)));
  const total = rows.reduce((a, r) => a + r.human + r.bot, 0);
  const n = Math.max(rows.length, 1);
  const slot = (W - L - R) / n;
  const bw = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v) => T + (H - T - B) * (1 - v / max);

  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `${label}: ${total} in ${rows.length} days${rows.length ? `, from ${rows[0].date} to ${rows[rows.length - 1].date}` : ''}.`,
  });
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    svg.append(
      s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid-line' }),
      s('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(Math.round(v * 10) / 10)));
  }
  const every = Math.ceil(n / Math.max(2, Math.floor((W - L - R) / 64)));
  rows.forEach((r, i) => {
    const cx = L + slot * i + slot / 2;
    const g = s('g', { class: 'bar', dataset: { date: r.date, clicks: String(r.human + r.bot) } },
      s('title', null, `${r.date}: ${r.human} by people, ${r.bot} by bots`));
    if (r.human) g.append(s('rect', { x: cx - bw / 2, width: bw, y: y(r.human), height: y(0) - y(r.human), rx: 3, class: 'human' }));
    if (r.bot) g.append(s('rect', { x: cx - bw / 2, width: bw, y: y(r.human + r.bot), height: y(r.human) - y(r.human + r.bot), rx: 3, class: 'bot' }));
    svg.append(g);
    if ((n - 1 - i) % every === 0) { // counted from the end: today is always labelled
      svg.append(s('text', { x: cx, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, r.date.slice(5)));
    }
  });
  svg.append(s('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), class: 'base-line' }));
  return svg;
}
