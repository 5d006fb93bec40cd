// One unit of a feature map, explained with the real numbers, CNN-Explainer style:
// where its receptive field lies on the layer's input (padding marked), then for a
// convolution each input channel's patch × kernel = products and their sum, the sums
// plus the bias, the activation and the value; for pooling the window and its max or
// mean. The answer is `GET api/models/{model}/explain` (as `convscope explain --json`);
// the last line checks it against the value the feature map itself shows there.
import { emptyBox, h, loadingBox, replace } from '../dom';
import { COLORMAPS, colourAt, inkOn, shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { explainable, failureBox, fetchPixels, isAbort, keyOf, LatestRunner, notExplainableLine } from './tabkit';
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

/** A number with a true minus sign ("−1"). */
function signedInt(v: number): string {
  return String(v).replace('-', '−');
}

/** "a and b", "a, b and c". */
function listed(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * A window's span in words: "rows 6 to 7", "columns −1 to 3 (−1 is padding)" where it
 * runs past an input of `size` rows or columns (a padded convolution's border).
 */
export function spanText(name: 'rows' | 'columns', first: number, last: number, size: number): string {
  const outside: number[] = [];
  for (let v = first; v <= last && outside.length < 8; v += 1) if (v < 0 || v >= size) outside.push(v);
  const more = last - first + 1 > 8 && (first < 0 || last >= size);
  const span = first === last ? `${name === 'rows' ? 'row' : 'column'} ${signedInt(first)}` : `${name} ${signedInt(first)} to ${signedInt(last)}`;
  if (!outside.length) return span;
  const text = more ? `${signedInt(first)} … are padding` : `${listed(outside.map(signedInt))} ${outside.length === 1 ? 'is' : 'are'} padding`;
  return `${span} (${text})`;
}

/** One piece of the equation line: words, or a number with what it is. */
export type EquationPart = string | { role: 'sum' | 'bias' | 'total' | 'value'; value: number };

/**
 * The equation from the terms to the value, each number once: "Σ of the 3 channel sums
 * = S + bias B = T → relu → V", without the bias "Σ … = T → relu → V" (the total is the
 * sum), without either "Σ … = V"; for pooling "max of the window = V".
 */
export function equationParts(data: Pick<Explanation, 'kind' | 'inputs' | 'bias' | 'total' | 'value' | 'activation' | 'divisor'>): EquationPart[] {
  const parts: EquationPart[] = [];
  const hasBias = data.kind === 'conv' && data.bias !== null && data.bias !== undefined;
  if (data.kind === 'conv') {
    const n = data.inputs.length;
    parts.push(n > 1 ? `Σ of the ${n} channel sums` : 'the sum');
    if (hasBias) parts.push(' = ', { role: 'sum', value: channelSum(data as Explanation) }, ' + bias ', { role: 'bias', value: data.bias as number });
  } else if (data.kind === 'maxpool') {
    parts.push('max of the window');
  } else {
    parts.push(`sum of the window ÷ ${data.divisor ?? '?'}`);
  }
  if (data.activation) parts.push(' = ', { role: 'total', value: data.total }, ` → ${activationText(data.activation)} → `, { role: 'value', value: data.value });
  else parts.push(' = ', { role: 'value', value: data.value });
  return parts;
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

function grid(title: string, values: (number | null)[][], colour: CellColour, options: { padded?: boolean[][]; mark?: [number, number] | null; caption?: string; large?: boolean } = {}): HTMLElement {
  const rows = values.length;
  const cols = values[0]?.length ?? 0;
  const big = Math.max(rows, cols) > 7;
  const digits = options.large && !big ? 3 : 2;
  const table = h('table', { class: `cs-grid${big ? ' cs-grid-small' : options.large ? ' cs-grid-large' : ''}` }, h('caption', {}, title));
  const body = h('tbody', {});
  for (let r = 0; r < rows; r += 1) {
    const tr = h('tr', {});
    for (let c = 0; c < cols; c += 1) {
      const v = values[r][c];
      const pad = options.padded?.[r]?.[c] ?? false;
      const [red, green, blue] = v === null || !Number.isFinite(v) ? [238, 241, 245] : colour(v);
      const text = v === null ? (pad ? 'pad' : '–') : shortNumber(v, digits);
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
function receptiveField(data: Explanation, image: ImageData | null, window: HTMLElement | null = null): HTMLElement {
  const [, inH = 1, inW = 1] = data.input_shape.length === 3 ? data.input_shape : [1, ...data.input_shape.slice(-2)];
  const pad = data.padding;
  const fullH = inH + pad.top + pad.bottom;
  const fullW = inW + pad.left + pad.right;
  // the input image is the picture; a feature map is only where the window lies (its numbers are in the grids)
  const cell = Math.max(2, Math.min(12, Math.floor((image ? 168 : 120) / Math.max(fullH, fullW))));
  const canvas = h('canvas', { class: 'cs-rf-canvas', role: 'img' }) as HTMLCanvasElement;
  const [r0, r1] = data.receptive_field.rows;
  const [c0, c1] = data.receptive_field.cols;
  const rowsText = spanText('rows', r0, r1, inH);
  const colsText = spanText('columns', c0, c1, inW);
  canvas.setAttribute('aria-label', `receptive field: ${rowsText}, ${colsText} of the ${inH}×${inW} input${pad.top + pad.left + pad.bottom + pad.right ? ', with padding around it' : ''}`);
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
      // a feature map the page does not have: a plain field (no empty grid) locating the
      // window, whose values, with their numbers, are the grids beside and below
      g.fillStyle = '#dde3ea';
      g.fillRect(x0, y0, inW * cell, inH * cell);
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
    window,
    h('figcaption', { class: 'small muted' },
      image ? `The receptive field (orange): ${rowsText}, ${colsText} of the layer's ${data.input_shape.join('×')} input (the input image)`
        : `Where the window lies (orange) on the layer's ${data.input_shape.join('×')} input, an earlier layer's maps: ${rowsText}, ${colsText}`,
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

/** Where a max pool's largest cell lies in its window ([row, column] of the patch), or null. */
export function windowMark(data: Pick<Explanation, 'argmax' | 'receptive_field' | 'inputs'>): [number, number] | null {
  const term = data.inputs[0];
  if (!data.argmax || !term) return null;
  const rows = spaced(data.receptive_field.rows[0], data.receptive_field.rows[1], term.patch.length);
  const cols = spaced(data.receptive_field.cols[0], data.receptive_field.cols[1], term.patch[0]?.length ?? 0);
  const i = rows.indexOf(data.argmax[0]);
  const j = cols.indexOf(data.argmax[1]);
  return i >= 0 && j >= 0 ? [i, j] : null;
}

/** A pooling unit's window: the input map's values under it, with their numbers, the max outlined. */
function poolWindow(data: Explanation): HTMLElement | null {
  const term = data.inputs[0];
  if (!term) return null;
  const [lo, hi] = range(term.patch);
  const caption = data.kind === 'maxpool' ? 'outlined: the largest value, the output' : `their mean (÷ ${data.divisor ?? '?'}) is the output`;
  return grid(`The window on input channel ${term.channel}`, term.patch, grayColour(lo, hi), { padded: term.padded, mark: windowMark(data), caption, large: true });
}

/** The equation from the terms to the value, and its check against the map. */
function equation(data: Explanation, unit: UnitChoice | null): HTMLElement {
  const parts = equationParts(data).map((part) => {
    if (typeof part === 'string') return part;
    if (part.role === 'value') return h('strong', { class: 'mono cs-value', 'data-testid': 'explain-value' }, shortNumber(part.value, 4));
    return h('span', { class: 'mono' }, shortNumber(part.value, 4));
  });

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
  const body: HTMLElement[] = [receptiveField(data, image, data.kind === 'conv' ? null : poolWindow(data))];
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
  private reveal = false;

  constructor() {
    this.el = h('section', { class: 'cs-explain', 'data-testid': 'unit-explain', 'aria-label': 'the clicked unit, explained', 'aria-live': 'polite' });
    this.clear();
  }

  /** The empty state: what a click will show for a layer of this type. */
  clear(layer = '', layerType = ''): void {
    this.runner.cancel();
    this.key = '';
    this.data = null;
    this.unit = null;
    this.reveal = false;
    if (layerType && !explainable(layerType)) {
      replace(this.el, emptyBox('No arithmetic for this layer', notExplainableLine(layer, layerType)));
      return;
    }
    const what = /pool/i.test(layerType)
      ? `the window on the layer's input and its ${/max/i.test(layerType) ? 'largest value' : 'mean'}, checked against the map.`
      : 'the receptive field, patch × kernel = products, the sums, the bias and the activation, checked against the map.';
    replace(this.el, h('div', { class: 'state state-empty' }, h('p', { class: 'state-title' }, 'Click a unit of a map'), h('p', {}, `Its arithmetic appears here: ${what}`)));
  }

  /**
   * Explain `unit` of the context's layer and image (again only when something changed);
   * with `reveal`, scroll the explanation into view once it is drawn (it may lie below
   * a tall grid of maps). A layer explain does not cover is said, never asked.
   */
  show(ctx: LayerPanelContext, unit: UnitChoice, reveal = false): void {
    if (!ctx.image) return;
    if (!explainable(ctx.layerType)) {
      this.clear(ctx.layer, ctx.layerType);
      return;
    }
    this.reveal = reveal;
    const key = keyOf(ctx.model, ctx.layer, ctx.image, unit.channel, unit.row, unit.col);
    this.unit = unit;
    if (key === this.key && this.data) {
      this.draw();
      return;
    }
    this.key = key;
    if (!this.data) replace(this.el, loadingBox(`Explaining unit (${unit.row}, ${unit.col}) of channel ${unit.channel}…`));
    else this.el.classList.add('cs-stale');
    this.scrollIn(false);
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
        replace(this.el, failureBox(error, notExplainableLine(ctx.layer, ctx.layerType), 'The unit could not be explained'));
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
    this.scrollIn(true);
  }

  /** Bring the explanation's top into view when it is asked to and lies off screen (once drawn: `last`). */
  private scrollIn(last: boolean): void {
    if (!this.reveal) return;
    if (last) this.reveal = false;
    const box = this.el.getBoundingClientRect();
    const height = globalThis.innerHeight || document.documentElement.clientHeight;
    if (box.top < 0 || box.top > height - 120) this.el.scrollIntoView({ block: 'start', behavior: 'smooth' });
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
