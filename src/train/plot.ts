/**
 * The loss / hit-rate plot of a run as a small standalone SVG: training loss (left axis) and
 * held-out greedy hit rate (right axis, 0–1) against the optimiser step, drawn with src/plot/svg.ts.
 */
import { COLORS, element, polyline, svgDocument, text } from '../plot/svg.js';

export interface PlotPoint {
  step: number;
  value: number;
}

const WIDTH = 640;
const HEIGHT = 360;
const PAD = { left: 56, right: 56, top: 28, bottom: 40 };
const LOSS_COLOR = COLORS[0];
const HIT_RATE_COLOR = COLORS[1];

/** The SVG text of a run's training-loss and held-out hit-rate curves. */
export function lossHitRateSvg(title: string, loss: PlotPoint[], hitRate: PlotPoint[]): string {
  const maxStep = Math.max(1, ...loss.map((p) => p.step), ...hitRate.map((p) => p.step));
  const finiteLoss = loss.filter((p) => Number.isFinite(p.value));
  const maxLoss = Math.max(1e-9, ...finiteLoss.map((p) => p.value));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (step: number): number => PAD.left + (step / maxStep) * plotWidth;
  const y = (fraction: number): number => PAD.top + (1 - fraction) * plotHeight;
  const curve = (points: PlotPoint[], scale: number, stroke: string): string[] => {
    if (points.length === 0) return [];
    return [
      polyline(
        points.map((p) => [x(p.step), y(p.value / scale)]),
        { stroke, 'stroke-width': 1.5 },
      ),
    ];
  };
  const right = WIDTH - PAD.right;
  const bottom = HEIGHT - PAD.bottom;
  return svgDocument(WIDTH, HEIGHT, [
    text(title, { x: WIDTH / 2, y: 18, 'text-anchor': 'middle' }),
    element('rect', { x: PAD.left, y: PAD.top, width: plotWidth, height: plotHeight, fill: 'none', stroke: '#999' }),
    ...curve(finiteLoss, maxLoss, LOSS_COLOR),
    ...curve(hitRate, 1, HIT_RATE_COLOR),
    text(maxLoss.toFixed(2), { x: PAD.left - 6, y: PAD.top + 4, 'text-anchor': 'end', fill: LOSS_COLOR }),
    text('0', { x: PAD.left - 6, y: bottom, 'text-anchor': 'end', fill: LOSS_COLOR }),
    text('1.0', { x: right + 6, y: PAD.top + 4, fill: HIT_RATE_COLOR }),
    text('0', { x: right + 6, y: bottom, fill: HIT_RATE_COLOR }),
    text('step 0', { x: PAD.left, y: HEIGHT - 12 }),
    text(`step ${maxStep}`, { x: right, y: HEIGHT - 12, 'text-anchor': 'end' }),
    text('training loss', { x: PAD.left + 8, y: PAD.top + 16, fill: LOSS_COLOR }),
    text('held-out greedy hit rate', { x: PAD.left + 8, y: PAD.top + 32, fill: HIT_RATE_COLOR }),
  ]);
}
