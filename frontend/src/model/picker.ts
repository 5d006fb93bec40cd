// The model explorer's top bar: which model (a zoo name, a run of the store as `run:ID`,
// a name given with `--model`, or one typed) and, for a run, which epoch: a slider over
// its checkpoints (epoch 0 = before training). Dragging is debounced, a release or a key
// commits at once; new checkpoints of a run still training extend the slider (live feed).
import { emptyBox, errorBox, h, loadingBox, replace, uid } from '../dom';
import { debounce } from '../live';
import type { RunSummary } from '../types';
import type { ModelInfo } from './context';
import { formatCount } from './graph';

// --------------------------------------------------------------------------- pure logic

export interface ModelRef {
  /** The model without an epoch: `lenet5`, `torchvision:resnet50`, `run:ID`. */
  base: string;
  /** The run's id when the model is a run of the store. */
  run: string | null;
  /** The epoch given with `@EPOCH`, if any. */
  epoch: number | null;
}

/** `run:ab12@3` -> base `run:ab12`, run `ab12`, epoch 3; other names as they are. */
export function parseModelRef(text: string): ModelRef {
  const model = text.trim();
  const m = /^run:([^@\s]+)(?:@(\d+))?$/.exec(model);
  if (!m) return { base: model, run: null, epoch: null };
  return { base: `run:${m[1]}`, run: m[1], epoch: m[2] === undefined ? null : Number(m[2]) };
}

/** The MODEL of requests: `run:ID@EPOCH` for a run at an epoch, else the base. */
export function requestModel(base: string, epoch: number | null): string {
  const ref = parseModelRef(base);
  return ref.run !== null && epoch !== null ? `${ref.base}@${epoch}` : ref.base;
}

/** Two run ids name the same run when one is a prefix of the other (short and full ids). */
export function sameRun(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  return a === b || a.startsWith(b) || b.startsWith(a);
}

/** Sorted, distinct, whole epochs. */
export function normaliseEpochs(epochs: readonly unknown[] | null | undefined): number[] {
  return [...new Set((epochs ?? []).filter((e): e is number => typeof e === 'number' && Number.isInteger(e) && e >= 0))].sort((a, b) => a - b);
}

/** The epoch to show: the wanted one if the run has it, else the latest at or before it, else the last. */
export function pickEpoch(epochs: readonly number[], wanted: number | null): number | null {
  if (!epochs.length) return null;
  if (wanted === null || !Number.isFinite(wanted)) return epochs[epochs.length - 1];
  if (epochs.includes(wanted)) return wanted;
  const before = epochs.filter((e) => e <= wanted);
  return before.length ? before[before.length - 1] : epochs[0];
}

export function withEpoch(epochs: readonly number[], epoch: number): number[] {
  return normaliseEpochs([...epochs, epoch]);
}

export function epochLabel(epoch: number): string {
  return epoch === 0 ? 'epoch 0 = before training' : `epoch ${epoch}`;
}

export function epochOfText(epoch: number, epochs: readonly number[]): string {
  const last = epochs[epochs.length - 1];
  return `${epochLabel(epoch)}${last !== undefined && last !== epoch ? ` (of ${last})` : epoch === last && last > 0 ? ' (latest)' : ''}`;
}

/** The route's state: which model (without its epoch), epoch, layer and image. */
export interface ModelRoute {
  model: string | null;
  epoch: number | null;
  layer: string | null;
  image: string | null;
}

export function readModelRoute(params: URLSearchParams): ModelRoute {
  const ref = parseModelRef(params.get('model') ?? '');
  const epochText = params.get('epoch');
  const epoch = epochText !== null && /^\d+$/.test(epochText) ? Number(epochText) : ref.epoch;
  return { model: ref.base || null, epoch: ref.run ? epoch : null, layer: params.get('layer') || null, image: params.get('image') || null };
}

/**
 * The epoch the route asked for, as written (`epoch=7`, `epoch=abc`, or the `@7` of
 * `model=run:ID@7`), or null when it names none: what a note quotes when the run lacks it.
 */
export function askedEpoch(params: URLSearchParams): string | null {
  const text = params.get('epoch')?.trim();
  if (text) return text;
  const ref = parseModelRef(params.get('model') ?? '');
  return ref.run !== null && ref.epoch !== null ? String(ref.epoch) : null;
}

/** `[0, 1, 2, 3]` -> `0–3`; `[0, 1, 2, 5, 7, 8]` -> `0–2, 5, 7, 8` (runs of three or more as a range). */
export function epochsText(epochs: readonly number[]): string {
  const sorted = normaliseEpochs(epochs);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j += 1;
    if (j - i >= 2) parts.push(`${sorted[i]}–${sorted[j]}`);
    else for (let k = i; k <= j; k += 1) parts.push(String(sorted[k]));
    i = j + 1;
  }
  return parts.join(', ');
}

/**
 * What the model bar says when the route asked for an epoch the run lacks (`epoch=7`,
 * `-1`, `abc`): `run NAME has no epoch 7; showing epoch 3 (its epochs: 0–3)`; null when
 * the run has the epoch asked (or none was asked).
 */
export function epochNote(runName: string, asked: string | null, epochs: readonly number[], shown: number | null): string | null {
  if (asked === null || asked === '') return null;
  const list = normaliseEpochs(epochs);
  if (/^\d+$/.test(asked) && list.includes(Number(asked)) && Number(asked) === shown) return null;
  if (shown === null || !list.length) return `run ${runName} has no epoch ${asked} (it has no checkpoints yet)`;
  return `run ${runName} has no epoch ${asked}; showing epoch ${shown} (its epochs: ${epochsText(list)})`;
}

export function modelRouteParams(route: ModelRoute): Record<string, string | number | null> {
  return { model: route.model, epoch: route.epoch, layer: route.layer, image: route.image };
}

/** Whether an image chosen for one model still makes sense for another (same dataset, or not a dataset image). */
export function keepsImage(image: string | null, oldDataset: string | null, newDataset: string | null): boolean {
  if (!image) return false;
  if (/^(sample|upload):/.test(image)) return true;
  return !!oldDataset && oldDataset === newDataset;
}

export interface ModelChoice {
  value: string;
  label: string;
  group: 'run' | 'zoo' | 'given';
  title?: string;
  /** A `--model` name the server could not load: listed, not openable (its title says why). */
  disabled?: boolean;
  /** For a `--model` name: what was given (the file, or `resnet50=imagenet`). */
  source?: string;
}

type Json = Record<string, unknown>;

/** The hint of trained weights in the dashboard's words: it has no --weights flag, the server's --model takes them. */
export function dashboardDescription(name: string, description: string): string {
  const m = /^(.*?);?\s*--weights imagenet\b(.*)$/.exec(description);
  if (!m) return description;
  const needs = /with (convscope\[\w+\])/.exec(m[2])?.[1];
  return `${m[1].replace(/[;,]\s*$/, '')}; trained weights: start the server with --model ${name}=imagenet (or --model FILE)${needs ? `; needs ${needs}` : ''}`;
}

/** What a `--model` record's description says was given: `given with --model: PATH (WEIGHTS)` -> PATH. */
export function givenSource(description: string, hasWeights = true): string {
  let text = description.replace(/^given with --model:\s*/, '').trim();
  if (hasWeights && text.endsWith(')')) {
    // the last balanced `(...)` is the weights (which may hold parentheses of their own)
    let depth = 0;
    for (let i = text.length - 1; i >= 0; i -= 1) {
      if (text[i] === ')') depth += 1;
      else if (text[i] === '(' && (depth -= 1) === 0) {
        if (i > 0 && text[i - 1] === ' ') text = text.slice(0, i - 1);
        break;
      }
    }
  }
  return text;
}

/** The shortest tails of `paths` (by path segment) that tell them apart: `/a/b/m.pt`, `/a/c/m.pt` -> `b/m.pt`, `c/m.pt`. */
export function distinctTails(paths: readonly string[]): string[] {
  const split = paths.map((p) => p.split(/[\\/]+/).filter(Boolean));
  const longest = Math.max(1, ...split.map((s) => s.length));
  for (let k = 1; k <= longest; k += 1) {
    const tails = split.map((s) => s.slice(-k).join('/'));
    if (new Set(tails).size === tails.length) return tails;
  }
  return [...paths];
}

/** The picker's options: the store's runs (newest first), the zoo, the `--model` names. */
export function modelChoices(models: unknown, runs: readonly RunSummary[]): ModelChoice[] {
  const runChoices: ModelChoice[] = [...runs]
    .sort((a, b) => b.created.localeCompare(a.created))
    .map((r) => ({
      value: `run:${r.id}`,
      group: 'run',
      label: `${r.name} — ${r.model} on ${r.dataset}${r.status === 'running' ? ' (training)' : ''}`,
      title: `run ${r.id}: ${r.epochsCompleted} epoch${r.epochsCompleted === 1 ? '' : 's'}, ${r.status}`,
    }));
  const listed: ModelChoice[] = (Array.isArray(models) ? models : []).flatMap((raw) => {
    const m = (raw ?? {}) as Json;
    if (typeof m.name !== 'string' || !m.name) return [];
    const description = typeof m.description === 'string' ? m.description : '';
    const given = description.startsWith('given with --model');
    const error = typeof m.error === 'string' && m.error ? m.error : null;
    const params = typeof m.params === 'number' ? `${formatCount(m.params)} params` : '';
    const bits = [typeof m.dataset === 'string' && m.dataset ? m.dataset : '', params].filter(Boolean).join(', ');
    if (!given) return [{ value: m.name, group: 'zoo', label: `${m.name}${bits ? ` (${bits})` : ''}`, title: error ?? dashboardDescription(m.name, description) } satisfies ModelChoice];
    const choice: ModelChoice = {
      value: m.name,
      group: 'given',
      label: `${m.name}${bits ? ` (${bits})` : ''}`,
      title: error ?? description,
      source: givenSource(description, !error),
    };
    if (error) choice.disabled = true;
    return [choice];
  });
  // Two files of one name (`checkpoint.ckpt`, `checkpoint.ckpt (2)`): each label ends
  // with as much of its path as tells them apart.
  const given = listed.filter((c) => c.group === 'given');
  const stem = (c: ModelChoice) => c.value.replace(/ \(\d+\)$/, '');
  for (const c of given) {
    const same = given.filter((o) => stem(o) === stem(c));
    if (same.length < 2) continue;
    const tails = distinctTails(same.map((o) => o.source ?? o.value));
    c.label += ` — ${tails[same.indexOf(c)]}`;
  }
  for (const c of given) if (c.disabled) c.label += ' (could not be loaded)';
  return [...runChoices, ...listed];
}

/** The model a view opens with when none is named: the newest run, else the first zoo model. */
export function defaultModel(choices: readonly ModelChoice[]): string | null {
  const open = choices.filter((c) => !c.disabled);
  return (open.find((c) => c.group === 'run') ?? open.find((c) => c.group === 'zoo') ?? open[0])?.value ?? null;
}

// --------------------------------------------------------------------------- the bar

export interface BarHandlers {
  onModel(base: string): void;
  onEpoch(epoch: number): void;
}

const GROUPS: [ModelChoice['group'], string][] = [
  ['run', 'Runs in the store'],
  ['zoo', 'Model zoo'],
  ['given', 'Given with --model'],
];

/** The typed name's tooltip: what a name may be, and where trained weights come from (the server's --model, not a flag here). */
export const NAME_HINT = 'a zoo name, torchvision:NAME, timm:NAME, run:ID or a name given with --model; trained weights: start the server with --model resnet50=imagenet (or --model FILE)';

/** Debounce of a dragged slider: one redraw per pause, none per pixel. */
export const DRAG_DEBOUNCE_MS = 120;

export class ModelBar {
  readonly el: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly other: HTMLInputElement;
  private readonly epochRow: HTMLElement;
  private readonly slider: HTMLInputElement;
  private readonly epochText: HTMLOutputElement;
  private readonly facts: HTMLElement;
  private readonly note: HTMLElement;
  private readonly links: HTMLElement;
  private readonly status: HTMLElement;
  private choices: ModelChoice[] = [];
  private current = '';
  private epochs: number[] = [];
  private committed: number | null = null;
  private readonly commitLater: ReturnType<typeof debounce<[]>>;

  constructor(private readonly handlers: BarHandlers) {
    const selectId = uid('model');
    const otherId = uid('model-other');
    const sliderId = uid('epoch');
    this.select = h('select', { id: selectId, 'data-testid': 'model-picker', disabled: true }, h('option', {}, 'loading…')) as HTMLSelectElement;
    this.select.addEventListener('change', () => {
      if (this.select.value && this.select.value !== this.current) this.handlers.onModel(this.select.value);
    });
    this.other = h('input', { id: otherId, type: 'text', class: 'model-other', placeholder: 'torchvision:resnet50', title: NAME_HINT, spellcheck: 'false', autocomplete: 'off', 'data-testid': 'model-other' }) as HTMLInputElement;
    const open = h('button', { type: 'submit', class: 'button' }, 'Open');
    const form = h('form', { class: 'control model-other-form', 'aria-label': 'open a model by name' }, h('label', { for: otherId }, 'or name'), this.other, open);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = this.other.value.trim();
      if (name) this.handlers.onModel(parseModelRef(name).base);
    });
    this.slider = h('input', { type: 'range', id: sliderId, min: 0, max: 0, step: 1, value: 0, 'data-testid': 'epoch-slider' }) as HTMLInputElement;
    this.epochText = h('output', { for: sliderId, class: 'epoch-text', 'data-testid': 'epoch-value' }, '–') as HTMLOutputElement;
    this.epochRow = h(
      'div',
      { class: 'control epoch-control', 'data-testid': 'epoch-control', hidden: true },
      h('label', { for: sliderId }, 'Epoch'),
      this.slider,
      this.epochText,
      h('span', { class: 'muted small' }, 'epoch 0 = before training'),
    );
    this.commitLater = debounce(() => this.commit(), DRAG_DEBOUNCE_MS);
    this.slider.addEventListener('input', () => {
      this.showSlider();
      this.commitLater();
    });
    this.slider.addEventListener('change', () => {
      this.commitLater.cancel();
      this.showSlider();
      this.commit();
    });
    this.facts = h('div', { class: 'model-facts muted small', 'data-testid': 'model-facts' });
    this.note = h('p', { class: 'model-bar-note small', role: 'status', 'data-testid': 'model-note' });
    this.links = h('div', { class: 'model-bar-links small', 'data-testid': 'model-links' });
    this.status = h('div', { class: 'model-bar-status' });
    this.el = h(
      'section',
      { class: 'panel model-bar', 'aria-label': 'model and epoch', 'data-testid': 'model-bar' },
      h('div', { class: 'control-row' }, h('span', { class: 'control' }, h('label', { for: selectId }, 'Model'), this.select), form, this.epochRow),
      this.facts,
      this.note,
      this.links,
      this.status,
    );
  }

  loading(): void {
    replace(this.status, loadingBox('Loading the models…'));
  }

  failed(message: string): void {
    replace(this.status, errorBox(message, 'The models could not be listed'));
  }

  setChoices(choices: ModelChoice[], current: string): void {
    this.choices = choices;
    this.current = current;
    replace(this.status);
    if (!choices.length) replace(this.status, emptyBox('The server serves no models.'));
    const options = (group: ModelChoice['group']) => choices.filter((c) => c.group === group).map((c) => h('option', { value: c.value, title: c.title ?? null, disabled: c.disabled === true }, c.label));
    const known = choices.some((c) => c.value === current);
    replace(
      this.select,
      current && !known ? h('option', { value: current }, current) : null,
      ...GROUPS.filter(([g]) => choices.some((c) => c.group === g)).map(([g, label]) => h('optgroup', { label }, ...options(g))),
    );
    this.select.disabled = choices.length === 0 && !current;
    this.select.value = current;
  }

  /** The model shown (base, without its epoch). */
  setCurrent(base: string): void {
    if (!this.choices.some((c) => c.value === base) && base) this.setChoices(this.choices, base);
    this.current = base;
    this.select.value = base;
    if (parseModelRef(base).base !== parseModelRef(this.other.value).base) this.other.value = '';
  }

  /** A model's facts (dataset, size, input, weights), or a note while it loads. */
  setInfo(info: ModelInfo | null, note?: string): void {
    if (!info) {
      replace(this.facts, note ?? '');
      return;
    }
    const parts = [
      info.dataset ? `dataset ${info.dataset}` : 'no dataset',
      `${formatCount(info.params)} parameters`,
      `input ${info.input_shape.join('×')}`,
      info.classes ? `${info.classes.length} classes` : 'classes not named',
    ];
    const source = this.choices.find((c) => c.value === this.current && c.group === 'given')?.source;
    replace(
      this.facts,
      h('span', {}, parts.join(' · ')),
      ' · ',
      h('span', { 'data-testid': 'model-weights' }, `weights: ${info.weights || '–'}`),
      source ? [' · ', h('span', { class: 'mono', 'data-testid': 'model-source' }, `given with --model: ${source}`)] : null,
    );
  }

  /** A note on what is shown (an epoch the route asked for that the run lacks), or none. */
  setNote(text: string | null): void {
    replace(this.note, text ?? '');
  }

  /** Links to other views of what is shown (the embedding explorer of a run that recorded layers). */
  setLinks(...links: HTMLElement[]): void {
    replace(this.links, ...links);
  }

  /** A run's checkpoints (or none: not a run) and the epoch shown. */
  setEpochs(epochs: readonly number[] | null, epoch: number | null): void {
    this.commitLater.cancel();
    this.epochs = normaliseEpochs(epochs);
    this.epochRow.hidden = epochs === null;
    this.committed = epoch;
    this.slider.max = String(Math.max(0, this.epochs.length - 1));
    this.slider.disabled = this.epochs.length < 2;
    this.slider.value = String(Math.max(0, epoch === null ? 0 : this.epochs.indexOf(epoch)));
    if (epochs !== null && !this.epochs.length) {
      this.epochText.textContent = 'no checkpoints yet';
      this.slider.setAttribute('aria-valuetext', 'no checkpoints yet');
      return;
    }
    this.showSlider();
  }

  /** A new checkpoint of the shown run: the slider reaches it; the epoch shown stays. */
  addEpoch(epoch: number): void {
    if (this.epochRow.hidden || this.epochs.includes(epoch)) return;
    const first = this.epochs.length === 0;
    const shown = this.epochs[Number(this.slider.value)];
    this.epochs = withEpoch(this.epochs, epoch);
    this.slider.max = String(Math.max(0, this.epochs.length - 1));
    this.slider.disabled = this.epochs.length < 2;
    this.slider.value = String(this.epochs.indexOf(shown ?? epoch));
    this.showSlider();
    if (first) this.commit();
  }

  get epochList(): number[] {
    return [...this.epochs];
  }

  destroy(): void {
    this.commitLater.cancel();
  }

  private sliderEpoch(): number | null {
    return this.epochs[Number(this.slider.value)] ?? null;
  }

  private showSlider() {
    const epoch = this.sliderEpoch();
    const text = epoch === null ? '–' : epochOfText(epoch, this.epochs);
    this.epochText.textContent = text;
    this.slider.setAttribute('aria-valuetext', text);
  }

  private commit() {
    const epoch = this.sliderEpoch();
    if (epoch === null || epoch === this.committed) return;
    this.committed = epoch;
    this.handlers.onEpoch(epoch);
  }
}
