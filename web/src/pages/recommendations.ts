// Recommendations: every way to cut the bill with its monthly saving, sortable by saving;
// an empty state that says what fills the page until the analyses have run.

import { h } from '../dom';
import { apiOptional } from '../api';
import { t } from '../i18n';
import { context } from '../context';
import * as f from '../format';
import { card, empty, stat, table } from '../ui';
import type { Page } from './page';

/** The list, whether the API answers {recommendations: [...]} or a bare array. */
export function recList(body: any): any[] {
  const l = Array.isArray(body) ? body : body?.recommendations ?? body?.items ?? [];
  return Array.isArray(l) ? l : [];
}

/** The monthly saving of one recommendation as a number (the API writes decimals). */
export function savingOf(r: any): number {
  const v = Number(r?.monthly_saving ?? r?.monthly_saving_usd ?? r?.saving ?? 0);
  return isFinite(v) ? v : 0;
}

export const recommendations: Page = async (root) => {
  const c = await context();
  const body = await apiOptional('recommendations');
  const list = recList(body);
  if (!list.length) {
    root.append(card(t('rec.title'), empty(t('rec.empty'))));
    return;
  }
  const total = list.reduce((s, r) => s + savingOf(r), 0);
  root.append(h('div', { class: 'grid stats' },
    stat(t('overview.savings'), f.money(total, list[0].currency ?? c.currency, 0),
      t('rec.total', { amount: f.money(total, list[0].currency ?? c.currency, 0) }), 'good', 'stat-savings')));
  root.append(card(t('rec.title'), table([
    { label: t('rec.kind'), value: (r: any) => String(r.kind ?? ''), sort: (r: any) => String(r.kind ?? '') },
    { label: t('rec.target'), value: (r: any) => h('div', null, h('strong', null, String(r.title ?? r.subject ?? '')),
      r.action ? h('div', { class: 'muted' }, String(r.action)) : null), sort: (r: any) => String(r.title ?? '') },
    { label: t('rec.confidence'), value: (r: any) => String(r.confidence ?? ''), sort: (r: any) => String(r.confidence ?? '') },
    { label: t('rec.saving'), num: true, value: (r: any) => f.money(savingOf(r), r.currency ?? c.currency), sort: savingOf },
  ], list, { initialSort: 3, testId: 'rec-table' })));
};
