// Building blocks shared by the pages: cards, stat tiles, tables, empty and error states.

import { h } from './dom';
import { t } from './i18n';
import { ApiError } from './api';

/** A titled card; body is filled in by the caller (charts need the card in the document). */
export function card(title: string, ...body: (Node | string | null | undefined | false)[]):
  HTMLElement {
  return h('section', { class: 'card' }, h('h3', { class: 'card-title' }, title), ...body);
}

/** A headline number with a caption and an optional coloured note. */
export function stat(label: string, value: string, note = '', tone: '' | 'good' | 'bad' | 'warn' = '',
  testId = ''): HTMLElement {
  return h('section', { class: 'card stat', 'data-testid': testId || undefined },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value' }, value),
    note ? h('div', { class: 'stat-note ' + tone }, note) : null);
}

/** A div that a chart is drawn into; its height is set by CSS class. */
export function chartBox(size: 'sm' | 'md' | 'lg' = 'md', testId = ''): HTMLDivElement {
  return h('div', { class: 'chart chart-' + size, 'data-testid': testId || undefined });
}

export interface Column<R> {
  label: string;
  value: (r: R) => string | Node;
  num?: boolean;
  sort?: (r: R) => number | string;
  /** Left out on phone-width screens, where the table would otherwise scroll sideways. */
  wide?: boolean;
}

function cls<R>(c: Column<R>): string | undefined {
  return [c.num ? 'num' : '', c.wide ? 'wide-only' : ''].filter(Boolean).join(' ') || undefined;
}

/** A table; columns with sort get a clickable header that re-sorts the rows. */
export function table<R>(cols: Column<R>[], rows: R[], opts: {
  onRow?: (r: R) => void; footer?: (string | Node)[]; initialSort?: number; testId?: string;
  desc?: boolean;
} = {}): HTMLElement {
  let sortCol = opts.initialSort ?? -1;
  let desc = opts.desc ?? true;
  const tbody = h('tbody');
  const render = () => {
    const sorted = [...rows];
    if (sortCol >= 0 && cols[sortCol].sort) {
      const key = cols[sortCol].sort!;
      sorted.sort((a, b) => {
        const x = key(a), y = key(b);
        const c = x < y ? -1 : x > y ? 1 : 0;
        return desc ? -c : c;
      });
    }
    tbody.replaceChildren(...sorted.map((r) => h('tr', {
      class: opts.onRow ? 'clickable' : undefined,
      onclick: opts.onRow ? () => opts.onRow!(r) : undefined,
    }, ...cols.map((c) => h('td', { class: cls(c) }, c.value(r))))));
  };
  const head = h('tr', null, ...cols.map((c, i) => {
    const th = h('th', { class: [cls(c), c.sort ? 'sortable' : ''].filter(Boolean).join(' ') || undefined }, c.label);
    if (c.sort) {
      th.setAttribute('aria-sort', i === sortCol ? (desc ? 'descending' : 'ascending') : 'none');
      th.addEventListener('click', () => {
        if (sortCol === i) desc = !desc; else { sortCol = i; desc = true; }
        head.querySelectorAll('th').forEach((x, j) => {
          if (cols[j].sort) {
            x.setAttribute('aria-sort', j === sortCol ? (desc ? 'descending' : 'ascending') : 'none');
          }
        });
        render();
      });
    }
    return th;
  }));
  render();
  return h('div', { class: 'table-wrap', 'data-testid': opts.testId || undefined },
    h('table', null, h('thead', null, head), tbody,
      opts.footer ? h('tfoot', null, h('tr', null, ...opts.footer.map((f, i) =>
        h('td', { class: cols[i] ? cls(cols[i]) : undefined }, f)))) : null));
}

export function empty(message: string): HTMLElement {
  return h('div', { class: 'empty', 'data-testid': 'empty' }, message);
}

export function errorBox(e: unknown): HTMLElement {
  const msg = e instanceof ApiError ? `${e.status}: ${e.message}` : String((e as Error)?.message ?? e);
  return h('div', { class: 'error', role: 'alert' }, h('strong', null, t('common.error')), ' — ', msg);
}

export function loading(): HTMLElement {
  return h('div', { class: 'loading' }, t('common.loading'));
}

/** Runs a section's async build; shows loading, then the result or the error in place. */
export function section(el: HTMLElement, build: () => Promise<void>): Promise<void> {
  el.replaceChildren(loading());
  return build().catch((e) => {
    if (e instanceof ApiError && e.status === 401) return;
    el.replaceChildren(errorBox(e));
  });
}

/** Downloads text as a file (the CSV export). */
export function download(filename: string, text: string, type = 'text/csv'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
