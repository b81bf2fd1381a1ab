// Budgets: each budget's use so far and forecast for the period, and a burn-down chart
// (cumulative spend against the amount, the even pace and the projected end).

import { h } from '../dom';
import { api } from '../api';
import { t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, section, table } from '../ui';
import { categoryAxis, chart, colors, legend, valueAxis } from '../charts';
import type { Page } from './page';

export function budgetTone(b: any): 'good' | 'warn' | 'bad' {
  if (b.used_percent >= 100) return 'bad';
  if (b.forecast_percent >= 100) return 'warn';
  return 'good';
}

export const budgets: Page = async (root) => {
  const c = await context();
  const b = await api('budgets', { 'as-of': c.lastDay });
  const list = (b.budgets ?? []) as any[];
  root.append(h('p', { class: 'muted', style: 'margin:0' }, t('common.as_of', { date: f.date(c.lastDay) })));
  if (!list.length) { root.append(empty(t('budget.none'))); return; }
  const label = (x: any) => {
    const tone = budgetTone(x);
    return h('span', { class: 'badge ' + tone }, tone === 'bad' ? t('budget.over') : tone === 'warn' ? t('budget.at_risk') : t('budget.on_track'));
  };
  const usedBar = (x: any) => h('div', { style: 'min-width:120px' },
    h('div', { class: 'bar', title: f.pct(x.used_percent) },
      h('div', { style: `width:${Math.min(100, x.used_percent)}%;background:${x.used_percent >= 100 ? colors.bad : colors.actual}` })),
    h('small', { class: 'muted' }, f.pct(x.used_percent) + ' · ' + t('budget.forecast_used') + ' ' + f.pct(x.forecast_percent)));
  root.append(card(t('budget.title'), table([
    { label: t('budget.name'), value: (x: any) => String(x.name), sort: (x: any) => String(x.name) },
    { wide: true, label: t('common.period'), value: (x: any) => h('span', { style: 'white-space:nowrap' },
      /^\d{4}-\d{2}$/.test(x.period_label) ? f.month(x.period_label) : String(x.period_label)) },
    { wide: true, label: t('budget.days'), num: true, value: (x: any) => `${x.days_elapsed}/${x.days_in_period}` },
    { label: t('budget.amount'), num: true, value: (x: any) => f.money(Number(x.amount_usd), 'USD', 0), sort: (x: any) => Number(x.amount_usd) },
    { wide: true, label: t('common.actual'), num: true, value: (x: any) => f.money(Number(x.actual_usd), 'USD'), sort: (x: any) => Number(x.actual_usd) },
    { label: t('budget.used'), value: usedBar, sort: (x: any) => x.used_percent },
    { wide: true, label: t('common.forecast'), num: true, value: (x: any) => f.money(x.forecast_usd, 'USD', 0), sort: (x: any) => x.forecast_usd },
    { wide: true, label: t('budget.runs_out'), value: (x: any) => x.exhausted_on ? f.date(x.exhausted_on) : x.projected_exhaustion ? f.date(x.projected_exhaustion) : '–' },
    { label: t('common.status'), value: label, sort: (x: any) => x.forecast_percent },
  ], list, { initialSort: 8, testId: 'budget-table' })));

  const grid = h('div', { class: 'grid two' });
  root.append(grid);
  await Promise.all(list.map((x, n) => {
    const box = chartBox('md', 'burn-' + n);
    const holder = h('div');
    grid.append(card(t('budget.burn', { name: x.name }), holder, box));
    return section(holder, async () => {
      holder.replaceChildren();
      const scope = Object.entries((x.scope ?? {}) as Record<string, string | string[]>)
        .flatMap(([k, v]) => (Array.isArray(v) ? v.length === 1 ? [`${k}=${v[0]}`] : [] : [`${k}=${v}`]));
      const end = f.addDays(x.period_last_day, 1);
      const r = await api('report', { grain: 'day', from: x.period_start, to: f.addDays(c.lastDay, 1) < end ? f.addDays(c.lastDay, 1) : end, filter: scope });
      const days: string[] = [];
      for (let d = x.period_start; d < end; d = f.addDays(d, 1)) days.push(d);
      const byDay = new Map((r.rows as any[]).map((y) => [y.day, Number(y[r.metric])]));
      let cum = 0;
      const actual = days.map((d, i) => {
        if (i >= x.days_elapsed) return null;
        cum += byDay.get(d) ?? 0;
        return cum;
      });
      const amount = Number(x.amount_usd);
      const lastIdx = Math.max(0, x.days_elapsed - 1);
      const projection = days.map((_, i) => (i < lastIdx ? null : i === lastIdx ? actual[lastIdx]
        : actual[lastIdx]! + (x.forecast_usd - actual[lastIdx]!) * (i - lastIdx) / Math.max(1, days.length - 1 - lastIdx)));
      chart(box, {
        legend: { ...legend(), data: [t('common.actual'), t('budget.projection'), t('budget.ideal'), t('budget.amount')] },
        grid: { left: 8, right: 16, top: 44, bottom: 8, containLabel: true },
        tooltip: { trigger: 'axis', valueFormatter: (v: number) => (v === null ? '–' : f.money(v, 'USD', 0)) },
        xAxis: { ...categoryAxis(days), boundaryGap: false, axisLabel: { formatter: (s: string) => f.shortDay(s), color: '#64748b', hideOverlap: true } },
        yAxis: valueAxis(t('common.spend') + ' (USD)', (v) => f.compact(v)),
        series: [
          { name: t('common.actual'), type: 'line', data: actual, showSymbol: false, color: colors.actual,
            areaStyle: { opacity: 0.12 } },
          { name: t('budget.projection'), type: 'line', data: projection, showSymbol: false, color: colors.forecast,
            lineStyle: { type: 'dashed' } },
          { name: t('budget.ideal'), type: 'line', data: days.map((_, i) => amount * (i + 1) / days.length),
            showSymbol: false, color: colors.muted, lineStyle: { type: 'dotted' } },
          { name: t('budget.amount'), type: 'line', data: days.map(() => amount), showSymbol: false, color: colors.bad },
        ],
      });
    });
  }));
};
