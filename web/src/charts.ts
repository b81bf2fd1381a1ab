// ECharts with only the chart types the pages use (modular imports keep the bundle small),
// drawn as SVG so the browser tests can count what was drawn. One palette for every page.

import * as echarts from 'echarts/core';
import { BarChart, HeatmapChart, LineChart, TreemapChart } from 'echarts/charts';
import {
  GridComponent, LegendComponent, MarkAreaComponent, MarkLineComponent, MarkPointComponent,
  TooltipComponent, VisualMapContinuousComponent,
} from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';
import type { EChartsCoreOption } from 'echarts/core';

echarts.use([BarChart, HeatmapChart, LineChart, TreemapChart, GridComponent,
  LegendComponent, MarkAreaComponent, MarkLineComponent, MarkPointComponent, TooltipComponent,
  VisualMapContinuousComponent, SVGRenderer]);

/** Series colours, in order; a dimension value keeps its colour within one chart. */
export const palette = ['#2563eb', '#f59e0b', '#10b981', '#8b5cf6', '#ef4444', '#06b6d4',
  '#ec4899', '#84cc16', '#64748b', '#a16207', '#0f766e', '#7c3aed'];

export const colors = { actual: '#2563eb', forecast: '#8b5cf6', band: 'rgba(139,92,246,0.18)',
  bad: '#dc2626', good: '#059669', warn: '#d97706', muted: '#94a3b8', grid: '#e2e8f0',
  text: '#334155' };

const live = new Set<echarts.ECharts>();
const observer = typeof ResizeObserver !== 'undefined'
  ? new ResizeObserver((entries) => {
    for (const e of entries) echarts.getInstanceByDom(e.target as HTMLElement)?.resize();
  })
  : null;

/** Draws option into el (an element already in the document) and keeps it sized. */
export function chart(el: HTMLElement, option: EChartsCoreOption): echarts.ECharts {
  const c = echarts.init(el, null, { renderer: 'svg' });
  c.setOption({
    color: palette,
    textStyle: { fontFamily: 'inherit', color: colors.text },
    animation: false,
    ...option,
  });
  // How many values the chart was given: the browser tests check that charts have data.
  const series = ([] as any[]).concat((option as any).series ?? []);
  const points = series.reduce((n, s) => n + (Array.isArray(s?.data)
    ? s.data.filter((v: unknown) => v !== null && v !== undefined && v !== '-').length : 0), 0);
  el.dataset.points = String(points);
  live.add(c);
  observer?.observe(el);
  return c;
}

/** Disposes every chart: called before a page is replaced. */
export function disposeCharts(): void {
  for (const c of live) {
    const dom = c.getDom();
    observer?.unobserve(dom);
    c.dispose();
  }
  live.clear();
}

/** Common axis styling: a named axis with unit, light grid lines. */
export function valueAxis(name: string, formatter: (v: number) => string): object {
  return {
    type: 'value', name, nameLocation: 'end', nameTextStyle: { align: 'left', color: '#64748b' },
    axisLabel: { formatter, color: '#64748b' },
    splitLine: { lineStyle: { color: colors.grid } },
  };
}

export function categoryAxis(data: string[], name = '', rotate = 0): object {
  return {
    type: 'category', data, name, nameLocation: 'middle', nameGap: 28,
    nameTextStyle: { color: '#64748b' },
    axisLabel: { color: '#64748b', rotate, hideOverlap: true },
    axisLine: { lineStyle: { color: '#cbd5e1' } },
  };
}

/** Legend at the top, scrolling when it has many entries. */
export function legend(): object {
  return { type: 'plain', top: 0, left: 0, itemWidth: 12, itemHeight: 8,
    textStyle: { color: colors.text, fontSize: 11 } };
}

/** Narrow screens get smaller margins and fewer labels. */
export function narrow(): boolean { return window.innerWidth < 700; }

/**
 * Grid and category axis for horizontal bar charts: the left margin is sized from the
 * longest label (up to a cap, then truncated), so long names are never clipped.
 */
export function hbar(labels: string[], opts: { top?: number; right?: number } = {}): { grid: object; yAxis: object } {
  const cap = narrow() ? 120 : 210;
  const ctx = document.createElement('canvas').getContext('2d');
  if (ctx) ctx.font = '12px system-ui, sans-serif';
  const widest = Math.max(20, ...labels.map((l) => (ctx ? ctx.measureText(l).width : l.length * 7)));
  const w = Math.min(cap, Math.ceil(widest) + 4);
  return {
    grid: { left: w + 22, right: opts.right ?? 24, top: opts.top ?? 28, bottom: 36, containLabel: false },
    yAxis: { type: 'category', data: labels, inverse: true,
      axisLabel: { width: w, overflow: 'truncate', color: '#334155', fontSize: 12 } },
  };
}

/** A value axis along the bottom with its name centred under it. */
export function bottomValueAxis(name: string, formatter: (v: number) => string): object {
  return { type: 'value', name, nameLocation: 'middle', nameGap: 24,
    nameTextStyle: { color: '#64748b' }, axisLabel: { formatter, color: '#64748b', hideOverlap: true },
    splitLine: { lineStyle: { color: colors.grid } } };
}

/**
 * A heatmap of values in 0..1 (utilisation) over columns xs and rows ys: cells are
 * [column, row, value] with indexes; missing cells stay blank (no reading is not 0%). The
 * colour scale runs from idle (red) through amber to busy (green), so idle capacity stands out.
 */
/**
 * A label cut to `max` characters in the middle ("gpu-inference-node-us-e…01 · H100"), so that
 * both its start (a host's name, given two thirds) and its end (the GPU type) stay readable.
 */
export function middleEllipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  const tail = Math.floor((max - 1) / 3);
  return chars.slice(0, max - 1 - tail).join('') + '…' + chars.slice(chars.length - tail).join('');
}

export function heatmap(el: HTMLElement, xs: string[], ys: string[], cells: [number, number, number][],
  opts: { xLabel?: (s: string) => string; value?: (v: number) => string; name?: string } = {}): echarts.ECharts {
  const label = opts.value ?? ((v: number) => (v * 100).toFixed(0) + '%');
  const small = narrow();
  // Row names are cut in the middle to fit the label column; the full name is in each
  // cell's tooltip and in data-rows (for tests and assistive tools).
  const maxChars = small ? 16 : 36;
  el.dataset.rows = JSON.stringify(ys);
  return chart(el, {
    // containLabel sizes the left margin from the labels (cut at a width cap); ECharts measures
    // them a little narrower than the browser draws them, hence the extra left padding.
    grid: { left: 32, right: 16, top: 8, bottom: 48, containLabel: true },
    tooltip: {
      position: 'top',
      formatter: (p: any) => `${ys[p.value[1]]}<br/>${xs[p.value[0]]}: <b>${label(p.value[2])}</b>`,
    },
    xAxis: { type: 'category', data: xs, splitArea: { show: true },
      axisLabel: { color: '#64748b', hideOverlap: true, formatter: opts.xLabel } },
    yAxis: { type: 'category', data: ys, inverse: true, splitArea: { show: true },
      axisLabel: { width: small ? 110 : 260, overflow: 'truncate', color: colors.text, fontSize: 12,
        formatter: (s: string) => middleEllipsis(s, maxChars) } },
    visualMap: {
      type: 'continuous', min: 0, max: 1, calculable: false, orient: 'horizontal',
      left: 'center', bottom: 0, itemHeight: small ? 120 : 200, itemWidth: 10,
      text: ['100%', '0%'], textStyle: { color: colors.text, fontSize: 11 },
      inRange: { color: ['#dc2626', '#f59e0b', '#fde68a', '#86efac', '#059669'] },
    },
    series: [{ name: opts.name ?? '', type: 'heatmap', data: cells,
      label: { show: !small && xs.length <= 14, formatter: (p: any) => label(p.value[2]), fontSize: 10 },
      emphasis: { itemStyle: { borderColor: '#334155', borderWidth: 1 } } }],
  });
}
