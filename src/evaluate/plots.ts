/**
 * SVG plots of a report, written by hand: a line chart and a grouped bar chart are ~100 lines, and
 * a plotting library would bring a DOM or a headless browser to a CLI. Every file opens in a browser.
 */
import type { EvalReport } from './report-schema.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const WIDTH = 640;
const HEIGHT = 400;
const MARGIN = { left: 64, right: 210, top: 40, bottom: 56 };

interface Series {
  name: string;
  values: Array<number | null>;
  dashed?: boolean;
  /** Colour index (default: the series' own index). */
  colour?: number;
}

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Round tick steps: 1, 2 or 5 × 10^n, about 5 ticks over [min, max]. */
function ticks(min: number, max: number): number[] {
  const span = max - min || 1;
  const raw = span / 5;
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

function frame(title: string, xLabel: string, yLabel: string, yMin: number, yMax: number, body: string[], legend: Series[]): string {
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (v: number): number => MARGIN.top + plotHeight - ((v - yMin) / (yMax - yMin || 1)) * plotHeight;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2 - MARGIN.right / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    ...ticks(yMin, yMax).map(
      (v) =>
        `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${MARGIN.left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    ),
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    `<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 14}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    ...body,
    ...legend.map((s, i) => {
      const ly = MARGIN.top + 10 + i * 20;
      const lx = WIDTH - MARGIN.right + 12;
      return `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${COLORS[(s.colour ?? i) % COLORS.length]}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${lx + 28}" y="${ly + 4}">${escapeXml(s.name.length > 28 ? s.name.slice(0, 27) + '…' : s.name)}</text>`;
    }),
    '</svg>',
  ];
  return parts.join('\n') + '\n';
}

/** Lines over x = 1..n. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], yRange?: [number, number]): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const [yMin, yMax] = yRange ?? [Math.min(0, ...all), Math.max(1, ...all) * 1.05];
  const n = Math.max(...series.map((s) => s.values.length));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (i: number): number => MARGIN.left + (n > 1 ? (i / (n - 1)) * plotWidth : plotWidth / 2);
  const y = (v: number): number => MARGIN.top + plotHeight - ((v - yMin) / (yMax - yMin || 1)) * plotHeight;
  const body = Array.from({ length: n }, (_, i) => `<text x="${x(i)}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${i + 1}</text>`);
  series.forEach((s, index) => {
    const color = COLORS[(s.colour ?? index) % COLORS.length];
    const points = s.values.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter((p): p is string => p !== null);
    body.push(`<polyline fill="none" stroke="${color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${points.join(' ')}"/>`);
    for (const p of points) body.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3.5" fill="${color}"/>`);
  });
  return frame(title, xLabel, yLabel, yMin, yMax, body, series);
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(title: string, xLabel: string, yLabel: string, categories: string[], series: Series[]): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const yMin = 0;
  const yMax = Math.max(1, ...all) * 1.1;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const groupWidth = plotWidth / Math.max(1, categories.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, series.length);
  const y = (v: number): number => MARGIN.top + plotHeight - ((v - yMin) / (yMax - yMin)) * plotHeight;
  const body: string[] = [];
  categories.forEach((category, g) => {
    const left = MARGIN.left + g * groupWidth + groupWidth * 0.1;
    const label = category.length > 14 ? category.slice(0, 13) + '…' : category;
    body.push(`<text x="${left + groupWidth * 0.4}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${escapeXml(label)}</text>`);
    series.forEach((s, i) => {
      const v = s.values[g];
      if (v === null) return;
      body.push(`<rect x="${(left + i * barWidth).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barWidth * 0.92).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"/>`);
    });
  });
  return frame(title, xLabel, yLabel, yMin, yMax, body, series);
}

/** Every plot of a report: file name → SVG text. */
export function renderPlots(report: EvalReport): Record<string, string> {
  const candidates = report.candidates;
  // One colour per candidate: solid = conditional, dashed = unconditional.
  const byPosition = candidates.flatMap((c, i) => [
    { name: `${c.name} conditional`, values: c.position_acceptance.map((p) => p.conditional), colour: i },
    { name: `${c.name} unconditional`, values: c.position_acceptance.map((p) => p.unconditional), dashed: true, colour: i },
  ]);
  const turnSlices = [...new Set(candidates[0].slices.filter((s) => s.dimension === 'turn_index').map((s) => s.value))];
  const fileSlices = [...new Set(candidates[0].slices.filter((s) => s.dimension === 'source_file').map((s) => s.value))];
  const [dimension, categories] = turnSlices.length > 1 || fileSlices.length <= 1 ? ['turn_index', turnSlices] as const : ['source_file', fileSlices] as const;
  return {
    'acceptance-by-position.svg': lineChart(`Acceptance by draft position (k = ${report.k_max})`, 'draft position', 'acceptance', byPosition, [0, 1]),
    'tau-vs-k.svg': lineChart('Mean acceptance length τ', 'draft tokens per step k', 'τ (tokens per target step)', candidates.map((c) => ({ name: c.name, values: c.by_k.map((b) => b.tau) }))),
    'speedup-vs-k.svg': lineChart('Expected speed-up', 'draft tokens per step k', 'speed-up S = τ / (k·c + 1)', candidates.map((c) => ({ name: c.name, values: c.by_k.map((b) => b.speedup) }))),
    'slices.svg': barChart(
      `Best-k expected speed-up by ${dimension.replace('_', ' ')}`,
      dimension.replace('_', ' '),
      'speed-up',
      categories,
      candidates.map((c) => ({ name: c.name, values: categories.map((v) => c.slices.find((s) => s.dimension === dimension && s.value === v)?.best_speedup ?? null) })),
    ),
  };
}
