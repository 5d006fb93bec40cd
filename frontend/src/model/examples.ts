// Dataset examples: the images that activate a channel of this layer most and least
// (`GET api/models/{model}/examples`, which may answer 202 while a job ranks the set),
// as thumbnails with their class and activation. Pressing one makes it the input.
import { getComputed } from '../api';
import { emptyBox, h, loadingBox, progressBox, replace } from '../dom';
import { shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext, type ModelInfo } from './context';
import { unitsOf } from './features';
import { isBrowsable } from './input';
import { failureBox, fetchObjectUrl, fieldId, flattenSource, flatUnitText, isAbort, keyOf, LatestRunner, layerRows, replaceControls } from './tabkit';

export interface Example {
  spec: string;
  label: number | null;
  class: string | null;
  activation: number | null;
}

export interface Examples {
  model: string;
  weights?: string;
  layer: string;
  channel: number;
  images: string;
  count: number;
  statistic: string;
  top: Example[];
  bottom: Example[];
}

export const EXAMPLES_TOP = 9;

export function isExamples(value: unknown): value is Examples {
  return !!value && typeof value === 'object' && Array.isArray((value as Examples).top) && Array.isArray((value as Examples).bottom);
}

/** An example's caption: its class name (or its label as a class of the model), and its activation. */
export function exampleCaption(example: Example, classes: string[] | null): string {
  const name = example.class ?? (example.label !== null && classes?.[example.label] !== undefined ? classes[example.label] : null);
  return `${name ?? 'no label'} · ${shortNumber(example.activation, 3)}`;
}

const THUMB_CACHE = 300;

/**
 * Whether the model has a default set to rank: its run's probe set, or a sample of a
 * dataset on this machine (the ones the input panel browses; any other is a 409 until
 * `convscope data fetch`, and a model of no dataset has none).
 */
export function hasDefaultSet(info: Pick<ModelInfo, 'run' | 'dataset'>): boolean {
  return !!info.run || isBrowsable(info.dataset);
}

/** The default set in words. */
export function defaultSetText(info: Pick<ModelInfo, 'run' | 'dataset'>): string {
  if (info.run) return `the probe set of run ${info.run}`;
  return info.dataset ? `a stratified sample of the ${info.dataset} test split` : 'no default set';
}

const DATASET_SPEC = /^[A-Za-z0-9][\w-]*(\.[\w-]+)*:[\w-]+:\d+(-\d+)?$/;
const ONE_IMAGE = /^(?:sample:[\w-]+|upload:[0-9a-f]{1,64})$/;

/**
 * What is wrong with a SPEC typed in for the images to rank (null: it is one a request
 * may give: `DATASET:SPLIT:INDEX`, `DATASET:SPLIT:A-B`, `sample:NAME`, `upload:ID`).
 * Checked here so a slip of the keyboard is said at once, not as a 400.
 */
export function specProblem(text: string): string | null {
  const spec = text.trim();
  if (!spec) return null;
  if (ONE_IMAGE.test(spec)) return null;
  if (!DATASET_SPEC.test(spec)) return `'${spec}' is not a SPEC: give DATASET:SPLIT:A-B (e.g. mnist:test:0-500), DATASET:SPLIT:INDEX, sample:NAME or upload:ID`;
  const range = /:(\d+)-(\d+)$/.exec(spec);
  if (range && Number(range[1]) >= Number(range[2])) return `empty range ${range[1]}-${range[2]}: A must be less than B (A inclusive, B exclusive), e.g. ${spec.replace(/\d+-\d+$/, `${range[1]}-${Number(range[1]) + 100}`)}`;
  return null;
}

/** What a unit of the layer is called: a channel of maps, or a unit of a vector. */
export function unitWord(outputShape: number[] | null | undefined): 'channel' | 'unit' {
  return outputShape && outputShape.length === 2 ? 'unit' : 'channel';
}

export class ExamplesTab {
  readonly el: HTMLElement;
  private readonly runner = new LatestRunner();
  private readonly controls: HTMLElement;
  private readonly body: HTMLElement;
  private ctx: LayerPanelContext | null = null;
  private key = '';
  private channel = 0;
  /** The images to rank per model ('' or absent: its default set). */
  private readonly specs = new Map<string, string>();
  private specNote: string | null = null;
  private flat: { layer: string; shape: [number, number, number] } | null = null;
  private readonly thumbs = new Map<string, Promise<string>>();

  constructor(private readonly sharedChannel: () => number | null, private readonly choose: (spec: string) => void) {
    this.controls = h('div', { class: 'control-row cs-controls' });
    this.body = h('div', { class: 'cs-tab-body' });
    this.el = h('div', { class: 'cs-examples' }, this.controls, this.body);
  }

  show(ctx: LayerPanelContext): void {
    const layerChanged = !this.ctx || this.ctx.layer !== ctx.layer || this.ctx.info.name !== ctx.info.name;
    this.ctx = ctx;
    const shared = this.sharedChannel();
    // a channel clicked in the feature maps since the last look becomes this tab's channel
    if (layerChanged) {
      this.channel = shared ?? 0;
      this.flat = null;
      this.specNote = null;
      if (ctx.layerType === 'Flatten') this.findFlatSource(ctx);
    } else if (shared !== null && shared !== this.lastShared) this.channel = shared;
    this.lastShared = shared;
    this.drawControls(ctx);
    this.load(ctx);
  }

  /** A Flatten layer's units as (channel, row, column) of the layer before it, once known. */
  private findFlatSource(ctx: LayerPanelContext): void {
    void layerRows(ctx.model, ctx.info.name).then((rows) => {
      const source = flattenSource(rows, ctx.layer);
      if (!source || this.ctx?.layer !== ctx.layer || this.ctx.info.name !== ctx.info.name) return;
      this.flat = source;
      this.drawControls(this.ctx);
    }, () => undefined);
  }

  private specFor(ctx: LayerPanelContext): string {
    return this.specs.get(ctx.info.name) ?? '';
  }

  private lastShared: number | null = null;

  private drawControls(ctx: LayerPanelContext): void {
    const channels = unitsOf(ctx.outputShape);
    const word = unitWord(ctx.outputShape);
    const id = fieldId('channel');
    const input = h('input', { id, type: 'number', min: 0, max: channels !== null ? channels - 1 : null, step: 1, value: this.channel, class: 'cs-number' }) as HTMLInputElement;
    input.addEventListener('change', () => {
      const v = Math.max(0, Math.floor(Number(input.value) || 0));
      this.channel = channels !== null ? Math.min(channels - 1, v) : v;
      if (this.ctx) {
        this.drawControls(this.ctx);
        this.load(this.ctx);
      }
    });
    const unit = h('span', { class: 'control' }, h('label', { for: id }, word === 'unit' ? 'Unit' : 'Channel'), input, channels !== null ? h('span', { class: 'small muted' }, `of 0–${channels - 1}`) : null);

    // the images to rank, as a SPEC (empty: the model's default set)
    const specId = fieldId('spec');
    const hintId = `${specId}-hint`;
    const fallback = hasDefaultSet(ctx.info);
    const spec = h('input', {
      id: specId, type: 'text', class: 'cs-spec', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': hintId,
      placeholder: fallback ? 'the default set' : 'e.g. mnist:test:0-500',
      value: this.specFor(ctx),
    }) as HTMLInputElement;
    const rank = h('button', { type: 'button', class: 'button' }, 'Rank') as HTMLButtonElement;
    const apply = () => {
      const text = spec.value.trim();
      const problem = specProblem(text);
      this.specNote = problem;
      if (!problem) this.specs.set(ctx.info.name, text);
      if (this.ctx) {
        this.drawControls(this.ctx);
        if (!problem) this.load(this.ctx);
      }
    };
    spec.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        apply();
      }
    });
    rank.addEventListener('click', apply);
    const hint = h('span', { id: hintId, class: 'small muted cs-spec-hint' },
      this.specNote ? h('span', { class: 'error-line' }, this.specNote) : `${fallback ? `Empty: ${defaultSetText(ctx.info)}. ` : ''}DATASET:SPLIT:A-B ranks a range (mnist:test:0-500); sample:NAME or upload:ID one image.`);
    const images = h('span', { class: 'control cs-spec-control' }, h('label', { for: specId }, 'Images to rank (SPEC)'), spec, rank);
    const parts: HTMLElement[] = [unit, images, hint];
    if (word === 'channel' && ctx.outputShape && ctx.outputShape.length === 4) parts.push(h('span', { class: 'small muted' }, 'Clicking a unit in the feature maps picks its channel here too.'));
    if (word === 'unit' && this.flat) parts.push(h('span', { class: 'small muted' }, `${flatUnitText(this.channel, this.flat)}.`));
    replaceControls(this.controls, ...parts);
  }

  private load(ctx: LayerPanelContext): void {
    const image = this.specFor(ctx);
    const word = unitWord(ctx.outputShape);
    if (!image && !hasDefaultSet(ctx.info)) {
      // nothing the server could rank by itself: no request (it would be a 4xx)
      this.key = '';
      this.runner.cancel();
      const why = ctx.info.dataset
        ? `${ctx.info.name} was made for ${ctx.info.dataset}, which is not on this machine, and it is no run with a probe set, so there is no default set of images to rank.`
        : `${ctx.info.name} names no dataset it was made for, and it is no run with a probe set, so there is no default set of images to rank.`;
      replace(this.body, emptyBox(`No images to rank for ${word} ${this.channel} of ${ctx.layer} yet`,
        h('p', {}, why),
        h('p', {}, 'Give them above as a SPEC: a range of a dataset on this machine, such as mnist:test:0-500 or fashion-mnist:test:0-500 (the model sees each image at its own input size and colours), then press Rank. A SPEC names one sample photo (sample:chelsea) at a time, so the photos cannot be ranked together.')));
      return;
    }
    const url = modelUrl(ctx.model, 'examples', { layer: ctx.layer, channel: this.channel, top: EXAMPLES_TOP, image: image || null });
    const key = keyOf(url);
    if (key === this.key) return;
    this.key = key;
    const channel = this.channel;
    replace(this.body, loadingBox(`Finding the images that excite ${word} ${channel} of ${ctx.layer}…`));
    this.runner.run(async (token, signal) => {
      const stale = () => !this.runner.current(token);
      let progress: ReturnType<typeof progressBox> | null = null;
      try {
        const answer = await getComputed<Examples>(url, {
          accept: isExamples,
          signal,
          onProgress: (job) => {
            if (stale()) return;
            if (!progress) {
              progress = progressBox(`Ranking the images by ${word} ${channel}`);
              replace(this.body, progress.el);
            }
            progress.update(job.progress, job.message || `Ranking the images by ${word} ${channel}`);
          },
        });
        if (stale()) return;
        this.draw(ctx, answer);
      } catch (error) {
        if (isAbort(error) || stale()) return;
        this.key = '';
        replace(this.body, failureBox(error, `No examples for ${word} ${channel} of ${ctx.layer}`, 'The examples could not be found'));
      }
    });
  }

  private thumb(spec: string): Promise<string> {
    let url = this.thumbs.get(spec);
    if (!url) {
      url = fetchObjectUrl(`api/image.png?image=${encodeURIComponent(spec)}`);
      url.catch(() => this.thumbs.delete(spec));
      this.thumbs.set(spec, url);
      if (this.thumbs.size > THUMB_CACHE) {
        const [oldest, value] = this.thumbs.entries().next().value as [string, Promise<string>];
        this.thumbs.delete(oldest);
        void value.then((u) => URL.revokeObjectURL(u), () => undefined);
      }
    }
    return url;
  }

  private row(ctx: LayerPanelContext, title: string, examples: Example[], testid: string): HTMLElement {
    const list = h('ol', { class: 'cs-thumbs', 'data-testid': testid, 'aria-label': title });
    for (const example of examples) {
      const caption = exampleCaption(example, ctx.info.classes);
      const img = h('img', { class: 'cs-thumb', alt: '', width: 72, height: 72 }) as HTMLImageElement;
      const button = h('button', { type: 'button', class: 'cs-thumb-button', title: `${example.spec}: use it as the input`, 'aria-label': `${example.spec}, ${caption}; use as the input` }, img, h('span', { class: 'cs-thumb-caption small' }, h('span', { class: 'cs-thumb-class' }, caption.split(' · ')[0]), h('span', { class: 'mono' }, caption.split(' · ')[1] ?? '')));
      button.addEventListener('click', () => this.choose(example.spec));
      void this.thumb(example.spec).then((u) => {
        img.src = u;
      }, () => {
        img.replaceWith(h('span', { class: 'cs-thumb cs-thumb-missing small muted' }, 'no picture'));
      });
      list.append(h('li', {}, button));
    }
    return h('section', { class: 'cs-examples-row' }, h('h3', {}, title), examples.length ? list : h('p', { class: 'muted' }, 'none'));
  }

  private draw(ctx: LayerPanelContext, data: Examples): void {
    if (!data.top.length && !data.bottom.length) {
      replace(this.body, emptyBox('No images to rank', `The set (${data.images}) is empty.`));
      return;
    }
    const vector = unitWord(ctx.outputShape) === 'unit';
    const what = vector ? `value of unit ${data.channel}` : `${data.statistic} of channel ${data.channel}`;
    const set = /^[\w.-]+:[\w-]+:\d/.test(data.images) || /^(sample|upload):/.test(data.images) ? data.images : `the ${data.images}`;
    replace(this.body,
      this.row(ctx, `Most active: the ${data.top.length} image${data.top.length === 1 ? '' : 's'} with the largest ${what}`, data.top, 'examples-top'),
      this.row(ctx, `Least active: the ${data.bottom.length} with the smallest`, data.bottom, 'examples-bottom'),
      h('p', { class: 'small muted' }, `Ranked over ${data.count} image${data.count === 1 ? '' : 's'}: ${set} (${vector ? "the unit's value per image" : `the ${data.statistic} of the channel's map per image`}). Press an image to make it the input.`),
    );
  }

  /** The context was withdrawn (the view moved on): drop what is in flight; the next show loads again. */
  pause(): void {
    this.runner.cancel();
    this.key = '';
  }

  destroy(): void {
    this.runner.stop();
    for (const url of this.thumbs.values()) void url.then((u) => URL.revokeObjectURL(u), () => undefined);
    this.thumbs.clear();
  }
}
