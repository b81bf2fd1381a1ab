// Facts every page needs once per sign-in: the last day with data (the demo ledger and real
// exports end in the past, so "this month" means the latest month with records) and the
// billing currency.

import { api } from './api';
import { addDays, isoDay } from './format';

export interface Context {
  lastDay: string;        // yyyy-mm-dd, the last day with records
  lastMonth: string;      // yyyy-mm of lastDay
  months: { month: string; value: number }[];
  currency: string;
}

let ctx: Promise<Context> | null = null;

export function resetContext(): void { ctx = null; }

export function context(): Promise<Context> {
  if (!ctx) {
    ctx = (async () => {
      // Three queries at once: months for the totals, days for the last day with data (a few
      // hundred rows even for years of data), currencies.
      const [byMonth, days, byCurrency] = await Promise.all([
        api('report', { grain: 'month' }),
        api('report', { grain: 'day' }),
        api('report', { by: 'currency' }),
      ]);
      const months = (byMonth.rows as any[]).map((r) => ({ month: r.month as string,
        value: Number(r[byMonth.metric]) }));
      const lastMonth = months.length ? months[months.length - 1].month : isoDay(new Date()).slice(0, 7);
      const dayRows = days.rows as any[];
      const lastDay = dayRows.length ? dayRows[dayRows.length - 1].day as string
        : addDays(isoDay(new Date()), -1);
      const cur = (byCurrency.rows as any[]).filter((r) => r.currency && r.currency !== '(none)');
      const currency = cur.length ? String(cur[0].currency) : 'USD';
      return { lastDay, lastMonth, months, currency: /^[A-Z]{3}$/.test(currency) ? currency : 'USD' };
    })();
    ctx.catch(() => { ctx = null; });
  }
  return ctx;
}
