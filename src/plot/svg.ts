/**
 * The one SVG writer of fireopt: the report's charts (evaluate) and a run's loss curve (train) are
 * built from these elements, so every label is escaped the same way. Written by hand: a chart is a
 * few dozen elements, and a plotting library would bring a DOM or a headless browser to a CLI.
 * Every file opens in a browser.
 */

/** Line colours, in the order series take them (matplotlib's tab10). */
export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/** Attribute values: numbers are written as they are, strings escaped; undefined and false omit the attribute. */
export type Attributes = Record<string, string | number | boolean | undefined>;

/** Text made safe for an SVG text node or a double-quoted attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function attributeText(attributes: Attributes): string {
  return Object.entries(attributes)
    .filter(([, value]) => value !== undefined && value !== false)
    .map(([name, value]) => ` ${name}="${value === true ? name : escapeXml(String(value))}"`)
    .join('');
}

/** An element with no content, such as `<line …/>`. */
export function element(name: string, attributes: Attributes): string {
  return `<${name}${attributeText(attributes)}/>`;
}

/** A `<text>` element; `content` is escaped. */
export function text(content: string, attributes: Attributes): string {
  return `<text${attributeText(attributes)}>${escapeXml(content)}</text>`;
}

/** A polyline through `points` ([x, y] pairs, one decimal), unfilled. */
export function polyline(points: Array<[number, number]>, attributes: Attributes): string {
  const coordinates = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  return element('polyline', { fill: 'none', ...attributes, points: coordinates });
}

/** A standalone SVG document of the given size (with a viewBox, so it scales) on white, ending with a newline. */
export function svgDocument(width: number, height: number, body: string[]): string {
  const root = {
    xmlns: 'http://www.w3.org/2000/svg',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    'font-family': 'sans-serif',
    'font-size': 12,
  };
  return [`<svg${attributeText(root)}>`, element('rect', { width, height, fill: 'white' }), ...body, '</svg>', ''].join(
    '\n',
  );
}

/** `label`, cut to `maxLength` characters with an ellipsis. */
export function shorten(label: string, maxLength: number): string {
  return label.length > maxLength ? label.slice(0, maxLength - 1) + '…' : label;
}
