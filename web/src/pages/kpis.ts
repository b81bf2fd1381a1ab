// KPIs: each of the paper's KPIs for the latest month with its formula, its inputs and its
// trend over the last six months.

import { h } from '../dom';
import { api } from '../api';
import { t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, table } from '../ui';
import { chart, colors } from '../charts';
import type { Page } from './page';

export const kpis: Page = async (root) => {
  const c = await context();
  const recent = c.months.slice(-6).map((m) => m.month);
  // One call: the latest month's KPIs and, in `trend`, each KPI in each of the six months
  // (the server reads each sum once, grouped by month).
  const latest = await api('kpi', { period: recent[recent.length - 1], trend: 6 });
  const trend = (latest.trend ?? []) as any[];
  const months = trend.length ? trend.map((t) => String(t.month)) : recent;
  const key = (k: any) => k.id + ' ' + JSON.stringify(k.group ?? {});
  const series = new Map<string, (number | null)[]>();
  trend.forEach((a, i) => {
    for (const k of a.kpis as any[]) {
      let s = series.get(key(k));
      if (!s) { s = new Array(months.length).fill(null); series.set(key(k), s); }
      s[i] = k.value === null ? null : Number(k.value);
    }
  });
  root.append(h('p', { class: 'muted', style: 'margin:0' }, f.month(months[months.length - 1])));
  const all = latest.kpis as any[];
  if (!all.length) { root.append(empty(t('common.nodata'))); return; }
  const whole = all.filter((k) => !Object.keys(k.group ?? {}).length);
  const grouped = all.filter((k) => Object.keys(k.group ?? {}).length);
  const grid = h('div', { class: 'grid three' });
  root.append(grid);
  // Values are formatted here by kind, so numbers follow the language and money shows its
  // currency code; the unit line under the value says what it is per.
  const valueText = (k: any) => {
    if (k.value === null || k.value === undefined) return t('kpi.unavailable');
    const v = Number(k.value);
    if (k.kind === 'percent') return f.pct(v, 1);
    if (k.kind === 'money') return (Math.abs(v) >= 100 ? f.money(v, c.currency) : c.currency + ' ' + f.sig(v, 4));
    // days and points: the number with its unit ("232 days").
    return f.sig(v, 4) + (k.unit && k.unit !== '%' ? ' ' + String(k.unit) : '');
  };
  whole.forEach((k, n) => {
    const s = series.get(key(k)) ?? [];
    const hasTrend = s.some((v) => v !== null);
    const spark = hasTrend ? chartBox('sm', 'kpi-trend-' + n) : h('div', { class: 'muted', style: 'font-size:12px;padding:6px 0' }, t('kpi.unavailable'));
    spark.style.height = hasTrend ? '90px' : '';
    grid.append(h('section', { class: 'card stat kpi', 'data-kpi': k.id },
      h('div', { class: 'stat-label' }, String(k.name)),
      h('div', { class: 'stat-value' }, valueText(k)),
      h('div', { class: 'stat-note' }, String(k.unit ?? '')),
      h('div', { class: 'stat-label', style: 'margin-top:8px' }, t('kpi.trend')),
      spark,
      h('div', { class: 'stat-label' }, t('kpi.formula')),
      h('div', { class: 'formula' }, String(k.formula ?? '')),
      k.note ? h('div', { class: 'stat-note', style: 'margin-top:6px' }, String(k.note)) : null));
    if (!hasTrend) return;
    chart(spark, {
      grid: { left: 4, right: 4, top: 8, bottom: 18, containLabel: true },
      tooltip: { trigger: 'axis', valueFormatter: (v: number) => (v === null ? '–' : f.sig(v, 4)) },
      xAxis: { type: 'category', data: months.map((m) => f.month(m)), axisLabel: { fontSize: 9, color: '#94a3b8', hideOverlap: true },
        axisTick: { show: false }, axisLine: { lineStyle: { color: '#e2e8f0' } } },
      yAxis: { type: 'value', scale: true, axisLabel: { fontSize: 9, color: '#94a3b8', formatter: (v: number) => f.sig(v, 2) },
        splitNumber: 2, splitLine: { lineStyle: { color: colors.grid } } },
      series: [{ type: 'line', data: s, color: colors.actual, symbolSize: 4, connectNulls: false, areaStyle: { opacity: 0.08 } }],
    });
  });
  if (grouped.length) {
    root.append(card(t('kpi.title'), table([
      { label: t('common.name'), value: (k: any) => String(k.name), sort: (k: any) => String(k.name) },
      { label: t('fc.group'), value: (k: any) => Object.entries(k.group).map(([d, v]) => `${d}=${v}`).join(', ') },
      { label: t('common.value'), num: true, value: valueText, sort: (k: any) => Number(k.value ?? -Infinity) },
      { wide: true, label: t('kpi.formula'), value: (k: any) => h('span', { class: 'formula' }, String(k.formula ?? '')) },
      { label: t('kpi.trend'), value: (k: any) => (series.get(key(k)) ?? []).map((v) => (v === null ? '–' : f.sig(v, 3))).join(' → ') },
    ], grouped, { testId: 'kpi-table' })));
  }
};
