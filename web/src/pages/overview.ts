// Overview: this month against the last, the daily trend with its forecast band, budget
// burn-down, top movers, the latest anomalies and the savings on the table.

import { h } from '../dom';
import { api, apiOptional } from '../api';
import { t, metricName } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, section, stat } from '../ui';
import { bottomValueAxis, categoryAxis, chart, colors, hbar, legend, narrow, valueAxis } from '../charts';
import { savingsTotal, recList } from './recommendations';
import type { Page } from './page';

export const overview: Page = async (root) => {
  const c = await context();
  const cur = c.currency;
  const months = c.months;
  const thisM = months[months.length - 1];
  const prevM = months[months.length - 2];
  const monthStart = c.lastMonth + '-01';
  const dayOfMonth = Number(c.lastDay.slice(8, 10));
  const monthEnd = f.addDays(f.addMonths(c.lastMonth, 1) + '-01', -1);
  const complete = c.lastDay === monthEnd;

  const stats = h('div', { class: 'grid stats' });
  const trend = chartBox('lg', 'trend-chart');
  const burn = h('div');
  const movers = h('div');
  const anomalies = h('div');
  root.append(stats,
    card(t('overview.trend'), trend),
    h('div', { class: 'grid two' },
      card(t('overview.burndown'), burn),
      card(t('overview.movers', { month: f.month(c.lastMonth),
        prev: prevM ? f.month(prevM.month) : '–' }), movers)),
    card(t('overview.recent_anomalies'), anomalies));

  const since = f.addDays(c.lastDay, -13);
  // Every query of the page starts now; the sections below get the same (cached) promises.
  const trendQ = { grain: 'day', from: f.addDays(c.lastDay, -89) };
  const budgetQ = { 'as-of': c.lastDay };
  const moversQ = { by: 'project', period: c.lastMonth, compare: 'previous' };
  const prefetch = [api('report', trendQ), api('budgets', budgetQ)];
  if (prevM) prefetch.push(api('report', moversQ));
  prefetch.forEach((p) => p.catch(() => { /* reported by the section that uses it */ }));
  const [fc, anom, recs] = await Promise.all([
    api('forecast', { horizon: '30d' }),
    api('anomalies', { by: 'team', since, limit: 5 }),
    apiOptional('recommendations'),
  ]);

  // Headline numbers.
  const change = thisM && prevM && prevM.value !== 0
    ? (thisM.value - prevM.value) / Math.abs(prevM.value) * 100 : null;
  const monthFc = fc.groups?.[0]?.months?.find((m: any) => m.month === c.lastMonth)
    ?? fc.groups?.[0]?.months?.[0];
  const recItems = recs ? recList(recs) : [];
  const saving = savingsTotal(recItems);
  stats.append(
    stat(t('overview.this_month', { month: f.month(c.lastMonth) }), f.money(thisM?.value, cur),
      prevM ? t('overview.vs_last', { change: f.signedPct(change), month: f.month(prevM.month) })
        + (complete ? '' : ' · ' + t('overview.month_so_far', { days: dayOfMonth })) : '',
      change === null ? '' : change > 0 ? 'bad' : 'good', 'stat-spend'),
    monthFc
      ? stat(t('overview.forecast_month', { month: f.month(monthFc.month) }), f.money(monthFc.total, cur),
        f.money(monthFc.lower + (monthFc.actual ?? 0), cur, 0) + ' – '
        + f.money(monthFc.upper + (monthFc.actual ?? 0), cur, 0))
      : stat(t('common.forecast'), '–'),
    stat(t('overview.open_anomalies'), f.num(anom.found),
      t('overview.anomalies_impact', { amount: f.money(anom.total_impact, cur, 0) }),
      anom.found > 0 ? 'warn' : 'good', 'stat-anomalies'),
    stat(t('overview.savings'), recItems.length ? f.money(saving, cur, 0) : '–',
      recItems.length ? t('rec.total', { amount: f.money(saving, cur, 0) }) : t('overview.savings_none'),
      recItems.length ? 'good' : '', 'stat-overview-savings'));

  await Promise.all([
    section(h('div'), async () => {
      const days = await api('report', trendQ);
      const hist = (days.rows as any[]).map((r) => [r.day, Number(r[days.metric])]);
      const daily = (fc.groups?.[0]?.daily ?? []) as any[];
      const labels = [...hist.map((x) => x[0] as string), ...daily.map((d) => d.day as string)];
      const pad = (n: number) => new Array(n).fill(null);
      const last = hist[hist.length - 1];
      chart(trend, {
        legend: { ...legend(), data: [t('common.actual'), t('common.forecast'), t('common.interval')] },
        grid: { left: 8, right: 16, top: 48, bottom: 8, containLabel: true },
        tooltip: { trigger: 'axis', valueFormatter: (v: number) => f.money(v, cur) },
        xAxis: { ...categoryAxis(labels), axisLabel: { formatter: (s: string) => f.shortDay(s),
          color: '#64748b', hideOverlap: true } },
        yAxis: valueAxis(metricName(days.metric) + ' (' + cur + '/' + t('common.day') + ')', (v) => f.compact(v)),
        series: [
          { name: t('common.actual'), type: 'line', showSymbol: false, data: hist.map((x) => x[1]),
            lineStyle: { width: 2 }, color: colors.actual },
          { name: 'lower', type: 'line', stack: 'band', showSymbol: false, silent: true,
            data: [...pad(hist.length), ...daily.map((d) => d.lower)], lineStyle: { opacity: 0 },
            tooltip: { show: false } },
          { name: t('common.interval'), type: 'line', stack: 'band', showSymbol: false, silent: true,
            data: [...pad(hist.length), ...daily.map((d) => d.upper - d.lower)],
            lineStyle: { opacity: 0 }, areaStyle: { color: colors.band }, color: colors.band },
          { name: t('common.forecast'), type: 'line', showSymbol: false, color: colors.forecast,
            lineStyle: { type: 'dashed', width: 2 },
            data: [...pad(hist.length - 1), last ? last[1] : null, ...daily.map((d) => d.forecast)] },
        ],
      });
    }),
    section(burn, async () => {
      const b = await api('budgets', budgetQ);
      const list = (b.budgets ?? []) as any[];
      if (!list.length) { burn.replaceChildren(empty(t('overview.no_budgets'))); return; }
      const box = chartBox('md', 'burn-chart');
      box.style.height = Math.max(180, 60 + list.length * 46) + 'px';
      burn.replaceChildren(box);
      const names = list.map((x) => x.name as string);
      chart(box, {
        legend: { ...legend(), data: [t('budget.used'), t('budget.forecast_used')] },
        ...hbar(names, { top: 36 }),
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' },
          valueFormatter: (v: number) => f.pct(v) },
        xAxis: { ...bottomValueAxis(t('budget.used') + ' (% ' + t('budget.amount') + ')', (v) => v + '%'),
          max: (v: any) => Math.max(110, Math.ceil(v.max / 10) * 10) },
        series: [
          { name: t('budget.used'), type: 'bar', barGap: '-100%', barWidth: 14, z: 3,
            data: list.map((x) => ({ value: x.used_percent,
              itemStyle: { color: x.used_percent >= 100 ? colors.bad : colors.actual } })),
            markLine: { symbol: 'none', silent: true, data: [{ xAxis: 100 }],
              lineStyle: { color: colors.bad, type: 'solid' }, label: { show: false } } },
          { name: t('budget.forecast_used'), type: 'bar', barWidth: 14, z: 2, color: 'rgba(37,99,235,0.2)',
            data: list.map((x) => ({ value: x.forecast_percent,
              itemStyle: { color: x.forecast_percent >= 100 ? 'rgba(220,38,38,0.25)' : 'rgba(37,99,235,0.2)' } })) },
        ],
      });
    }),
    section(movers, async () => {
      if (!prevM) { movers.replaceChildren(empty(t('common.nodata'))); return; }
      const r = await api('report', moversQ);
      const rows = (r.rows as any[]).filter((x) => x.change !== undefined)
        .sort((a, b) => Math.abs(b.change) - Math.abs(a.change)).slice(0, 8);
      if (!rows.length) { movers.replaceChildren(empty(t('common.nodata'))); return; }
      const box = chartBox('md', 'movers-chart');
      box.style.height = Math.max(180, 50 + rows.length * 34) + 'px';
      movers.replaceChildren(box);
      chart(box, {
        ...hbar(rows.map((x) => String(x.project)), { top: 8, right: narrow() ? 16 : 56 }),
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' },
          formatter: (ps: any[]) => {
            const x = rows[ps[0].dataIndex];
            return `${x.project}<br>${t('common.change')}: ${f.money(x.change, cur)} (${f.signedPct(x.change_percent)})`
              + `<br>${f.month(c.lastMonth)}: ${f.money(x[r.metric], cur)}<br>${t('common.previous')}: ${f.money(x.previous, cur)}`;
          } },
        xAxis: bottomValueAxis(t('common.change') + ' (' + cur + ')', (v) => f.compact(v)),
        series: [{ type: 'bar', barWidth: 14, name: t('common.change'),
          data: rows.map((x) => ({ value: x.change,
            itemStyle: { color: x.change > 0 ? colors.bad : colors.good } })),
          label: { show: !narrow(), position: 'right', formatter: (p: any) => f.signedPct(rows[p.dataIndex].change_percent),
            color: '#475569', fontSize: 11 } }],
      });
    }),
    section(anomalies, async () => {
      const list = (anom.anomalies ?? []) as any[];
      if (!list.length) { anomalies.replaceChildren(empty(t('overview.no_anomalies'))); return; }
      anomalies.replaceChildren(h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', null, t('common.date')), h('th', null, t('anom.by')),
          h('th', { class: 'num' }, t('common.actual')), h('th', { class: 'num' }, t('common.expected')),
          h('th', { class: 'num' }, t('anom.impact')), h('th', null, t('anom.explained')))),
        h('tbody', null, ...list.map((a) => h('tr', { class: 'clickable',
          onclick: () => { location.hash = '#/anomalies?by=team&days=14'; } },
        h('td', null, f.date(a.time)),
        h('td', null, Object.values(a.keys).join(' / ') || t('anom.total_series')),
        h('td', { class: 'num' }, f.money(a.actual, cur)),
        h('td', { class: 'num' }, f.money(a.expected, cur)),
        h('td', { class: 'num bad' }, '+' + f.money(a.impact, cur)),
        h('td', null, (a.explained_by ?? []).slice(0, 1).map((e: any) =>
          `${e.dimension}=${e.value} (${f.pct(e.share * 100, 0)})`).join(''))))))));
    }),
  ]);
};
