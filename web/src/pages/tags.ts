// Tag compliance: how much spend is fully allocated, coverage per dimension, the values the
// policy does not allow, and the largest resources that are not allocated.

import { h } from '../dom';
import { api } from '../api';
import { dimName, t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, stat, table } from '../ui';
import { chart, colors, hbar, legend } from '../charts';
import type { Page } from './page';

export const tags: Page = async (root) => {
  const c = await context();
  const cur = c.currency;
  const a = await api('tags/audit', { period: c.lastMonth });
  root.append(h('p', { class: 'muted', style: 'margin:0' }, f.month(c.lastMonth)));
  root.append(h('div', { class: 'grid stats' },
    stat(t('tags.allocated'), f.pct(a.allocated_percent), f.money(a.allocated, cur, 0) + ' / ' + f.money(a.total, cur, 0),
      a.allocated_percent >= 95 ? 'good' : a.allocated_percent >= 80 ? 'warn' : 'bad', 'stat-allocated'),
    stat(t('tags.unallocated_spend'), f.money(a.unallocated, cur, 0), t('tags.resources_n', { n: f.num(a.untagged_resource_count) }))));
  const dims = (a.dimensions ?? []) as any[];
  const box = chartBox('md', 'coverage-chart');
  box.style.height = Math.max(200, 60 + dims.length * 36) + 'px';
  root.append(card(t('tags.coverage'), dims.length ? box : empty(t('common.nodata'))));
  if (dims.length) {
    chart(box, {
      legend: { ...legend(), data: [t('tags.covered'), t('tags.violations')] },
      ...hbar(dims.map((d) => dimName(d.dimension) + (d.required ? ' *' : '')), { top: 36 }),
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v: number) => f.pct(v) },
      xAxis: { type: 'value', max: 100, name: '% ' + t('common.spend'), nameLocation: 'middle', nameGap: 24, axisLabel: { formatter: '{value}%', color: '#64748b' },
        splitLine: { lineStyle: { color: colors.grid } } },
      series: [
        { name: t('tags.covered'), type: 'bar', stack: 'c', barWidth: 14, data: dims.map((d) => d.valid_percent), color: colors.good,
          label: { show: true, position: 'insideRight', formatter: (p: any) => (p.value >= 10 ? f.pct(p.value, 0) : ''), color: '#fff', fontSize: 11 } },
        { name: t('tags.violations'), type: 'bar', stack: 'c', barWidth: 14,
          data: dims.map((d) => Math.max(0, d.tagged_percent - d.valid_percent)), color: colors.warn },
      ],
    });
  }
  const v = (a.violations ?? []) as any[];
  const u = (a.untagged_resources ?? []) as any[];
  root.append(h('div', { class: 'grid two' },
    card(t('tags.violations'), v.length ? table([
      { label: t('anom.dimension'), value: (x: any) => dimName(x.dimension) },
      { label: t('common.value'), value: (x: any) => String(x.value) },
      { label: t('common.cost'), num: true, value: (x: any) => f.money(x.effective_cost, cur), sort: (x: any) => x.effective_cost },
      { label: t('common.share'), num: true, value: (x: any) => f.pct(x.percent) },
    ], v, { initialSort: 2 }) : empty(t('tags.no_violations'))),
    card(t('tags.unallocated'), u.length ? table([
      { label: t('tags.resource'), value: (x: any) => h('div', null,
        h('div', { class: 'mono' }, x.resource_name !== '(none)' ? String(x.resource_name) : String(x.resource)),
        h('small', { class: 'muted' }, `${x.provider} · ${x.service} · ${(x.problems ?? []).join(', ')}`)) },
      { label: t('common.cost'), num: true, value: (x: any) => f.money(x.effective_cost, cur), sort: (x: any) => x.effective_cost },
      { label: t('common.share'), num: true, value: (x: any) => f.pct(x.percent) },
    ], u, { initialSort: 1, testId: 'untagged-table' }) : empty(t('common.nodata')))));
};
