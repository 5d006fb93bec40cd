// One unit of a feature map, explained with the real numbers, CNN-Explainer style:
// where its receptive field lies on the layer's input (padding marked), then for a
// convolution each input channel's patch × kernel = products and their sum, the sums
// plus the bias, the activation and the value; for pooling the window and its max or
// mean. The answer is `GET api/models/{model}/explain` (as `convscope explain --json`);
// the last line checks it against the value the feature map itself shows there.
import { emptyBox, h, loadingBox, replace } from '../dom';
import { COLORMAPS, colourAt, inkOn, shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { EXPLAIN_SUPPORTS, failureBox, fetchPixels, isAbort, keyOf, knownNotExplainable, LatestRunner } from './tabkit';
import { getJson } from '../api';

export interface ExplainTerm {
  channel: number;
  patch: (number | null)[][];
  kernel?: number[][];
  products?: number[][];
  sum?: number;
  padded: boolean[][];
}

export interface Explanation {
  model: string;
  weights?: string;
  layer: string;
  type: string;
  kind: 'conv' | 'maxpool' | 'avgpool' | string;
  input: string;
  at: [number, number];
  channel: number;
  channel_choice?: string;
  input_shape: number[];
  output_shape: number[];
  receptive_field: { rows: [number, number]; cols: [number, number] };
  stride: [number, number];
  padding: { left: number; right: number; top: number; bottom: number };
  dilation: [number, number];
  inputs: ExplainTerm[];
  groups?: number;
  bias?: number | null;
  divisor?: number;
  argmax?: [number, number];
  total: number;
  activation: string | null;
  value: number;
  actual: number;
  matches: boolean;
  call?: number;
  calls?: number;
}

/** The unit clicked in a feature map, and what the map shows there. */
export interface UnitChoice {
  channel: number;
  row: number;
  col: number;
  /** The map's value at the unit, decoded from its 8-bit tile (null when not known). */
  mapValue: number | null;
  /** One quantisation step of that map's tile ((max − min) / 255). */
  mapStep: number;
}

/** How many input channels get their patch × kernel grids drawn before the rest are listed. */
export const SHOWN_CHANNELS = 3;

/** Whether the explained value is the map's value, within the tile's 8-bit quantisation. */
export function agreesWithMap(value: number, mapValue: number, step: number): boolean {
  const tolerance = step / 2 + 1e-6 * Math.max(1, Math.abs(value)) + 1e-7;
  return Math.abs(value - mapValue) <= tolerance;
}

/** The sum of the channels' sums (what the bias is added to). */
export function channelSum(data: Explanation): number {
  return data.inputs.reduce((total, term) => total + (term.sum ?? 0), 0);
}

/** The largest |value| of a grid (1 when it is all zero or empty), for a symmetric colour scale. */
export function absMax(grid: (number | null)[][]): number {
  let most = 0;
  for (const row of grid) for (const v of row) if (v !== null && Number.isFinite(v)) most = Math.max(most, Math.abs(v));
  return most > 0 ? most : 1;
}

function range(grid: (number | null)[][]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of grid) for (const v of row) if (v !== null && Number.isFinite(v)) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

type CellColour = (v: number) => [number, number, number];

function grid(title: string, values: (number | null)[][], colour: CellColour, options: { padded?: boolean[][]; mark?: [number, number] | null; caption?: string } = {}): HTMLElement {
  const rows = values.length;
  const cols = values[0]?.length ?? 0;
  const big = Math.max(rows, cols) > 7;
  const table = h('table', { class: `cs-grid${big ? ' cs-grid-small' : ''}` }, h('caption', {}, title));
  const body = h('tbody', {});
  for (let r = 0; r < rows; r += 1) {
    const tr = h('tr', {});
    for (let c = 0; c < cols; c += 1) {
      const v = values[r][c];
      const pad = options.padded?.[r]?.[c] ?? false;
      const [red, green, blue] = v === null || !Number.isFinite(v) ? [238, 241, 245] : colour(v);
      const text = v === null ? (pad ? 'pad' : '–') : shortNumber(v, 2);
      const marked = options.mark && options.mark[0] === r && options.mark[1] === c;
      const td = h('td', {
        class: `${pad ? 'cs-pad' : ''}${marked ? ' cs-mark' : ''}`.trim() || null,
        style: `background-color:rgb(${red},${green},${blue});color:${inkOn(red, green, blue)}`,
        title: `${pad ? 'padding: ' : ''}${v === null ? 'no value' : v}`,
      }, big ? '' : `${text}${pad && v !== null ? '*' : ''}`);
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
  return h('figure', { class: 'cs-grid-figure' }, table, options.caption ? h('figcaption', { class: 'small muted' }, options.caption) : null);
}

const grayColour = (lo: number, hi: number): CellColour => (v) => colourAt(COLORMAPS.gray, hi > lo ? (v - lo) / (hi - lo) * 0.85 + 0.1 : 0.5);
const divergingColour = (bound: number): CellColour => (v) => colourAt(COLORMAPS.diverging, 0.5 + 0.5 * (v / bound));

/** `f(x)` of the activation's name for the equation line. */
function activationText(name: string): string {
  return name.toLowerCase();
}

/** The receptive field on the layer's input map (and the image under it when the input is the image). */
function receptiveField(data: Explanation, image: ImageData | null): HTMLElement {
  const [, inH = 1, inW = 1] = data.input_shape.length === 3 ? data.input_shape : [1, ...data.input_shape.slice(-2)];
  const pad = data.padding;
  const fullH = inH + pad.top + pad.bottom;
  const fullW = inW + pad.left + pad.right;
  const cell = Math.max(2, Math.min(12, Math.floor(168 / Math.max(fullH, fullW))));
  const canvas = h('canvas', { class: 'cs-rf-canvas', role: 'img' }) as HTMLCanvasElement;
  const [r0, r1] = data.receptive_field.rows;
  const [c0, c1] = data.receptive_field.cols;
  canvas.setAttribute('aria-label', `receptive field: rows ${r0} to ${r1}, columns ${c0} to ${c1} of the ${inH}×${inW} input${pad.top + pad.left + pad.bottom + pad.right ? ', with padding around it' : ''}`);
  const dpr = Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));
  canvas.width = fullW * cell * dpr;
  canvas.height = fullH * cell * dpr;
  canvas.style.width = `${fullW * cell}px`;
  canvas.style.height = `${fullH * cell}px`;
  const g = canvas.getContext('2d');
  if (g) {
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.imageSmoothingEnabled = false;
    // padding: hatched
    g.fillStyle = '#f1ede4';
    g.fillRect(0, 0, fullW * cell, fullH * cell);
    g.strokeStyle = '#c9bfa8';
    g.lineWidth = 1;
    for (let k = -fullH; k < fullW; k += 2) {
      g.beginPath();
      g.moveTo(k * cell, 0);
      g.lineTo((k + fullH) * cell, fullH * cell);
      g.stroke();
    }
    const x0 = pad.left * cell;
    const y0 = pad.top * cell;
    if (image && image.width === inW && image.height === inH) {
      const off = document.createElement('canvas');
      off.width = inW;
      off.height = inH;
      off.getContext('2d')?.putImageData(image, 0, 0);
      g.drawImage(off, x0, y0, inW * cell, inH * cell);
    } else {
      g.fillStyle = '#fafbfc';
      g.fillRect(x0, y0, inW * cell, inH * cell);
      // the patch we know (the first term's), in gray
      const term = data.inputs[0];
      if (term) {
        const [lo, hi] = range(term.patch);
        const rowsAt = spaced(r0, r1, term.patch.length);
        const colsAt = spaced(c0, c1, term.patch[0]?.length ?? 0);
        term.patch.forEach((row, i) => row.forEach((v, j) => {
          if (v === null || term.padded[i]?.[j]) return;
          const [red, green, blue] = grayColour(lo, hi)(v);
          g.fillStyle = `rgb(${red},${green},${blue})`;
          g.fillRect((colsAt[j] + pad.left) * cell, (rowsAt[i] + pad.top) * cell, cell, cell);
        }));
      }
      if (cell >= 4) {
        g.strokeStyle = 'rgba(31,39,51,0.12)';
        for (let r = 0; r <= inH; r += 1) {
          g.beginPath();
          g.moveTo(x0, y0 + r * cell);
          g.lineTo(x0 + inW * cell, y0 + r * cell);
          g.stroke();
        }
        for (let c = 0; c <= inW; c += 1) {
          g.beginPath();
          g.moveTo(x0 + c * cell, y0);
          g.lineTo(x0 + c * cell, y0 + inH * cell);
          g.stroke();
        }
      }
    }
    g.strokeStyle = '#1f2733';
    g.lineWidth = 1;
    g.strokeRect(x0 + 0.5, y0 + 0.5, inW * cell - 1, inH * cell - 1);
    // the receptive field
    const rx = (c0 + pad.left) * cell;
    const ry = (r0 + pad.top) * cell;
    const rw = (c1 - c0 + 1) * cell;
    const rh = (r1 - r0 + 1) * cell;
    g.lineWidth = 3;
    g.strokeStyle = '#ffffff';
    g.strokeRect(rx - 1, ry - 1, rw + 2, rh + 2);
    g.lineWidth = 2;
    g.strokeStyle = '#e69f00';
    g.strokeRect(rx, ry, rw, rh);
  }
  const padded = pad.top + pad.bottom + pad.left + pad.right > 0;
  const over = data.inputs[0]?.padded.some((row) => row.some(Boolean)) ?? false;
  return h(
    'figure',
    { class: 'cs-rf' },
    canvas,
    h('figcaption', { class: 'small muted' },
      `The receptive field (orange): rows ${r0}–${r1}, columns ${c0}–${c1} of the layer's ${data.input_shape.join('×')} input`,
      image ? ' (the input image)' : '',
      padded ? `; hatched: padding (${pad.top} top, ${pad.bottom} bottom, ${pad.left} left, ${pad.right} right)` : '',
      over ? ', which this window covers (cells marked *)' : '',
      data.stride[0] !== 1 || data.stride[1] !== 1 ? `; stride ${data.stride.join('×')}` : '',
      data.dilation[0] !== 1 || data.dilation[1] !== 1 ? `; dilation ${data.dilation.join('×')}` : '',
      '.'),
  );
}

/** `count` evenly spaced input coordinates from `first` to `last` (a dilated window). */
export function spaced(first: number, last: number, count: number): number[] {
  if (count <= 1) return [first];
  const step = (last - first) / (count - 1);
  return Array.from({ length: count }, (_, i) => Math.round(first + i * step));
}

function convTerm(term: ExplainTerm): HTMLElement {
  const [lo, hi] = range(term.patch);
  const kernel = term.kernel ?? [];
  const products = term.products ?? [];
  return h(
    'div',
    { class: 'cs-term', role: 'group', 'aria-label': `input channel ${term.channel}: patch times kernel, summed ${shortNumber(term.sum ?? 0, 4)}` },
    h('p', { class: 'cs-term-title' }, `Input channel ${term.channel}`),
    h('div', { class: 'cs-term-row' },
      h('div', { class: 'cs-term-part' },
        grid('patch', term.patch, grayColour(lo, hi), { padded: term.padded }),
        h('span', { class: 'cs-op', 'aria-hidden': 'true' }, '×'),
        grid('kernel', kernel, divergingColour(absMax(kernel)))),
      h('div', { class: 'cs-term-part' },
        h('span', { class: 'cs-op', 'aria-hidden': 'true' }, '='),
        grid('products', products, divergingColour(absMax(products))),
        h('span', { class: 'cs-op', 'aria-hidden': 'true' }, '→ Σ'),
        h('span', { class: 'cs-sum mono' }, shortNumber(term.sum ?? 0, 4))),
    ),
  );
}

function poolTerm(data: Explanation): HTMLElement {
  const term = data.inputs[0];
  const [lo, hi] = range(term.patch);
  let mark: [number, number] | null = null;
  if (data.argmax) {
    const rows = spaced(data.receptive_field.rows[0], data.receptive_field.rows[1], term.patch.length);
    const cols = spaced(data.receptive_field.cols[0], data.receptive_field.cols[1], term.patch[0]?.length ?? 0);
    const i = rows.indexOf(data.argmax[0]);
    const j = cols.indexOf(data.argmax[1]);
    if (i >= 0 && j >= 0) mark = [i, j];
  }
  return h('div', { class: 'cs-term' },
    h('p', { class: 'cs-term-title' }, `Input channel ${term.channel}: the window`),
    h('div', { class: 'cs-term-row' },
      grid('window', term.patch, grayColour(lo, hi), { padded: term.padded, mark, caption: data.kind === 'maxpool' ? 'outlined: the largest cell' : undefined }),
    ),
  );
}

/** The equation from the terms to the value, and its check against the map. */
function equation(data: Explanation, unit: UnitChoice | null): HTMLElement {
  const value = h('strong', { class: 'mono cs-value', 'data-testid': 'explain-value' }, shortNumber(data.value, 4));
  const parts: (Node | string)[] = [];
  const total = h('span', { class: 'mono' }, shortNumber(data.total, 4));
  if (data.kind === 'conv') {
    const sum = channelSum(data);
    const n = data.inputs.length;
    parts.push(n > 1 ? `Σ of the ${n} channel sums = ` : 'the sum = ', h('span', { class: 'mono' }, shortNumber(sum, 4)));
    if (data.bias !== null && data.bias !== undefined) parts.push(' + bias ', h('span', { class: 'mono' }, shortNumber(data.bias, 4)));
  } else if (data.kind === 'maxpool') {
    parts.push('max of the window');
  } else {
    parts.push(`sum of the window ÷ ${data.divisor ?? '?'}`);
  }
  // with an activation: = total → f → value; without, the total is the value
  if (data.activation) parts.push(' = ', total, ` → ${activationText(data.activation)} → `, value);
  else parts.push(' = ', value);

  const check: (Node | string)[] = [];
  if (unit && unit.mapValue !== null) {
    const agrees = agreesWithMap(data.value, unit.mapValue, unit.mapStep);
    const mapValue = h('span', { class: 'mono', 'data-testid': 'map-value' }, shortNumber(unit.mapValue, 4));
    check.push(
      h('span', { class: agrees ? 'yes' : 'no', 'aria-hidden': 'true' }, agrees ? '✓ ' : '✗ '),
      agrees ? '= ' : '≠ ', mapValue, ", the map's value at this unit",
      h('span', { class: 'muted' }, ` (read from its 8-bit tile, ± ${shortNumber(unit.mapStep / 2, 2)})`),
    );
  }
  const layer = data.matches
    ? h('span', { class: 'muted' }, ` The layer itself output ${shortNumber(data.actual, 6)}: the arithmetic is exact.`)
    : h('span', { class: 'no' }, ` The layer output ${shortNumber(data.actual, 6)}, which this arithmetic does not reproduce.`);
  return h('div', { class: 'cs-equation' }, h('p', {}, ...parts), check.length ? h('p', { class: 'cs-check' }, ...check) : null, h('p', { class: 'small' }, layer));
}

/** The drawing of an explanation (pure DOM from the JSON; `image` the input as the model sees it, when it is the layer's input). */
export function explanationView(data: Explanation, unit: UnitChoice | null, image: ImageData | null, shown: number[], onToggle: (channel: number) => void): HTMLElement {
  const [row, col] = data.at;
  const head = h('div', { class: 'cs-explain-head' },
    h('h3', {}, `Unit (row ${row}, column ${col}) of channel ${data.channel}`),
    h('p', { class: 'small muted' }, `${data.layer} (${data.type})${data.channel_choice === 'most active' ? ' — the channel most active here' : ''}${data.calls && data.calls > 1 ? `; call ${data.call} of ${data.calls}` : ''}`),
  );
  const body: HTMLElement[] = [receptiveField(data, image)];
  if (data.kind === 'conv') {
    const terms = data.inputs.filter((t) => shown.includes(t.channel));
    body.push(h('div', { class: 'cs-terms' }, ...terms.map(convTerm)));
    if (data.inputs.length > terms.length || data.inputs.length > 1) {
      body.push(h('div', { class: 'cs-sums' },
        h('p', { class: 'small' }, data.inputs.length > terms.length
          ? `Grids of ${terms.length} of the ${data.inputs.length} input channels (press a channel to show or hide its grids). Every channel's sum:`
          : 'Every channel\'s sum:'),
        h('ul', { class: 'cs-sum-list' }, ...data.inputs.map((t) => {
          const on = shown.includes(t.channel);
          const button = h('button', { type: 'button', class: 'cs-sum-chip', 'aria-pressed': String(on), title: `show the grids of input channel ${t.channel}` }, h('span', { class: 'muted' }, `ch ${t.channel} `), h('span', { class: 'mono' }, shortNumber(t.sum ?? 0, 3)));
          button.addEventListener('click', () => onToggle(t.channel));
          return h('li', {}, button);
        })),
      ));
    }
  } else {
    body.push(h('div', { class: 'cs-terms' }, poolTerm(data)));
  }
  body.push(equation(data, unit));
  return h('div', { class: 'cs-explain-body' }, head, ...body);
}

/** The explain box beside a feature map: asks for a unit's explanation and draws it. */
export class UnitExplain {
  readonly el: HTMLElement;
  private readonly runner = new LatestRunner();
  private key = '';
  private data: Explanation | null = null;
  private unit: UnitChoice | null = null;
  private image: ImageData | null = null;
  private shown: number[] = [];
  private picture: { key: string; pixels: ImageData | null } | null = null;

  constructor() {
    this.el = h('section', { class: 'cs-explain', 'data-testid': 'unit-explain', 'aria-label': 'the clicked unit, explained', 'aria-live': 'polite' });
    this.clear();
  }

  clear(): void {
    this.runner.cancel();
    this.key = '';
    this.data = null;
    this.unit = null;
    replace(this.el, h('div', { class: 'state state-empty' }, h('p', { class: 'state-title' }, 'Click a unit of a map'), h('p', {}, 'Its arithmetic appears here: the receptive field, patch × kernel = products, the sums, the bias and the activation, checked against the map.')));
  }

  /** Explain `unit` of the context's layer and image (again only when something changed). */
  show(ctx: LayerPanelContext, unit: UnitChoice): void {
    if (!ctx.image) return;
    if (knownNotExplainable(ctx.layerType)) {
      this.runner.cancel();
      this.key = '';
      this.data = null;
      replace(this.el, emptyBox(`explain does not cover ${ctx.layerType} layers`, h('p', { class: 'error-line' }, `cannot explain '${ctx.layer}' (${ctx.layerType}); explain supports ${EXPLAIN_SUPPORTS}`)));
      return;
    }
    const key = keyOf(ctx.model, ctx.layer, ctx.image, unit.channel, unit.row, unit.col);
    this.unit = unit;
    if (key === this.key && this.data) {
      this.draw();
      return;
    }
    this.key = key;
    if (!this.data) replace(this.el, loadingBox(`Explaining unit (${unit.row}, ${unit.col}) of channel ${unit.channel}…`));
    else this.el.classList.add('cs-stale');
    const image = ctx.image;
    this.runner.run(async (token) => {
      const url = modelUrl(ctx.model, 'explain', { layer: ctx.layer, image, at: `${unit.row},${unit.col}`, channel: unit.channel });
      try {
        const data = await getJson<Explanation>(url);
        const inputIsImage = data.input_shape.length === 3 && sameShape(data.input_shape, ctx.info.input_shape);
        const imageKey = keyOf(ctx.info.name, ctx.info.input_shape.join(','), image);
        if (inputIsImage && this.picture?.key !== imageKey) {
          let pixels: ImageData | null = null;
          try {
            pixels = await fetchPixels(`api/image.png?image=${encodeURIComponent(image)}&model=${encodeURIComponent(ctx.model)}`);
          } catch {
            pixels = null; // the schematic grid instead
          }
          this.picture = { key: imageKey, pixels };
        }
        if (!this.runner.current(token)) return;
        this.image = inputIsImage ? this.picture?.pixels ?? null : null;
        if (!this.data || this.data.inputs.length !== data.inputs.length) this.shown = data.inputs.slice(0, SHOWN_CHANNELS).map((t) => t.channel);
        this.data = data;
        this.draw();
      } catch (error) {
        if (isAbort(error) || !this.runner.current(token)) return;
        this.data = null;
        this.el.classList.remove('cs-stale');
        replace(this.el, failureBox(error, `explain does not cover this layer (${ctx.layerType})`, 'The unit could not be explained'));
      }
    });
  }

  private draw(): void {
    if (!this.data) return;
    this.el.classList.remove('cs-stale');
    replace(this.el, explanationView(this.data, this.unit, this.image, this.shown, (channel) => {
      this.shown = this.shown.includes(channel) ? this.shown.filter((c) => c !== channel) : [...this.shown, channel].sort((a, b) => a - b);
      this.draw();
    }));
  }

  /** Drop an explanation in flight; the next show asks again. */
  pause(): void {
    this.runner.cancel();
    this.key = '';
  }

  destroy(): void {
    this.runner.stop();
  }
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
