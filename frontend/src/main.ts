// The shell: header (name, server version, live status, navigation), the hash router,
// one live feed shared by the views, and the skip link.
import './style.css';
import { getJson } from './api';
import { h, replace } from './dom';
import { LiveFeed, type Connection } from './live';
import { formatRoute, parseRoute, type View } from './router';
import type { Cleanup, ViewContext } from './view';
import { exploreView } from './views/explore';
import { modelView } from './views/model';
import { runsView } from './views/runs';

const VIEWS: Record<View, (root: HTMLElement, ctx: ViewContext) => Cleanup> = { runs: runsView, explore: exploreView, model: modelView };
const TITLES: Record<View, string> = { runs: 'Runs', explore: 'Embedding explorer', model: 'Model explorer' };
const LIVE_TEXT: Record<Connection, string> = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…' };

function shell(app: HTMLElement) {
  const version = h('span', { class: 'version muted' }, '');
  const liveDot = h('span', { class: 'live-state', role: 'status', 'aria-live': 'polite' }, '');
  const nav = h(
    'nav',
    { 'aria-label': 'views' },
    h('a', { href: '#/runs', 'data-view': 'runs' }, 'Runs'),
    h('a', { href: '#/explore', 'data-view': 'explore' }, 'Embedding explorer'),
    h('a', { href: '#/model', 'data-view': 'model' }, 'Model explorer'),
  );
  const skip = h('a', { class: 'skip-link', href: '#/' }, 'Skip to content');
  const main = h('main', { id: 'main', tabindex: '-1' });
  const banner = h('div', { class: 'banner', role: 'alert', hidden: true });
  skip.addEventListener('click', (ev) => {
    ev.preventDefault();
    main.focus();
  });
  replace(app, skip, h('header', { class: 'top' }, h('a', { class: 'brand', href: '#/runs' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '▦'), 'convscope'), version, nav, liveDot), banner, main);
  return { version, liveDot, nav, main, banner };
}

function start() {
  const app = document.getElementById('app')!;
  const { version, liveDot, nav, main, banner } = shell(app);
  const live = new LiveFeed();
  live.onState((state) => {
    liveDot.textContent = LIVE_TEXT[state];
    liveDot.className = `live-state live-${state}`;
  });

  getJson<{ ok?: boolean; version?: string }>('api/health').then(
    (health) => {
      version.textContent = health.version ? `v${health.version}` : '';
      live.start();
    },
    (error: Error) => {
      banner.hidden = false;
      banner.textContent = `The dashboard's server did not answer its health check: ${error.message}`;
    },
  );

  let cleanup: Cleanup | null = null;
  let controller: AbortController | null = null;
  let shownHash = '';

  function render() {
    const hash = window.location.hash || '#/runs';
    shownHash = hash;
    const route = parseRoute(hash);
    cleanup?.();
    controller?.abort();
    controller = new AbortController();
    for (const a of nav.querySelectorAll('a')) {
      if (a.dataset.view === route.view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = `${TITLES[route.view]} · convscope`;
    const ctx: ViewContext = {
      live,
      params: route.params,
      signal: controller.signal,
      setParams(params) {
        const next = formatRoute(route.view, params);
        if (next === window.location.hash) return;
        shownHash = next;
        history.replaceState(null, '', next);
      },
    };
    cleanup = VIEWS[route.view](main, ctx);
  }

  window.addEventListener('hashchange', () => {
    if (window.location.hash !== shownHash) render();
  });
  window.addEventListener('pagehide', () => live.stop());
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) live.start(); // back from the page cache: listen again
  });
  forgetToken();
  render();
}

// The server turned ?token= into a cookie: drop it from the address bar and history.
function forgetToken() {
  const url = new URL(window.location.href);
  if (!url.searchParams.has('token')) return;
  url.searchParams.delete('token');
  window.history.replaceState(null, '', url.pathname + url.search + url.hash);
}

start();
