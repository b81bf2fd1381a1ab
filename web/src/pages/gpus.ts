// GPUs: billed GPU-hours and cost by GPU type from the ledger; the utilisation heatmap, idle
// waste and rightsizing need GPU telemetry, so until the API serves it they say what would
// fill them.

import { h } from '../dom';
import { api, apiOptional } from '../api';
import { dimName, t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, stat, table } from '../ui';
import { categoryAxis, chart, legend, valueAxis } from '../charts';
import { recList, savingOf } from './recommendations';
import type { Page } from './page';

export const gpus: Page = async (root) => {
  const c = await context();
  const cur = c.currency;
  const from = f.addDays(c.lastDay, -59);
  const to = f.addDays(c.lastDay, 1);
  const [hours, cost, daily, recs, all] = await Promise.all([
    api('report', { from, to, by: 'gpu', metric: 'gpu_hours' }),
    api('report', { from, to, by: 'gpu', metric: 'effective_cost' }),
    api('report', { from, to, by: 'gpu', metric: 'gpu_hours', grain: 'day' }),
    apiOptional('recommendations'),
    api('report', { from, to }),
  ]);
  const types = (hours.rows as any[]).filter((r) => r.gpu !== '(none)');
  const costs = new Map((cost.rows as any[]).map((r) => [String(r.gpu), Number(r.effective_cost)]));
  const gpuCost = types.reduce((s, r) => s + (costs.get(r.gpu) ?? 0), 0);
  root.append(h('p', { class: 'muted', style: 'margin:0' }, f.date(from) + ' – ' + f.date(c.lastDay)));
  root.append(h('div', { class: 'grid stats' },
    stat(t('gpu.hours'), f.num(Number(hours.total), 0), t('unit.gpu_hours'), '', 'stat-gpu-hours'),
    stat(t('gpu.cost'), f.money(gpuCost, cur), '', '', 'stat-gpu-cost'),
    stat(t('gpu.per_hour'), Number(hours.total) ? f.money(gpuCost / Number(hours.total), cur) : '–'),
    stat(t('gpu.share'), Number(all.total) ? f.pct(gpuCost / Number(all.total) * 100) : '–')));

  const hoursBox = chartBox('md', 'gpu-hours');
  root.append(card(t('gpu.hours_by_type'), types.length ? hoursBox : empty(t('gpu.no_gpus'))));
  if (types.length) {
    const rows = daily.rows as any[];
    const days = [...new Set(rows.map((r) => r.day as string))];
    const idx = new Map(days.map((d, i) => [d, i]));
    chart(hoursBox, {
      legend: legend(),
      grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis', valueFormatter: (v: number) => f.num(v, 1) + ' ' + t('unit.gpu_hours') },
      xAxis: { ...categoryAxis(days), axisLabel: { formatter: (s: string) => f.shortDay(s), color: '#64748b', hideOverlap: true } },
      yAxis: valueAxis(t('unit.gpu_hours') + ' / ' + t('common.day'), (v) => f.compact(v)),
      series: types.map((g) => {
        const data = new Array(days.length).fill(0);
        for (const r of rows) if (r.gpu === g.gpu) data[idx.get(r.day)!] = Number(r.gpu_hours);
        return { name: String(g.gpu), type: 'bar', stack: 'gpu', data };
      }),
    });
    root.append(card(t('gpu.cost_by_type'), table([
      { label: dimName('gpu'), value: (r: any) => String(r.gpu), sort: (r: any) => String(r.gpu) },
      { label: t('gpu.hours'), num: true, value: (r: any) => f.num(Number(r.gpu_hours), 1), sort: (r: any) => Number(r.gpu_hours) },
      { label: t('common.cost'), num: true, value: (r: any) => f.money(costs.get(r.gpu) ?? 0, cur), sort: (r: any) => costs.get(r.gpu) ?? 0 },
      { label: t('common.cost') + ' / ' + t('unit.gpu_hours'), num: true,
        value: (r: any) => f.money((costs.get(r.gpu) ?? 0) / Number(r.gpu_hours), cur), sort: (r: any) => (costs.get(r.gpu) ?? 0) / Number(r.gpu_hours) },
    ], types, { initialSort: 2 })));
  }

  // Utilisation needs per-GPU telemetry, which the ledger does not hold yet.
  root.append(card(t('gpu.heatmap'), empty(t('gpu.heatmap_empty'))));
  const gpuRecs = (recs ? recList(recs) : []).filter((r) => /gpu|rightsize/.test(String(r.kind)));
  root.append(h('div', { class: 'grid two' },
    card(t('gpu.idle'), empty(t('gpu.idle_empty'))),
    card(t('gpu.rightsizing'), gpuRecs.length ? table([
      { label: t('rec.target'), value: (r: any) => String(r.subject ?? r.title) },
      { label: t('rec.saving'), num: true, value: (r: any) => f.money(savingOf(r), r.currency ?? cur), sort: (r: any) => savingOf(r) },
    ], gpuRecs, { initialSort: 1 }) : empty(t('gpu.rightsizing_empty')))));
};
