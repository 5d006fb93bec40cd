// What the layer panel's tabs share: PNG and POST requests with the server's error line,
// a runner that keeps one load in flight per tab (the newest waiting, older ones
// dropped, so an epoch slider never sends a storm), class names, small form controls.
import { ApiError, fetchOk, getJson } from '../api';
import { emptyBox, errorBox, h } from '../dom';
import { modelUrl, type ModelInfo } from './context';

function send(url: string, init: RequestInit): Promise<Response> {
  return fetchOk(url, undefined, init);
}

/**
 * A PNG's pixels, as the server wrote them (no colour-space conversion, no premultiplied
 * alpha): the tiles' bytes are data, not a picture. Requests are never aborted (an
 * aborted fetch is a failed request in the browser's log); a stale answer is dropped.
 */
export async function fetchPixels(url: string): Promise<ImageData> {
  const response = await send(url, { headers: { Accept: 'image/png' } });
  const blob = await response.blob();
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new ApiError(0, 'this browser gave no 2-D canvas to read the picture');
    g.drawImage(bitmap, 0, 0);
    return g.getImageData(0, 0, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** A picture as an object URL (revoke it with `URL.revokeObjectURL` when it is replaced). */
export async function fetchObjectUrl(url: string): Promise<string> {
  const response = await send(url, { headers: { Accept: 'image/png' } });
  return URL.createObjectURL(await response.blob());
}

export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const response = await send(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(body) });
  return (await response.json()) as T;
}

export async function deleteJson<T>(url: string): Promise<T> {
  const response = await send(url, { method: 'DELETE', headers: { Accept: 'application/json' } });
  return (await response.json()) as T;
}

export function isAbort(error: unknown): boolean {
  return (error instanceof DOMException && error.name === 'AbortError') || (error instanceof Error && error.name === 'AbortError');
}

/** The one line to show for a failure. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A 4xx is the user's choice not applying (a pooling layer has no kernels): an empty state; else an error. */
export function failureBox(error: unknown, notApplicable: string, failed = 'Something went wrong'): HTMLElement {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return emptyBox(notApplicable, h('p', { class: 'error-line' }, error.message));
  return errorBox(messageOf(error), failed);
}

/**
 * Runs loads one at a time: while one runs, only the newest asked-for load waits (the
 * ones in between are dropped), and `current(token)` tells a load whether it is still
 * the newest, so it drops its answer when the panel moved on. Each load also gets a
 * signal that aborts once it is no longer the newest (for polling a job).
 *
 * Staleness is by token, not by the context's signal: a tab keys its loads on what
 * they depend on, so a new context asking for the same thing keeps the load in flight.
 */
export class LatestRunner {
  private running = false;
  private pending: (() => Promise<void>) | null = null;
  private counter = 0;
  private stopped = false;
  private controller: AbortController | null = null;

  /** Ask for a load; it gets its token (compare with `current`) and a signal. */
  run(load: (token: number, signal: AbortSignal) => Promise<void>): void {
    if (this.stopped) return;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.counter += 1;
    const token = this.counter;
    this.pending = () => load(token, controller.signal);
    if (!this.running) void this.drain();
  }

  current(token: number): boolean {
    return !this.stopped && token === this.counter;
  }

  /** Forget the waiting load and make any running one stale. */
  cancel(): void {
    this.counter += 1;
    this.pending = null;
    this.controller?.abort();
    this.controller = null;
  }

  stop(): void {
    this.cancel();
    this.stopped = true;
  }

  get busy(): boolean {
    return this.running;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending) {
        const next = this.pending;
        this.pending = null;
        try {
          await next();
        } catch {
          // a load shows its own errors
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/** A class's name: its name from the model's classes, else `output K` (never a bare index). */
export function className(info: ModelInfo, k: number | null | undefined): string {
  if (k === null || k === undefined || !Number.isFinite(k)) return '–';
  const name = info.classes?.[k];
  return name !== undefined ? name : `output ${k}`;
}

/** Whether a layer type is a convolution (Conv2d, Conv2dAct, ConvTranspose2d, ...). */
export function isConvType(type: string): boolean {
  return /conv/i.test(type) && !/convnext|block/i.test(type);
}

let counter = 0;
export function fieldId(prefix: string): string {
  counter += 1;
  return `cs-${prefix}-${counter}`;
}

/** A labelled select; `onChange` gets the new value. */
export function selectControl(label: string, options: [string, string][], value: string, onChange: (value: string) => void): { el: HTMLElement; select: HTMLSelectElement } {
  const id = fieldId('select');
  const select = h('select', { id }, ...options.map(([v, text]) => h('option', { value: v }, text))) as HTMLSelectElement;
  select.value = value;
  select.addEventListener('change', () => onChange(select.value));
  return { el: h('span', { class: 'control' }, h('label', { for: id }, label), select), select };
}

/** Radio buttons drawn as a segmented control, with a legend for screen readers. */
export function segmentedControl(legend: string, options: [string, string][], value: string, onChange: (value: string) => void): { el: HTMLFieldSetElement; set: (value: string) => void; inputs: HTMLInputElement[] } {
  const name = fieldId('seg');
  const inputs: HTMLInputElement[] = [];
  const el = h('fieldset', { class: 'segmented' }, h('legend', {}, legend), ...options.map(([v, text]) => {
    const id = `${name}-${v}`;
    const input = h('input', { type: 'radio', name, value: v, id }) as HTMLInputElement;
    input.checked = v === value;
    input.addEventListener('change', () => {
      if (input.checked) onChange(v);
    });
    inputs.push(input);
    return h('span', {}, input, h('label', { for: id }, text));
  })) as HTMLFieldSetElement;
  return {
    el,
    inputs,
    set(v: string) {
      for (const input of inputs) input.checked = input.value === v;
    },
  };
}

export function checkboxControl(label: string, checked: boolean, onChange: (checked: boolean) => void): { el: HTMLElement; input: HTMLInputElement } {
  const id = fieldId('check');
  const input = h('input', { type: 'checkbox', id }) as HTMLInputElement;
  input.checked = checked;
  input.addEventListener('change', () => onChange(input.checked));
  return { el: h('span', { class: 'control' }, input, h('label', { for: id }, label)), input };
}

/** The part of a context a tab depends on, as a string to compare (`null`s kept apart from ''). */
export function keyOf(...parts: (string | number | boolean | null | undefined)[]): string {
  return JSON.stringify(parts.map((p) => (p === undefined ? null : p)));
}

/** Sizes for a canvas drawn at the screen's pixel density. */
export function sizeCanvas(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D | null {
  const dpr = Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));
  canvas.width = Math.max(1, Math.round(cssWidth * dpr));
  canvas.height = Math.max(1, Math.round(cssHeight * dpr));
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const g = canvas.getContext('2d');
  if (!g) return null;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.imageSmoothingEnabled = false;
  return g;
}

/** An integer upscaling that makes a `size`-pixel tile about `target` CSS pixels (at least 1). */
export function upscale(size: number, target: number, most = 32): number {
  if (size <= 0) return 1;
  return Math.max(1, Math.min(most, Math.floor(target / size)));
}

/** Where tile `i` of a tiles PNG starts: `columns` to a row, `gap` pixels between them. */
export function tileOrigin(i: number, columns: number, tile: [number, number], gap = 0): [number, number] {
  const row = Math.floor(i / columns);
  const col = i % columns;
  return [row * (tile[0] + gap), col * (tile[1] + gap)];
}

/** The gap between the tiles of a PNG `width` wide with `columns` tiles `w` wide (0 when it does not divide). */
export function tileGap(width: number, columns: number, w: number): number {
  if (columns <= 1) return 0;
  const gap = (width - columns * w) / (columns - 1);
  return Number.isInteger(gap) && gap >= 0 ? gap : 0;
}

/** Columns of an atlas canvas holding `count` tiles `tw` wide (kept under canvas size limits). */
export function atlasColumns(count: number, tw: number): number {
  return Math.max(1, Math.min(count, Math.floor(8192 / Math.max(1, tw))));
}

/** Where tile `i` lies in such an atlas, as [x, y]. */
export function atlasSlot(i: number, columns: number, tile: [number, number]): [number, number] {
  return [(i % columns) * tile[1], Math.floor(i / columns) * tile[0]];
}

/**
 * Layer types known to hold no convolution: pooling, activations, normalisation, dropout,
 * reshaping, dense and element-wise layers. For these the panel says so itself instead of
 * asking the server for a 400 (which the browser logs as an error); so it does for the
 * containers below. Any other type is asked and the server's line shown.
 */
const NOT_CONV = /^(?:(?:Adaptive)?(?:Max|Avg|LP|FractionalMax)Pool\dd|ReLU6?|LeakyReLU|PReLU|RReLU|ELU|CELU|SELU|GELU|SiLU|Mish|Sigmoid|Tanh|Hardtanh|Hardswish|Hardsigmoid|Softplus|Softsign|Softmax\d?d?|LogSoftmax|Threshold|(?:Batch|Instance|Group|Layer|LocalResponse)Norm\w*|(?:Alpha|FeatureAlpha)?Dropout\w*|Flatten|Unflatten|Linear\w*|Bilinear|Identity|Add|Concat\w*|Cat|Mul|Upsample\w*|(?:Zero|Constant|Reflection|Replication)Pad\dd|Embedding)$/;

/**
 * Containers: blocks and stages that wrap convolutions but hold no kernel of their own
 * (ResNet's Bottleneck, a Sequential). Asking for their kernels would be a 400; the panel
 * says so and names the conv layers instead.
 */
const CONTAINER = /^(?:Sequential|ModuleList|ModuleDict|Bottleneck|BasicBlock|InvertedResidual|DepthwiseSeparable|Inception\w*|\w*Block|\w*Stage)$/;

export function knownNotConv(type: string): boolean {
  return NOT_CONV.test(type) || CONTAINER.test(type);
}

/** What `explain` covers (its 400 line says the same). */
export const EXPLAIN_SUPPORTS = "Conv2d (also with an activation inside, 'same' padding, stride, dilation, groups), MaxPool2d, AvgPool2d, AdaptiveMaxPool2d, AdaptiveAvgPool2d";

const EXPLAIN_POOL = /^(?:Adaptive)?(?:Max|Avg)Pool2d$/;
/** Types with "Conv" in their name that are no Conv2d: other dimensions, transposed, blocks and wrappers. */
const NOT_CONV2D = /Conv(?:1d|3d)|ConvTranspose|ConvNeXt|Block|Bottleneck|Stage|Sequential|Norm|Activation|^(?:Partial|Padded|Separable|Depthwise)Conv2d$/i;

/**
 * Whether `explain` answers for a layer of this type: Conv2d and its subclasses (a type
 * with "Conv" in its name, such as SameConv2d or Conv2dAct) and torch's four 2-D pooling
 * layers. The panel asks only for these, so a click never earns a 400 (which the browser
 * logs as an error); for any other type it says what explain covers.
 */
export function explainable(type: string): boolean {
  return EXPLAIN_POOL.test(type) || (/conv/i.test(type) && !NOT_CONV2D.test(type));
}

/** What the panel says for a layer explain does not cover. */
export function notExplainableLine(layer: string, type: string): string {
  return `explain covers convolution and pooling layers; ${layer} is ${/^[aeiou]/i.test(type) ? 'an' : 'a'} ${type || 'layer of unknown type'}`;
}

/** One row of `api/models/{model}/layers` (as `layers --json`). */
export interface LayerRecord {
  name: string;
  type: string;
  output_shape?: number[] | null;
  params?: number;
}

const LAYER_ROWS = new Map<string, Promise<LayerRecord[]>>();

/** The layers of a model (asked once per model name; a failure is asked again next time). */
export function layerRows(model: string, name: string): Promise<LayerRecord[]> {
  let rows = LAYER_ROWS.get(name);
  if (!rows) {
    rows = getJson<LayerRecord[]>(modelUrl(model, 'layers'));
    rows.catch(() => LAYER_ROWS.delete(name));
    LAYER_ROWS.set(name, rows);
  }
  return rows;
}

/**
 * Where a Flatten layer's outputs come from: the layer listed before it, when its output
 * is C×H×W maps of exactly as many numbers (torch's Flatten keeps C, H, W order). Null
 * for any other layer, or when that is not known.
 */
export function flattenSource(rows: LayerRecord[], layer: string): { layer: string; shape: [number, number, number] } | null {
  const i = rows.findIndex((r) => r.name === layer);
  if (i <= 0 || rows[i].type !== 'Flatten') return null;
  const out = rows[i].output_shape;
  const before = rows[i - 1].output_shape;
  if (!out || out.length !== 2 || !before || before.length !== 4) return null;
  const [, c, hgt, w] = before;
  if (c * hgt * w !== out[1]) return null;
  return { layer: rows[i - 1].name, shape: [c, hgt, w] };
}

/** Unit `index` of a flattened C×H×W output as (channel, row, column). */
export function unflatten(index: number, shape: [number, number, number]): { channel: number; row: number; col: number } {
  const [, hgt, w] = shape;
  return { channel: Math.floor(index / (hgt * w)), row: Math.floor((index % (hgt * w)) / w), col: index % w };
}

/** "unit 37 = channel 2, row 1, column 1 of pool2's 16×4×4 output" (plain "unit 37" without a source). */
export function flatUnitText(index: number, source: { layer: string; shape: [number, number, number] } | null): string {
  if (!source) return `unit ${index}`;
  const { channel, row, col } = unflatten(index, source.shape);
  return `unit ${index} = channel ${channel}, row ${row}, column ${col} of ${source.layer}'s ${source.shape.join('×')} output`;
}

function focusKey(el: Element, root: Element): string | null {
  if (!(el instanceof HTMLElement) || !root.contains(el)) return null;
  const input = el as HTMLInputElement;
  const label = el.id ? root.querySelector(`label[for="${CSS.escape(el.id)}"]`)?.textContent ?? '' : '';
  const choice = input.type === 'radio' || input.type === 'checkbox' ? input.value : '';
  return [el.tagName, input.type ?? '', choice, label || (el.tagName === 'BUTTON' ? el.textContent : '')].join('|');
}

/**
 * Replace a row of controls and give the focus back to the same control in the new row
 * (a keyboard user who changed a select or a radio keeps their place).
 */
export function replaceControls(root: HTMLElement, ...children: HTMLElement[]): void {
  const active = document.activeElement;
  const key = active ? focusKey(active, root) : null;
  root.replaceChildren(...children);
  if (!key) return;
  for (const el of root.querySelectorAll<HTMLElement>('input, select, button')) {
    if (focusKey(el, root) === key) {
      el.focus();
      return;
    }
  }
}
