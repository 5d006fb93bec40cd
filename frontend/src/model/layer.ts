// The layer panel of the model explorer: tabs for the clicked layer (kernels, feature
// maps with the unit explainer, attribution, activation maximisation, dataset
// examples). Only the visible tab asks the server anything, each tab keeps one load in
// flight and drops stale answers, so moving the epoch slider sends no storm. The view
// (views/model.ts) owns the choices and calls `update` on every change; a dataset
// example pressed here asks the view to make it the input with the bubbling event
// `convscope:choose-image` ({detail: {spec}}).
import { emptyBox, h, replace } from '../dom';
import { AttributionTab } from './attribution';
import type { LayerPanel, LayerPanelContext } from './context';
import { ExamplesTab } from './examples';
import { FeaturesTab } from './features';
import { KernelsTab } from './kernels';
import { MaximizeTab } from './maximize';
import { isConvType, knownNotConv } from './tabkit';

export const CHOOSE_IMAGE_EVENT = 'convscope:choose-image';

export type TabName = 'kernels' | 'features' | 'attribution' | 'maximize' | 'examples';

export const TABS: { name: TabName; label: string }[] = [
  { name: 'kernels', label: 'Kernels' },
  { name: 'features', label: 'Feature maps' },
  { name: 'attribution', label: 'Attribution' },
  { name: 'maximize', label: 'Maximise' },
  { name: 'examples', label: 'Dataset examples' },
];

interface Tab {
  readonly el: HTMLElement;
  show(ctx: LayerPanelContext): void;
  pause(): void;
  destroy(): void;
}

/** The tab a layer opens on when the person has not picked one: kernels for a convolution. */
export function defaultTab(layerType: string): TabName {
  return isConvType(layerType) ? 'kernels' : 'features';
}

/** The tab an arrow key moves to (wrapping), or null for another key. */
export function tabAfterKey(current: number, key: string, count: number): number | null {
  switch (key) {
    case 'ArrowRight': return (current + 1) % count;
    case 'ArrowLeft': return (current - 1 + count) % count;
    case 'Home': return 0;
    case 'End': return count - 1;
    default: return null;
  }
}

let panels = 0;

export function layerPanel(root: HTMLElement): LayerPanel {
  panels += 1;
  const prefix = `cs-layer-${panels}`;
  let ctx: LayerPanelContext | null = null;
  let active: TabName | null = null;
  let picked = false;
  let sharedChannel: number | null = null;
  const seen = new Map<TabName, LayerPanelContext>();

  const choose = (spec: string) => root.dispatchEvent(new CustomEvent(CHOOSE_IMAGE_EVENT, { detail: { spec }, bubbles: true }));
  const tabs: Record<TabName, Tab> = {
    kernels: new KernelsTab(),
    features: new FeaturesTab((channel) => (sharedChannel = channel)),
    attribution: new AttributionTab(),
    maximize: new MaximizeTab(() => sharedChannel),
    examples: new ExamplesTab(() => sharedChannel, choose),
  };

  const title = h('h2', {}, 'Layer');
  const subtitle = h('span', { class: 'muted small' });
  const buttons = new Map<TabName, HTMLButtonElement>();
  const sections = new Map<TabName, HTMLElement>();
  const list = h('div', { class: 'cs-tabs', role: 'tablist', 'aria-label': 'what to see of this layer' });
  for (const { name, label } of TABS) {
    const button = h('button', {
      type: 'button', role: 'tab', id: `${prefix}-tab-${name}`, 'aria-controls': `${prefix}-panel-${name}`,
      'aria-selected': 'false', tabindex: -1, class: 'cs-tab', 'data-testid': `tab-${name}`,
    }, label) as HTMLButtonElement;
    button.addEventListener('click', () => {
      picked = true;
      select(name, false);
    });
    button.addEventListener('keydown', (ev) => {
      const index = TABS.findIndex((t) => t.name === name);
      const next = tabAfterKey(index, ev.key, TABS.length);
      if (next === null) return;
      ev.preventDefault();
      picked = true;
      select(TABS[next].name, true);
    });
    buttons.set(name, button);
    list.append(button);
    const section = h('div', { role: 'tabpanel', id: `${prefix}-panel-${name}`, 'aria-labelledby': `${prefix}-tab-${name}`, class: 'cs-tabpanel', hidden: true }, tabs[name].el);
    sections.set(name, section);
  }
  const waiting = emptyBox('No layer chosen', 'Click a layer in the graph to see its kernels, its feature maps for the chosen input, and more.');
  const panel = h('section', { class: 'panel cs-layer-panel', 'data-testid': 'layer-panel', 'aria-label': 'the chosen layer' },
    h('div', { class: 'panel-head' }, title, subtitle),
    list,
    ...sections.values(),
    waiting,
  );
  list.hidden = true;
  // one "layer-panel" test hook on the page: the host's when the view already set it
  if (root.closest('[data-testid="layer-panel"]')) panel.removeAttribute('data-testid');
  replace(root, panel);

  function select(name: TabName, focus: boolean) {
    active = name;
    for (const [tab, button] of buttons) {
      const on = tab === name;
      button.setAttribute('aria-selected', String(on));
      button.tabIndex = on ? 0 : -1;
      sections.get(tab)!.hidden = !on;
    }
    if (focus) buttons.get(name)!.focus();
    refresh();
  }

  /** Show the context in the visible tab if it has not seen it yet. */
  function refresh() {
    if (!ctx || !active) return;
    if (seen.get(active) === ctx) return;
    seen.set(active, ctx);
    tabs[active].show(ctx);
  }

  function markTabs(next: LayerPanelContext) {
    const none = knownNotConv(next.layerType);
    const kernels = buttons.get('kernels')!;
    kernels.classList.toggle('cs-tab-na', none);
    kernels.title = none ? `${next.layer} is a ${next.layerType}: only convolutions have kernels` : '';
    const features = buttons.get('features')!;
    features.classList.toggle('cs-tab-na', !next.image);
    features.title = next.image ? '' : 'choose an input first';
    const attribution = buttons.get('attribution')!;
    attribution.classList.toggle('cs-tab-na', !next.image);
    attribution.title = next.image ? '' : 'choose an input first';
  }

  return {
    update(next: LayerPanelContext) {
      const layerChanged = !ctx || ctx.layer !== next.layer || ctx.info.name !== next.info.name;
      ctx = next;
      // Aborted and not followed at once by a new context (the view withdrew it): stop
      // what is in flight, quietly. A new context for the same choices keeps its loads.
      next.signal.addEventListener('abort', () => queueMicrotask(() => {
        if (ctx !== next) return;
        for (const tab of Object.values(tabs)) tab.pause();
        seen.clear();
      }), { once: true });
      title.textContent = next.layer;
      subtitle.textContent = `${next.layerType} · ${next.info.name}${next.info.epoch !== null && next.info.epoch !== undefined ? ` · epoch ${next.info.epoch}` : ''}`;
      list.hidden = false;
      waiting.remove();
      markTabs(next);
      if (!active || (layerChanged && !picked)) select(defaultTab(next.layerType), false);
      else refresh();
    },
    destroy() {
      for (const tab of Object.values(tabs)) tab.destroy();
      seen.clear();
      ctx = null;
    },
  };
}
