// Showback explorer: group the ledger by any dimensions, filter, drill down, pick the time
// grain; the same numbers as a table, a stacked area over time and a treemap; CSV download.
// The whole query lives in the address (#/showback?by=team&filter=env=prod&grain=week).

import { h } from '../dom';
import { api, apiText } from '../api';
import { dimName, metricName, t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, download, empty, errorBox, section, table } from '../ui';
import { categoryAxis, chart, legend, narrow, palette, valueAxis } from '../charts';
import { go } from '../nav';
import type { Page } from './page';

export const kMetrics = ['effective_cost', 'billed_cost', 'list_cost', 'contracted_cost',
  'cache_savings', 'tokens', 'input_tokens', 'output_tokens', 'cached_tokens', 'requests', 'gpu_hours'];
const kDefaultDims = ['team', 'project', 'environment', 'model', 'provider', 'service', 'region',
  'operation', 'gpu', 'workload', 'cost_center', 'usage_type', 'resource', 'sku', 'sub_account'];
// Where a drill-down goes next when the last grouping dimension was used up.
const kDrillNext = ['team', 'project', 'model', 'service', 'resource'];

export function isMoney(metric: string): boolean { return metric.endsWith('_cost') || metric === 'cache_savings'; }

export function fmtMetric(metric: string, v: number, currency: string): string {
  if (isMoney(metric)) return f.money(v, currency);
  if (metric === 'gpu_hours') return f.num(v, 2) + ' ' + t('unit.gpu_hours');
  return f.num(v);
}

/** Dimension names from /dimensions, whatever its exact shape; a built-in list otherwise. */
export async function dimensionNames(): Promise<string[]> {
  try {
    const d = await api('dimensions');
    const raw = Array.isArray(d) ? d : (d.dimensions ?? d.names ?? Object.keys(d));
    const names = (Array.isArray(raw) ? raw : Object.keys(raw))
      .map((x: any) => typeof x === 'string' ? x : x?.name)
      .filter((x: any) => typeof x === 'string' && !['hour', 'day', 'week', 'month'].includes(x));
    if (names.length) return [...new Set<string>(names)];
  } catch { /* fall back below */ }
  return kDefaultDims;
}

export const showback: Page = async (root, params) => {
  const c = await context();
  const cur = c.currency;
  const by = (params.get('by') ?? 'team').split(',').filter(Boolean);
  const filters = params.getAll('filter').filter((x) => x.includes('='));
  const metric = kMetrics.includes(params.get('metric') ?? '') ? params.get('metric')! : 'effective_cost';
  const grain = ['day', 'week', 'month', ''].includes(params.get('grain') ?? 'x')
    ? params.get('grain')! : 'week';
  const from = params.get('from') ?? '';
  const to = params.get('to') ?? '';

  const update = (change: (p: URLSearchParams) => void) => {
    const p = new URLSearchParams();
    if (by.length) p.set('by', by.join(','));
    for (const x of filters) p.append('filter', x);
    p.set('metric', metric);
    p.set('grain', grain);
    if (from) p.set('from', from);
    if (to) p.set('to', to);
    change(p);
    go('showback', p);
  };
  const dims = await dimensionNames();

  // Controls.
  const byChips = h('div', { class: 'chips', 'data-testid': 'group-by' },
    ...by.map((d) => h('span', { class: 'chip' }, dimName(d), h('button', {
      'aria-label': t('showback.remove') + ' ' + d,
      onclick: () => update((p) => { const rest = by.filter((x) => x !== d); if (rest.length) p.set('by', rest.join(',')); else p.delete('by'); }),
    }, '×'))),
    h('select', { 'data-testid': 'add-group', 'aria-label': t('showback.add_group'),
      onchange: (e: Event) => { const v = (e.target as HTMLSelectElement).value; if (v) update((p) => p.set('by', [...by, v].join(','))); } },
    h('option', { value: '' }, t('showback.add_group')),
    ...dims.filter((d) => !by.includes(d)).map((d) => h('option', { value: d }, dimName(d)))));

  const valueSel = h('select', { 'data-testid': 'filter-value', 'aria-label': t('showback.filter_value'), disabled: true },
    h('option', { value: '' }, t('showback.filter_value')));
  const dimSel = h('select', { 'data-testid': 'filter-dim', 'aria-label': t('showback.add_filter'),
    onchange: async (e: Event) => {
      const d = (e.target as HTMLSelectElement).value;
      valueSel.replaceChildren(h('option', { value: '' }, t('showback.filter_value')));
      valueSel.disabled = true;
      if (!d) return;
      const r = await api('report', { by: d, from: from || undefined, to: to ? f.addDays(to, 1) : undefined, filter: filters });
      valueSel.append(...(r.rows as any[]).map((x) => h('option', { value: String(x[d]) }, String(x[d]))));
      valueSel.disabled = false;
    } },
  h('option', { value: '' }, t('showback.add_filter')), ...dims.map((d) => h('option', { value: d }, dimName(d))));
  valueSel.addEventListener('change', () => {
    if (dimSel.value && valueSel.value) update((p) => p.append('filter', dimSel.value + '=' + valueSel.value));
  });
  const filterChips = h('div', { class: 'chips', 'data-testid': 'filters' },
    ...filters.map((x) => {
      const [d, ...v] = x.split('=');
      return h('span', { class: 'chip' }, dimName(d) + ' = ' + v.join('='), h('button', {
        'aria-label': t('showback.remove') + ' ' + x,
        onclick: () => update((p) => { p.delete('filter'); for (const y of filters) if (y !== x) p.append('filter', y); }),
      }, '×'));
    }), dimSel, valueSel);

  const sel = (name: string, label: string, value: string, options: [string, string][],
    set: (p: URLSearchParams, v: string) => void) =>
    h('label', { class: 'field' }, h('span', null, label),
      (() => {
        const s = h('select', { name, 'data-testid': name,
          onchange: (e: Event) => update((p) => set(p, (e.target as HTMLSelectElement).value)) },
        ...options.map(([v, l]) => h('option', { value: v }, l)));
        s.value = value;
        return s;
      })());
  const dateInput = (name: string, label: string, value: string) => h('label', { class: 'field' },
    h('span', null, label), h('input', { type: 'date', name, value, 'data-testid': name,
      onchange: (e: Event) => update((p) => { const v = (e.target as HTMLInputElement).value; if (v) p.set(name, v); else p.delete(name); }) }));

  const totalBox = h('div', { class: 'total-line' });
  const csvButton = h('button', { class: 'secondary', 'data-testid': 'csv' }, t('common.download_csv'));
  root.append(h('section', { class: 'card' },
    h('div', { class: 'toolbar' },
      h('div', { class: 'field' }, h('span', null, t('showback.group_by')), byChips),
      h('div', { class: 'field' }, h('span', null, t('showback.filters')), filterChips)),
    h('div', { class: 'toolbar', style: 'margin-top:12px' },
      sel('metric', t('showback.metric'), metric, kMetrics.map((m) => [m, metricName(m)]), (p, v) => p.set('metric', v)),
      sel('grain', t('showback.grain'), grain, [['day', t('common.day')], ['week', t('common.week')], ['month', t('common.month')]], (p, v) => p.set('grain', v)),
      dateInput('from', t('showback.from'), from),
      dateInput('to', t('showback.to'), to),
      h('div', { style: 'flex:1' }),
      csvButton)));
  root.append(h('section', { class: 'card' }, totalBox));
  const area = chartBox('lg', 'area-chart');
  const tree = chartBox('lg', 'treemap-chart');
  const first = by[0];
  const areaCard = card(t('showback.stacked', { metric: metricName(metric), dim: first ? dimName(first) : t('common.total') }), area);
  const treeCard = card(t('showback.treemap', { metric: metricName(metric), dim: first ? dimName(first) : t('common.total') }), tree);
  const tableBox = h('div');
  root.append(h('div', { class: 'grid two' }, areaCard, treeCard),
    card(t('showback.table'), h('p', { class: 'muted', style: 'margin:0 0 8px' }, t('showback.drill_hint')), tableBox));

  // The date picker's "To" day is included; the API's `to` is exclusive, so it gets the next day.
  const apiTo = to ? f.addDays(to, 1) : undefined;
  const q = { metric, from: from || undefined, to: apiTo, filter: filters };
  const drill = (row: any) => {
    if (!first) return;
    update((p) => {
      p.append('filter', first + '=' + row[first]);
      let rest = by.slice(1);
      if (!rest.length) {
        const used = new Set([...filters.map((x) => x.split('=')[0]), first]);
        const next = kDrillNext.find((d) => !used.has(d));
        rest = next ? [next] : [];
      }
      if (rest.length) p.set('by', rest.join(',')); else p.delete('by');
    });
  };

  await section(tableBox, async () => {
    const [agg, series] = await Promise.all([
      api('report', { ...q, by: by.join(',') || undefined }),
      api('report', { ...q, by: first, grain }),
    ]);
    const rows = agg.rows as any[];
    totalBox.replaceChildren(
      h('span', { class: 'stat-label' }, t('showback.total_label', { metric: metricName(metric) })),
      h('span', { class: 'stat-value', 'data-testid': 'total', 'data-value': String(agg.total) },
        fmtMetric(metric, Number(agg.total), cur)),
      h('span', { class: 'muted' }, filters.length ? filters.join(', ') : ''));
    // The server's CSV of the same query: exact decimals, the CLI's `report --format csv`.
    csvButton.onclick = async () => {
      try {
        const text = await apiText('report', { ...q, by: by.join(',') || undefined, format: 'csv' });
        download(`aifinops-${[...by].join('-') || 'total'}-${metric}.csv`, text);
      } catch (e) { totalBox.append(errorBox(e)); }
    };
    if (!rows.length) {
      tableBox.replaceChildren(empty(t('common.nodata')));
      area.replaceWith(empty(t('common.nodata')));
      tree.replaceWith(empty(t('common.nodata')));
      return;
    }
    tableBox.replaceChildren(table([
      ...by.map((d) => ({ label: dimName(d), value: (r: any) => String(r[d]), sort: (r: any) => String(r[d]) })),
      { label: metricName(metric), num: true, value: (r: any) => fmtMetric(metric, Number(r[metric]), cur), sort: (r: any) => Number(r[metric]) },
      { label: t('common.share'), num: true, value: (r: any) => f.pct(r.share), sort: (r: any) => Number(r.share ?? 0) },
    ], rows.slice(0, 500), { onRow: first ? drill : undefined, initialSort: by.length, testId: 'showback-table',
      footer: [...by.map((_, i) => i === 0 ? t('common.total') : ''), fmtMetric(metric, Number(agg.total), cur), f.pct(100)] }));

    // Stacked area: the 8 largest groups, the rest summed as "others".
    const tcol = grain;
    const srows = series.rows as any[];
    const times = [...new Set(srows.map((r) => r[tcol] as string))];
    const groupTotals = new Map<string, number>();
    for (const r of srows) {
      const g = first ? String(r[first]) : t('common.total');
      groupTotals.set(g, (groupTotals.get(g) ?? 0) + Number(r[metric]));
    }
    const top = [...groupTotals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map((x) => x[0]);
    const others = t('showback.others');
    const names = groupTotals.size > top.length ? [...top, others] : top;
    const idx = new Map(times.map((x, i) => [x, i]));
    const data = new Map(names.map((n) => [n, new Array(times.length).fill(0)]));
    for (const r of srows) {
      const g = first ? String(r[first]) : t('common.total');
      const key = top.includes(g) ? g : others;
      data.get(key)![idx.get(r[tcol])!] += Number(r[metric]);
    }
    const unit = isMoney(metric) ? cur : metric === 'gpu_hours' ? t('unit.gpu_hours') : t('unit.' + (metric === 'requests' ? 'requests' : 'tokens') as any);
    chart(area, {
      legend: { ...legend(), type: 'scroll' },
      grid: { left: 8, right: 16, top: 56, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis', valueFormatter: (v: number) => fmtMetric(metric, v, cur) },
      xAxis: { ...categoryAxis(times), boundaryGap: false,
        axisLabel: { formatter: (s: string) => f.bucket(s, grain), color: '#64748b', hideOverlap: true } },
      yAxis: valueAxis(metricName(metric) + ' (' + unit + ')', (v) => f.compact(v)),
      series: names.map((n, i) => ({ name: n, type: 'line', stack: 'total', showSymbol: false,
        areaStyle: { opacity: 0.75 }, lineStyle: { width: 1 }, color: n === others ? '#cbd5e1' : palette[i % palette.length],
        emphasis: { focus: 'series' }, data: data.get(n) })),
    });

    // Treemap of the first dimension (positive values only: credits cannot be drawn as area).
    const byFirst = new Map<string, number>();
    for (const r of rows) {
      const g = first ? String(r[first]) : t('common.total');
      byFirst.set(g, (byFirst.get(g) ?? 0) + Number(r[metric]));
    }
    const leaves = [...byFirst.entries()].filter((x) => x[1] > 0).sort((a, b) => b[1] - a[1]);
    chart(tree, {
      tooltip: { formatter: (p: any) => `${p.name}<br>${fmtMetric(metric, p.value, cur)} (${f.pct(p.value / Number(agg.total) * 100)})` },
      series: [{ type: 'treemap', roam: false, nodeClick: false, breadcrumb: { show: false },
        top: 0, left: 0, right: 0, bottom: 0,
        label: { show: true, formatter: (p: any) => `${p.name}\n${narrow() ? f.compact(p.value) : fmtMetric(metric, p.value, cur)}`,
          fontSize: 12, lineHeight: 16, overflow: 'truncate' },
        upperLabel: { show: false },
        itemStyle: { borderColor: '#fff', borderWidth: 2, gapWidth: 2 },
        data: leaves.map(([name, value], i) => ({ name, value, itemStyle: { color: palette[i % palette.length] } })) }],
    }).on('click', (p: any) => { if (first) drill({ [first]: p.name }); });
  });
};
