// Anomalies: every spike with its daily series around it, the expected range on the day and
// the dimension values that explain it.

import { h } from '../dom';
import { api } from '../api';
import { dimName, metricName, t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, section, stat } from '../ui';
import { categoryAxis, chart, colors, legend, valueAxis } from '../charts';
import { go } from '../nav';
import type { Page } from './page';

const kBy = ['team', 'project', 'model', 'service', ''];
const kDays = [14, 30, 90];

export const anomalies: Page = async (root, params) => {
  const c = await context();
  const cur = c.currency;
  const by = kBy.includes(params.get('by') ?? 'team') ? (params.get('by') ?? 'team') : 'team';
  // The window scored: the overview's "open anomalies" are the last 14 days (and link here
  // with days=14, so both show the same list).
  const days = kDays.includes(Number(params.get('days'))) ? Number(params.get('days')) : 90;
  const since = f.addDays(c.lastDay, -(days - 1));
  const update = (k: string, v: string) => {
    const p = new URLSearchParams(); p.set('by', by); p.set('days', String(days)); p.set(k, v); go('anomalies', p);
  };
  const sel = h('select', { 'data-testid': 'anom-by', onchange: (e: Event) => update('by', (e.target as HTMLSelectElement).value) },
    ...kBy.map((d) => h('option', { value: d }, d ? dimName(d) : t('anom.total_series'))));
  sel.value = by;
  const win = h('select', { 'data-testid': 'anom-days', onchange: (e: Event) => update('days', (e.target as HTMLSelectElement).value) },
    ...kDays.map((d) => h('option', { value: String(d) }, t('anom.last_days', { n: d }))));
  win.value = String(days);
  root.append(h('div', { class: 'toolbar' }, h('label', { class: 'field' }, h('span', null, t('anom.by')), sel),
    h('label', { class: 'field' }, h('span', null, t('anom.window')), win),
    h('span', { class: 'muted' }, f.date(since) + ' – ' + f.date(c.lastDay))));

  const a = await api('anomalies', { by: by || undefined, since, limit: 12 });
  const list = (a.anomalies ?? []) as any[];
  root.append(h('div', { class: 'grid stats' },
    stat(t('anom.title'), f.num(a.found), t('anom.found', { found: f.num(a.found),
      series: f.num(a.series), impact: f.money(a.total_impact, cur, 0) }), a.found ? 'warn' : 'good', 'stat-anomalies')));
  if (!list.length) { root.append(empty(t('anom.none'))); return; }

  await Promise.all(list.map((x, n) => {
    const day = String(x.time).slice(0, 10);
    const keys = Object.entries(x.keys as Record<string, string>);
    const title = (keys.map(([k, v]) => `${dimName(k)}: ${v}`).join(' · ') || t('anom.total_series')) + ' — ' + f.date(day);
    const box = chartBox('md', 'anomaly-chart-' + n);
    const explain = h('div');
    root.append(card(title,
      h('div', { class: 'meta muted' },
        h('span', null, t('common.actual') + ': ', h('strong', null, f.money(x.actual, cur))),
        h('span', null, t('common.expected') + ': ' + f.money(x.expected, cur)),
        h('span', null, t('common.expected_band') + ': ' + f.money(x.lower, cur, 0) + ' – ' + f.money(x.upper, cur, 0)),
        h('span', { class: 'bad' }, t('anom.impact') + ': +' + f.money(x.impact, cur)),
        h('span', null, t('anom.score') + ': ' + f.num(x.score, 1))),
      h('div', { class: 'grid two' }, box, explain)));
    root.lastElementChild!.classList.add('anom-card');
    return section(explain, async () => {
      const from = f.addDays(day, -41);
      const to = f.addDays(day < c.lastDay ? f.addDays(day, 14) < c.lastDay ? f.addDays(day, 14) : c.lastDay : day, 1);
      const r = await api('report', { grain: 'day', from, to, metric: a.metric,
        filter: keys.map(([k, v]) => `${k}=${v}`) });
      const days = (r.rows as any[]).map((y) => y.day as string);
      const vals = (r.rows as any[]).map((y) => Number(y[r.metric]));
      const i = days.indexOf(day);
      const at = (v: number) => days.map((_, j) => (j === i ? v : null));
      chart(box, {
        legend: { ...legend(), data: [t('common.actual'), t('common.expected'), t('common.expected_band')] },
        grid: { left: 8, right: 12, top: 44, bottom: 8, containLabel: true },
        tooltip: { trigger: 'axis', valueFormatter: (v: number) => (v === null ? '–' : f.money(v, cur)) },
        xAxis: { ...categoryAxis(days), axisLabel: { formatter: (s: string) => f.shortDay(s), color: '#64748b', hideOverlap: true } },
        yAxis: { ...valueAxis(metricName(a.metric) + ' (' + cur + ')', (v) => f.compact(v)), scale: true },
        series: [
          { name: 'lower', type: 'bar', stack: 'band', data: at(x.lower), itemStyle: { color: 'transparent' },
            tooltip: { show: false }, barWidth: 10, silent: true },
          { name: t('common.expected_band'), type: 'bar', stack: 'band', data: at(x.upper - x.lower),
            itemStyle: { color: 'rgba(16,185,129,0.35)' }, color: 'rgba(16,185,129,0.35)', barWidth: 10 },
          { name: t('common.actual'), type: 'line', data: vals, showSymbol: false, color: colors.actual,
            markPoint: i >= 0 ? { symbol: 'circle', symbolSize: 10, itemStyle: { color: colors.bad },
              label: { show: false }, data: [{ coord: [i, vals[i]] }] } : undefined },
          { name: t('common.expected'), type: 'line', data: at(x.expected), symbol: 'diamond', symbolSize: 10,
            color: colors.good },
        ],
      });
      const ex = (x.explained_by ?? []) as any[];
      explain.replaceChildren(h('h4', { class: 'card-title' }, t('anom.explained')),
        ex.length ? h('div', { class: 'table-wrap' }, h('table', null,
          h('thead', null, h('tr', null, h('th', null, t('anom.dimension')), h('th', null, t('common.value')),
            h('th', { class: 'num' }, t('anom.impact')), h('th', { class: 'num' }, t('common.share')))),
          h('tbody', null, ...ex.map((e) => h('tr', null, h('td', null, dimName(e.dimension)),
            h('td', { class: 'mono' }, String(e.value)), h('td', { class: 'num' }, '+' + f.money(e.impact, cur, 0)),
            h('td', { class: 'num' }, f.pct(e.share * 100, 0)))))))
          : empty(t('common.nodata')));
    });
  }));
};
