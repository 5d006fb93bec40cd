// The feature maps of the chosen input at the clicked layer: the server's tiles PNG
// (each map quantised over its own range) decoded back to values, coloured here with
// a colour map on one shared scale or one scale per map, channel labels, hover values,
// and a click on a unit to explain it (unit.ts). A vector output is a bar chart, with
// class names when it is the model's output.
import * as echarts from 'echarts/core';
import { BarChart } from 'echarts/charts';
import { getJson } from '../api';
import { makeChart, TEXT_STYLE, type Chart } from '../charts';
import { emptyBox, h, loadingBox, replace } from '../dom';
import { RIGHT, UNKNOWN } from '../palette';
import { COLORMAPS, colourBar, shortNumber, type ColormapName } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { explainable, failureBox, fetchPixels, flattenSource, flatUnitText, isAbort, keyOf, LatestRunner, layerRows, notExplainableLine, segmentedControl, selectControl, sizeCanvas, tileGap, upscale, atlasColumns, atlasSlot, replaceControls } from './tabkit';
import { UnitExplain } from './unit';

echarts.use([BarChart]);

/** `GET api/models/{model}/features/tiles` for a layer with maps. */
export interface FeatureTiles {
  layer: string;
  type: string;
  shape: number[];
  channels: number[];
  columns: number;
  tile: [number, number];
  min: number;
  max: number;
  map_min: number[];
  map_max: number[];
  map_mean?: number[];
  png: string;
}

/** The same route for a layer whose output is a vector. */
export interface FeatureVector {
  layer: string;
  type: string;
  shape: number[];
  values: (number | null)[];
  /** With `top`: the units the values are of (the largest first). */
  channels?: number[];
}

export type FeatureAnswer = FeatureTiles | FeatureVector;

export function isVector(answer: FeatureAnswer): answer is FeatureVector {
  return Array.isArray((answer as FeatureVector).values);
}

/** The value of byte `q` of a map quantised over [lo, hi]: lo + q/255 (hi − lo). */
export function decodeValue(q: number, lo: number, hi: number): number {
  return lo + (q / 255) * (hi - lo);
}

export interface Pixels {
  data: ArrayLike<number>;
  width: number;
  height: number;
}

/** Where tile `i` starts in the PNG (its top-left pixel), with the gap the PNG has between tiles. */
export function tileStart(tiles: Pick<FeatureTiles, 'columns' | 'tile' | 'channels'>, pixels: Pick<Pixels, 'width'>, i: number): [number, number] {
  const [th, tw] = tiles.tile;
  const columns = Math.max(1, Math.min(tiles.columns, tiles.channels.length));
  const gap = tileGap(pixels.width, columns, tw);
  return [Math.floor(i / tiles.columns) * (th + gap), (i % tiles.columns) * (tw + gap)];
}

/** The byte at (row, col) of tile `i` (the red channel: the PNG is gray). */
export function tileByte(tiles: FeatureTiles, pixels: Pixels, i: number, row: number, col: number): number {
  const [y0, x0] = tileStart(tiles, pixels, i);
  return pixels.data[((y0 + row) * pixels.width + x0 + col) * 4];
}

/** The value of map `i` at (row, col), decoded from its tile. */
export function tileValue(tiles: FeatureTiles, pixels: Pixels, i: number, row: number, col: number): number {
  return decodeValue(tileByte(tiles, pixels, i, row, col), tiles.map_min[i], tiles.map_max[i]);
}

/** One quantisation step of map `i`. */
export function tileStep(tiles: FeatureTiles, i: number): number {
  return (tiles.map_max[i] - tiles.map_min[i]) / 255;
}

/** Where byte `q` of map `i` falls on the colour map: its own range, or the layer's [min, max]. */
export function colourPosition(tiles: FeatureTiles, i: number, q: number, shared: boolean): number {
  if (!shared) return q / 255;
  const span = tiles.max - tiles.min;
  if (!(span > 0)) return 0.5;
  return (decodeValue(q, tiles.map_min[i], tiles.map_max[i]) - tiles.min) / span;
}

export const WIDE_LAYER = 64;
export const WIDE_TOP = 32;

/** The `top` to ask for first: all maps up to 64 channels, the 32 most active beyond. */
export function defaultTop(channels: number | null | undefined): number | null {
  return channels !== null && channels !== undefined && channels > WIDE_LAYER ? WIDE_TOP : null;
}

/** The most numbers the server sends of a vector output (more is a 400 asking for `top`). */
export const MAX_VECTOR = 4096;
export const VECTOR_TOP = 256;

/** The `top` to ask a vector output for: its largest 256 when it is longer than the server sends, else none. */
export function vectorTop(shape: number[] | null | undefined): number | null {
  return shape && shape.length === 2 && shape[1] > MAX_VECTOR ? VECTOR_TOP : null;
}

/** The output channels of a layer from `layers --json`'s shape (batch first), or null. */
export function channelsOf(shape: number[] | null | undefined): number | null {
  return shape && shape.length === 4 ? shape[1] : null;
}

export interface GridLayout {
  count: number;
  cols: number;
  rows: number;
  scale: number;
  tileW: number;
  tileH: number;
  labelH: number;
  gap: number;
  cellW: number;
  cellH: number;
  width: number;
  height: number;
}

/** The most CSS pixels a map is drawn across: fewer maps may be larger. */
export function mapCap(count: number): number {
  return count > 64 ? 56 : count > 16 ? 80 : 160;
}

/**
 * Whether the maps take the panel's whole width, with the unit explanation below them
 * rather than beside: many maps (more than 16) or large ones (over 32 pixels a side).
 */
export function wideMaps(count: number, tile: [number, number]): boolean {
  return count > 16 || Math.max(tile[0], tile[1]) > 32;
}

/**
 * Maps laid out to fit `available` CSS pixels, a label above each: small maps upscaled in
 * whole-pixel steps, large ones drawn smaller, to at most `mapCap(count)` pixels a side
 * (and never wider than the space there is).
 */
export function gridLayout(count: number, tile: [number, number], available: number, labelH = 15, gap = 8): GridLayout {
  const [th, tw] = tile;
  const size = Math.max(th, tw, 1);
  const target = count > 64 ? 48 : count > 9 ? 64 : 96;
  let scale = upscale(size, target);
  const fitCols = (s: number) => Math.max(1, Math.floor((available + gap) / (tw * s + gap)));
  while (scale > 1 && fitCols(scale) < Math.min(count, 2)) scale -= 1;
  const most = Math.min(mapCap(count), Math.max(8, available));
  if (size * scale > most) scale = Math.max(1, Math.floor(most)) / size;
  const cols = Math.max(1, Math.min(count, fitCols(scale)));
  const rows = Math.max(1, Math.ceil(count / cols));
  const cellW = tw * scale;
  const cellH = th * scale + labelH;
  return { count, cols, rows, scale, tileW: tw, tileH: th, labelH, gap, cellW, cellH, width: Math.ceil(cols * cellW + (cols - 1) * gap), height: Math.ceil(rows * cellH + (rows - 1) * gap) };
}

/** The map and unit under a point of the canvas (CSS pixels), or null between maps. */
export function hitTest(layout: GridLayout, x: number, y: number): { index: number; row: number; col: number } | null {
  if (x < 0 || y < 0) return null;
  const c = Math.floor(x / (layout.cellW + layout.gap));
  const r = Math.floor(y / (layout.cellH + layout.gap));
  if (c >= layout.cols || r >= layout.rows) return null;
  const dx = x - c * (layout.cellW + layout.gap);
  const dy = y - r * (layout.cellH + layout.gap) - layout.labelH;
  if (dx >= layout.cellW || dy < 0 || dy >= layout.tileH * layout.scale) return null;
  const index = r * layout.cols + c;
  if (index >= layout.count) return null;
  return { index, row: Math.min(layout.tileH - 1, Math.floor(dy / layout.scale)), col: Math.min(layout.tileW - 1, Math.floor(dx / layout.scale)) };
}

/** Where a map's picture starts on the canvas (CSS pixels). */
export function cellOrigin(layout: GridLayout, index: number): [number, number] {
  const r = Math.floor(index / layout.cols);
  const c = index % layout.cols;
  return [c * (layout.cellW + layout.gap), r * (layout.cellH + layout.gap) + layout.labelH];
}

/** The channels (or, for a vector output, the units) of a layer from its batch-first shape, or null. */
export function unitsOf(shape: number[] | null | undefined): number | null {
  return shape && shape.length >= 2 ? shape[1] : null;
}

/** Whether a vector of `length` outputs is the model's class scores. */
export function isClassVector(ctx: Pick<LayerPanelContext, 'info' | 'lastLayer'>, length: number): boolean {
  const classes = ctx.info.classes;
  if (!classes || classes.length !== length) return false;
  return ctx.lastLayer !== false;
}

type Unit = { channel: number; row: number; col: number };

export class FeaturesTab {
  readonly el: HTMLElement;
  private readonly runner = new LatestRunner();
  private readonly controls: HTMLElement;
  private readonly body: HTMLElement;
  private readonly note: HTMLElement;
  private readonly explain = new UnitExplain();
  private ctx: LayerPanelContext | null = null;
  private key = '';
  private colormap: ColormapName = 'viridis';
  private shared = true;
  /** The `top` chosen per layer ('all' or a number); a layer not in it takes `defaultTop`. */
  private readonly topChoice = new Map<string, number | 'all'>();
  /** Channel counts learnt from answers, for layers the context gave no shape for. */
  private readonly widths = new Map<string, number>();
  private data: FeatureTiles | null = null;
  private pixels: ImageData | null = null;
  private atlas: HTMLCanvasElement | null = null;
  private layout: GridLayout | null = null;
  private canvas: HTMLCanvasElement | null = null;
  private barEl: HTMLElement | null = null;
  private bar: { chart: Chart; dispose: () => void } | null = null;
  private readout: HTMLElement | null = null;
  private barBox: HTMLElement | null = null;
  private announce: HTMLElement;
  private hover: { index: number; row: number; col: number } | null = null;
  private selected: Unit | null = null;
  private mapsBox: HTMLElement | null = null;
  private split: HTMLElement | null = null;
  private resize: ResizeObserver | null = null;
  private lastWidth = 0;
  /** Where a Flatten layer's units come from (for its bar chart), once known. */
  private flat: { layer: string; shape: [number, number, number] } | null = null;
  private vector: FeatureVector | null = null;

  constructor(private readonly onChannel: (channel: number) => void) {
    this.controls = h('div', { class: 'control-row cs-controls' });
    this.body = h('div', { class: 'cs-tab-body' });
    // above the maps: a tall grid would push it out of sight
    this.note = h('p', { class: 'small muted cs-note cs-note-top' });
    this.announce = h('p', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
    this.el = h('div', { class: 'cs-features' }, this.controls, this.note, this.body, this.announce);
  }

  private layerKey(ctx: LayerPanelContext): string {
    return keyOf(ctx.info.name, ctx.layer);
  }

  private topFor(ctx: LayerPanelContext): number | null {
    const choice = this.topChoice.get(this.layerKey(ctx));
    if (choice === 'all') return null;
    if (typeof choice === 'number') return choice;
    const vector = vectorTop(ctx.outputShape);
    if (vector !== null) return vector;
    return defaultTop(channelsOf(ctx.outputShape) ?? this.widths.get(this.layerKey(ctx)));
  }

  show(ctx: LayerPanelContext): void {
    const layerChanged = !this.ctx || this.ctx.layer !== ctx.layer || this.ctx.info.name !== ctx.info.name;
    this.ctx = ctx;
    if (layerChanged) {
      this.selected = null;
      this.flat = null;
      this.explain.clear(ctx.layer, ctx.layerType);
    }
    if (!ctx.image) {
      this.key = '';
      this.runner.cancel();
      this.drop();
      replace(this.controls);
      this.note.textContent = '';
      replace(this.body, emptyBox('No input chosen', 'Choose an input image above to see what this layer makes of it.'));
      return;
    }
    const top = this.topFor(ctx);
    const key = keyOf(ctx.model, ctx.layer, ctx.image, top);
    if (key === this.key) return;
    this.key = key;
    this.load(ctx, top, layerChanged);
  }

  private load(ctx: LayerPanelContext, top: number | null, fresh: boolean): void {
    const image = ctx.image!;
    if (fresh || (!this.data && !this.bar)) {
      this.drop();
      replace(this.body, loadingBox(`Computing the feature maps of ${ctx.layer}…`));
    } else {
      this.body.classList.add('cs-stale');
      this.note.textContent = `Loading ${ctx.info.epoch !== null ? `epoch ${ctx.info.epoch}` : 'the new maps'}…`;
    }
    this.runner.run(async (token) => {
      const stale = () => !this.runner.current(token);
      try {
        const url = modelUrl(ctx.model, 'features/tiles', { layer: ctx.layer, image, top });
        const answer = await getJson<FeatureAnswer>(url);
        if (stale()) return;
        if (isVector(answer)) {
          this.showVector(ctx, answer);
          return;
        }
        const channels = answer.shape[0];
        const lk = this.layerKey(ctx);
        if (!this.widths.has(lk)) this.widths.set(lk, channels);
        if (top === null && !this.topChoice.has(lk) && defaultTop(channels) !== null) {
          // a wide layer the context gave no shape for: ask again for its most active maps
          const next = defaultTop(channels);
          this.key = keyOf(ctx.model, ctx.layer, image, next);
          this.load(ctx, next, fresh);
          return;
        }
        const pixels = await fetchPixels(answer.png);
        if (stale()) return;
        this.showMaps(ctx, answer, pixels);
      } catch (error) {
        if (isAbort(error) || stale()) return;
        this.key = '';
        this.drop();
        this.body.classList.remove('cs-stale');
        this.note.textContent = '';
        replace(this.body, failureBox(error, `No feature maps for ${ctx.layer}`, 'The feature maps could not be computed'));
      }
    });
  }

  private drop(): void {
    this.vector = null;
    this.bar?.dispose();
    this.bar = null;
    this.barEl = null;
    this.barBox = null;
    this.resize?.disconnect();
    this.resize = null;
    this.data = null;
    this.pixels = null;
    this.atlas = null;
    this.canvas = null;
    this.layout = null;
    this.mapsBox = null;
    this.split = null;
    this.body.classList.remove('cs-stale');
  }

  // --- maps ------------------------------------------------------------------------

  private drawControls(ctx: LayerPanelContext, data: FeatureTiles): void {
    const lk = this.layerKey(ctx);
    const total = data.shape[0];
    const cmap = selectControl('Colour map', [['viridis', 'viridis'], ['gray', 'gray']], this.colormap, (v) => {
      this.colormap = v as ColormapName;
      this.repaint();
    });
    const scale = segmentedControl('Scale', [['shared', 'shared'], ['per-map', 'per map']], this.shared ? 'shared' : 'per-map', (v) => {
      this.shared = v === 'shared';
      this.repaint();
    });
    const parts: HTMLElement[] = [cmap.el, scale.el];
    if (total > 8) {
      const current = this.topFor(ctx);
      const sizes = [8, 16, 32, 64, 128, 256].filter((n) => n < total);
      const options: [string, string][] = [['all', `all ${total}`], ...sizes.map((n): [string, string] => [String(n), `the ${n} most active`])];
      const top = selectControl('Maps', options, current === null ? 'all' : String(current), (v) => {
        this.topChoice.set(lk, v === 'all' ? 'all' : Number(v));
        if (this.ctx) this.show(this.ctx);
      });
      if (current !== null && !sizes.includes(current)) top.select.append(h('option', { value: String(current) }, `the ${current} most active`));
      top.select.value = current === null ? 'all' : String(current);
      parts.push(top.el);
    }
    replaceControls(this.controls, ...parts);
  }

  private showMaps(ctx: LayerPanelContext, data: FeatureTiles, pixels: ImageData): void {
    const reuse = this.canvas !== null && this.data !== null && this.mapsBox !== null;
    this.bar?.dispose();
    this.bar = null;
    this.data = data;
    this.pixels = pixels;
    this.atlas = null;
    this.body.classList.remove('cs-stale');
    this.drawControls(ctx, data);
    const total = data.shape[0];
    const [, H, W] = data.shape;
    const canExplain = explainable(ctx.layerType || data.type);
    const wide = !canExplain || wideMaps(data.channels.length, data.tile);
    this.note.textContent = `${data.layer} (${data.type}): ${total} map${total === 1 ? '' : 's'} of ${H}×${W}` +
      (data.channels.length < total ? `, the ${data.channels.length} most active shown (largest mean first)` : '') +
      `; values ${shortNumber(data.min)} to ${shortNumber(data.max)}. ` +
      (canExplain
        ? `Hover for values, click a unit (or focus the maps and use the arrow keys) to explain it${wide ? '; its arithmetic appears below the maps' : ''}.`
        : `Hover for values. ${notExplainableLine(ctx.layer, ctx.layerType || data.type)}, so its units have no worked arithmetic; pick one of those layers in the graph for it.`);
    if (!reuse) {
      const canvas = h('canvas', { class: 'cs-map-canvas', 'data-testid': 'feature-canvas', tabindex: 0, role: 'img' }) as HTMLCanvasElement;
      this.canvas = canvas;
      this.readout = h('p', { class: 'cs-readout mono small' }, ' ');
      this.barBox = h('div', { class: 'cs-bar-slot' });
      // the colour bar and the hover readout above the maps (sticky while a tall grid scrolls)
      this.mapsBox = h('div', { class: 'cs-maps' }, h('div', { class: 'cs-maps-head' }, this.barBox, this.readout), canvas);
      this.split = h('div', { class: 'cs-split cs-split-maps' }, this.mapsBox, canExplain ? this.explain.el : null);
      replace(this.body, this.split);
      canvas.addEventListener('pointermove', (ev) => this.onHover(ev));
      canvas.addEventListener('pointerleave', () => {
        this.hover = null;
        this.paint();
        this.drawReadout();
      });
      canvas.addEventListener('click', (ev) => {
        const hit = this.hitAt(ev);
        if (hit) this.select(hit.index, hit.row, hit.col, true);
      });
      canvas.addEventListener('keydown', (ev) => this.onKey(ev));
      this.resize = new ResizeObserver(() => {
        if (Math.abs(this.availableWidth() - this.lastWidth) > 4) this.repaint();
      });
      this.resize.observe(this.split);
    }
    this.split!.classList.toggle('cs-split-stack', wide);
    this.canvas!.setAttribute('aria-label', `${data.channels.length} feature maps of ${data.layer} for the chosen input; focus and use the arrow keys to move between units, Page Up and Page Down between maps`);
    // keep the chosen unit where it still exists
    if (this.selected) {
      const index = data.channels.indexOf(this.selected.channel);
      if (index < 0 || this.selected.row >= H || this.selected.col >= W) {
        this.selected = null;
        this.explain.clear();
      }
    }
    this.repaint();
    if (this.selected) this.explainSelected(false);
  }

  /** The width the maps may take: under half the split beside the explainer, all of it when they stack. */
  private availableWidth(): number {
    const split = this.split;
    if (!split) return 0;
    const stacked = split.classList.contains('cs-split-stack') || getComputedStyle(split).gridTemplateColumns.trim().split(/\s+/).length < 2;
    return stacked ? split.clientWidth : Math.floor(split.clientWidth * 0.46);
  }

  private buildAtlas(): HTMLCanvasElement | null {
    const data = this.data;
    const pixels = this.pixels;
    if (!data || !pixels) return null;
    const [th, tw] = data.tile;
    const n = data.channels.length;
    const atlas = document.createElement('canvas');
    const ac = atlasColumns(n, tw);
    atlas.width = Math.max(1, tw * ac);
    atlas.height = Math.max(1, th * Math.ceil(n / ac));
    const g = atlas.getContext('2d');
    if (!g) return null;
    const lut = COLORMAPS[this.colormap];
    const image = g.createImageData(atlas.width, atlas.height);
    for (let i = 0; i < n; i += 1) {
      const [y0, x0] = tileStart(data, pixels, i);
      const [ax, ay] = atlasSlot(i, ac, data.tile);
      for (let r = 0; r < th; r += 1) {
        for (let c = 0; c < tw; c += 1) {
          const q = pixels.data[((y0 + r) * pixels.width + x0 + c) * 4];
          const t = colourPosition(data, i, q, this.shared);
          const k = 3 * Math.max(0, Math.min(255, Math.round(t * 255)));
          const o = ((ay + r) * atlas.width + ax + c) * 4;
          image.data[o] = lut[k];
          image.data[o + 1] = lut[k + 1];
          image.data[o + 2] = lut[k + 2];
          image.data[o + 3] = 255;
        }
      }
    }
    g.putImageData(image, 0, 0);
    return atlas;
  }

  /** New colours or a new layout: rebuild and draw. */
  private repaint(): void {
    const data = this.data;
    if (!data || !this.canvas || !this.mapsBox) return;
    this.atlas = this.buildAtlas();
    this.lastWidth = this.availableWidth();
    const available = Math.max(160, (this.lastWidth || 320) - 4);
    this.layout = gridLayout(data.channels.length, data.tile, available);
    this.paint();
    this.drawColourBar();
    this.drawReadout();
  }

  private paint(): void {
    const data = this.data;
    const layout = this.layout;
    const canvas = this.canvas;
    if (!data || !layout || !canvas || !this.atlas) return;
    const g = sizeCanvas(canvas, layout.width, layout.height);
    if (!g) return;
    // maps drawn smaller than their pixels are averaged, not decimated
    g.imageSmoothingEnabled = layout.scale < 1;
    g.clearRect(0, 0, layout.width, layout.height);
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'bottom';
    const [th, tw] = data.tile;
    for (let i = 0; i < data.channels.length; i += 1) {
      const [x, y] = cellOrigin(layout, i);
      const chosen = this.selected?.channel === data.channels[i];
      g.fillStyle = chosen ? '#1f2733' : '#5d6675';
      g.font = `${chosen ? '600 ' : ''}11px system-ui, sans-serif`;
      g.fillText(`ch ${data.channels[i]}`, x, y - 2);
      const [ax, ay] = atlasSlot(i, atlasColumns(data.channels.length, tw), data.tile);
      g.drawImage(this.atlas, ax, ay, tw, th, x, y, tw * layout.scale, th * layout.scale);
    }
    const box = (index: number, row: number, col: number, colour: string, width: number) => {
      const [x, y] = cellOrigin(layout, index);
      const s = layout.scale;
      g.lineWidth = width + 2;
      g.strokeStyle = '#ffffff';
      g.strokeRect(x + col * s - 1, y + row * s - 1, s + 2, s + 2);
      g.lineWidth = width;
      g.strokeStyle = colour;
      g.strokeRect(x + col * s - 1, y + row * s - 1, s + 2, s + 2);
    };
    if (this.hover) box(this.hover.index, this.hover.row, this.hover.col, '#1f2733', 1);
    if (this.selected) {
      const index = data.channels.indexOf(this.selected.channel);
      if (index >= 0) box(index, this.selected.row, this.selected.col, '#e69f00', 2);
    }
  }

  private drawColourBar(): void {
    const data = this.data;
    if (!data || !this.barBox) return;
    const lut = COLORMAPS[this.colormap];
    if (this.shared) {
      replace(this.barBox, colourBar(lut, data.min, data.max, { label: 'activation, one scale for all maps' }));
      return;
    }
    const index = this.hover?.index ?? (this.selected ? Math.max(0, data.channels.indexOf(this.selected.channel)) : 0);
    replace(this.barBox, colourBar(lut, data.map_min[index], data.map_max[index], { label: `each map on its own scale; channel ${data.channels[index]}'s runs ${shortNumber(data.map_min[index])} to ${shortNumber(data.map_max[index])}` }));
  }

  private drawReadout(): void {
    const data = this.data;
    const pixels = this.pixels;
    if (!this.readout || !data || !pixels) return;
    const at = this.hover ?? (this.selected ? { index: data.channels.indexOf(this.selected.channel), row: this.selected.row, col: this.selected.col } : null);
    if (!at || at.index < 0) {
      this.readout.textContent = this.ctx && explainable(this.ctx.layerType || data.type) ? 'Hover a map for its values; click a unit to explain it.' : 'Hover a map for its values.';
      return;
    }
    const value = tileValue(data, pixels, at.index, at.row, at.col);
    this.readout.textContent = `channel ${data.channels[at.index]} · row ${at.row}, col ${at.col} · ${shortNumber(value, 4)}`;
  }

  private hitAt(ev: MouseEvent): { index: number; row: number; col: number } | null {
    if (!this.layout || !this.canvas) return null;
    const rect = this.canvas.getBoundingClientRect();
    return hitTest(this.layout, ev.clientX - rect.left, ev.clientY - rect.top);
  }

  private onHover(ev: PointerEvent): void {
    const hit = this.hitAt(ev);
    const before = this.hover;
    if (hit?.index === before?.index && hit?.row === before?.row && hit?.col === before?.col) return;
    this.hover = hit;
    if (this.canvas) this.canvas.style.cursor = hit ? 'crosshair' : 'default';
    this.paint();
    this.drawReadout();
    if (!this.shared && hit?.index !== before?.index) this.drawColourBar();
  }

  private onKey(ev: KeyboardEvent): void {
    const data = this.data;
    if (!data) return;
    const [, H, W] = data.shape;
    const n = data.channels.length;
    let index = this.selected ? data.channels.indexOf(this.selected.channel) : 0;
    let row = this.selected?.row ?? 0;
    let col = this.selected?.col ?? 0;
    if (index < 0) index = 0;
    switch (ev.key) {
      case 'ArrowLeft': col = Math.max(0, col - 1); break;
      case 'ArrowRight': col = Math.min(W - 1, col + 1); break;
      case 'ArrowUp': row = Math.max(0, row - 1); break;
      case 'ArrowDown': row = Math.min(H - 1, row + 1); break;
      case 'PageUp': index = (index - 1 + n) % n; break;
      case 'PageDown': index = (index + 1) % n; break;
      case 'Enter': case ' ': break;
      default: return;
    }
    ev.preventDefault();
    this.select(index, row, col, ev.key === 'Enter' || ev.key === ' ');
  }

  /** Choose a unit; `reveal` (a click, Enter) scrolls its explanation into view. */
  private select(index: number, row: number, col: number, reveal = false): void {
    const data = this.data;
    if (!data) return;
    const channel = data.channels[index];
    this.selected = { channel, row, col };
    this.onChannel(channel);
    this.paint();
    this.drawReadout();
    if (!this.shared) this.drawColourBar();
    this.announce.textContent = `channel ${channel}, row ${row}, column ${col}`;
    this.explainSelected(reveal);
  }

  private explainSelected(reveal: boolean): void {
    const data = this.data;
    const pixels = this.pixels;
    const ctx = this.ctx;
    if (!data || !pixels || !ctx || !this.selected) return;
    const index = data.channels.indexOf(this.selected.channel);
    if (index < 0) return;
    if (!explainable(ctx.layerType || data.type)) return; // said in the note; never asked
    const { row, col, channel } = this.selected;
    this.explain.show(ctx, { channel, row, col, mapValue: tileValue(data, pixels, index, row, col), mapStep: tileStep(data, index) }, reveal);
  }

  // --- vectors -----------------------------------------------------------------------

  private showVector(ctx: LayerPanelContext, data: FeatureVector): void {
    this.vector = data;
    this.data = null;
    this.pixels = null;
    this.canvas = null;
    this.mapsBox = null;
    this.split = null;
    this.resize?.disconnect();
    this.resize = null;
    this.explain.clear();
    this.body.classList.remove('cs-stale');
    replace(this.controls);
    const values = data.values.map((v) => (v === null ? Number.NaN : v));
    const units = data.channels ?? values.map((_, i) => i);
    const classes = isClassVector(ctx, data.shape[0] ?? values.length);
    const names = units.map((u) => (classes ? ctx.info.classes![u] ?? `output ${u}` : String(u)));
    let best = 0;
    values.forEach((v, i) => {
      if (v > values[best] || Number.isNaN(values[best])) best = i;
    });
    const total = data.shape[0] ?? values.length;
    const flat = this.flat;
    this.note.textContent = `${data.layer} (${data.type}) outputs a vector of ${total} number${total === 1 ? '' : 's'}, not maps` +
      (units.length < total ? ` (the ${units.length} largest shown)` : '') +
      (classes ? `: one per class; the largest is ${names[best]} (${shortNumber(values[best], 4)}).` : `; the largest is ${flatUnitText(units[best], flat)} (${shortNumber(values[best], 4)}).`) +
      (flat ? ` Unit u is channel ⌊u / ${flat.shape[1] * flat.shape[2]}⌋ of ${flat.layer}'s output; hover a bar for its place.` : '') +
      ' There is no unit to explain in a vector.';
    if (ctx.layerType === 'Flatten' && !flat) this.findFlatSource(ctx, data);
    if (!this.bar || !this.barEl) {
      this.barEl = h('div', { class: 'cs-vector-chart', role: 'img' });
      replace(this.body, this.barEl);
      this.bar = makeChart(this.barEl);
    }
    this.barEl.setAttribute('aria-label', `bar chart of the ${values.length} outputs of ${data.layer}${classes ? ', one per class' : ''}`);
    const many = values.length > 64;
    this.bar.chart.setOption({
      aria: { enabled: true },
      textStyle: TEXT_STYLE,
      animation: false,
      grid: { left: 56, right: 16, top: 16, bottom: classes ? 64 : 40, containLabel: false },
      tooltip: {
        trigger: 'axis',
        axisPointer: { type: 'shadow' },
        valueFormatter: (v: unknown) => shortNumber(Number(v), 4),
        ...(flat ? {
          formatter: (items: unknown) => {
            const item = (Array.isArray(items) ? items[0] : items) as { dataIndex: number; value: unknown };
            const unit = units[item.dataIndex];
            return `${flatUnitText(unit, flat)}<br><b>${shortNumber(Number(item.value), 4)}</b>`;
          },
        } : {}),
      },
      xAxis: {
        type: 'category',
        data: names,
        name: classes ? '' : 'unit',
        nameLocation: 'middle',
        nameGap: 26,
        axisLabel: { interval: many ? 'auto' : 0, rotate: classes && names.some((n) => n.length > 4) ? 35 : 0, fontSize: 11 },
      },
      yAxis: { type: 'value', name: 'output', nameLocation: 'middle', nameGap: 42, axisLabel: { formatter: (v: number) => shortNumber(v) } },
      series: [{
        type: 'bar',
        large: many,
        data: values.map((v, i) => ({ value: v, itemStyle: { color: classes && i === best ? RIGHT : classes ? UNKNOWN : RIGHT } })),
        barMaxWidth: 28,
      }],
    }, { notMerge: true });
  }

  /** A Flatten layer's source (the layer before it, from the model's layers): redraw with it once known. */
  private findFlatSource(ctx: LayerPanelContext, data: FeatureVector): void {
    void layerRows(ctx.model, ctx.info.name).then((rows) => {
      const source = flattenSource(rows, ctx.layer);
      const now = this.ctx;
      if (!source || !now || now.layer !== ctx.layer || now.info.name !== ctx.info.name || this.flat || !this.bar || this.vector?.layer !== data.layer) return;
      this.flat = source;
      this.showVector(now, this.vector);
    }, () => undefined); // without it, units are plain indices
  }

  /** The context was withdrawn (the view moved on): drop what is in flight; the next show loads again. */
  pause(): void {
    this.runner.cancel();
    this.key = '';
    this.explain.pause();
  }

  destroy(): void {
    this.runner.stop();
    this.explain.destroy();
    this.drop();
  }
}
