// Recommendations: every way to cut the bill with its monthly saving, sortable by saving and
// filtered by kind; each one opens to its action, confidence, assumptions and evidence. An
// empty state says what fills the page until the analyses have run.

import { h } from '../dom';
import { apiOptional } from '../api';
import { hasKey, t, type Key } from '../i18n';
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

/**
 * The monthly saving a list adds up to, each alternative counted once: a provider's reserved
 * instances (or committed use discounts) and its compute savings plan cover the same usage
 * ("do not add their savings", says the plan), so only the larger of the two counts. Every
 * other recommendation adds (PTU sizes are per model, each its own usage).
 */
export function savingsTotal(list: any[]): number {
  let total = 0;
  const byProvider = new Map<string, { instances: number; plan: number }>();
  for (const r of list) {
    const m = /^commitment:([^/]+)\/(.+)$/.exec(String(r?.id ?? ''));
    if (r?.kind !== 'commitment' || !m || m[1] === 'ptu') {
      total += savingOf(r);
      continue;
    }
    const g = byProvider.get(m[1]) ?? { instances: 0, plan: 0 };
    if (m[2] === 'savings_plan') g.plan = Math.max(g.plan, savingOf(r));
    else g.instances += savingOf(r);
    byProvider.set(m[1], g);
  }
  for (const g of byProvider.values()) total += Math.max(g.instances, g.plan);
  return total;
}

/** A kind's display name; kinds the dashboard does not know yet stay as the API names them. */
export function kindName(kind: string): string {
  const key = 'rec.kind.' + kind.replace(/-/g, '_');
  return hasKey(key) ? t(key) : kind;
}

/** high / medium / low in the current language. */
export function confidenceName(c: string): string {
  return c === 'high' || c === 'medium' || c === 'low' ? t(('rec.conf.' + c) as Key) : c;
}

/** Evidence as [label, value] pairs, from [{label, value}] or an object. */
export function evidenceOf(r: any): [string, string][] {
  const e = r?.evidence;
  if (Array.isArray(e)) return e.map((x: any) => [String(x?.label ?? ''), String(x?.value ?? '')]);
  if (e && typeof e === 'object') return Object.entries(e).map(([k, v]) => [k, String(v)]);
  return [];
}

/** The saving cell: the formatted amount, with the exact decimal kept for tests and copying. */
export function savingCell(r: any, currency: string): HTMLElement {
  return h('span', { 'data-testid': 'rec-saving', 'data-value': String(r?.monthly_saving ?? savingOf(r)) },
    f.money(savingOf(r), r?.currency ?? currency));
}

/** Title that opens to the action, assumptions and evidence (closed by default). */
export function recDetails(r: any): HTMLElement {
  const assumptions: string[] = Array.isArray(r?.assumptions) ? r.assumptions.map(String) : [];
  const evidence = evidenceOf(r);
  return h('details', { class: 'rec-details', 'data-testid': 'rec-details', style: 'overflow-wrap:anywhere' },
    h('summary', null, h('strong', null, String(r?.title ?? r?.subject ?? r?.id ?? ''))),
    r?.action ? h('p', null, h('span', { class: 'muted' }, t('rec.action') + ': '), String(r.action)) : null,
    assumptions.length ? h('div', null, h('div', { class: 'muted' }, t('rec.assumptions')),
      h('ul', null, assumptions.map((a) => h('li', null, a)))) : null,
    evidence.length ? h('div', null, h('div', { class: 'muted' }, t('rec.evidence')),
      h('dl', { class: 'rec-evidence', style: 'margin:0' },
        evidence.map(([k, v]) => [h('dt', null, k), h('dd', { style: 'margin:0 0 4px 12px' }, v)]))) : null);
}

export const recommendations: Page = async (root) => {
  const c = await context();
  const body = await apiOptional('recommendations');
  const list = recList(body);
  if (!list.length) {
    root.append(card(t('rec.title'), empty(t('rec.empty'))));
    return;
  }
  const currency = list[0].currency ?? c.currency;
  const kinds = [...new Set(list.map((r) => String(r.kind ?? '')))].filter(Boolean).sort();
  const statBox = h('div', { class: 'grid stats' });
  const tableBox = h('div');
  const select = h('select', {
    'data-testid': 'rec-kind', 'aria-label': t('rec.filter_kind'),
    onchange: () => render(select.value),
  }, h('option', { value: '' }, t('common.all')),
  kinds.map((k) => h('option', { value: k }, kindName(k))));
  const render = (kind: string) => {
    const shown = kind ? list.filter((r) => r.kind === kind) : list;
    const total = savingsTotal(shown);
    statBox.replaceChildren(
      stat(t('overview.savings'), f.money(total, currency, 0),
        t('rec.total', { amount: f.money(total, currency, 0) }), 'good', 'stat-savings'),
      stat(t('rec.title'), f.num(shown.length), '', '', 'stat-rec-count'));
    tableBox.replaceChildren(shown.length ? table([
      { label: t('rec.kind'), value: (r: any) => kindName(String(r.kind ?? '')), sort: (r: any) => String(r.kind ?? '') },
      { label: t('rec.target'), value: (r: any) => recDetails(r), sort: (r: any) => String(r.title ?? '') },
      { label: t('rec.confidence'), value: (r: any) => confidenceName(String(r.confidence ?? '')),
        sort: (r: any) => ({ high: 3, medium: 2, low: 1 } as Record<string, number>)[String(r.confidence)] ?? 0 },
      { label: t('rec.saving'), num: true, value: (r: any) => savingCell(r, currency), sort: savingOf },
    ], shown, { initialSort: 3, testId: 'rec-table' }) : empty(t('rec.none_of_kind')));
  };
  render('');
  root.append(statBox);
  root.append(card(t('rec.title'),
    h('div', { class: 'toolbar' }, h('label', null, t('rec.filter_kind') + ' ', select)),
    kinds.includes('commitment') ? h('p', { class: 'muted' }, t('rec.alternatives_note')) : null,
    tableBox));
};
