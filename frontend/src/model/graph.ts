// The model explorer's architecture diagram: convscope's own layered SVG
// (`api/models/{model}/graph.svg`) inlined safely, panned by dragging or the wheel (the
// page scrolls on once the diagram's end is in view) and zoomed with Ctrl/⌘+wheel, a
// pinch, the buttons or the keyboard through its viewBox; a tooltip per node from the
// graph's JSON (`.../graph`); a click on a module node, or the layer list
// (`.../layers`, nested layers of collapsed blocks included), selects the layer.
import { ApiError, fetchOk } from '../api';
import { emptyBox, errorBox, h, loadingBox, replace, uid } from '../dom';
import { modelUrl } from './context';

// --------------------------------------------------------------------------- pure logic

/** A rectangle in the SVG's user units (the viewBox), or a node's box. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Size {
  width: number;
  height: number;
}

export const MAX_SCALE = 4;
/** The smallest scale the fit may go to is this much below the whole-diagram fit. */
export const MIN_SCALE_OF_FIT = 0.8;
/** Below this scale the text (11 px) is unreadable, so a tall diagram opens width-fitted. */
export const READABLE_SCALE = 0.7;

/** Pixels per SVG unit (the viewBox keeps the viewport's aspect, so one number). */
export function scaleOf(view: Box, port: Size): number {
  return port.width / view.w;
}

/** A view at `scale` centred on (cx, cy). */
export function viewAt(cx: number, cy: number, scale: number, port: Size): Box {
  const w = port.width / scale;
  const h = port.height / scale;
  return { x: cx - w / 2, y: cy - h / 2, w, h };
}

/** The scale at which the whole content fits the viewport with `pad` pixels around it. */
export function fitScale(content: Box, port: Size, pad = 12): number {
  const sx = Math.max(1, port.width - 2 * pad) / content.w;
  const sy = Math.max(1, port.height - 2 * pad) / content.h;
  return Math.min(sx, sy);
}

/** The whole diagram in view (never magnified past 1.5×). */
export function fitView(content: Box, port: Size, pad = 12): Box {
  const scale = Math.min(fitScale(content, port, pad), 1.5);
  return viewAt(content.x + content.w / 2, content.y + content.h / 2, scale, port);
}

/**
 * The view a diagram opens with: all of it when that stays readable, else (a tall
 * ResNet) its width fitted, at least READABLE_SCALE, from the top.
 */
export function openingView(content: Box, port: Size, pad = 12): Box {
  if (fitScale(content, port, pad) >= READABLE_SCALE) return fitView(content, port, pad);
  const widthScale = Math.max(1, port.width - 2 * pad) / content.w;
  const scale = Math.min(1, Math.max(READABLE_SCALE, widthScale));
  const w = port.width / scale;
  const h = port.height / scale;
  const x = widthScale >= scale ? content.x + content.w / 2 - w / 2 : content.x - pad / scale;
  return { x, y: content.y - pad / scale, w, h };
}

export function scaleLimits(content: Box, port: Size): [number, number] {
  return [Math.min(fitScale(content, port) * MIN_SCALE_OF_FIT, READABLE_SCALE), MAX_SCALE];
}

/** However far the diagram is dragged, this many pixels of it (each way) stay in the viewport. */
export const KEEP_PX = 80;

/**
 * Keep the scale within its limits and at least KEEP_PX pixels of the diagram in view
 * (all of it, where it is smaller): `keep` is the part that counts (the nodes' own
 * bounds, without the margin around them), by default `content`.
 */
export function clampView(view: Box, content: Box, port: Size, keep: Box = content): Box {
  const [lo, hi] = scaleLimits(content, port);
  let scale = scaleOf(view, port);
  let { x, y, w, h } = view;
  if (scale < lo || scale > hi) {
    const cx = x + w / 2;
    const cy = y + h / 2;
    scale = Math.min(hi, Math.max(lo, scale));
    ({ x, y, w, h } = viewAt(cx, cy, scale, port));
  }
  const keepX = Math.min(KEEP_PX / scale, keep.w, w);
  const keepY = Math.min(KEEP_PX / scale, keep.h, h);
  x = Math.min(Math.max(x, keep.x + keepX - w), keep.x + keep.w - keepX);
  y = Math.min(Math.max(y, keep.y + keepY - h), keep.y + keep.h - keepY);
  return { x, y, w, h };
}

/** How many pixels of `keep` the view shows across and down (0 when it is out of view that way). */
export function visiblePixels(view: Box, keep: Box, port: Size): { x: number; y: number } {
  const scale = scaleOf(view, port);
  const across = Math.min(view.x + view.w, keep.x + keep.w) - Math.max(view.x, keep.x);
  const down = Math.min(view.y + view.h, keep.y + keep.h) - Math.max(view.y, keep.y);
  return { x: Math.max(0, across) * scale, y: Math.max(0, down) * scale };
}

/**
 * A plain wheel scrolls the diagram like a page: by (dx, dy) pixels, no further than
 * its end reaching the viewport's edge. Null when it cannot move that way (its end is
 * in view, or all of it fits): then the wheel scrolls the page instead.
 */
export function wheelPan(view: Box, dx: number, dy: number, content: Box, port: Size): Box | null {
  const scale = scaleOf(view, port);
  const along = (at: number, delta: number, size: number, start: number, length: number): number => {
    if (delta > 0) return Math.max(at, Math.min(at + delta / scale, start + length - size));
    if (delta < 0) return Math.min(at, Math.max(at + delta / scale, start));
    return at;
  };
  const x = along(view.x, dx, view.w, content.x, content.w);
  const y = along(view.y, dy, view.h, content.y, content.h);
  if (Math.abs(x - view.x) * scale < 0.01 && Math.abs(y - view.y) * scale < 0.01) return null;
  return { ...view, x, y };
}

/** A wheel event's deltas in pixels (lines are 16 px, pages a viewport). */
export function wheelPixels(deltaX: number, deltaY: number, deltaMode: number, port: Size): [number, number] {
  if (deltaMode === 1) return [deltaX * 16, deltaY * 16];
  if (deltaMode === 2) return [deltaX * port.width, deltaY * port.height];
  return [deltaX, deltaY];
}

/** Zoom by `factor` keeping the point at fraction (fx, fy) of the viewport still. */
export function zoomAt(view: Box, factor: number, fx: number, fy: number, content: Box, port: Size, keep: Box = content): Box {
  const [lo, hi] = scaleLimits(content, port);
  const scale = Math.min(hi, Math.max(lo, scaleOf(view, port) * factor));
  const px = view.x + fx * view.w;
  const py = view.y + fy * view.h;
  const w = port.width / scale;
  const h = port.height / scale;
  return clampView({ x: px - fx * w, y: py - fy * h, w, h }, content, port, keep);
}

/** Move the view so the diagram follows a drag of (dx, dy) pixels. */
export function panBy(view: Box, dx: number, dy: number, content: Box, port: Size, keep: Box = content): Box {
  const scale = scaleOf(view, port);
  return clampView({ ...view, x: view.x - dx / scale, y: view.y - dy / scale }, content, port, keep);
}

/** The same scale and top-left corner in a viewport of another size. */
export function resizeView(view: Box, oldPort: Size, port: Size, content: Box, keep: Box = content): Box {
  const scale = scaleOf(view, oldPort);
  return clampView({ x: view.x, y: view.y, w: port.width / scale, h: port.height / scale }, content, port, keep);
}

/** The box around `boxes` with `margin`, or null when there are none. */
export function nodesBounds(boxes: readonly Box[], margin = 0): Box | null {
  if (!boxes.length) return null;
  const x0 = Math.min(...boxes.map((b) => b.x)) - margin;
  const y0 = Math.min(...boxes.map((b) => b.y)) - margin;
  const x1 = Math.max(...boxes.map((b) => b.x + b.w)) + margin;
  const y1 = Math.max(...boxes.map((b) => b.y + b.h)) + margin;
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

export function boxInside(inner: Box, outer: Box): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w && inner.y + inner.h <= outer.y + outer.h;
}

/** The view moved (same scale) so `box` is in it, centred; unchanged if it already is. */
export function revealBox(view: Box, box: Box, content: Box, port: Size, keep: Box = content): Box {
  if (boxInside(box, view)) return view;
  return clampView({ ...view, x: box.x + box.w / 2 - view.w / 2, y: box.y + box.h / 2 - view.h / 2 }, content, port, keep);
}

/** `viewBox="x y w h"` (also comma-separated), or null. */
export function parseViewBox(text: string | null): Box | null {
  const parts = (text ?? '').trim().split(/[\s,]+/).map(Number);
  if (parts.length !== 4 || parts.some((v) => !Number.isFinite(v)) || parts[2] <= 0 || parts[3] <= 0) return null;
  return { x: parts[0], y: parts[1], w: parts[2], h: parts[3] };
}

export function viewBoxText(view: Box): string {
  return [view.x, view.y, view.w, view.h].map((v) => Number(v.toFixed(2))).join(' ');
}

// --- the graph's JSON and the layer list

export interface GraphNode {
  id: string;
  name: string;
  type: string;
  op: string;
  outputShape: number[] | number[][] | null;
  params: number;
  collapsed: boolean;
  activation: string | null;
}

export interface ModelGraph {
  nodes: GraphNode[];
  edges: [string, string][];
  note: string | null;
}

export interface LayerRow {
  name: string;
  type: string;
  outputShape: number[] | number[][] | null;
  params: number;
}

type Json = Record<string, unknown>;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : String(v));
const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function parseShape(raw: unknown): number[] | number[][] | null {
  if (!Array.isArray(raw) || !raw.length) return null;
  if (Array.isArray(raw[0])) return raw.map((s) => arr(s).map(count));
  return raw.map(count);
}

export function parseGraph(raw: unknown): ModelGraph {
  const g = (raw ?? {}) as Json;
  return {
    nodes: arr(g.nodes).map((n) => {
      const o = (n ?? {}) as Json;
      return {
        id: str(o.id),
        name: str(o.name),
        type: str(o.type),
        op: str(o.op),
        outputShape: parseShape(o.output_shape),
        params: count(o.params),
        collapsed: o.collapsed === true,
        activation: typeof o.activation === 'string' ? o.activation : null,
      };
    }),
    edges: arr(g.edges).map((e) => [str(arr(e)[0]), str(arr(e)[1])] as [string, string]),
    note: typeof g.note === 'string' && g.note ? g.note : null,
  };
}

export function parseLayers(raw: unknown): LayerRow[] {
  return arr(raw)
    .map((r) => {
      const o = (r ?? {}) as Json;
      return { name: str(o.name), type: str(o.type), outputShape: parseShape(o.output_shape), params: count(o.params) };
    })
    .filter((r) => r.name);
}

/** Trainable parameters per layer name, from `summary?depth=64`. */
export function parseTrainable(raw: unknown): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of arr((raw as Json | null)?.layers)) {
    const o = (r ?? {}) as Json;
    if (typeof o.name === 'string' && typeof o.trainable_params === 'number') out.set(o.name, o.trainable_params);
  }
  return out;
}

/** A module call: the only nodes that are layers (input, output and functions are not). */
export function isLayerNode(node: GraphNode): boolean {
  return node.op === 'call_module';
}

/** `[1, 32, 28, 28]` -> `32×28×28` (batch dropped), as the diagram writes it. */
export function shapeText(shape: number[] | number[][] | null): string {
  if (!shape || !shape.length) return '–';
  if (Array.isArray(shape[0])) return (shape as number[][]).map((s) => shapeText(s)).join(', ');
  const dims = (shape as number[]).length > 1 ? (shape as number[]).slice(1) : (shape as number[]);
  return dims.join('×');
}

/** 25610152 -> `25,610,152`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** The sensible first layer: the first convolution, else the first layer with weights. */
export function defaultLayer(layers: readonly LayerRow[]): string | null {
  const conv = layers.find((l) => /conv/i.test(l.type) && !layers.some((o) => o.name.startsWith(`${l.name}.`)));
  return (conv ?? layers.find((l) => l.params > 0) ?? layers[0])?.name ?? null;
}

/** The diagram node that shows `layer`: its own box, or the collapsed block it is inside. */
export function nodeForLayer(nodes: readonly GraphNode[], layer: string): { node: GraphNode; exact: boolean } | null {
  const modules = nodes.filter(isLayerNode);
  const exact = modules.find((n) => n.name === layer);
  if (exact) return { node: exact, exact: true };
  let best: GraphNode | null = null;
  for (const n of modules) if (layer.startsWith(`${n.name}.`) && (!best || n.name.length > best.name.length)) best = n;
  return best ? { node: best, exact: false } : null;
}

/** Whether `name`'s output is the model's output: the last layer listed, or a block ending in it. */
export function isLastLayer(layers: readonly LayerRow[], name: string): boolean {
  const last = layers[layers.length - 1]?.name;
  return !!last && (last === name || last.startsWith(`${name}.`));
}

/** A layer's output shape when it is one tensor (`[1, C, H, W]`), else null. */
export function flatShape(shape: number[] | number[][] | null | undefined): number[] | null {
  return shape && shape.length && !Array.isArray(shape[0]) ? (shape as number[]) : null;
}

/** How many layers a collapsed block holds (its nested rows in the layer list). */
export function layersInside(layers: readonly LayerRow[], name: string): number {
  return layers.filter((l) => l.name.startsWith(`${name}.`)).length;
}

/** The rows of a node's tooltip: [label, value]. */
export function tooltipRows(node: GraphNode, trainable: number | undefined, inside = 0): [string, string][] {
  if (node.op === 'placeholder') return [['Type', "the model's input"], ['Output', shapeText(node.outputShape)]];
  if (node.op === 'output') return [['Type', "the model's output"], ['Output', shapeText(node.outputShape)]];
  if (!isLayerNode(node)) {
    return [['Type', `${node.type} (${node.op === 'call_method' ? 'method' : 'function'} call, not a layer)`], ['Output', shapeText(node.outputShape)]];
  }
  let type = node.type;
  if (node.activation && node.activation !== 'linear') type += ` · ${node.activation}`;
  const rows: [string, string][] = [['Type', type]];
  if (node.collapsed) rows.push(['Block', inside ? `collapsed: ${inside} layers inside (in the layer list)` : 'collapsed (its layers are in the layer list)']);
  rows.push(['Output', shapeText(node.outputShape)], ['Parameters', formatCount(node.params)]);
  let text = '–';
  if (trainable !== undefined) text = trainable === 0 ? (node.params ? 'none (frozen or statistics only)' : 'none') : trainable === node.params ? `all (${formatCount(trainable)})` : formatCount(trainable);
  rows.push(['Trainable', text]);
  return rows;
}

/** `layer1.0.conv1` indented by its depth in the layer list. */
export function layerOptionText(layer: LayerRow): string {
  const depth = layer.name.split('.').length - 1;
  return `${'\u2003'.repeat(depth)}${layer.name} · ${layer.type}`;
}

// --------------------------------------------------------------------------- fetching

export { fetchOk };

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return !!signal?.aborted || (error instanceof DOMException && error.name === 'AbortError');
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The server's SVG as an element of this document: only the <svg>, nothing active in it. */
export function importSvg(text: string): SVGSVGElement {
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  const root = doc.documentElement;
  if (doc.getElementsByTagName('parsererror').length || root.namespaceURI !== SVG_NS || root.localName !== 'svg') {
    throw new ApiError(0, 'the server sent a diagram that is not an SVG');
  }
  for (const el of [...root.querySelectorAll('script, foreignObject, iframe, object, embed, image, use, a, animate, set')]) el.remove();
  for (const el of [root, ...root.querySelectorAll('*')]) {
    for (const attr of [...el.attributes]) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on') || ((name === 'href' || name === 'xlink:href') && !attr.value.startsWith('#'))) el.removeAttribute(attr.name);
    }
  }
  return document.importNode(root, true) as unknown as SVGSVGElement;
}

// --------------------------------------------------------------------------- the view

export interface GraphHandlers {
  /** A layer was chosen here (a click on a module node, or the layer list). */
  onSelect(layer: string): void;
}

export interface GraphLoad {
  layers: LayerRow[];
  graph: ModelGraph | null;
}

const ZOOM_STEP = 1.25;
/** How the diagram is moved with a mouse, a trackpad or a touch screen (its aria-label and the line under it). */
export const GRAPH_HINT = 'drag or scroll to pan, Ctrl+scroll (⌘+scroll) or pinch to zoom';
const PAN_STEP = 80;

export class GraphView {
  readonly el: HTMLElement;
  readonly layerSelect: HTMLSelectElement;
  private readonly viewport: HTMLElement;
  private readonly stage: HTMLElement;
  private readonly tooltip: HTMLElement;
  private readonly note: HTMLElement;
  private readonly zoomText: HTMLElement;
  private readonly buttons: HTMLButtonElement[];
  private svg: SVGSVGElement | null = null;
  private content: Box | null = null;
  /** The nodes' own bounds: what the pan keeps KEEP_PX pixels of in view. */
  private keep: Box | null = null;
  private view: Box | null = null;
  private port: Size = { width: 0, height: 0 };
  private graph: ModelGraph | null = null;
  private layers: LayerRow[] = [];
  private trainable = new Map<string, number>();
  private nodesById = new Map<string, GraphNode>();
  private elements = new Map<string, SVGGElement>();
  private boxes = new Map<string, Box>();
  private selected: string | null = null;
  private caption = '';
  private drag: { id: number; x: number; y: number; moved: boolean } | null = null;
  /** The pointers down on the viewport (two of them pinch-zoom). */
  private pointers = new Map<number, { x: number; y: number }>();
  private pinch: { distance: number } | null = null;
  private suppressClick = false;
  private readonly resize: ResizeObserver | null;
  private generation = 0;

  constructor(private readonly handlers: GraphHandlers) {
    const selectId = uid('layer-select');
    const hintId = uid('graph-hint');
    this.layerSelect = h('select', { id: selectId, 'data-testid': 'layer-select', disabled: true }, h('option', { value: '' }, 'loading…')) as HTMLSelectElement;
    this.layerSelect.addEventListener('change', () => {
      if (this.layerSelect.value) this.handlers.onSelect(this.layerSelect.value);
    });
    const button = (text: string, label: string, testid: string, action: () => void) => {
      const b = h('button', { type: 'button', class: 'graph-button', 'aria-label': label, title: label, 'data-testid': testid, disabled: true }, text) as HTMLButtonElement;
      b.addEventListener('click', action);
      return b;
    };
    this.buttons = [
      button('−', 'zoom out', 'graph-zoom-out', () => this.zoomBy(1 / ZOOM_STEP)),
      button('+', 'zoom in', 'graph-zoom-in', () => this.zoomBy(ZOOM_STEP)),
      button('Fit', 'fit the whole diagram', 'graph-fit', () => this.fit()),
      button('1:1', 'actual size', 'graph-actual', () => this.actualSize()),
    ];
    this.zoomText = h('span', { class: 'muted small graph-zoom', 'aria-live': 'polite' });
    this.stage = h('div', { class: 'graph-stage' }, loadingBox('Loading the architecture…'));
    this.tooltip = h('div', { class: 'graph-tooltip', role: 'tooltip', id: uid('graph-tip'), hidden: true, 'data-testid': 'graph-tooltip' });
    this.viewport = h(
      'div',
      { class: 'graph-viewport', tabindex: 0, role: 'group', 'aria-label': `architecture diagram: ${GRAPH_HINT}; with the keyboard, + and − zoom, 0 fits, arrow keys pan, Tab moves through the layers, Enter selects one`, 'aria-describedby': hintId, 'data-testid': 'graph' },
      this.stage,
      this.tooltip,
    );
    this.note = h('p', { class: 'muted small graph-note', role: 'status' });
    const hint = h('p', { class: 'muted small graph-hint', id: hintId, 'data-testid': 'graph-hint' }, `${GRAPH_HINT[0].toUpperCase()}${GRAPH_HINT.slice(1)}.`);
    this.el = h(
      'section',
      { class: 'panel graph-panel', 'aria-labelledby': 'graph-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'graph-h' }, 'Architecture'), h('span', { class: 'control' }, h('label', { for: selectId }, 'Layer'), this.layerSelect)),
      h('div', { class: 'graph-frame' }, this.viewport, h('div', { class: 'graph-tools', role: 'toolbar', 'aria-label': 'zoom' }, this.zoomText, ...this.buttons)),
      hint,
      this.note,
    );
    this.setButtons(false);
    this.bindPointer();
    this.resize = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => this.onResize());
    this.resize?.observe(this.viewport);
  }

  /** Load a model's diagram, graph and layer list; resolves with the layers (or throws). */
  async load(model: string, signal: AbortSignal): Promise<GraphLoad> {
    const mine = (this.generation += 1);
    const current = () => mine === this.generation && !signal.aborted;
    this.svg = null;
    this.view = null;
    this.graph = null;
    this.elements.clear();
    this.boxes.clear();
    this.nodesById.clear();
    this.trainable = new Map();
    this.hideTooltip();
    this.setButtons(false);
    this.zoomText.textContent = '';
    this.note.textContent = '';
    this.caption = '';
    replace(this.stage, loadingBox('Tracing the model and laying out its graph…'));
    replace(this.layerSelect, h('option', { value: '' }, 'loading…'));
    this.layerSelect.disabled = true;

    const layersP = fetchOk(modelUrl(model, 'layers'), signal).then(async (r) => parseLayers(await r.json()));
    const graphP = Promise.all([
      fetchOk(modelUrl(model, 'graph.svg'), signal, { headers: { Accept: 'image/svg+xml' } }).then((r) => r.text()),
      fetchOk(modelUrl(model, 'graph'), signal, { headers: { Accept: 'application/json' } }).then(async (r) => parseGraph(await r.json())),
    ]);
    // Trainable counts only enrich the tooltip: a failure leaves them out.
    void fetchOk(modelUrl(model, 'summary', { depth: 64 }), signal)
      .then(async (r) => parseTrainable(await r.json()))
      .then((t) => {
        if (current()) this.trainable = t;
      })
      .catch(() => undefined);

    let layers: LayerRow[];
    try {
      layers = await layersP;
    } catch (error) {
      void graphP.catch(() => undefined);
      if (current()) {
        replace(this.layerSelect, h('option', { value: '' }, 'no layers'));
        replace(this.stage, errorBox((error as Error).message, 'The layers could not be read'));
      }
      throw error;
    }
    if (!current()) {
      void graphP.catch(() => undefined);
      return { layers, graph: null };
    }
    this.layers = layers;
    this.fillSelect();

    let graph: ModelGraph | null = null;
    try {
      const [svgText, parsed] = await graphP;
      if (!current()) return { layers, graph: parsed };
      graph = parsed;
      this.show(svgText, parsed);
    } catch (error) {
      if (current() && !isAbort(error, signal)) replace(this.stage, errorBox((error as Error).message, 'The diagram could not be drawn'));
    }
    return { layers, graph };
  }

  /** Show `layer` as the selected one (from the route, the list or a click). */
  select(layer: string | null, reveal = true): void {
    this.selected = layer;
    if (layer && [...this.layerSelect.options].some((o) => o.value === layer)) this.layerSelect.value = layer;
    for (const g of this.elements.values()) {
      g.classList.remove('selected', 'contains-selected');
      g.removeAttribute('aria-pressed');
    }
    this.note.textContent = this.caption;
    if (!layer || !this.graph) return;
    const found = nodeForLayer(this.graph.nodes, layer);
    if (!found) {
      this.note.textContent = `${layer} has no box of its own in the diagram.${this.caption ? ` ${this.caption}` : ''}`;
      return;
    }
    for (const [id, g] of this.elements) {
      if (this.nodesById.get(id)?.name !== found.node.name) continue;
      g.classList.add(found.exact ? 'selected' : 'contains-selected');
      g.setAttribute('aria-pressed', String(found.exact));
    }
    if (!found.exact) this.note.textContent = `${layer} is inside the collapsed block ${found.node.name} (dashed outline).${this.caption ? ` ${this.caption}` : ''}`;
    const box = this.boxes.get(found.node.id);
    if (reveal && box && this.view && this.content) this.setView(revealBox(this.view, box, this.content, this.port, this.keep ?? this.content));
  }

  destroy(): void {
    this.generation += 1;
    this.resize?.disconnect();
  }

  // --- drawing

  private fillSelect() {
    if (!this.layers.length) {
      replace(this.layerSelect, h('option', { value: '' }, 'no layers'));
      this.layerSelect.disabled = true;
      return;
    }
    replace(this.layerSelect, ...this.layers.map((l) => h('option', { value: l.name }, layerOptionText(l))));
    this.layerSelect.disabled = false;
    if (this.selected) this.layerSelect.value = this.selected;
  }

  private show(svgText: string, graph: ModelGraph) {
    const svg = importSvg(svgText);
    const content = parseViewBox(svg.getAttribute('viewBox')) ?? { x: 0, y: 0, w: Number(svg.getAttribute('width')) || 800, h: Number(svg.getAttribute('height')) || 600 };
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    svg.setAttribute('class', 'graph-svg');
    svg.setAttribute('role', 'group'); // not img: its layer boxes are buttons
    // The heading names the weights it was drawn with, which go stale when the epoch
    // changes (the structure does not): its facts and notes move below the diagram.
    const title = svg.querySelector(':scope > title')?.textContent ?? '';
    const facts = title.split(' · ').slice(1).join(' · ');
    const notes = [...svg.querySelectorAll(':scope > text')].map((t) => t.textContent ?? '').slice(1).filter(Boolean);
    for (const t of svg.querySelectorAll(':scope > text, :scope > title')) t.remove();
    svg.setAttribute('aria-label', `architecture diagram${facts ? `: ${facts}` : ''}`);
    this.graph = graph;
    this.nodesById = new Map(graph.nodes.map((n) => [n.id, n]));
    for (const g of svg.querySelectorAll<SVGGElement>('g.node')) {
      const id = g.id.replace(/^node-/, '');
      const node = this.nodesById.get(id);
      g.querySelector(':scope > title')?.remove(); // our tooltip replaces the browser's
      if (!node) continue;
      this.elements.set(id, g);
      const rect = g.querySelector('rect:last-of-type') as SVGRectElement | null;
      if (rect) {
        const b = { x: Number(rect.getAttribute('x')), y: Number(rect.getAttribute('y')), w: Number(rect.getAttribute('width')), h: Number(rect.getAttribute('height')) };
        if ([b.x, b.y, b.w, b.h].every(Number.isFinite)) this.boxes.set(id, b);
      }
      g.setAttribute('data-testid', `graph-node-${node.name}`);
      g.setAttribute('data-layer', node.name);
      g.setAttribute('data-node', id);
      const layer = isLayerNode(node);
      g.classList.toggle('is-layer', layer);
      g.setAttribute('aria-label', `${node.name}: ${tooltipRows(node, undefined, 0).filter(([k]) => k !== 'Trainable').map(([k, v]) => `${k.toLowerCase()} ${v}`).join(', ')}${layer ? '' : ' (not a layer)'}`);
      g.setAttribute('tabindex', layer ? '0' : '-1');
      if (layer) g.setAttribute('role', 'button');
    }
    this.svg = svg;
    this.content = nodesBounds([...this.boxes.values()], 24) ?? content;
    this.keep = nodesBounds([...this.boxes.values()], 0) ?? this.content;
    replace(this.stage, svg);
    if (!graph.nodes.length) replace(this.stage, emptyBox('The graph has no nodes.'));
    this.caption = [facts, ...notes, graph.note ?? ''].filter((line, i, all) => line && all.indexOf(line) === i).join(' · ');
    this.note.textContent = this.caption;
    this.setButtons(true);
    this.measure();
    if (this.port.width > 0) this.setView(openingView(content, this.port));
    this.select(this.selected, true);
  }

  private setButtons(on: boolean) {
    for (const b of this.buttons) b.disabled = !on;
    (this.buttons[0].parentElement as HTMLElement).hidden = !on;
  }

  /** No diagram to show (the model could not be opened): `box` says why. */
  clear(box: HTMLElement): void {
    this.generation += 1;
    this.svg = null;
    this.view = null;
    this.graph = null;
    this.elements.clear();
    this.boxes.clear();
    this.hideTooltip();
    this.setButtons(false);
    this.caption = '';
    this.note.textContent = '';
    replace(this.layerSelect, h('option', { value: '' }, 'no layers'));
    this.layerSelect.disabled = true;
    replace(this.stage, box);
  }

  private measure() {
    this.port = { width: this.viewport.clientWidth, height: this.viewport.clientHeight };
  }

  private setView(view: Box) {
    if (!this.svg || !this.content) return;
    this.view = view;
    this.svg.setAttribute('viewBox', viewBoxText(view));
    this.zoomText.textContent = `${Math.round(scaleOf(view, this.port) * 100)}%`;
  }

  private onResize() {
    const old = this.port;
    this.measure();
    if (!this.content || !this.svg || this.port.width <= 0 || this.port.height <= 0) return;
    if (!this.view || old.width <= 0 || old.height <= 0) this.setView(openingView(this.content, this.port));
    else this.setView(resizeView(this.view, old, this.port, this.content, this.keep ?? this.content));
  }

  /** The view after a drag of (dx, dy) pixels, at least KEEP_PX pixels of the diagram left in view. */
  private panned(dx: number, dy: number): Box {
    return panBy(this.view!, dx, dy, this.content!, this.port, this.keep ?? this.content!);
  }

  private zoomBy(factor: number, fx = 0.5, fy = 0.5) {
    if (!this.view || !this.content) return;
    this.setView(zoomAt(this.view, factor, fx, fy, this.content, this.port, this.keep ?? this.content));
  }

  private fit() {
    if (this.content) this.setView(clampView(fitView(this.content, this.port), this.content, this.port, this.keep ?? this.content));
  }

  private actualSize() {
    if (!this.view || !this.content) return;
    this.zoomBy(1 / scaleOf(this.view, this.port));
  }

  // --- interaction

  private nodeOf(target: EventTarget | null): { id: string; node: GraphNode; g: SVGGElement } | null {
    const g = (target as Element | null)?.closest?.('g.node') as SVGGElement | null;
    const id = g?.getAttribute('data-node');
    const node = id ? this.nodesById.get(id) : undefined;
    return g && id && node ? { id, node, g } : null;
  }

  private bindPointer() {
    const vp = this.viewport;
    // A plain wheel scrolls the diagram like a page (and the page itself once the
    // diagram's end is in view); Ctrl/⌘ with the wheel, or a trackpad's pinch (which
    // browsers send as a wheel with ctrlKey), zooms about the pointer.
    vp.addEventListener('wheel', (ev) => {
      if (!this.view || !this.content) return;
      const [dx, dy] = wheelPixels(ev.deltaX, ev.deltaY, ev.deltaMode, this.port);
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        const rect = vp.getBoundingClientRect();
        const factor = Math.exp(Math.max(-0.2, Math.min(0.2, -dy * 0.01)));
        this.zoomBy(factor, (ev.clientX - rect.left) / rect.width, (ev.clientY - rect.top) / rect.height);
        return;
      }
      const [px, py] = ev.shiftKey && dx === 0 ? [dy, 0] : [dx, dy];
      const next = wheelPan(this.view, px, py, this.content, this.port);
      if (!next) return; // the page scrolls
      ev.preventDefault();
      this.hideTooltip();
      this.setView(next);
    }, { passive: false });
    vp.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || !this.view) return;
      // only fingers (and pens) pinch; a mouse never leaves a stale pointer behind
      if (ev.pointerType === 'mouse') this.pointers.clear();
      else this.pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
      if (this.pointers.size === 2) {
        // a second finger: pinch-zoom instead of dragging
        const [a, b] = [...this.pointers.values()];
        this.pinch = { distance: Math.hypot(a.x - b.x, a.y - b.y) };
        if (this.drag) this.drag.moved = true; // no click at the end
        for (const id of this.pointers.keys()) if (!vp.hasPointerCapture(id)) vp.setPointerCapture(id);
        this.hideTooltip();
        return;
      }
      if (this.pointers.size <= 1) this.drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, moved: false };
    });
    vp.addEventListener('pointermove', (ev) => {
      if (this.pinch && this.pointers.has(ev.pointerId)) {
        this.pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
        const [a, b] = [...this.pointers.values()];
        const distance = Math.hypot(a.x - b.x, a.y - b.y);
        if (this.pinch.distance > 0 && distance > 0) {
          const rect = vp.getBoundingClientRect();
          this.zoomBy(distance / this.pinch.distance, ((a.x + b.x) / 2 - rect.left) / rect.width, ((a.y + b.y) / 2 - rect.top) / rect.height);
        }
        this.pinch.distance = distance;
        return;
      }
      const d = this.drag;
      if (d && d.id === ev.pointerId && this.view && this.content) {
        const dx = ev.clientX - d.x;
        const dy = ev.clientY - d.y;
        if (!d.moved && Math.hypot(dx, dy) < 4) return;
        if (!d.moved) {
          d.moved = true;
          vp.setPointerCapture(ev.pointerId);
          vp.classList.add('dragging');
          this.hideTooltip();
        }
        d.x = ev.clientX;
        d.y = ev.clientY;
        this.setView(this.panned(dx, dy));
        return;
      }
      const hit = this.nodeOf(ev.target);
      if (hit) this.showTooltip(hit.node, ev.clientX, ev.clientY);
      else this.hideTooltip();
    });
    const end = (ev: PointerEvent) => {
      this.pointers.delete(ev.pointerId);
      if (vp.hasPointerCapture(ev.pointerId)) vp.releasePointerCapture(ev.pointerId);
      if (this.pinch) {
        if (this.pointers.size >= 2) return;
        this.pinch = null;
        // the finger left on the screen drags on from where it is, without a jump
        const [rest] = [...this.pointers.entries()];
        this.drag = rest ? { id: rest[0], x: rest[1].x, y: rest[1].y, moved: true } : this.drag;
        if (rest) return;
      }
      const d = this.drag;
      if (!d || d.id !== ev.pointerId) return;
      this.drag = null;
      if (d.moved) {
        this.suppressClick = true;
        setTimeout(() => (this.suppressClick = false), 0);
        vp.classList.remove('dragging');
      }
    };
    vp.addEventListener('pointerup', end);
    vp.addEventListener('pointercancel', end);
    vp.addEventListener('pointerleave', (ev) => {
      if (!vp.hasPointerCapture(ev.pointerId)) this.pointers.delete(ev.pointerId);
      if (!this.drag) this.hideTooltip();
    });
    vp.addEventListener('click', (ev) => {
      if (this.suppressClick) return;
      const hit = this.nodeOf(ev.target);
      if (hit && isLayerNode(hit.node)) this.choose(hit.node);
    });
    vp.addEventListener('keydown', (ev) => this.onKey(ev));
    // Tab onto a node: show its tooltip and keep it in view (the viewport itself never scrolls)
    vp.addEventListener('focusin', (ev) => {
      const hit = this.nodeOf(ev.target);
      if (!hit) return;
      const box = this.boxes.get(hit.id);
      if (box && this.view && this.content) this.setView(revealBox(this.view, box, this.content, this.port, this.keep ?? this.content));
      const r = hit.g.getBoundingClientRect();
      this.showTooltip(hit.node, r.right, r.top + r.height / 2);
    });
    vp.addEventListener('focusout', () => this.hideTooltip());
    vp.addEventListener('scroll', () => {
      vp.scrollTop = 0;
      vp.scrollLeft = 0;
    });
  }

  private choose(node: GraphNode) {
    this.hideTooltip();
    this.select(node.name, false);
    this.handlers.onSelect(node.name);
  }

  private onKey(ev: KeyboardEvent) {
    if (!this.view || !this.content || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const hit = this.nodeOf(ev.target);
    let handled = true;
    switch (ev.key) {
      case '+':
      case '=':
        this.zoomBy(ZOOM_STEP);
        break;
      case '-':
      case '_':
        this.zoomBy(1 / ZOOM_STEP);
        break;
      case '0':
        this.fit();
        break;
      case '1':
        this.actualSize();
        break;
      case 'ArrowLeft':
        this.setView(this.panned(PAN_STEP, 0));
        break;
      case 'ArrowRight':
        this.setView(this.panned(-PAN_STEP, 0));
        break;
      case 'ArrowUp':
        this.setView(this.panned(0, PAN_STEP));
        break;
      case 'ArrowDown':
        this.setView(this.panned(0, -PAN_STEP));
        break;
      case 'Enter':
      case ' ':
        if (hit && isLayerNode(hit.node)) this.choose(hit.node);
        else handled = false;
        break;
      case 'Escape':
        this.hideTooltip();
        break;
      default:
        handled = false;
    }
    if (handled) ev.preventDefault();
  }

  private showTooltip(node: GraphNode, clientX: number, clientY: number) {
    const inside = node.collapsed ? layersInside(this.layers, node.name) : 0;
    const rows = tooltipRows(node, isLayerNode(node) ? this.trainable.get(node.name) : undefined, inside);
    replace(
      this.tooltip,
      h('div', { class: 'tip-name mono' }, node.name),
      h('dl', {}, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      isLayerNode(node) ? h('div', { class: 'tip-hint muted' }, this.selected === node.name ? 'selected' : 'click to open this layer') : null,
    );
    this.tooltip.hidden = false;
    const rect = this.viewport.getBoundingClientRect();
    const tw = this.tooltip.offsetWidth;
    const th = this.tooltip.offsetHeight;
    let left = clientX - rect.left + 14;
    let top = clientY - rect.top + 14;
    if (left + tw > rect.width - 4) left = Math.max(4, clientX - rect.left - tw - 14);
    if (top + th > rect.height - 4) top = Math.max(4, clientY - rect.top - th - 14);
    this.tooltip.style.left = `${left}px`;
    this.tooltip.style.top = `${top}px`;
  }

  private hideTooltip() {
    this.tooltip.hidden = true;
  }
}
