// AI usage: tokens and cost by model, cost per million tokens, prompt-cache hit rate, the
// gateway's response-cache savings and its traffic, over the last 30 days with data.

import { h } from '../dom';
import { api } from '../api';
import { t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, chartBox, empty, section, stat, table } from '../ui';
import { bottomValueAxis, categoryAxis, chart, colors, hbar, legend, narrow, valueAxis } from '../charts';
import type { Page } from './page';

interface ModelRow { model: string; tokens: number; input: number; output: number; cached: number;
  cost: number; }

export const aiUsage: Page = async (root) => {
  const c = await context();
  const cur = c.currency;
  const from = f.addDays(c.lastDay, -29);
  const to = f.addDays(c.lastDay, 1);
  const q = { from, to, by: 'model' };
  const [tok, inp, outp, cached, cost, savings] = await Promise.all([
    api('report', { ...q, metric: 'tokens' }),
    api('report', { ...q, metric: 'input_tokens' }),
    api('report', { ...q, metric: 'output_tokens' }),
    api('report', { ...q, metric: 'cached_tokens' }),
    api('report', { ...q, metric: 'effective_cost' }),
    api('report', { from, to, metric: 'cache_savings' }),
  ]);
  const models = new Map<string, ModelRow>();
  const row = (m: string) => {
    let r = models.get(m);
    if (!r) { r = { model: m, tokens: 0, input: 0, output: 0, cached: 0, cost: 0 }; models.set(m, r); }
    return r;
  };
  for (const r of tok.rows) row(r.model).tokens = Number(r.tokens);
  for (const r of inp.rows) row(r.model).input = Number(r.input_tokens);
  for (const r of outp.rows) row(r.model).output = Number(r.output_tokens);
  for (const r of cached.rows) row(r.model).cached = Number(r.cached_tokens);
  for (const r of cost.rows) if (models.has(r.model)) row(r.model).cost = Number(r.effective_cost);
  const list = [...models.values()].filter((m) => m.model !== '(none)' && m.tokens > 0)
    .sort((a, b) => b.cost - a.cost);
  const totalTokens = list.reduce((s, m) => s + m.tokens, 0);
  const totalCost = list.reduce((s, m) => s + m.cost, 0);
  const totalIn = list.reduce((s, m) => s + m.input, 0);
  const totalCached = list.reduce((s, m) => s + m.cached, 0);

  root.append(h('p', { class: 'muted', style: 'margin:0' },
    t('ai.period') + ': ' + f.date(from) + ' – ' + f.date(c.lastDay)));
  root.append(h('div', { class: 'grid stats' },
    stat(t('ai.total_tokens'), f.compact(totalTokens), f.num(totalTokens) + ' ' + t('unit.tokens'), '', 'stat-tokens'),
    stat(t('ai.total_cost'), f.money(totalCost, cur), totalTokens
      ? f.money(totalCost / totalTokens * 1e6, cur) + ' / 1M' : '', '', 'stat-ai-cost'),
    stat(t('ai.cache_hit'), totalIn ? f.pct(totalCached / totalIn * 100) : '–', t('ai.cache_hit_sub')),
    stat(t('ai.cache_savings'), f.money(Number(savings.total), cur))));

  if (!list.length) { root.append(card(t('ai.by_model'), empty(t('common.nodata')))); return; }

  const byModel = chartBox('lg', 'tokens-by-model');
  const cpm = chartBox('lg', 'cost-per-million');
  const traffic = chartBox('md', 'traffic');
  const trafficCard = card(t('ai.traffic'), traffic, h('p', { class: 'muted', style: 'margin:8px 0 0;font-size:12px' }, t('ai.rejections')));
  root.append(h('div', { class: 'grid two' }, card(t('ai.by_model'), byModel), card(t('ai.cost_per_m'), cpm)));
  const names = list.map((m) => m.model);
  chart(byModel, {
    legend: { ...legend(), data: [t('common.tokens'), t('common.cost')] },
    grid: { left: 52, right: 60, top: 56, bottom: 84, containLabel: false },
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    xAxis: { ...categoryAxis(names),
      axisLabel: { rotate: 30, color: '#64748b', width: 100, overflow: 'truncate', interval: 0, fontSize: 11 } },
    yAxis: [{ ...valueAxis(t('common.tokens'), (v) => f.compact(v)), nameTextStyle: { align: 'center', color: '#64748b' } },
      { ...valueAxis(t('common.cost') + ' (' + cur + ')', (v) => f.compact(v)), splitLine: { show: false },
        nameTextStyle: { align: 'center', color: '#64748b' } }],
    series: [
      { name: t('common.tokens'), type: 'bar', data: list.map((m) => m.tokens), color: colors.actual,
        tooltip: { valueFormatter: (v: number) => f.num(v) } },
      { name: t('common.cost'), type: 'bar', yAxisIndex: 1, data: list.map((m) => m.cost), color: '#f59e0b',
        tooltip: { valueFormatter: (v: number) => f.money(v, cur) } },
    ],
  });
  const perM = list.map((m) => ({ model: m.model, v: m.tokens ? m.cost / m.tokens * 1e6 : 0 }))
    .sort((a, b) => b.v - a.v);
  chart(cpm, {
    ...hbar(perM.map((x) => x.model), { top: 8, right: 48 }),
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v: number) => f.money(v, cur) },
    xAxis: bottomValueAxis(t('unit.per_million', { currency: cur }), (v) => f.compact(v)),
    series: [{ type: 'bar', barWidth: 14, name: t('ai.cpm'), data: perM.map((x) => x.v), color: '#8b5cf6',
      label: { show: true, position: 'right', formatter: (p: any) => f.num(p.value, 2), fontSize: 11, color: '#475569' } }],
  });

  root.append(card(t('ai.by_model'), table([
    { label: t('ai.model'), value: (m: ModelRow) => m.model, sort: (m) => m.model },
    { wide: true, label: t('ai.input'), num: true, value: (m) => f.num(m.input), sort: (m) => m.input },
    { wide: true, label: t('ai.output'), num: true, value: (m) => f.num(m.output), sort: (m) => m.output },
    { wide: true, label: t('ai.cached'), num: true, value: (m) => f.num(m.cached), sort: (m) => m.cached },
    { label: t('ai.hit_rate'), num: true, value: (m) => m.input ? f.pct(m.cached / m.input * 100) : '–', sort: (m) => m.input ? m.cached / m.input : 0 },
    { label: t('common.cost'), num: true, value: (m) => f.money(m.cost, cur), sort: (m) => m.cost },
    { label: t('ai.cpm'), num: true, value: (m) => m.tokens ? f.money(m.cost / m.tokens * 1e6, cur) : '–', sort: (m) => m.tokens ? m.cost / m.tokens : 0 },
  ], list, { initialSort: 5, testId: 'model-table' })));

  root.append(trafficCard);
  await section(h('div'), async () => {
    const r = await api('report', { from, to, metric: 'requests', grain: 'day', by: 'operation' });
    const rows = r.rows as any[];
    if (!rows.length) { traffic.replaceWith(empty(t('ai.no_traffic'))); return; }
    const days = [...new Set(rows.map((x) => x.day as string))];
    const ops = [...new Set(rows.map((x) => String(x.operation)))];
    const idx = new Map(days.map((d, i) => [d, i]));
    chart(traffic, {
      legend: legend(),
      grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis', valueFormatter: (v: number) => f.num(v) },
      xAxis: { ...categoryAxis(days), axisLabel: { formatter: (s: string) => f.shortDay(s), color: '#64748b', hideOverlap: true } },
      yAxis: valueAxis(t('common.requests') + ' / ' + t('common.day'), (v) => f.compact(v)),
      series: ops.map((op) => {
        const data = new Array(days.length).fill(0);
        for (const x of rows) if (String(x.operation) === op) data[idx.get(x.day)!] = Number(x.requests);
        return { name: op, type: 'bar', stack: 'ops', data };
      }),
    });
  });
};
