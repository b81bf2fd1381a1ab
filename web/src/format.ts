// Numbers, money and dates formatted for the chosen language with Intl. Money always shows
// its ISO currency code (USD 1,234.56), never a bare symbol that could mean several.

import { locale } from './i18n';

const cacheNf = new Map<string, Intl.NumberFormat>();
function nf(opts: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = locale() + JSON.stringify(opts);
  let f = cacheNf.get(key);
  if (!f) { f = new Intl.NumberFormat(locale(), opts); cacheNf.set(key, f); }
  return f;
}

export function num(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return nf({ maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v);
}

export function money(v: number | null | undefined, currency = 'USD', digits = 2): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return nf({ style: 'currency', currency, currencyDisplay: 'code',
    minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}

/** A value with a few significant digits, for small ratios (USD 0.000000606 per token). */
export function sig(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  if (Math.abs(v) >= 1000) return compact(v);
  return nf({ maximumSignificantDigits: digits }).format(v);
}

/** Short form for axes and cards: USD 1.2M, 3.4K tokens (万/亿 in Chinese). */
export function compact(v: number | null | undefined): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return nf({ notation: 'compact', maximumFractionDigits: 1 }).format(v);
}

export function compactMoney(v: number | null | undefined, currency = 'USD'): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return nf({ style: 'currency', currency, currencyDisplay: 'code', notation: 'compact',
    maximumFractionDigits: 1 }).format(v);
}

export function pct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return nf({ style: 'percent', maximumFractionDigits: digits, minimumFractionDigits: digits })
    .format(v / 100);
}

export function signedPct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return nf({ style: 'percent', maximumFractionDigits: digits, minimumFractionDigits: digits,
    signDisplay: 'exceptZero' }).format(v / 100);
}

/** Parses the ledger's UTC labels: 2026-10, 2026-10-05, RFC 3339. */
export function parseDay(s: string): Date {
  if (/^\d{4}-\d{2}$/.test(s)) return new Date(s + '-01T00:00:00Z');
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return new Date(s + 'T00:00:00Z');
  return new Date(s);
}

export function date(s: string | null | undefined): string {
  if (!s) return '–';
  const d = parseDay(s);
  if (isNaN(d.getTime())) return s;
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: 'short', day: 'numeric',
    timeZone: 'UTC' }).format(d);
}

export function month(s: string): string {
  const d = parseDay(s);
  if (isNaN(d.getTime())) return s;
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: 'short', timeZone: 'UTC' })
    .format(d);
}

export function shortDay(s: string): string {
  const d = parseDay(s);
  if (isNaN(d.getTime())) return s;
  return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric', timeZone: 'UTC' })
    .format(d);
}

/** Formats a time-bucket label for its grain. */
export function bucket(s: string, grain: string): string {
  if (grain === 'month') return month(s);
  if (grain === 'hour') return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric',
    hour: '2-digit', timeZone: 'UTC' }).format(parseDay(s));
  return shortDay(s);
}

/** yyyy-mm-dd of a Date, UTC. */
export function isoDay(d: Date): string { return d.toISOString().slice(0, 10); }

export function addDays(day: string, n: number): string {
  const d = parseDay(day);
  d.setUTCDate(d.getUTCDate() + n);
  return isoDay(d);
}

export function addMonths(monthLabel: string, n: number): string {
  const d = parseDay(monthLabel);
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 7);
}
