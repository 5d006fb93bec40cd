// A few DOM helpers: elements from a tag, attributes and children; the loading, empty,
// error and progress boxes every view shows instead of a blank space.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

export function loadingBox(text: string): HTMLElement {
  return h('div', { class: 'state state-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

export function emptyBox(title: string, ...body: Child[]): HTMLElement {
  return h('div', { class: 'state state-empty' }, h('p', { class: 'state-title' }, title), ...body.map((b) => (typeof b === 'string' ? h('p', {}, b) : b)));
}

export function errorBox(message: string, title = 'Something went wrong'): HTMLElement {
  return h('div', { class: 'state state-error', role: 'alert' }, h('p', { class: 'state-title' }, title), h('p', { class: 'error-line' }, message));
}

/** A progress bar for a job; `update(fraction, text)` moves it. */
export function progressBox(text: string): { el: HTMLElement; update: (fraction: number, text?: string) => void } {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': text });
  const label = h('span', { class: 'progress-text' }, text);
  const el = h('div', { class: 'state state-progress', role: 'status' }, label, bar);
  return {
    el,
    update(fraction: number, more?: string) {
      bar.value = Math.max(0, Math.min(1, fraction));
      label.textContent = `${more ?? text} — ${Math.round(bar.value * 100)}%`;
    },
  };
}

export function code(text: string): HTMLElement {
  return h('code', {}, text);
}

export function fmt(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

/** An accuracy as the API, the CLI and the report give it: a 0–1 number, 3 decimals (0.729). */
export function acc(value: number | null | undefined): string {
  return fmt(value, 3);
}

export function signed(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)}`;
}

let idCounter = 0;
export function uid(prefix: string): string {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}
