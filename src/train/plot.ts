/**
 * The loss / hit-rate plot of a run as a small standalone SVG: training loss (left axis) and
 * held-out greedy hit rate (right axis, 0–1) against the optimiser step. Written by hand because
 * it is two polylines and four labels; a plotting library would be a large dependency for that.
 */
export interface PlotPoint {
  step: number;
  value: number;
}

const WIDTH = 640;
const HEIGHT = 360;
const PAD = { left: 56, right: 56, top: 28, bottom: 40 };

export function lossHitRateSvg(title: string, loss: PlotPoint[], hitRate: PlotPoint[]): string {
  const maxStep = Math.max(1, ...loss.map((p) => p.step), ...hitRate.map((p) => p.step));
  const finiteLoss = loss.filter((p) => Number.isFinite(p.value));
  const maxLoss = Math.max(1e-9, ...finiteLoss.map((p) => p.value));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (step: number) => (PAD.left + (step / maxStep) * plotWidth).toFixed(1);
  const y = (fraction: number) => (PAD.top + (1 - fraction) * plotHeight).toFixed(1);
  const line = (points: PlotPoint[], scale: number, color: string) =>
    points.length ? `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points.map((p) => `${x(p.step)},${y(p.value / scale)}`).join(' ')}"/>` : '';
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle">${escape(title)}</text>`,
    `<rect x="${PAD.left}" y="${PAD.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
    line(finiteLoss, maxLoss, '#1f77b4'),
    line(hitRate, 1, '#d62728'),
    `<text x="${PAD.left - 6}" y="${PAD.top + 4}" text-anchor="end" fill="#1f77b4">${maxLoss.toFixed(2)}</text>`,
    `<text x="${PAD.left - 6}" y="${HEIGHT - PAD.bottom}" text-anchor="end" fill="#1f77b4">0</text>`,
    `<text x="${WIDTH - PAD.right + 6}" y="${PAD.top + 4}" fill="#d62728">1.0</text>`,
    `<text x="${WIDTH - PAD.right + 6}" y="${HEIGHT - PAD.bottom}" fill="#d62728">0</text>`,
    `<text x="${PAD.left}" y="${HEIGHT - 12}">step 0</text>`,
    `<text x="${WIDTH - PAD.right}" y="${HEIGHT - 12}" text-anchor="end">step ${maxStep}</text>`,
    `<text x="${PAD.left + 8}" y="${PAD.top + 16}" fill="#1f77b4">training loss</text>`,
    `<text x="${PAD.left + 8}" y="${PAD.top + 32}" fill="#d62728">held-out greedy hit rate</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
