/**
 * The SVG plots of a report: acceptance by draft position, τ and speed-up against k, and the best
 * speed-up per slice, as line and grouped bar charts drawn with src/plot/svg.ts.
 */
import { COLORS, element, polyline, shorten, svgDocument, text } from '../plot/svg.js';
import type { EvalReport } from './report-schema.js';

const WIDTH = 640;
const HEIGHT = 400;
const MARGIN = { left: 64, right: 210, top: 40, bottom: 56 };
const PLOT_WIDTH = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_HEIGHT = HEIGHT - MARGIN.top - MARGIN.bottom;

interface Series {
  name: string;
  values: Array<number | null>;
  dashed?: boolean;
  /** Colour index (default: the series' own index). */
  colour?: number;
}

const dashes = (series: Series): string | undefined => (series.dashed ? '5 3' : undefined);

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

/** The y pixel of value v on an axis over [yMin, yMax]. */
function yScale(yMin: number, yMax: number): (v: number) => number {
  return (v) => MARGIN.top + PLOT_HEIGHT - ((v - yMin) / (yMax - yMin || 1)) * PLOT_HEIGHT;
}

interface Axes {
  title: string;
  xLabel: string;
  yLabel: string;
  yMin: number;
  yMax: number;
}

/** Title, y grid with ticks, axes and their labels around `body`, and a legend of `legend` on the right. */
function frame(axes: Axes, body: string[], legend: Series[]): string {
  const y = yScale(axes.yMin, axes.yMax);
  const right = WIDTH - MARGIN.right;
  const bottom = HEIGHT - MARGIN.bottom;
  return svgDocument(WIDTH, HEIGHT, [
    text(axes.title, { x: WIDTH / 2 - MARGIN.right / 2, y: 22, 'text-anchor': 'middle', 'font-size': 15 }),
    ...ticks(axes.yMin, axes.yMax).map(
      (v) =>
        element('line', { x1: MARGIN.left, x2: right, y1: y(v), y2: y(v), stroke: '#ddd' }) +
        text(String(v), { x: MARGIN.left - 6, y: y(v) + 4, 'text-anchor': 'end' }),
    ),
    element('line', { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom, stroke: 'black' }),
    element('line', { x1: MARGIN.left, x2: right, y1: bottom, y2: bottom, stroke: 'black' }),
    text(axes.xLabel, { x: (MARGIN.left + right) / 2, y: HEIGHT - 14, 'text-anchor': 'middle' }),
    text(axes.yLabel, {
      transform: `translate(18 ${MARGIN.top + PLOT_HEIGHT / 2}) rotate(-90)`,
      'text-anchor': 'middle',
    }),
    ...body,
    ...legend.map((series, i) => {
      const ly = MARGIN.top + 10 + i * 20;
      const lx = right + 12;
      const stroke = COLORS[(series.colour ?? i) % COLORS.length];
      const dash = dashes(series);
      const sample = { x1: lx, x2: lx + 22, y1: ly, y2: ly, stroke, 'stroke-width': 3, 'stroke-dasharray': dash };
      return element('line', sample) + text(shorten(series.name, 28), { x: lx + 28, y: ly + 4 });
    }),
  ]);
}

/** Lines over x = 1..n. */
export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: Series[],
  yRange?: [number, number],
): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const [yMin, yMax] = yRange ?? [Math.min(0, ...all), Math.max(1, ...all) * 1.05];
  const n = Math.max(...series.map((s) => s.values.length));
  const x = (i: number): number => MARGIN.left + (n > 1 ? (i / (n - 1)) * PLOT_WIDTH : PLOT_WIDTH / 2);
  const y = yScale(yMin, yMax);
  const body = Array.from({ length: n }, (_, i) =>
    text(String(i + 1), { x: x(i), y: HEIGHT - MARGIN.bottom + 18, 'text-anchor': 'middle' }),
  );
  series.forEach((s, index) => {
    const color = COLORS[(s.colour ?? index) % COLORS.length];
    const points = s.values.flatMap((v, i): Array<[number, number]> => (v === null ? [] : [[x(i), y(v)]]));
    body.push(polyline(points, { stroke: color, 'stroke-width': 2.5, 'stroke-dasharray': dashes(s) }));
    for (const [cx, cy] of points) {
      body.push(element('circle', { cx: cx.toFixed(1), cy: cy.toFixed(1), r: 3.5, fill: color }));
    }
  });
  return frame({ title, xLabel, yLabel, yMin, yMax }, body, series);
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(
  title: string,
  xLabel: string,
  yLabel: string,
  categories: string[],
  series: Series[],
): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const yMin = 0;
  const yMax = Math.max(1, ...all) * 1.1;
  const groupWidth = PLOT_WIDTH / Math.max(1, categories.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, series.length);
  const y = yScale(yMin, yMax);
  const body: string[] = [];
  categories.forEach((category, g) => {
    const left = MARGIN.left + g * groupWidth + groupWidth * 0.1;
    const labelAt = { x: left + groupWidth * 0.4, y: HEIGHT - MARGIN.bottom + 18, 'text-anchor': 'middle' };
    body.push(text(shorten(category, 14), labelAt));
    series.forEach((s, i) => {
      const v = s.values[g];
      if (v === null) return;
      body.push(
        element('rect', {
          x: (left + i * barWidth).toFixed(1),
          y: y(v).toFixed(1),
          width: (barWidth * 0.92).toFixed(1),
          height: (y(0) - y(v)).toFixed(1),
          fill: COLORS[i % COLORS.length],
        }),
      );
    });
  });
  return frame({ title, xLabel, yLabel, yMin, yMax }, body, series);
}

/** Every plot of a report: file name → SVG text. */
export function renderPlots(report: EvalReport): Record<string, string> {
  const candidates = report.candidates;
  // One colour per candidate: solid = conditional, dashed = unconditional.
  const byPosition = candidates.flatMap((c, i) => [
    { name: `${c.name} conditional`, values: c.position_acceptance.map((p) => p.conditional), colour: i },
    {
      name: `${c.name} unconditional`,
      values: c.position_acceptance.map((p) => p.unconditional),
      dashed: true,
      colour: i,
    },
  ]);
  const sliceValues = (dimension: string): string[] => [
    ...new Set(candidates[0].slices.filter((s) => s.dimension === dimension).map((s) => s.value)),
  ];
  const turnSlices = sliceValues('turn_index');
  const fileSlices = sliceValues('source_file');
  const [dimension, categories] =
    turnSlices.length > 1 || fileSlices.length <= 1 ? ['turn_index', turnSlices] : ['source_file', fileSlices];
  const bestSpeedup = (c: EvalReport['candidates'][number], value: string): number | null =>
    c.slices.find((s) => s.dimension === dimension && s.value === value)?.best_speedup ?? null;
  const byK = (metric: 'tau' | 'speedup'): Series[] =>
    candidates.map((c) => ({ name: c.name, values: c.by_k.map((b) => b[metric]) }));
  const measured: Record<string, string> = report.measured
    ? { 'speedup-measured.svg': measuredChart(report.measured, report.k_max) }
    : {};
  return {
    ...measured,
    'acceptance-by-position.svg': lineChart(
      `Acceptance by draft position (k = ${report.k_max})`,
      'draft position',
      'acceptance',
      byPosition,
      [0, 1],
    ),
    'tau-vs-k.svg': lineChart(
      'Mean acceptance length τ',
      'draft tokens per step k',
      'τ (tokens per target step)',
      byK('tau'),
    ),
    'speedup-vs-k.svg': lineChart(
      'Expected speed-up',
      'draft tokens per step k',
      'speed-up S = τ / (k·c + 1)',
      byK('speedup'),
    ),
    'slices.svg': barChart(
      `Best-k expected speed-up by ${dimension.replace('_', ' ')}`,
      dimension.replace('_', ' '),
      'speed-up',
      categories,
      candidates.map((c) => ({ name: c.name, values: categories.map((value) => bestSpeedup(c, value)) })),
    ),
  };
}

/** Measured (solid) and predicted (dashed) speed-up by k, one colour per candidate; unmeasured k left out. */
function measuredChart(measured: NonNullable<EvalReport['measured']>, kMax: number): string {
  const atK = (entries: Array<{ k: number; value: number }>): Array<number | null> =>
    Array.from({ length: kMax }, (_, i) => entries.find((e) => e.k === i + 1)?.value ?? null);
  const series = measured.candidates.flatMap((c, i): Series[] => [
    { name: `${c.name} measured`, values: atK(c.by_k.map((m) => ({ k: m.k, value: m.speedup.median }))), colour: i },
    {
      name: `${c.name} predicted`,
      values: atK(c.by_k.map((m) => ({ k: m.k, value: m.predicted_speedup }))),
      dashed: true,
      colour: i,
    },
  ]);
  return lineChart(
    `Measured (llama.cpp) and predicted speed-up`,
    'draft tokens per step k',
    'speed-up over plain decoding',
    series,
  );
}
