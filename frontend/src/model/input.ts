// The model explorer's input: the image every panel looks at. A dataset image from a
// paged thumbnail browser (filtered by class, class names under the thumbnails), a
// sample photo, an upload or a typed SPEC; shown as the model sees it, with the chosen
// epoch's top-5 prediction as bars and the true label when it is known.
import { ApiError, getComputed, getJson } from '../api';
import { emptyBox, errorBox, h, loadingBox, replace, uid } from '../dom';
import { RIGHT, UNKNOWN, WRONG } from '../palette';
import { modelUrl, type ModelInfo } from './context';
import { fetchOk, isAbort } from './graph';
import { epochLabel, parseModelRef } from './picker';

// --------------------------------------------------------------------------- pure logic

/**
 * The datasets convscope's registry has (their images can be browsed when they are on
 * this machine). Other datasets a model names (imagenet) have no images to page
 * through, so the input opens on a sample photo instead of asking for a 404.
 */
export const BROWSABLE_DATASETS = new Set(['mnist', 'fashion-mnist']);
export const PAGE_SIZE = 24;

export function isBrowsable(dataset: string | null | undefined): dataset is string {
  return !!dataset && BROWSABLE_DATASETS.has(dataset.toLowerCase());
}

export interface DatasetImage {
  spec: string;
  label: number | null;
  className: string;
}

export interface DatasetPage {
  dataset: string;
  split: string;
  total: number;
  start: number;
  count: number;
  classes: string[];
  images: DatasetImage[];
}

export interface Sample {
  spec: string;
  name: string;
  shape: number[];
}

export interface Prediction {
  top: [string, number][];
  label: string | null;
  weights: string;
}

type Json = Record<string, unknown>;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : String(v));

export function parseDatasetPage(raw: unknown): DatasetPage {
  const p = (raw ?? {}) as Json;
  const classes = arr(p.classes).map(str);
  return {
    dataset: str(p.dataset),
    split: str(p.split) || 'test',
    total: num(p.total) ?? 0,
    start: num(p.start) ?? 0,
    count: num(p.count) ?? 0,
    classes,
    images: arr(p.images)
      .map((i) => {
        const o = (i ?? {}) as Json;
        const label = num(o.label);
        const named = typeof o.class === 'string' && o.class ? o.class : label !== null ? classes[label] ?? '' : '';
        return { spec: str(o.spec), label, className: named };
      })
      .filter((i) => i.spec),
  };
}

export function parseSamples(raw: unknown): Sample[] {
  return arr(raw)
    .map((s) => {
      const o = (s ?? {}) as Json;
      return { spec: str(o.spec), name: str(o.name) || str(o.spec).replace(/^sample:/, ''), shape: arr(o.shape).map((v) => num(v) ?? 0) };
    })
    .filter((s) => s.spec);
}

/** One record of `predict --json` (flat, or the first of `predictions`); class names kept. */
export function parsePrediction(raw: unknown, classes: readonly string[] | null = null): Prediction {
  let p = (raw ?? {}) as Json;
  const nested = arr(p.predictions)[0];
  const weights = str(p.weights);
  if (nested && typeof nested === 'object') p = nested as Json;
  const name = (v: unknown): string => (typeof v === 'number' && classes?.[v] !== undefined ? classes[v] : str(v));
  const top = arr(p.top)
    .map((t) => [name(arr(t)[0]), num(arr(t)[1]) ?? NaN] as [string, number])
    .filter(([, prob]) => Number.isFinite(prob));
  const label = p.label === undefined || p.label === null || p.label === '' ? null : name(p.label);
  return { top, label, weights };
}

export function isPredictionBody(raw: unknown): raw is Json {
  return !!raw && typeof raw === 'object' && ('top' in (raw as Json) || 'predictions' in (raw as Json));
}

/** `1–24 of 10,000`. */
export function pageText(start: number, shown: number, total: number): string {
  if (!total || !shown) return `0 of ${total.toLocaleString('en-US')}`;
  return `${(start + 1).toLocaleString('en-US')}–${(start + shown).toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
}

/** The start of the page before / after (null at either end). */
export function pageStep(start: number, size: number, total: number, direction: -1 | 1): number | null {
  const next = start + direction * size;
  if (direction < 0) return start <= 0 ? null : Math.max(0, next);
  return next >= total ? null : next;
}

export function percent(p: number): string {
  if (p >= 0.9995) return '100%';
  return `${(p * 100).toFixed(p < 0.001 ? 2 : 1)}%`;
}

export type Source = 'dataset' | 'samples' | 'upload' | 'spec';

/** Which chooser tab a SPEC belongs to. */
export function sourceOf(spec: string | null, browsable: boolean): Source {
  if (!spec) return browsable ? 'dataset' : 'samples';
  if (spec.startsWith('sample:')) return 'samples';
  if (spec.startsWith('upload:')) return 'upload';
  return browsable && /^[\w-]+:(train|test):\d+$/.test(spec) ? 'dataset' : 'spec';
}

/**
 * `mnist:test:0-5` (samples 0 to 4) -> `mnist:test:0`: the explorer shows one image, so a
 * range stands for its first; null for anything that is not a non-empty dataset range.
 */
export function firstOfRange(spec: string): string | null {
  const m = /^([A-Za-z0-9][\w.-]*):([\w-]+):(\d+)-(\d+)$/.exec(spec.trim());
  if (!m) return null;
  const start = Number(m[3]);
  return start < Number(m[4]) ? `${m[1]}:${m[2]}:${start}` : null;
}

/** A SPEC as the explorer shows it (a range becomes its first image) and what to say about it. */
export function normaliseSpec(spec: string | null): { spec: string | null; note: string | null } {
  if (!spec) return { spec, note: null };
  const first = firstOfRange(spec);
  return first ? { spec: first, note: `${spec.trim()} is a range: showing its first image, ${first}` } : { spec, note: null };
}

/**
 * Roving focus in a grid of `count` thumbnails, `columns` to a row: the index an arrow,
 * Home or End moves to from `index` (itself at an edge), or null for other keys.
 */
export function rovingStep(index: number, key: string, count: number, columns: number): number | null {
  if (count <= 0) return null;
  const cols = Math.max(1, Math.min(Math.round(columns) || 1, count));
  const at = Math.max(0, Math.min(count - 1, index));
  switch (key) {
    case 'ArrowRight':
      return Math.min(count - 1, at + 1);
    case 'ArrowLeft':
      return Math.max(0, at - 1);
    case 'ArrowDown':
      return at + cols < count ? at + cols : at;
    case 'ArrowUp':
      return at - cols >= 0 ? at - cols : at;
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    default:
      return null;
  }
}

/** The one thumbnail of a grid that is a Tab stop: the chosen image if it is there, else the first. */
export function rovingStop(specs: readonly string[], chosen: string | null): number {
  const i = chosen === null ? -1 : specs.indexOf(chosen);
  return i >= 0 ? i : 0;
}

/** How many thumbnails the first row holds (as laid out: the grid's columns follow its width). */
export function columnsOf(items: readonly HTMLElement[]): number {
  if (!items.length) return 1;
  const top = items[0].offsetTop;
  const n = items.findIndex((b) => b.offsetTop !== top);
  return n < 0 ? items.length : Math.max(1, n);
}

export function imageUrl(spec: string, model?: string | null): string {
  const q = new URLSearchParams({ image: spec });
  if (model) q.set('model', model);
  return `api/image.png?${q.toString()}`;
}

export function datasetUrl(dataset: string, start: number, count: number, label: string): string {
  const q = new URLSearchParams({ split: 'test', start: String(start), count: String(count) });
  if (label !== '') q.set('label', label);
  return `api/datasets/${encodeURIComponent(dataset)}/images?${q.toString()}`;
}

// --------------------------------------------------------------------------- the panel

export interface InputHandlers {
  onImage(spec: string): void;
}

export interface InputState {
  model: string;
  info: ModelInfo;
  image: string | null;
  signal: AbortSignal;
}

const SOURCES: [Source, string][] = [
  ['dataset', 'Dataset'],
  ['samples', 'Sample photos'],
  ['upload', 'Upload'],
  ['spec', 'SPEC'],
];

export class InputPanel {
  readonly el: HTMLElement;
  private readonly preview: HTMLElement;
  private readonly specText: HTMLElement;
  private readonly specNote: HTMLElement;
  /** A note on the SPEC shown (a range shown as its first image) while that image is shown. */
  private note: { text: string; spec: string } | null = null;
  /** Whether the image shown could be read: the prediction waits for it, and says so in one line if not. */
  private readable: Promise<boolean> = Promise.resolve(true);
  private readonly prediction: HTMLElement;
  private readonly chooser: HTMLElement;
  private readonly tabs = new Map<Source, HTMLInputElement>();
  private readonly body: HTMLElement;
  private state: InputState | null = null;
  private source: Source = 'dataset';
  private previewKey = '';
  private previewUrl: string | null = null;
  private predictKey = '';
  private predictGen = 0;
  private previewGen = 0;
  // dataset browser
  private dataset: string | null = null;
  private page: DatasetPage | null = null;
  private pageStart = 0;
  private label = '';
  private pageAbort: AbortController | null = null;
  private samples: Sample[] | null = null;
  private samplesError: string | null = null;
  private uploadNote: HTMLElement | null = null;
  /** The dataset (and, for the samples, the model) the chooser's body was drawn for. */
  private drawnFor = '';
  private alive = true;

  constructor(private readonly handlers: InputHandlers) {
    this.preview = h('div', { class: 'input-preview', 'data-testid': 'input-preview' }, loadingBox('Choosing an image…'));
    this.specText = h('div', { class: 'input-spec mono small', 'data-testid': 'input-spec' });
    this.specNote = h('div', { class: 'input-spec-note small', role: 'status', 'data-testid': 'input-spec-note' });
    this.prediction = h('div', { class: 'prediction', 'data-testid': 'prediction', 'aria-live': 'polite' });
    const name = uid('source');
    const tabRow = h(
      'fieldset',
      { class: 'segmented input-sources' },
      h('legend', {}, 'Image from'),
      ...SOURCES.map(([value, text]) => {
        const id = `${name}-${value}`;
        const input = h('input', { type: 'radio', name, value, id, 'data-testid': `input-source-${value}` }) as HTMLInputElement;
        input.addEventListener('change', () => {
          if (input.checked) this.showSource(value);
        });
        this.tabs.set(value, input);
        return h('span', {}, input, h('label', { for: id }, text));
      }),
    );
    this.body = h('div', { class: 'input-body' });
    this.chooser = h('div', { class: 'input-chooser', 'data-testid': 'input-chooser' }, tabRow, this.body);
    this.el = h(
      'section',
      { class: 'panel input-panel', 'aria-labelledby': 'input-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'input-h' }, 'Input')),
      h('div', { class: 'input-top' }, h('figure', { class: 'input-figure' }, this.preview, h('figcaption', {}, this.specText, this.specNote)), this.prediction),
      this.chooser,
    );
  }

  /** The image a model opens with: its dataset's first test image, else a sample photo. */
  async defaultImage(info: ModelInfo, signal: AbortSignal): Promise<string | null> {
    if (isBrowsable(info.dataset)) {
      try {
        const page = parseDatasetPage(await getJson(datasetUrl(info.dataset, 0, PAGE_SIZE, ''), undefined, signal));
        if (this.dataset === null || this.dataset === info.dataset) {
          this.dataset = info.dataset;
          this.page = page;
          this.pageStart = 0;
          this.label = '';
        }
        if (page.images.length) return page.images[0].spec;
      } catch (error) {
        if (isAbort(error, signal)) throw error;
      }
    }
    const samples = await this.loadSamples(signal);
    return samples[0]?.spec ?? null;
  }

  /** A model is being opened: nothing to show yet. */
  loading(): void {
    this.state = null;
    this.predictKey = '';
    this.previewKey = '';
    this.predictGen += 1;
    this.previewGen += 1;
    replace(this.preview, loadingBox('Opening the model…'));
    replace(this.specText);
    replace(this.prediction);
    this.chooser.hidden = true;
  }

  /** No model to show an image to (the bar above says why). */
  failed(message: string): void {
    this.loading();
    replace(this.preview, emptyBox('No image', message));
  }

  /** Say `text` about the SPEC while `spec` is the image shown (a range the route named, shown as its first image). */
  setNote(text: string | null, spec: string | null): void {
    this.note = text && spec ? { text, spec } : null;
    this.drawNote();
  }

  /** Show (or redraw for) a model, epoch and image. */
  update(state: InputState): void {
    if (this.note && this.note.spec !== state.image) this.note = null;
    const datasetChanged = (isBrowsable(state.info.dataset) ? state.info.dataset : null) !== this.dataset;
    this.state = state;
    this.chooser.hidden = false;
    if (datasetChanged) {
      this.dataset = isBrowsable(state.info.dataset) ? state.info.dataset : null;
      this.page = null;
      this.pageStart = 0;
      this.label = '';
    }
    const tab = this.tabs.get('dataset')!;
    tab.disabled = this.dataset === null;
    tab.parentElement!.title = this.dataset === null ? `${state.info.dataset ?? 'this model has no dataset'}: no images to browse here` : '';
    this.drawSpec();
    void this.drawPreview();
    void this.drawPrediction();
    // a new model (or dataset) opens the tab of its image; an epoch or image change keeps the tab
    if (this.drawnFor !== this.chooserKey() || !this.body.childElementCount) this.showSource(sourceOf(state.image, this.dataset !== null));
    else this.markChosen();
  }

  destroy(): void {
    this.alive = false;
    this.pageAbort?.abort();
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
  }

  // --- the image and its prediction

  private drawSpec() {
    const s = this.state!;
    replace(this.specText, s.image ?? 'no image');
    this.drawNote();
  }

  private drawNote() {
    replace(this.specNote, this.note?.text ?? '');
  }

  private async drawPreview() {
    const s = this.state!;
    if (!s.image) {
      this.previewKey = '';
      replace(this.preview, emptyBox('No image chosen', 'Pick one below.'));
      return;
    }
    // The picture as the model sees it is the same at every epoch of a run.
    const key = `${parseModelRef(s.model).base}\n${s.image}`;
    if (key === this.previewKey) return;
    this.previewKey = key;
    const mine = (this.previewGen += 1);
    let settle: (ok: boolean) => void = () => undefined;
    this.readable = new Promise<boolean>((resolve) => (settle = resolve));
    replace(this.preview, loadingBox('Loading the image…'));
    try {
      // Not aborted when the choice changes (a stale answer is dropped by its generation):
      // an aborted request counts as a failed one in the browser's log.
      const blob = await (await fetchOk(imageUrl(s.image, s.model), undefined, { headers: { Accept: 'image/png' } })).blob();
      if (mine !== this.previewGen || !this.alive) return;
      if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
      this.previewUrl = URL.createObjectURL(blob);
      const [c, hh, w] = s.info.input_shape;
      const img = h('img', { src: this.previewUrl, alt: `${s.image} as ${s.info.name} sees it (${c === 1 ? 'grayscale' : `${c} channels`}, ${w ?? '?'}×${hh ?? '?'})`, class: (w ?? 0) <= 64 ? 'pixelated' : '', 'data-testid': 'input-image' });
      replace(this.preview, img, h('div', { class: 'muted small' }, `as the model sees it: ${s.info.input_shape.join('×')}`));
      settle(true);
    } catch (error) {
      // a bad SPEC: its error is said here, once; the prediction only points at it
      settle(!(error instanceof ApiError && error.status >= 400 && error.status < 500));
      if (mine !== this.previewGen || !this.alive) return;
      this.previewKey = '';
      if (isAbort(error, s.signal)) return;
      replace(this.preview, errorBox((error as Error).message, 'The image could not be read'));
    }
  }

  private async drawPrediction() {
    const s = this.state!;
    const key = `${s.model}\n${s.image}`;
    if (key === this.predictKey) return;
    this.predictKey = key;
    const mine = (this.predictGen += 1);
    const heading = h('h3', {}, 'Prediction', s.info.epoch !== null ? h('span', { class: 'muted' }, ` · ${epochLabel(s.info.epoch)}`) : null);
    if (!s.image) {
      replace(this.prediction, heading, emptyBox('No image to predict.'));
      return;
    }
    replace(this.prediction, heading, loadingBox('Predicting…'));
    // No prediction is asked for an image the server could not read (its error is above).
    const readable = await this.readable;
    if (mine !== this.predictGen || !this.alive) return;
    if (!readable) {
      this.predictKey = '';
      replace(this.prediction, heading, h('p', { class: 'muted', 'data-testid': 'no-prediction' }, 'No prediction: the image could not be read'));
      return;
    }
    try {
      const raw = await getComputed(modelUrl(s.model, 'predict', { image: s.image, top: 5 }), { accept: isPredictionBody });
      if (mine !== this.predictGen || !this.alive) return;
      this.showPrediction(heading, parsePrediction(raw, s.info.classes));
    } catch (error) {
      if (mine !== this.predictGen || !this.alive) return;
      this.predictKey = '';
      if (isAbort(error, s.signal)) return;
      replace(this.prediction, heading, errorBox((error as Error).message, 'No prediction'));
    }
  }

  private showPrediction(heading: HTMLElement, p: Prediction) {
    if (!p.top.length) {
      replace(this.prediction, heading, emptyBox('The model gave no class probabilities.'));
      return;
    }
    const best = p.top[0][0];
    const verdict = p.label === null ? null : best === p.label;
    const truth = p.label === null
      ? h('p', { class: 'muted small', 'data-testid': 'true-label' }, 'True label: not known for this image')
      : h('p', { class: 'small', 'data-testid': 'true-label' }, 'True label: ', h('strong', {}, p.label), ' — ', h('span', { class: verdict ? 'yes' : 'no' }, verdict ? '✓ top-1 is right' : '✗ top-1 is wrong'));
    const rows = p.top.map(([name, prob], i) => {
      const colour = i === 0 ? (verdict === null ? UNKNOWN : verdict ? RIGHT : WRONG) : name === p.label ? RIGHT : '#8a94a3';
      const width = Math.max(0, Math.min(100, prob * 100));
      return h(
        'li',
        { class: `bar-row${name === p.label ? ' is-true' : ''}`, 'aria-label': `${name}: ${percent(prob)}${name === p.label ? ' (the true label)' : ''}` },
        h('span', { class: 'bar-name', title: name }, name, name === p.label ? h('span', { class: 'true-mark', 'aria-hidden': 'true' }, ' ✓') : null),
        h('span', { class: 'bar-track', 'aria-hidden': 'true' }, h('span', { class: 'bar-fill', style: `width:${width.toFixed(2)}%;background:${colour}` })),
        h('span', { class: 'bar-value' }, percent(prob)),
      );
    });
    replace(this.prediction, heading, h('ol', { class: 'bars', 'aria-label': 'top 5 classes' }, ...rows), truth);
  }

  // --- the chooser

  private showSource(source: Source) {
    if (source === 'dataset' && this.dataset === null) source = 'samples';
    this.source = source;
    this.drawnFor = this.chooserKey();
    const tab = this.tabs.get(source)!;
    tab.checked = true;
    if (source === 'dataset') this.drawDataset();
    else if (source === 'samples') void this.drawSamples();
    else if (source === 'upload') this.drawUpload();
    else this.drawSpecForm();
  }

  private chooserKey(): string {
    return `${this.dataset}\n${this.state ? parseModelRef(this.state.model).base : ''}`;
  }

  private choose(typed: string) {
    const { spec, note } = normaliseSpec(typed);
    if (!spec) return;
    this.note = note ? { text: note, spec } : null;
    this.drawNote();
    if (this.state?.image === spec) return;
    this.handlers.onImage(spec);
  }

  private markChosen() {
    for (const b of this.body.querySelectorAll<HTMLButtonElement>('button[data-spec]')) {
      const on = b.dataset.spec === this.state?.image;
      b.setAttribute('aria-pressed', String(on));
    }
    // the Tab stop follows the chosen image, unless the user is moving through the grid
    for (const grid of this.body.querySelectorAll<HTMLElement>('.thumbs')) if (!grid.contains(document.activeElement)) this.setStop(grid);
  }

  /** One Tab stop per grid of thumbnails: the chosen one (else the first); arrows move it. */
  private roving(grid: HTMLElement): HTMLElement {
    grid.addEventListener('keydown', (ev) => {
      if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      const buttons = [...grid.querySelectorAll<HTMLButtonElement>('button[data-spec]')];
      const at = buttons.indexOf((ev.target as Element | null)?.closest?.('button[data-spec]') as HTMLButtonElement);
      if (at < 0) return;
      const next = rovingStep(at, ev.key, buttons.length, columnsOf(buttons));
      if (next === null) return;
      ev.preventDefault();
      this.focusThumb(buttons, next);
    });
    // a click (or a focus by any other means) moves the Tab stop there
    grid.addEventListener('focusin', (ev) => {
      const b = (ev.target as Element | null)?.closest?.('button[data-spec]') as HTMLButtonElement | null;
      if (!b) return;
      for (const o of grid.querySelectorAll<HTMLButtonElement>('button[data-spec]')) o.tabIndex = o === b ? 0 : -1;
    });
    return grid;
  }

  private focusThumb(buttons: HTMLButtonElement[], index: number) {
    buttons.forEach((b, i) => (b.tabIndex = i === index ? 0 : -1));
    buttons[index]?.focus();
  }

  private setStop(grid: Element) {
    const buttons = [...grid.querySelectorAll<HTMLButtonElement>('button[data-spec]')];
    const stop = rovingStop(buttons.map((b) => b.dataset.spec ?? ''), this.state?.image ?? null);
    buttons.forEach((b, i) => (b.tabIndex = i === stop ? 0 : -1));
  }

  private thumb(spec: string, caption: string, src: string, pixelated: boolean): HTMLButtonElement {
    const img = h('img', { src, alt: '', loading: 'lazy', width: 56, height: 56, class: pixelated ? 'pixelated' : '' }) as HTMLImageElement;
    img.addEventListener('error', () => img.replaceWith(h('span', { class: 'thumb-missing', 'aria-hidden': 'true' }, '?')), { once: true });
    const b = h('button', { type: 'button', class: 'thumb-button', tabindex: -1, 'data-spec': spec, 'aria-pressed': String(spec === this.state?.image), 'aria-label': `${spec}${caption ? `, ${caption}` : ''}`, title: spec }, img, h('span', { class: 'thumb-caption' }, caption || '–')) as HTMLButtonElement;
    b.addEventListener('click', () => this.choose(spec));
    return b;
  }

  private drawDataset() {
    const dataset = this.dataset!;
    const filterId = uid('class-filter');
    const classes = this.page?.classes.length ? this.page.classes : this.state?.info.classes ?? [];
    const filter = h('select', { id: filterId, 'data-testid': 'class-filter' }, h('option', { value: '' }, 'all classes'), ...classes.map((c, k) => h('option', { value: String(k) }, c))) as HTMLSelectElement;
    filter.value = this.label;
    filter.addEventListener('change', () => {
      this.label = filter.value;
      this.pageStart = 0;
      void this.loadPage();
    });
    const prev = h('button', { type: 'button', class: 'button', 'data-testid': 'page-prev', 'aria-label': 'previous page' }, '‹ Previous') as HTMLButtonElement;
    const next = h('button', { type: 'button', class: 'button', 'data-testid': 'page-next', 'aria-label': 'next page' }, 'Next ›') as HTMLButtonElement;
    const where = h('span', { class: 'muted small', role: 'status' }, '');
    const grid = this.roving(h('div', { class: 'thumbs', role: 'group', 'aria-label': `${dataset} test images: arrow keys move between them, Enter or Space chooses one` }));
    prev.addEventListener('click', () => this.step(-1));
    next.addEventListener('click', () => this.step(1));
    replace(
      this.body,
      h('div', { class: 'control-row' }, h('span', { class: 'control' }, h('label', { for: filterId }, `${dataset} test images of`), filter), h('span', { class: 'pager' }, prev, where, next)),
      grid,
    );
    this.drawPage();
    if (!this.page || this.page.start !== this.pageStart) void this.loadPage();
  }

  private step(direction: -1 | 1) {
    const total = this.page?.total ?? 0;
    const start = pageStep(this.pageStart, PAGE_SIZE, total, direction);
    if (start === null) return;
    this.pageStart = start;
    void this.loadPage();
  }

  private async loadPage() {
    const dataset = this.dataset;
    if (!dataset) return;
    this.pageAbort?.abort();
    const abort = new AbortController();
    this.pageAbort = abort;
    const grid = this.body.querySelector('.thumbs');
    if (grid && !this.page) replace(grid, loadingBox('Loading the images…'));
    grid?.classList.add('is-loading');
    try {
      const page = parseDatasetPage(await getJson(datasetUrl(dataset, this.pageStart, PAGE_SIZE, this.label), undefined, abort.signal));
      if (abort.signal.aborted || !this.alive || dataset !== this.dataset) return;
      this.page = page;
      if (this.source === 'dataset') this.drawPage();
    } catch (error) {
      if (abort.signal.aborted || !this.alive) return;
      const g = this.body.querySelector('.thumbs');
      if (g) replace(g, errorBox((error as Error).message, `The ${dataset} images could not be listed`));
      g?.classList.remove('is-loading');
    }
  }

  private drawPage() {
    const grid = this.body.querySelector('.thumbs');
    const where = this.body.querySelector('.pager [role=status]');
    const [prev, next] = [...this.body.querySelectorAll<HTMLButtonElement>('.pager button')];
    if (!grid) return;
    grid.classList.remove('is-loading');
    const page = this.page;
    if (!page) {
      replace(grid, loadingBox('Loading the images…'));
      return;
    }
    if (where) where.textContent = pageText(page.start, page.images.length, page.total);
    if (prev) prev.disabled = pageStep(page.start, PAGE_SIZE, page.total, -1) === null;
    if (next) next.disabled = pageStep(page.start, PAGE_SIZE, page.total, 1) === null;
    if (!page.images.length) {
      replace(grid, emptyBox('No images of this class.'));
      return;
    }
    const hadFocus = grid.contains(document.activeElement);
    replace(grid, ...page.images.map((img) => this.thumb(img.spec, img.className, imageUrl(img.spec), true)));
    this.setStop(grid);
    // a new page while moving through the grid keeps the focus in it
    if (hadFocus) grid.querySelector<HTMLButtonElement>('button[tabindex="0"]')?.focus();
  }

  private async loadSamples(signal: AbortSignal): Promise<Sample[]> {
    if (this.samples) return this.samples;
    try {
      this.samples = parseSamples(await getJson('api/samples', undefined, signal));
      this.samplesError = null;
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      this.samplesError = (error as Error).message;
      return [];
    }
    return this.samples;
  }

  private async drawSamples() {
    const signal = this.state?.signal;
    if (!signal) return;
    const model = this.state!.model;
    replace(this.body, loadingBox('Loading the sample photos…'));
    let samples: Sample[];
    try {
      samples = await this.loadSamples(signal);
    } catch {
      return;
    }
    if (this.source !== 'samples' || !this.alive) return;
    if (this.samplesError) {
      replace(this.body, errorBox(this.samplesError, 'The sample photos could not be listed'));
      this.samples = null;
      return;
    }
    if (!samples.length) {
      replace(this.body, emptyBox('No sample photos here', 'They ship with scikit-learn and scikit-image; upload an image instead.'));
      return;
    }
    const small = (this.state!.info.input_shape[2] ?? 0) <= 64;
    const grid = this.roving(h('div', { class: 'thumbs', role: 'group', 'aria-label': 'sample photos: arrow keys move between them, Enter or Space chooses one' }, ...samples.map((s) => this.thumb(s.spec, s.name, imageUrl(s.spec, model), small))));
    this.setStop(grid);
    replace(this.body, h('p', { class: 'muted small' }, 'Photos that ship with scikit-learn and scikit-image, shown as the model sees them.'), grid);
  }

  private drawUpload() {
    const id = uid('upload');
    const input = h('input', { type: 'file', id, accept: 'image/*', 'data-testid': 'upload-input' }) as HTMLInputElement;
    this.uploadNote = h('div', { class: 'upload-note', 'aria-live': 'polite' });
    input.addEventListener('change', () => {
      const file = input.files?.[0];
      if (file) void this.upload(file);
    });
    replace(
      this.body,
      h('div', { class: 'control' }, h('label', { for: id }, 'An image file'), input),
      h('p', { class: 'muted small' }, 'PNG, JPEG, … It is decoded by the server (size-limited) and kept in its memory only.'),
      this.uploadNote,
    );
  }

  private async upload(file: File) {
    const note = this.uploadNote;
    if (!note) return;
    replace(note, loadingBox(`Uploading ${file.name}…`));
    const form = new FormData();
    form.append('file', file, file.name);
    try {
      const response = await fetchOk('api/images', this.state?.signal, { method: 'POST', body: form, headers: { Accept: 'application/json' } });
      const body = (await response.json()) as { spec?: unknown };
      if (typeof body.spec !== 'string') throw new ApiError(500, 'the server kept the upload but named no SPEC');
      if (!this.alive || note !== this.uploadNote) return;
      replace(note, h('p', { class: 'small' }, `${file.name} is `, h('code', {}, body.spec)));
      this.choose(body.spec);
    } catch (error) {
      if (!this.alive || note !== this.uploadNote || isAbort(error, this.state?.signal)) return;
      replace(note, errorBox((error as Error).message, `${file.name} could not be used`));
    }
  }

  private drawSpecForm() {
    const id = uid('spec');
    const input = h('input', { type: 'text', id, class: 'spec-input', spellcheck: 'false', autocomplete: 'off', placeholder: 'mnist:test:12 or sample:chelsea', 'data-testid': 'spec-input' }) as HTMLInputElement;
    input.value = this.state?.image ?? '';
    const form = h('form', { class: 'control spec-form' }, h('label', { for: id }, 'SPEC'), input, h('button', { type: 'submit', class: 'button' }, 'Show'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const spec = input.value.trim();
      if (spec) this.choose(spec);
    });
    replace(this.body, form, h('p', { class: 'muted small' }, 'A dataset image (mnist:test:12, fashion-mnist:train:3), a sample photo (sample:chelsea) or an upload (upload:ID).'));
  }
}
