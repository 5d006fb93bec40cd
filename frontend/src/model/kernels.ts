// The clicked conv layer's kernels: the server's tiles PNG (display values, 8-bit, gray
// or RGB) drawn on a canvas with pixelated upscaling, gaps and kernel indices, the
// normalisations of `convscope kernels` (per-kernel, layer, diverging with a colour bar
// in weight units), the health flags (dead, duplicate, noisy) on the tiles and in
// numbers, and for a run the same numbers over its epochs as a small line chart.
import { getComputed, getJson } from '../api';
import { makeChart, TEXT_STYLE, type Chart } from '../charts';
import { emptyBox, h, loadingBox, replace } from '../dom';
import { CLASS_PALETTE, WRONG } from '../palette';
import { COLORMAPS, colourBar, shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { checkboxControl, failureBox, fetchObjectUrl, knownNotConv, isConvType, fetchPixels, isAbort, keyOf, LatestRunner, layerRows, segmentedControl, selectControl, sizeCanvas, tileGap, upscale, atlasColumns, atlasSlot, replaceControls } from './tabkit';

export interface KernelHealthRecord {
  index: number;
  norm: number | null;
  dead: boolean;
  duplicate_of: number | null;
  high_freq_energy: number | null;
  noisy: boolean;
  finite: boolean;
}

export interface KernelHealth {
  kernels: KernelHealthRecord[];
  summary: Record<string, number | null>;
}

/** `GET api/models/{model}/kernels/tiles`. */
export interface KernelTiles {
  layer: string;
  type: string;
  shape: number[];
  normalization: string;
  reduce?: string | null;
  layout?: string;
  channel_order: string | null;
  rgb: boolean;
  grid: [number, number];
  columns: number;
  tile: [number, number];
  shown: number;
  range: [number, number] | null;
  diverging: boolean;
  caption: string;
  nonfinite: number[];
  health: KernelHealth;
  png: string;
}

/** `GET api/runs/{run}/kernels`. */
export interface KernelHistory {
  run: string;
  layer: string;
  epochs: number[];
  health: { epoch: number; dead: number; duplicates: number; noisy: number; mean_norm: number | null }[];
}

/** The conv layers of a model (from `api/models/{model}/layers`, asked once per model name). */
async function convLayers(model: string, name: string): Promise<string[]> {
  return (await layerRows(model, name)).filter((r) => isConvType(r.type)).map((r) => r.name);
}

/** The kernels the over-the-epochs figure draws when no limit is chosen (the server's default). */
const HISTORY_KERNELS = 16;

/** Kernels shown before the person picks: all up to 64, else the first 64 (512 tiles of a
 * deep layer are ~10 px each, too small to read or label). */
export const DEFAULT_KERNELS = 64;
export function defaultLimit(out: number | null): number | null {
  return out !== null && out > DEFAULT_KERNELS ? DEFAULT_KERNELS : null;
}

/** Label every `n`-th tile so that labels `labelWidth` px wide never overlap on tiles `step` px apart. */
export function labelEvery(labelWidth: number, step: number): number {
  return Math.max(1, Math.ceil((labelWidth + 4) / Math.max(1, step)));
}

/** The "first N kernels" choices for a layer of `out` kernels (each less than `out`). */
export function limitChoices(out: number): number[] {
  return [8, 16, 32, 64, 128, 256].filter((n) => n < out);
}

/** `api/runs/{run}/kernels.png`: the figure of the kernels at every recorded epoch (its `reduce` knows only mean and norm). */
export function historyFigureUrl(run: string, layer: string, norm: string, reduce: string | null, limit: number | null): string {
  const query = new URLSearchParams({ layer });
  query.set('norm', norm);
  if (reduce === 'mean' || reduce === 'norm') query.set('reduce', reduce);
  if (limit !== null) query.set('limit', String(limit));
  return `api/runs/${encodeURIComponent(run)}/kernels.png?${query.toString()}`;
}

export type Norm = 'per-kernel' | 'layer' | 'diverging';
export type Reduce = 'auto' | 'norm' | 'mean' | 'none';

/** The kernel (output channel) and input channel of tile `i`. */
export function tileKernel(data: Pick<KernelTiles, 'layout' | 'columns'>, i: number): { kernel: number; input: number | null } {
  if (data.layout === 'channels') return { kernel: Math.floor(i / data.columns), input: i % data.columns };
  return { kernel: i, input: null };
}

/** How many tiles the PNG holds. */
export function tileCount(data: Pick<KernelTiles, 'layout' | 'grid' | 'shown'>): number {
  return data.layout === 'channels' ? data.grid[0] * data.grid[1] : data.shown;
}

/** What a tile's byte stands for in weight units (null when every kernel has its own range). */
export function kernelValue(data: Pick<KernelTiles, 'range' | 'rgb'>, q: number): number | null {
  if (!data.range || data.rgb) return null;
  const [lo, hi] = data.range;
  return lo + (q / 255) * (hi - lo);
}

/** The words for a kernel's health flags ('' when healthy). */
export function healthFlags(record: KernelHealthRecord | undefined): string[] {
  if (!record) return [];
  const flags: string[] = [];
  if (!record.finite) flags.push('holds NaN or ∞ (not drawn)');
  if (record.dead) flags.push('dead (norm near zero)');
  if (record.duplicate_of !== null && record.duplicate_of !== undefined) flags.push(`duplicate of kernel ${record.duplicate_of}`);
  if (record.noisy) flags.push('noisy (high-frequency)');
  return flags;
}

/** A short glyph per flag, so the tiles say it without colour. */
export function flagGlyphs(record: KernelHealthRecord | undefined): string {
  if (!record) return '';
  return `${record.finite ? '' : '!'}${record.dead ? '∅' : ''}${record.duplicate_of !== null && record.duplicate_of !== undefined ? '=' : ''}${record.noisy ? '≈' : ''}`;
}

interface KernelLayout {
  cols: number;
  rows: number;
  scale: number;
  gap: number;
  labelH: number;
  gutter: number;
  header: number;
  tileW: number;
  tileH: number;
  width: number;
  height: number;
  channels: boolean;
}

/** Where kernel tiles go on the canvas: a grid fit to the width, or one row per kernel. */
export function kernelLayout(data: Pick<KernelTiles, 'layout' | 'grid' | 'shown' | 'tile'>, available: number): KernelLayout {
  const [th, tw] = data.tile;
  const channels = data.layout === 'channels';
  const count = tileCount(data);
  const target = count > 256 ? 24 : count > 64 ? 36 : 60;
  const scale = upscale(Math.max(th, tw), target, 24);
  const gap = Math.max(2, Math.min(6, Math.round(scale * tw * 0.08)));
  if (channels) {
    const [rows, cols] = data.grid;
    const gutter = 34;
    const header = 16;
    return { cols, rows, scale, gap, labelH: 0, gutter, header, tileW: tw, tileH: th, channels, width: gutter + cols * (tw * scale + gap) - gap, height: header + rows * (th * scale + gap) - gap };
  }
  // the server's grid (what `convscope kernels` lays out): its columns, smaller tiles
  // before fewer columns when the width is short
  const labelH = 14;
  const wanted = Math.max(1, Math.min(count, data.grid[1] || count));
  const gapOf = (s: number) => Math.max(2, Math.min(6, Math.round(s * tw * 0.08)));
  const widthOf = (s: number, c: number) => c * (tw * s + gapOf(s)) - gapOf(s);
  let fitted = scale;
  while (fitted > 1 && widthOf(fitted, wanted) > available) fitted -= 1;
  const g = gapOf(fitted);
  const cols = widthOf(fitted, wanted) <= available ? wanted : Math.max(1, Math.min(wanted, Math.floor((available + g) / (tw * fitted + g))));
  const rows = Math.ceil(count / cols);
  return { cols, rows, scale: fitted, gap: g, labelH, gutter: 0, header: 0, tileW: tw, tileH: th, channels, width: widthOf(fitted, cols), height: rows * (th * fitted + labelH + g) - g };
}

/** The top-left corner (CSS pixels) of tile `i`'s picture. */
export function kernelOrigin(layout: KernelLayout, i: number): [number, number] {
  const step = layout.tileW * layout.scale + layout.gap;
  if (layout.channels) {
    const r = Math.floor(i / layout.cols);
    const c = i % layout.cols;
    return [layout.gutter + c * step, layout.header + r * (layout.tileH * layout.scale + layout.gap)];
  }
  const r = Math.floor(i / layout.cols);
  const c = i % layout.cols;
  return [c * step, r * (layout.tileH * layout.scale + layout.labelH + layout.gap) + layout.labelH];
}

export function kernelHit(layout: KernelLayout, count: number, x: number, y: number): number | null {
  const w = layout.tileW * layout.scale;
  const hgt = layout.tileH * layout.scale;
  for (const i of candidates(layout, count, x, y)) {
    const [x0, y0] = kernelOrigin(layout, i);
    if (x >= x0 && x < x0 + w && y >= y0 - layout.labelH && y < y0 + hgt) return i;
  }
  return null;
}

function candidates(layout: KernelLayout, count: number, x: number, y: number): number[] {
  const step = layout.tileW * layout.scale + layout.gap;
  const rowStep = layout.tileH * layout.scale + layout.labelH + layout.gap;
  const c = Math.floor((x - layout.gutter) / step);
  const r = Math.floor((y - layout.header) / rowStep);
  if (c < 0 || r < 0 || c >= layout.cols) return [];
  const i = r * layout.cols + c;
  return i < count ? [i] : [];
}

export class KernelsTab {
  readonly el: HTMLElement;
  private readonly runner = new LatestRunner();
  private readonly historyRunner = new LatestRunner();
  private readonly controls: HTMLElement;
  private readonly body: HTMLElement;
  private readonly historyBox: HTMLElement;
  private ctx: LayerPanelContext | null = null;
  private key = '';
  private historyKey = '';
  private norm: Norm = 'per-kernel';
  private reduce: Reduce = 'auto';
  private bgr: boolean | null = null;
  private data: KernelTiles | null = null;
  private pixels: ImageData | null = null;
  private atlas: HTMLCanvasElement | null = null;
  private canvas: HTMLCanvasElement | null = null;
  private layout: KernelLayout | null = null;
  private readout: HTMLElement | null = null;
  private hover: number | null = null;
  private chart: { chart: Chart; dispose: () => void } | null = null;
  private chartEl: HTMLElement | null = null;
  private history: KernelHistory | null = null;
  private resize: ResizeObserver | null = null;
  private lastWidth = 0;
  /** "First N kernels" per layer (absent: the server's default, all of them). */
  private readonly limits = new Map<string, number | null>();
  /** The kernels-over-epochs figure: shown or not, its URL and object URL, and its box. */
  private figure: { open: boolean; url: string; objectUrl: string | null; box: HTMLElement | null } = { open: false, url: '', objectUrl: null, box: null };
  private readonly figureRunner = new LatestRunner();

  constructor() {
    this.controls = h('div', { class: 'control-row cs-controls' });
    this.body = h('div', { class: 'cs-tab-body' });
    this.historyBox = h('section', { class: 'cs-history', 'aria-label': 'kernel health over the epochs' });
    this.el = h('div', { class: 'cs-kernels' }, this.controls, this.body, this.historyBox);
  }

  show(ctx: LayerPanelContext): void {
    const layerChanged = !this.ctx || this.ctx.layer !== ctx.layer || this.ctx.info.name !== ctx.info.name;
    this.ctx = ctx;
    if (layerChanged) {
      this.bgr = null;
      this.reduce = 'auto';
    }
    if (knownNotConv(ctx.layerType)) {
      this.notConv(ctx);
      return;
    }
    this.load(ctx, layerChanged);
  }

  /** A layer known to have no kernels: say why, with the model's conv layers. */
  private notConv(ctx: LayerPanelContext): void {
    const key = keyOf('not conv', ctx.info.name, ctx.layer);
    if (key === this.key) return;
    this.key = key;
    this.historyKey = '';
    this.dropCanvas();
    this.disposeChart();
    replace(this.controls);
    replace(this.historyBox);
    const say = (line: string) => replace(this.body, emptyBox(`No kernels: ${ctx.layer} is a ${ctx.layerType}, not a convolution`, h('p', { class: 'error-line' }, line), 'Pick a convolution in the graph to see its kernels.'));
    say(`layer '${ctx.layer}' (${ctx.layerType}) has no convolution kernels`);
    this.runner.run(async (token) => {
      try {
        const names = await convLayers(ctx.model, ctx.info.name);
        if (!this.runner.current(token) || this.key !== key) return;
        say(`layer '${ctx.layer}' (${ctx.layerType}) has no convolution kernels; conv layers: ${names.length ? names.join(', ') : 'none'}`);
      } catch {
        // the short line stays
      }
    });
  }

  private limitFor(ctx: LayerPanelContext | null): number | null {
    if (!ctx) return null;
    const key = keyOf(ctx.info.name, ctx.layer);
    if (this.limits.has(key)) return this.limits.get(key) ?? null; // null: all, as chosen
    return defaultLimit(ctx.outputShape?.[1] ?? null);
  }

  private options(): Record<string, string | number | boolean | null> {
    return {
      norm: this.norm,
      reduce: this.reduce === 'auto' ? null : this.reduce,
      bgr: this.bgr === true ? 'true' : null,
      limit: this.limitFor(this.ctx),
    };
  }

  private load(ctx: LayerPanelContext, fresh: boolean): void {
    const url = modelUrl(ctx.model, 'kernels/tiles', { layer: ctx.layer, ...this.options() });
    if (url === this.key) {
      this.loadHistory(ctx);
      return;
    }
    this.key = url;
    if (fresh || !this.data) {
      this.dropCanvas();
      replace(this.body, loadingBox(`Reading the kernels of ${ctx.layer}…`));
    } else {
      this.body.classList.add('cs-stale');
    }
    this.runner.run(async (token) => {
      const stale = () => !this.runner.current(token);
      try {
        const data = await getJson<KernelTiles>(url);
        if (stale()) return;
        const pixels = await fetchPixels(data.png);
        if (stale()) return;
        this.draw(ctx, data, pixels);
        this.loadHistory(ctx);
        if (this.figure.open) this.showFigure(false);
      } catch (error) {
        if (isAbort(error) || stale()) return;
        this.key = '';
        this.dropCanvas();
        this.historyKey = '';
        this.disposeChart();
        replace(this.historyBox);
        replace(this.controls);
        this.body.classList.remove('cs-stale');
        replace(this.body, failureBox(error, `No kernels: ${ctx.layer} is a ${ctx.layerType}, not a convolution`, 'The kernels could not be read'));
      }
    });
  }

  private dropCanvas(): void {
    this.resize?.disconnect();
    this.resize = null;
    this.canvas = null;
    this.data = null;
    this.pixels = null;
    this.atlas = null;
    this.layout = null;
    this.body.classList.remove('cs-stale');
  }

  private drawControls(data: KernelTiles): void {
    const inputs = data.shape[1];
    const norm = segmentedControl('Normalisation', [['per-kernel', 'per kernel'], ['layer', 'layer'], ['diverging', 'diverging']], this.norm, (v) => {
      this.norm = v as Norm;
      if (this.norm === 'diverging' && this.reduce === 'norm') this.reduce = 'mean';
      if (this.ctx) this.load(this.ctx, false);
    });
    const parts: HTMLElement[] = [norm.el];
    if (inputs !== 1 && inputs !== 3) {
      const shownReduce = this.reduce !== 'auto' ? this.reduce : data.layout === 'channels' ? 'none' : (data.reduce as Reduce | null) ?? 'norm';
      const options: [string, string][] = [['norm', 'L2 norm over inputs'], ['mean', 'mean over inputs'], ['none', 'one tile per input channel']];
      const reduce = selectControl(`${inputs} input channels`, this.norm === 'diverging' ? options.filter(([v]) => v !== 'norm') : options, shownReduce, (v) => {
        this.reduce = v as Reduce;
        if (this.ctx) this.load(this.ctx, false);
      });
      parts.push(reduce.el);
    }
    if (inputs === 3) {
      const bgr = checkboxControl('BGR-trained (weights in B, G, R order)', data.channel_order === 'BGR', (checked) => {
        this.bgr = checked;
        if (this.ctx) this.load(this.ctx, false);
      });
      parts.push(bgr.el);
    }
    const out = data.shape[0];
    const sizes = limitChoices(out);
    if (sizes.length) {
      const chosen = this.limitFor(this.ctx);
      const current = chosen ?? (data.shown < out ? data.shown : null);
      const options: [string, string][] = [['all', `all ${out}`], ...sizes.map((n): [string, string] => [String(n), `the first ${n}`])];
      if (current !== null && !sizes.includes(current)) options.push([String(current), `the first ${current}`]);
      const limit = selectControl('Kernels', options, current === null ? 'all' : String(current), (v) => {
        if (!this.ctx) return;
        const key = keyOf(this.ctx.info.name, this.ctx.layer);
        this.limits.set(key, v === 'all' ? null : Number(v));
        this.load(this.ctx, false);
      });
      parts.push(limit.el);
    }
    replaceControls(this.controls, ...parts);
  }

  private draw(ctx: LayerPanelContext, data: KernelTiles, pixels: ImageData): void {
    const reuse = this.canvas !== null;
    this.data = data;
    this.pixels = pixels;
    this.atlas = this.buildAtlas();
    this.body.classList.remove('cs-stale');
    this.drawControls(data);
    if (!reuse) {
      const canvas = h('canvas', { class: 'cs-kernel-canvas', 'data-testid': 'kernel-canvas', role: 'img', tabindex: 0 }) as HTMLCanvasElement;
      this.canvas = canvas;
      this.readout = h('p', { class: 'cs-readout mono small' }, ' ');
      canvas.addEventListener('pointermove', (ev) => {
        const rect = canvas.getBoundingClientRect();
        const hit = this.layout && this.data ? kernelHit(this.layout, tileCount(this.data), ev.clientX - rect.left, ev.clientY - rect.top) : null;
        if (hit === this.hover) return;
        this.hover = hit;
        this.paint();
        this.drawReadout();
      });
      canvas.addEventListener('pointerleave', () => {
        this.hover = null;
        this.paint();
        this.drawReadout();
      });
      canvas.addEventListener('keydown', (ev) => {
        if (!this.data) return;
        const count = tileCount(this.data);
        const step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : ev.key === 'ArrowDown' ? (this.layout?.cols ?? 1) : ev.key === 'ArrowUp' ? -(this.layout?.cols ?? 1) : 0;
        if (!step) return;
        ev.preventDefault();
        this.hover = Math.max(0, Math.min(count - 1, (this.hover ?? -step) + step));
        this.paint();
        this.drawReadout();
      });
      const wrap = h('div', { class: 'cs-kernel-wrap' }, canvas);
      this.body.replaceChildren(h('div', { class: 'cs-kernel-main' }, wrap, this.readout), h('div', { class: 'cs-kernel-side' }));
      this.resize = new ResizeObserver(() => {
        const width = this.body.clientWidth;
        if (Math.abs(width - this.lastWidth) > 4) this.relayout();
      });
      this.resize.observe(this.body);
    }
    const [out, inputs, kh, kw] = data.shape;
    this.canvas!.setAttribute('aria-label', `${data.shown} of ${out} kernels of ${data.layer}, each ${inputs}×${kh}×${kw}; focus and use the arrow keys to read each kernel's health`);
    this.relayout();
    this.drawSide(ctx, data);
  }

  private relayout(): void {
    if (!this.data) return;
    this.lastWidth = this.body.clientWidth;
    const available = Math.max(200, (this.lastWidth || 640) - 290);
    this.layout = kernelLayout(this.data, available);
    this.paint();
    this.drawReadout();
  }

  /** The tiles coloured once at their own size (the canvas upscales them without smoothing). */
  private buildAtlas(): HTMLCanvasElement | null {
    const data = this.data;
    const pixels = this.pixels;
    if (!data || !pixels) return null;
    const [th, tw] = data.tile;
    const count = tileCount(data);
    const columns = Math.max(1, Math.min(data.columns, count));
    const gap = tileGap(pixels.width, columns, tw);
    const atlas = document.createElement('canvas');
    const ac = atlasColumns(count, tw);
    atlas.width = Math.max(1, tw * ac);
    atlas.height = Math.max(1, th * Math.ceil(count / ac));
    const a = atlas.getContext('2d');
    if (!a) return null;
    const image = a.createImageData(atlas.width, atlas.height);
    const lut = data.diverging && !data.rgb ? COLORMAPS.diverging : COLORMAPS.gray;
    for (let i = 0; i < count; i += 1) {
      const y0 = Math.floor(i / data.columns) * (th + gap);
      const x0 = (i % data.columns) * (tw + gap);
      const { kernel } = tileKernel(data, i);
      const finite = data.health.kernels[kernel]?.finite !== false && !data.nonfinite.includes(kernel);
      const [ax, ay] = atlasSlot(i, ac, data.tile);
      for (let r = 0; r < th; r += 1) {
        for (let c = 0; c < tw; c += 1) {
          const s = ((y0 + r) * pixels.width + x0 + c) * 4;
          const o = ((ay + r) * atlas.width + ax + c) * 4;
          if (!finite) {
            image.data.set([238, 241, 245, 255], o);
          } else if (data.rgb) {
            image.data.set([pixels.data[s], pixels.data[s + 1], pixels.data[s + 2], 255], o);
          } else {
            const k = 3 * pixels.data[s];
            image.data.set([lut[k], lut[k + 1], lut[k + 2], 255], o);
          }
        }
      }
    }
    a.putImageData(image, 0, 0);
    return atlas;
  }

  private paint(): void {
    const data = this.data;
    const pixels = this.pixels;
    const layout = this.layout;
    const canvas = this.canvas;
    if (!data || !pixels || !layout || !canvas) return;
    const atlas = this.atlas;
    if (!atlas) return;
    const g = sizeCanvas(canvas, layout.width, layout.height);
    if (!g) return;
    const [th, tw] = data.tile;
    const count = tileCount(data);
    g.clearRect(0, 0, layout.width, layout.height);
    g.textBaseline = 'bottom';
    const w = tw * layout.scale;
    const hgt = th * layout.scale;
    g.font = '10.5px system-ui, sans-serif';
    const every = labelEvery(g.measureText(`${count - 1} ≈`).width, w + layout.gap);
    for (let i = 0; i < count; i += 1) {
      const [x, y] = kernelOrigin(layout, i);
      const [ax, ay] = atlasSlot(i, atlasColumns(count, tw), data.tile);
      g.drawImage(atlas, ax, ay, tw, th, x, y, w, hgt);
      const { kernel, input } = tileKernel(data, i);
      const record = data.health.kernels[kernel];
      const glyphs = flagGlyphs(record);
      if (!layout.channels && kernel % every !== 0) {
        // too narrow to label every kernel: flags stay as outlines, hover names each
      } else if (!layout.channels) {
        g.font = '10.5px system-ui, sans-serif';
        g.fillStyle = glyphs ? WRONG : '#5d6675';
        g.fillText(`${kernel}${glyphs ? ` ${glyphs}` : ''}`, x, y - 1);
      } else if (input === 0) {
        g.font = '10.5px system-ui, sans-serif';
        g.fillStyle = glyphs ? WRONG : '#5d6675';
        g.textAlign = 'right';
        g.fillText(`${kernel}${glyphs ? glyphs : ''}`, layout.gutter - 4, y + hgt / 2 + 5);
        g.textAlign = 'left';
      }
      if (glyphs && (!layout.channels || input === 0)) {
        g.setLineDash([3, 2]);
        g.lineWidth = 1.5;
        g.strokeStyle = WRONG;
        const rowW = layout.channels ? layout.cols * (w + layout.gap) - layout.gap : w;
        g.strokeRect(x - 1.5, y - 1.5, rowW + 3, hgt + 3);
        g.setLineDash([]);
      }
    }
    if (layout.channels) {
      g.font = '10.5px system-ui, sans-serif';
      g.fillStyle = '#5d6675';
      const rgb = data.shape[1] === 3;
      for (let c = 0; c < layout.cols; c += 1) {
        const [x] = kernelOrigin(layout, c);
        g.fillText(rgb ? 'RGB'[c] ?? String(c) : String(c), x, layout.header - 3);
      }
    }
    if (this.hover !== null && this.hover < count) {
      const [x, y] = kernelOrigin(layout, this.hover);
      g.lineWidth = 3;
      g.strokeStyle = '#ffffff';
      g.strokeRect(x - 2, y - 2, w + 4, hgt + 4);
      g.lineWidth = 2;
      g.strokeStyle = '#e69f00';
      g.strokeRect(x - 2, y - 2, w + 4, hgt + 4);
    }
  }

  private drawReadout(): void {
    const data = this.data;
    if (!this.readout || !data) return;
    if (this.hover === null) {
      this.readout.textContent = 'Hover a kernel for its index and health.';
      return;
    }
    const { kernel, input } = tileKernel(data, this.hover);
    const record = data.health.kernels[kernel];
    const flags = healthFlags(record);
    const inputText = input === null ? '' : ` · input ${data.shape[1] === 3 ? 'RGB'[input] : `channel ${input}`}`;
    this.readout.textContent = `kernel ${kernel}${inputText} · norm ${shortNumber(record?.norm ?? null)} · high-frequency energy ${shortNumber(record?.high_freq_energy ?? null, 2)} · ${flags.length ? flags.join(', ') : 'healthy'}`;
  }

  private drawSide(ctx: LayerPanelContext, data: KernelTiles): void {
    const side = this.body.querySelector('.cs-kernel-side');
    if (!side) return;
    const s = data.health.summary;
    const flagged = (pick: (k: KernelHealthRecord) => boolean) => data.health.kernels.filter(pick).map((k) => k.index);
    const listed = (ids: number[]) => (ids.length ? ids.slice(0, 12).join(', ') + (ids.length > 12 ? ', …' : '') : '');
    const dead = flagged((k) => k.dead);
    const dup = flagged((k) => k.duplicate_of !== null && k.duplicate_of !== undefined);
    const noisy = flagged((k) => k.noisy);
    const row = (name: string, value: string, ids: number[] = [], title?: string) =>
      h('tr', {}, h('th', { scope: 'row', title: title ?? null }, name), h('td', { class: 'num' }, value), h('td', { class: 'small muted' }, listed(ids)));
    const table = h('table', { class: 'scores cs-health' },
      h('caption', {}, 'Health (as kernels --health)'),
      h('tbody', {},
        row('kernels', String(s.kernels ?? data.health.kernels.length)),
        row('∅ dead', String(s.dead ?? dead.length), dead, `norm below ${shortNumber(s.dead_threshold ?? null)}`),
        row('= duplicates', String(s.duplicates ?? dup.length), dup, `cosine similarity at least ${shortNumber(s.duplicate_threshold ?? null)}`),
        row('≈ noisy', String(s.noisy ?? noisy.length), noisy, `high-frequency energy above ${shortNumber(s.high_freq_noise_threshold ?? null, 2)}`),
        s.nonfinite ? row('! NaN / ∞', String(s.nonfinite), data.nonfinite) : null,
        row('mean norm', shortNumber(s.norm_mean ?? null)),
        s.max_cosine !== undefined ? row('max cosine', shortNumber(s.max_cosine ?? null, 2)) : null,
      ));
    const parts: (HTMLElement | null)[] = [table];
    if (data.range && !data.rgb) {
      const lut = data.diverging ? COLORMAPS.diverging : COLORMAPS.gray;
      parts.push(colourBar(lut, data.range[0], data.range[1], { label: data.diverging ? 'weight (blue −, white 0, red +)' : 'weight', width: 200 }));
    } else if (!data.rgb) {
      parts.push(colourBar(COLORMAPS.gray, 0, 1, { label: 'each kernel on its own scale', ends: ['its min', 'its max'], width: 200 }));
    }
    parts.push(h('p', { class: 'small muted' }, data.caption));
    const [out, inputs, kh, kw] = data.shape;
    parts.push(h('p', { class: 'small muted' }, `${out} kernels of ${inputs}×${kh}×${kw}${data.channel_order ? `, ${data.channel_order} order` : ''}.`));
    replace(side, ...parts);
    void ctx;
  }

  // --- over epochs ------------------------------------------------------------------

  private loadHistory(ctx: LayerPanelContext): void {
    const run = ctx.info.run;
    if (!run) {
      this.historyKey = '';
      this.disposeChart();
      replace(this.historyBox);
      return;
    }
    const key = keyOf(run, ctx.layer, ctx.info.epochs?.length ?? 0);
    if (key === this.historyKey) {
      this.markEpoch();
      return;
    }
    this.historyKey = key;
    this.history = null;
    this.disposeChart();
    replace(this.historyBox, h('h3', {}, 'Over the epochs'), loadingBox('Reading the kernels of every recorded epoch…'));
    this.historyRunner.run(async (token, signal) => {
      const stale = () => !this.historyRunner.current(token);
      try {
        const url = `api/runs/${encodeURIComponent(run)}/kernels?layer=${encodeURIComponent(ctx.layer)}`;
        const history = await getComputed<KernelHistory>(url, { signal, accept: (r): r is KernelHistory => !!r && typeof r === 'object' && Array.isArray((r as KernelHistory).health) });
        if (stale()) return;
        this.history = history;
        this.drawHistory();
      } catch (error) {
        if (isAbort(error) || stale()) return;
        this.historyKey = '';
        replace(this.historyBox, h('h3', {}, 'Over the epochs'), failureBox(error, 'No kernel history for this layer', 'The kernels over the epochs could not be read'));
      }
    });
  }

  private disposeChart(): void {
    this.chart?.dispose();
    this.chart = null;
    this.chartEl = null;
  }

  private drawHistory(): void {
    const history = this.history;
    if (!history) return;
    if (!history.health.length) {
      replace(this.historyBox, h('h3', {}, 'Over the epochs'), h('p', { class: 'muted' }, 'This run recorded no epochs of these kernels.'));
      return;
    }
    this.chartEl = h('div', { class: 'cs-history-chart', role: 'img', 'aria-label': `dead, duplicate and noisy kernels and the mean kernel norm of ${history.layer} at each of ${history.epochs.length} epochs` });
    replace(this.historyBox, h('h3', {}, 'Over the epochs'), this.chartEl, h('p', { class: 'small muted' }, 'Counts of dead, duplicate and noisy kernels (left axis) and the mean kernel norm (right axis, dashed) at every recorded epoch; the dark vertical line is the epoch shown.'));
    this.chart = makeChart(this.chartEl);
    const epochs = history.health.map((r) => r.epoch);
    const counts = (key: 'dead' | 'duplicates' | 'noisy') => history.health.map((r) => [r.epoch, r[key]]);
    const line = (name: string, data: (number | null)[][], colour: string, extra: Record<string, unknown> = {}) => ({
      name, type: 'line', data, symbolSize: 6, lineStyle: { color: colour, width: 2 }, itemStyle: { color: colour }, ...extra,
    });
    this.chart.chart.setOption({
      aria: { enabled: true },
      textStyle: TEXT_STYLE,
      animation: false,
      grid: { left: 40, right: 56, top: 28, bottom: 30 },
      tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => shortNumber(Number(v), 4) },
      xAxis: { type: 'value', name: 'epoch', nameLocation: 'middle', nameGap: 22, min: Math.min(...epochs) - 0.25, max: Math.max(...epochs) + 0.25, minInterval: 1, axisLabel: { formatter: (v: number) => (Number.isInteger(v) ? String(v) : '') } },
      yAxis: [
        { type: 'value', name: 'kernels', minInterval: 1, min: 0 },
        { type: 'value', name: 'mean norm', splitLine: { show: false }, axisLabel: { formatter: (v: number) => shortNumber(v) } },
      ],
      series: [
        line('dead', counts('dead'), CLASS_PALETTE[5], { symbol: 'circle' }),
        line('duplicates', counts('duplicates'), CLASS_PALETTE[1], { symbol: 'rect' }),
        line('noisy', counts('noisy'), CLASS_PALETTE[3], { symbol: 'triangle' }),
        line('mean norm', history.health.map((r) => [r.epoch, r.mean_norm]), CLASS_PALETTE[0], { yAxisIndex: 1, symbol: 'diamond', lineStyle: { color: CLASS_PALETTE[0], width: 2, type: 'dashed' } }),
      ],
    });
    const legend = h('div', { class: 'curve-legend small' },
      ...[['dead', CLASS_PALETTE[5], '●'], ['duplicates', CLASS_PALETTE[1], '■'], ['noisy', CLASS_PALETTE[3], '▲'], ['mean norm (right axis)', CLASS_PALETTE[0], '◆']].map(([name, colour, glyph]) =>
        h('span', { class: 'legend-item' }, h('span', { style: `color:${colour}`, 'aria-hidden': 'true' }, `${glyph}\u00a0`), name)));
    this.chartEl.after(legend);
    this.historyBox.append(this.figureRow());
    this.markEpoch();
  }

  /** The button (and link) for the figure of the kernels themselves at every epoch, and its box. */
  private figureRow(): HTMLElement {
    const button = h('button', { type: 'button', class: 'button', 'aria-expanded': String(this.figure.open) }, this.figure.open ? 'Hide the kernels over the epochs' : 'Show the kernels over the epochs') as HTMLButtonElement;
    const link = h('a', { href: this.figureUrl() ?? '#', target: '_blank', rel: 'noopener', class: 'small' }, 'open the figure in a new tab') as HTMLAnchorElement;
    const box = h('div', { class: 'cs-history-figure', 'aria-live': 'polite' });
    this.figure.box = box;
    button.addEventListener('click', () => {
      this.figure.open = !this.figure.open;
      button.textContent = this.figure.open ? 'Hide the kernels over the epochs' : 'Show the kernels over the epochs';
      button.setAttribute('aria-expanded', String(this.figure.open));
      link.href = this.figureUrl() ?? '#';
      this.showFigure(true);
    });
    const row = h('div', { class: 'control-row cs-history-figure-row' }, button, link);
    if (this.figure.open) queueMicrotask(() => this.showFigure(false));
    return h('div', {}, row, box);
  }

  /** The figure's URL for the shown layer and options (null without a run). */
  private figureUrl(): string | null {
    const ctx = this.ctx;
    const run = ctx?.info.run;
    if (!ctx || !run) return null;
    const reduce = this.reduce !== 'auto' ? this.reduce : this.data?.reduce ?? null;
    return historyFigureUrl(run, ctx.layer, this.norm, reduce, this.limitFor(ctx));
  }

  /** Draw (or hide) the figure; `asked`: the person pressed the button (else: options changed while it is open). */
  private showFigure(asked: boolean): void {
    const box = this.figure.box;
    if (!box) return;
    if (!this.figure.open) {
      this.figureRunner.cancel();
      this.releaseFigure();
      replace(box);
      return;
    }
    const url = this.figureUrl();
    if (!url) return;
    const loading = () => loadingBox(`Drawing the kernels of ${this.ctx?.layer ?? 'this layer'} at every recorded epoch…`);
    const render = (picture: string) => {
      const limit = this.limitFor(this.ctx);
      const out = this.data?.shape[0] ?? 0;
      const which = limit !== null ? `; the first ${limit} of ${out} kernels` : out > HISTORY_KERNELS ? `; the first ${HISTORY_KERNELS} of ${out} kernels` : '';
      if (this.figure.box) replace(this.figure.box, h('figure', { class: 'cs-figure' },
        h('img', { class: 'cs-wide-img', src: picture, alt: `the kernels of ${this.ctx?.layer ?? 'the layer'}, one row per recorded epoch` }),
        h('figcaption', { class: 'small muted' }, `The kernels at every recorded epoch, one row each, as convscope kernels run:ID --layer ${this.ctx?.layer ?? 'L'} --epochs all draws them${which}.`)));
    };
    if (url === this.figure.url && this.figure.objectUrl) {
      if (!box.querySelector('img')) render(this.figure.objectUrl);
      return;
    }
    if (url === this.figure.url && !asked) {
      replace(box, loading()); // already on its way
      return;
    }
    this.releaseFigure();
    this.figure.url = url;
    replace(box, loading());
    this.figureRunner.run(async (token) => {
      try {
        const picture = await fetchObjectUrl(url);
        if (!this.figureRunner.current(token) || this.figure.url !== url || !this.figure.open) {
          URL.revokeObjectURL(picture);
          return;
        }
        this.figure.objectUrl = picture;
        render(picture);
      } catch (error) {
        if (isAbort(error) || !this.figureRunner.current(token)) return;
        this.figure.url = '';
        if (this.figure.box) replace(this.figure.box, failureBox(error, 'No figure of the kernels over the epochs', 'The figure could not be drawn'));
      }
    });
  }

  private releaseFigure(): void {
    if (this.figure.objectUrl) URL.revokeObjectURL(this.figure.objectUrl);
    this.figure.objectUrl = null;
    this.figure.url = '';
  }

  /** The current epoch's mark on the chart (the slider moved: nothing to fetch). */
  private markEpoch(): void {
    if (!this.chart || !this.ctx) return;
    const epoch = this.ctx.info.epoch;
    this.chart.chart.setOption({
      series: [{
        name: 'dead',
        markLine: epoch === null ? { data: [] } : {
          silent: true, symbol: 'none', label: { show: false }, lineStyle: { color: '#1f2733', type: 'solid', width: 2 },
          data: [{ xAxis: epoch }],
        },
      }],
    });
  }

  /** The context was withdrawn (the view moved on): drop what is in flight; the next show loads again. */
  pause(): void {
    this.runner.cancel();
    this.historyRunner.cancel();
    this.figureRunner.cancel();
    this.releaseFigure();
    this.key = '';
    this.historyKey = '';
  }

  destroy(): void {
    this.runner.stop();
    this.historyRunner.stop();
    this.figureRunner.stop();
    this.releaseFigure();
    this.dropCanvas();
    this.disposeChart();
  }
}
