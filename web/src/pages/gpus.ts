// GPUs: billed GPU-hours and cost by GPU type from the bills; from the GPU telemetry a
// utilisation heatmap per host and GPU type and day, energy and CO2e by team; from the
// recommendations the idle GPUs (with their saving and whether the host may be shut down)
// and the rightsizing moves. Without telemetry each of those says which ingest fills it.

import { h } from '../dom';
import { api, apiOptional } from '../api';
import { dimName, t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, stat, table } from '../ui';
import { categoryAxis, chart, heatmap, legend, valueAxis } from '../charts';
import { confidenceName, evidenceOf, recDetails, recList, savingCell, savingOf } from './recommendations';
import type { Page } from './page';

/** Days of telemetry the heatmap shows, ending at the last day with readings. */
const kHeatmapDays = 31;

/** The idle-gpu recommendation's "shutdown list" evidence: yes / needs owner review / no. */
export function shutdownOf(r: any): 'yes' | 'review' | 'no' | '' {
  const v = evidenceOf(r).find(([k]) => k === 'shutdown list')?.[1] ?? '';
  if (/^yes/i.test(v)) return 'yes';
  if (/review/i.test(v)) return 'review';
  if (/^no/i.test(v)) return 'no';
  return '';
}

/**
 * A rightsizing title with the current instance named by its GPU ("from A10G 24GB (SKU
 * 4A50640646F3E072) to g6.xlarge ..."): bills often identify an instance by an opaque SKU id
 * alone, while the candidate is named by its instance type and GPUs. `gpuBySku` comes from
 * the ledger (report by sku and gpu).
 */
export function rightsizeTitle(title: string, gpuBySku: Map<string, string>): string {
  const m = /^(Move .+? from )(\S+)( to .+)$/.exec(title);
  const gpu = m ? gpuBySku.get(m[2]) : undefined;
  if (!m || !gpu || m[2].includes('(')) return title;
  return m[1] + gpu + ' (SKU ' + m[2] + ')' + m[3];
}

export const gpus: Page = async (root) => {
  const c = await context();
  const cur = c.currency;
  const from = f.addDays(c.lastDay, -59);
  const to = f.addDays(c.lastDay, 1);
  const [hours, cost, daily, recs, all, observedDays, skus] = await Promise.all([
    api('report', { from, to, by: 'gpu', metric: 'gpu_hours' }),
    api('report', { from, to, by: 'gpu', metric: 'effective_cost' }),
    api('report', { from, to, by: 'gpu', metric: 'gpu_hours', grain: 'day' }),
    apiOptional('recommendations', { kind: 'idle-gpu,rightsize' }),
    api('report', { from, to }),
    // Telemetry may end on another day than the bills: its own last day sets its window.
    api('report', { metric: 'gpu_observed_hours', grain: 'day' }),
    // The GPU of each SKU, to name the instances in rightsizing titles.
    api('report', { by: 'sku,gpu', metric: 'gpu_hours' }),
  ]);
  const gpuBySku = new Map<string, string>();
  for (const r of skus.rows as any[])
    if (r.gpu && r.gpu !== '(none)' && !gpuBySku.has(String(r.sku))) gpuBySku.set(String(r.sku), String(r.gpu));
  const teleDays = (observedDays.rows as any[]).filter((r) => Number(r.gpu_observed_hours) > 0)
    .map((r) => String(r.day));
  const hasTelemetry = teleDays.length > 0;
  const teleTo = hasTelemetry ? teleDays[teleDays.length - 1] : c.lastDay;
  const teleFrom = f.addDays(teleTo, -(kHeatmapDays - 1));
  const teleQuery = { from: teleFrom, to: f.addDays(teleTo, 1) };
  const [util, observed, meanUtil, energy, co2e] = hasTelemetry ? await Promise.all([
    api('report', { ...teleQuery, by: 'resource,gpu', metric: 'gpu_utilization', grain: 'day' }),
    api('report', { ...teleQuery, metric: 'gpu_observed_hours' }),
    api('report', { ...teleQuery, metric: 'gpu_utilization' }),
    api('report', { ...teleQuery, by: 'team', metric: 'energy_kwh' }),
    api('report', { ...teleQuery, by: 'team', metric: 'co2e_kg' }),
  ]) : [null, null, null, null, null];

  const types = (hours.rows as any[]).filter((r) => r.gpu !== '(none)');
  const costs = new Map((cost.rows as any[]).map((r) => [String(r.gpu), Number(r.effective_cost)]));
  const gpuCost = types.reduce((s, r) => s + (costs.get(r.gpu) ?? 0), 0);
  const list = recList(recs);
  const idle = list.filter((r) => r.kind === 'idle-gpu');
  const rightsize = list.filter((r) => r.kind === 'rightsize');
  const idleSaving = idle.reduce((s, r) => s + savingOf(r), 0);

  root.append(h('p', { class: 'muted', style: 'margin:0' }, f.date(from) + ' – ' + f.date(c.lastDay)));
  root.append(h('div', { class: 'grid stats' },
    stat(t('gpu.hours'), f.num(Number(hours.total), 0), t('unit.gpu_hours'), '', 'stat-gpu-hours'),
    stat(t('gpu.cost'), f.money(gpuCost, cur), '', '', 'stat-gpu-cost'),
    stat(t('gpu.per_hour'), Number(hours.total) ? f.money(gpuCost / Number(hours.total), cur) : '–'),
    stat(t('gpu.share'), Number(all.total) ? f.pct(gpuCost / Number(all.total) * 100) : '–'),
    hasTelemetry ? stat(t('gpu.mean_util'), f.pct(Number(meanUtil!.total) * 100),
      f.num(Number(observed!.total), 1) + ' ' + t('gpu.observed'), '', 'stat-gpu-util') : null,
    idle.length ? stat(t('gpu.idle_saving'), f.money(idleSaving, idle[0].currency ?? cur, 0), '', 'bad',
      'stat-idle-saving') : null));

  // Utilisation heatmap: one row per host and GPU type, one column per day of telemetry.
  if (hasTelemetry) {
    const rows = (util!.rows as any[]).filter((r) => r.gpu_utilization !== null && r.gpu_utilization !== undefined);
    const days: string[] = [];
    const first = rows.reduce((m, r) => (r.day < m ? r.day : m), teleTo);
    for (let d = first; d <= teleTo; d = f.addDays(d, 1)) days.push(d);
    // The vendor prefix repeats on every row; a long name is cut in its middle (heatmap), so
    // that the host's start and the GPU type both show.
    const label = (r: any) => String(r.resource) +
      (r.gpu && r.gpu !== '(none)' ? ' · ' + String(r.gpu).replace(/^NVIDIA /, '') : '');
    const hosts = [...new Set(rows.map(label))].sort();
    const di = new Map(days.map((d, i) => [d, i]));
    const hi = new Map(hosts.map((x, i) => [x, i]));
    const cells = rows.map((r) => [di.get(r.day)!, hi.get(label(r))!, Number(r.gpu_utilization)] as [number, number, number]);
    const box = chartBox('md', 'gpu-heatmap');
    box.style.height = Math.max(200, hosts.length * 30 + 100) + 'px';
    root.append(card(t('gpu.heatmap'), h('p', { class: 'muted', style: 'margin-top:0' }, t('gpu.heatmap_note')), box));
    heatmap(box, days, hosts, cells, { xLabel: (s) => f.shortDay(s), name: t('gpu.utilisation') });
  } else {
    root.append(card(t('gpu.heatmap'), empty(t('gpu.telemetry_empty'))));
  }

  // Idle waste and rightsizing, from the recommendations over the GPU window.
  const idleBody = idle.length ? table([
    { label: t('gpu.host'), value: (r: any) => recDetails(r), sort: (r: any) => String(r.subject ?? '') },
    { label: t('gpu.shutdown'), value: (r: any) => {
      const s = shutdownOf(r);
      return h('span', { class: s === 'yes' ? 'good' : s === 'review' ? 'warn' : 'muted', 'data-testid': 'shutdown' },
        s === 'yes' ? t('gpu.shutdown_yes') : s === 'review' ? t('gpu.shutdown_review') : s === 'no' ? t('gpu.shutdown_no') : '–');
    }, sort: (r: any) => shutdownOf(r) },
    { label: t('rec.confidence'), value: (r: any) => confidenceName(String(r.confidence ?? '')), wide: true },
    { label: t('rec.saving'), num: true, value: (r: any) => savingCell(r, cur), sort: savingOf },
  ], idle, { initialSort: 3, testId: 'idle-table' })
    : empty(recs === null ? t('gpu.recs_unavailable') : hasTelemetry ? t('gpu.idle_none') : t('gpu.telemetry_empty'));
  const rightBody = rightsize.length ? table([
    { label: t('gpu.host'), value: (r: any) => recDetails({ ...r, title: rightsizeTitle(String(r.title ?? ''), gpuBySku) }),
      sort: (r: any) => String(r.subject ?? '') },
    { label: t('rec.confidence'), value: (r: any) => confidenceName(String(r.confidence ?? '')), wide: true },
    { label: t('rec.saving'), num: true, value: (r: any) => savingCell(r, cur), sort: savingOf },
  ], rightsize, { initialSort: 2, testId: 'rightsize-table' })
    : empty(recs === null ? t('gpu.recs_unavailable') : hasTelemetry ? t('gpu.rightsizing_none') : t('gpu.telemetry_empty'));
  root.append(card(t('gpu.idle'), idleBody), card(t('gpu.rightsizing'), rightBody));

  // Energy and emissions per team (the GPUs' own energy; CO2e includes PUE and grid intensity).
  const energyRows = hasTelemetry ? (energy!.rows as any[]).filter((r) => Number(r.energy_kwh) > 0) : [];
  const co2 = new Map(hasTelemetry ? (co2e!.rows as any[]).map((r) => [String(r.team), Number(r.co2e_kg)]) : []);
  root.append(card(t('gpu.energy'), energyRows.length ? table([
    { label: dimName('team'), value: (r: any) => String(r.team), sort: (r: any) => String(r.team) },
    { label: t('gpu.energy_kwh'), num: true, value: (r: any) => f.num(Number(r.energy_kwh), 2), sort: (r: any) => Number(r.energy_kwh) },
    { label: t('gpu.co2e_kg'), num: true, value: (r: any) => co2.has(String(r.team)) ? f.num(co2.get(String(r.team))!, 2) : '–',
      sort: (r: any) => co2.get(String(r.team)) ?? 0 },
  ], energyRows, { initialSort: 1, testId: 'energy-table',
    footer: [t('common.total'), f.num(Number(energy!.total), 2), Number(co2e!.total) ? f.num(Number(co2e!.total), 2) : '–'] })
    : empty(hasTelemetry ? t('gpu.energy_empty') : t('gpu.telemetry_empty'))));

  // Billed GPU-hours by type (from the bills, with or without telemetry).
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
};
