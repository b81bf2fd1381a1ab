// Maturity: the crawl / walk / run scorecard, each criterion with its evidence and next step.

import { h } from '../dom';
import { api } from '../api';
import { Key, t } from '../i18n';
import { card, chartBox, stat, table } from '../ui';
import { chart, colors, hbar } from '../charts';
import type { Page } from './page';

const kLevel: Record<string, number> = { crawl: 1, walk: 2, run: 3 };
const kTone: Record<string, 'bad' | 'warn' | 'good'> = { crawl: 'bad', walk: 'warn', run: 'good' };

/** crawl / walk / run in the current language; anything else as the server wrote it. */
function level(l: string): string {
  return l === 'crawl' || l === 'walk' || l === 'run' ? t(('mat.' + l) as Key) : String(l);
}

export const maturity: Page = async (root) => {
  const m = await api('maturity');
  const crit = (m.criteria ?? []) as any[];
  root.append(h('div', { class: 'grid stats' },
    stat(t('mat.overall'), level(m.overall), t('mat.overall_note'), kTone[m.overall] ?? '', 'stat-maturity'),
    stat(t('mat.score'), `${m.score} / ${m.max_score}`,
      m.window?.from ? `${m.window.from} – ${m.window.to}` : '')));
  const box = chartBox('md', 'maturity-chart');
  box.style.height = Math.max(220, 50 + crit.length * 38) + 'px';
  root.append(card(t('mat.chart'), box));
  chart(box, {
    ...hbar(crit.map((c) => String(c.name)), { top: 8 }),
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, formatter: (p: any[]) => `${crit[p[0].dataIndex].name}: ${level(crit[p[0].dataIndex].level)}` },
    xAxis: { type: 'value', min: 0, max: 3, interval: 1, name: t('mat.level'), nameLocation: 'middle', nameGap: 24,
      axisLabel: { formatter: (v: number) => ['', level('crawl'), level('walk'), level('run')][v] ?? '', color: '#64748b' },
      splitLine: { lineStyle: { color: colors.grid } } },
    series: [{ type: 'bar', barWidth: 16, data: crit.map((c) => ({ value: kLevel[c.level] ?? 0,
      itemStyle: { color: c.level === 'run' ? colors.good : c.level === 'walk' ? colors.warn : colors.bad } })) }],
  });
  root.append(card(t('mat.title'), table([
    { label: t('mat.capability'), value: (c: any) => h('strong', null, String(c.name)) },
    { label: t('mat.level'), value: (c: any) => h('span', { class: 'badge ' + (kTone[c.level] ?? '') }, level(c.level)),
      sort: (c: any) => kLevel[c.level] ?? 0 },
    { label: t('mat.evidence'), value: (c: any) => String(c.evidence ?? '') },
    { label: t('mat.next'), value: (c: any) => String(c.next_step ?? '') },
  ], crit, { testId: 'maturity-table' })));
};
