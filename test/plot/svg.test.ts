import { describe, expect, it } from 'vitest';
import { renderPlots } from '../../src/evaluate/plots.js';
import type { EvalReport } from '../../src/evaluate/report-schema.js';
import { escapeXml, polyline, svgDocument, text } from '../../src/plot/svg.js';
import { lossHitRateSvg } from '../../src/train/plot.js';

/** Every `<` of a document opens a tag, and every `&` an entity: nothing from a label leaks into the markup. */
function expectWellEscaped(svg: string): void {
  expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" [^>]*viewBox="0 0 \d+ \d+"[^>]*>\n/);
  expect(svg.endsWith('</svg>\n')).toBe(true);
  expect(svg.match(/<(?![a-z/])/g)).toBeNull();
  expect(svg.match(/&(?!amp;|lt;|gt;|quot;)/g)).toBeNull();
}

const awkward = 'draft <v2> & "adapted"';

describe('the SVG writer (src/plot/svg.ts)', () => {
  it('escapes text and attribute values, and omits undefined attributes', () => {
    expect(escapeXml('a<b>&"c"')).toBe('a&lt;b&gt;&amp;&quot;c&quot;');
    expect(text(awkward, { x: 1, y: 2.5, fill: undefined, title: 'x"y' })).toBe(
      '<text x="1" y="2.5" title="x&quot;y">draft &lt;v2&gt; &amp; &quot;adapted&quot;</text>',
    );
    const line = polyline(
      [
        [1, 2],
        [3.25, 4],
      ],
      { stroke: 'red' },
    );
    expect(line).toBe('<polyline fill="none" stroke="red" points="1.0,2.0 3.3,4.0"/>');
    expect(svgDocument(10, 20, ['<g/>'])).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="20" viewBox="0 0 10 20" font-family="sans-serif"' +
        ' font-size="12">\n<rect width="10" height="20" fill="white"/>\n<g/>\n</svg>\n',
    );
  });

  it("escapes a run's title in the training curves the same way as the report's labels", () => {
    const svg = lossHitRateSvg(
      awkward,
      [
        { step: 0, value: 4 },
        { step: 10, value: 2 },
      ],
      [{ step: 10, value: 0.5 }],
    );
    expectWellEscaped(svg);
    expect(svg).toContain('draft &lt;v2&gt; &amp; &quot;adapted&quot;');
    expect(svg.match(/<polyline /g)).toHaveLength(2);

    const candidate = (name: string, scale: number): EvalReport['candidates'][number] =>
      ({
        name,
        position_acceptance: [0.9, 0.6].map((p) => ({ conditional: p * scale, unconditional: p * p * scale })),
        by_k: [1, 2].map((k) => ({ tau: 1 + k * scale, speedup: k * scale })),
        slices: ['0', '1 <b>'].map((value) => ({ dimension: 'turn_index', value, best_speedup: scale })),
      }) as unknown as EvalReport['candidates'][number];
    const report = { k_max: 2, candidates: [candidate(awkward, 1), candidate('generic', 0.5)] } as EvalReport;
    const plots = renderPlots(report);
    const names = ['acceptance-by-position.svg', 'slices.svg', 'speedup-vs-k.svg', 'tau-vs-k.svg'];
    expect(Object.keys(plots).sort()).toEqual(names);
    for (const svg of Object.values(plots)) {
      expectWellEscaped(svg);
      expect(svg).toContain('draft &lt;v2&gt; &amp; &quot;adapted&quot;');
    }
    expect(plots['slices.svg']).toContain('>1 &lt;b&gt;</text>');
  });
});
