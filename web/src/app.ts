// The dashboard's shell: sign-in, the left navigation, the language switch and a hash router
// (#/overview, #/showback?by=team...) that renders one page at a time. Loaded by main.ts.

import './styles.css';
import { h, mount } from './dom';
import { api, clearCache, getToken, setToken, setUnauthorizedHandler, takeTokenFromFragment } from './api';
import { Key, Lang, lang, setLang, t } from './i18n';
import { disposeCharts } from './charts';
import { resetContext } from './context';
import type { Page } from './pages/page';
import { overview } from './pages/overview';
import { showback } from './pages/showback';
import { aiUsage } from './pages/ai';
import { gpus } from './pages/gpus';
import { anomalies } from './pages/anomalies';
import { budgets } from './pages/budgets';
import { forecasts } from './pages/forecasts';
import { recommendations } from './pages/recommendations';
import { tags } from './pages/tags';
import { kpis } from './pages/kpis';
import { maturity } from './pages/maturity';

const pages: { id: string; label: Key; icon: string; page: Page }[] = [
  { id: 'overview', label: 'nav.overview', icon: '◎', page: overview },
  { id: 'showback', label: 'nav.showback', icon: '▦', page: showback },
  { id: 'ai', label: 'nav.ai', icon: '✦', page: aiUsage },
  { id: 'gpus', label: 'nav.gpus', icon: '▣', page: gpus },
  { id: 'anomalies', label: 'nav.anomalies', icon: '⚠', page: anomalies },
  { id: 'budgets', label: 'nav.budgets', icon: '◔', page: budgets },
  { id: 'forecasts', label: 'nav.forecasts', icon: '↗', page: forecasts },
  { id: 'recommendations', label: 'nav.recommendations', icon: '✓', page: recommendations },
  { id: 'tags', label: 'nav.tags', icon: '#', page: tags },
  { id: 'kpis', label: 'nav.kpis', icon: 'Σ', page: kpis },
  { id: 'maturity', label: 'nav.maturity', icon: '▲', page: maturity },
];

const app = document.getElementById('app')!;

function route(): { id: string; params: URLSearchParams } {
  const m = /^#\/([\w-]+)(?:\?(.*))?$/.exec(location.hash);
  const id = m && pages.some((p) => p.id === m[1]) ? m[1] : 'overview';
  return { id, params: new URLSearchParams(m?.[2] ?? '') };
}

function signIn(message = ''): void {
  disposeCharts();
  document.body.dataset.ready = '';
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off',
    required: true, 'aria-label': t('signin.token') });
  const form = h('form', { class: 'signin card', onsubmit: async (e: Event) => {
    e.preventDefault();
    setToken(input.value.trim());
    clearCache();
    resetContext();
    try {
      await api('dimensions');
      if (!/^#\//.test(location.hash)) location.hash = '#/overview';
      render();
    } catch { signIn(t('signin.invalid')); }
  } },
  h('div', { class: 'brand big' }, h('span', { class: 'logo' }, '◆'), t('app.title')),
  h('h2', null, t('signin.title')),
  h('p', { class: 'muted' }, t('signin.help')),
  h('label', { for: 'token' }, t('signin.token')), input,
  message ? h('div', { class: 'error', role: 'alert' }, message) : null,
  h('button', { type: 'submit', class: 'primary' }, t('signin.submit')),
  langSwitch(() => signIn(message)));
  mount(app, h('div', { class: 'signin-wrap' }, form));
  document.body.dataset.ready = 'signin';
  input.focus();
}

function langSwitch(rerender: () => void): HTMLElement {
  const sel = h('select', { class: 'lang', 'aria-label': t('nav.language'), 'data-testid': 'lang',
    onchange: (e: Event) => { setLang((e.target as HTMLSelectElement).value as Lang); rerender(); } },
  h('option', { value: 'en' }, 'English'), h('option', { value: 'zh-CN' }, '简体中文'));
  sel.value = lang();
  return sel;
}

let renderSeq = 0;

async function render(): Promise<void> {
  if (!getToken()) { signIn(); return; }
  const seq = ++renderSeq;
  const { id, params } = route();
  const entry = pages.find((p) => p.id === id)!;
  disposeCharts();
  document.body.dataset.ready = '';
  document.title = t(entry.label) + ' · aifinops';
  const content = h('div', { class: 'page', 'data-page': id });
  const nav = h('nav', { class: 'nav', 'aria-label': 'pages' },
    ...pages.map((p) => h('a', { href: '#/' + p.id, class: p.id === id ? 'active' : undefined,
      'aria-current': p.id === id ? 'page' : undefined, 'data-nav': p.id },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, p.icon), h('span', null, t(p.label)))));
  mount(app, h('div', { class: 'shell' },
    h('aside', { class: 'side' },
      h('div', { class: 'brand' }, h('span', { class: 'logo' }, '◆'), h('span', null, t('app.title')),
        h('small', null, t('app.subtitle'))),
      nav,
      h('div', { class: 'side-foot' }, langSwitch(render),
        h('button', { class: 'link', 'data-testid': 'signout', onclick: () => {
          setToken(null); clearCache(); resetContext(); signIn();
        } }, t('nav.signout')))),
    h('main', { class: 'main' },
      h('header', { class: 'page-head' }, h('h1', null, t(entry.label))),
      content)));
  nav.querySelector('.active')?.scrollIntoView({ block: 'nearest', inline: 'center' });
  try {
    await entry.page(content, params);
  } finally {
    if (seq === renderSeq && document.body.contains(content)) {
      document.body.dataset.ready = id;
    }
  }
}

takeTokenFromFragment();
setLang(lang());
setUnauthorizedHandler(() => signIn());
window.addEventListener('hashchange', () => { render(); });
render();
