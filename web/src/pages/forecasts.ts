// Forecasts: the next 90 days of spend with the interval, in total and per group, with the
// model behind each forecast and the monthly roll-up.

import { h } from '../dom';
import { api } from '../api';
import { dimName, t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, table } from '../ui';
import { categoryAxis, chart, colors, legend, valueAxis } from '../charts';
import { go } from '../nav';
import type { Page } from './page';

const kBy = ['team', 'project', 'model', 'service', ''];

export const forecasts: Page = async (root, params) => {
  const c = await context();
  const cur = c.currency;
  const by = kBy.includes(params.get('by') ?? 'team') ? (params.get('by') ?? 'team') : 'team';
  const sel = h('select', { 'data-testid': 'fc-by', onchange: (e: Event) => {
    const p = new URLSearchParams(); p.set('by', (e.target as HTMLSelectElement).value); go('forecasts', p);
  } }, ...kBy.map((d) => h('option', { value: d }, d ? dimName(d) : t('fc.total'))));
  sel.value = by;
  root.append(h('div', { class: 'toolbar' }, h('label', { class: 'field' }, h('span', null, t('fc.by')), sel)));

  const [total, groups, hist] = await Promise.all([
    api('forecast', { horizon: '90d' }),
    by ? api('forecast', { horizon: '90d', by, top: 8 }) : Promise.resolve(null),
    api('report', { grain: 'day', from: f.addDays(c.lastDay, -59) }),
  ]);
  const g0 = total.groups?.[0];
  if (!g0) { root.append(empty(t('common.nodata'))); return; }
  const daily = (g0.daily ?? []) as any[];
  const histRows = (hist.rows as any[]).map((r) => [r.day as string, Number(r[hist.metric])] as const);
  const labels = [...histRows.map((x) => x[0]), ...daily.map((d) => d.day as string)];
  const pad = (n: number) => new Array(n).fill(null);
  const box = chartBox('lg', 'fc-daily');
  root.append(card(t('fc.daily') + ' — ' + t('fc.interval_label', { p: Math.round(total.interval * 100) }), box));
  chart(box, {
    legend: { ...legend(), data: [t('common.actual'), t('common.forecast'), t('common.interval')] },
    grid: { left: 8, right: 16, top: 44, bottom: 8, containLabel: true },
    tooltip: { trigger: 'axis', valueFormatter: (v: number) => (v === null ? '–' : f.money(v, cur)) },
    xAxis: { ...categoryAxis(labels), axisLabel: { formatter: (s: string) => f.shortDay(s), color: '#64748b', hideOverlap: true } },
    yAxis: valueAxis(t('common.spend') + ' (' + cur + '/' + t('common.day') + ')', (v) => f.compact(v)),
    series: [
      { name: t('common.actual'), type: 'line', data: histRows.map((x) => x[1]), showSymbol: false, color: colors.actual },
      { name: 'lower', type: 'line', stack: 'band', data: [...pad(histRows.length), ...daily.map((d) => d.lower)],
        showSymbol: false, lineStyle: { opacity: 0 }, silent: true, tooltip: { show: false } },
      { name: t('common.interval'), type: 'line', stack: 'band', data: [...pad(histRows.length), ...daily.map((d) => d.upper - d.lower)],
        showSymbol: false, lineStyle: { opacity: 0 }, areaStyle: { color: colors.band }, color: colors.band, tooltip: { show: false } },
      { name: t('common.forecast'), type: 'line',
        data: [...pad(histRows.length - 1), histRows.length ? histRows[histRows.length - 1][1] : null, ...daily.map((d) => d.forecast)],
        showSymbol: false, color: colors.forecast, lineStyle: { type: 'dashed', width: 2 } },
    ],
  });

  const src = groups ?? total;
  const gl = (src.groups ?? []) as any[];
  const months = [...new Set(gl.flatMap((g) => (g.months as any[]).map((m) => m.month as string)))];
  const name = (g: any) => Object.values(g.keys ?? {}).join(' / ') || t('fc.total');
  const mbox = chartBox('lg', 'fc-months');
  root.append(card(t('fc.months'), mbox));
  chart(mbox, {
    legend: { ...legend(), type: 'scroll' },
    grid: { left: 8, right: 16, top: 44, bottom: 8, containLabel: true },
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v: number) => f.money(v, cur, 0) },
    xAxis: categoryAxis(months.map((m) => f.month(m))),
    yAxis: valueAxis(t('common.spend') + ' (' + cur + ')', (v) => f.compact(v)),
    series: gl.map((g) => ({ name: name(g), type: 'bar', stack: 'm',
      data: months.map((m) => (g.months as any[]).find((x) => x.month === m)?.total ?? 0) })),
  });
  const rows = gl.flatMap((g) => (g.months as any[]).map((m) => ({ g, m })));
  root.append(card(t('fc.months'), table([
    { label: t('fc.group'), value: (r: any) => name(r.g), sort: (r: any) => name(r.g) },
    { label: t('common.month'), value: (r: any) => f.month(r.m.month) + (r.m.complete ? '' : ' *'), sort: (r: any) => r.m.month },
    { wide: true, label: t('fc.history'), num: true, value: (r: any) => f.money(r.g.last_28_days, cur, 0), sort: (r: any) => r.g.last_28_days },
    { label: t('common.forecast'), num: true, value: (r: any) => f.money(r.m.total, cur, 0), sort: (r: any) => r.m.total },
    { wide: true, label: t('fc.lower'), num: true, value: (r: any) => f.money(r.m.actual + r.m.lower, cur, 0) },
    { wide: true, label: t('fc.upper'), num: true, value: (r: any) => f.money(r.m.actual + r.m.upper, cur, 0) },
    { wide: true, label: t('fc.method'), value: (r: any) => String(r.g.model?.method ?? '') },
  ], rows, { testId: 'fc-table' }),
  h('p', { class: 'muted', style: 'margin:8px 0 0;font-size:12px' }, t('fc.partial'))));
};
