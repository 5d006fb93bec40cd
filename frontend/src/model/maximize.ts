// Activation maximisation: an input synthesised to excite a class or a channel of this
// layer (`POST api/models/{model}/maximize`), run as a job with a progress bar and a
// Cancel button; the result's picture with its score and status. A result whose
// objective did not rise (vanishing gradient, stalled) is said in words, not drawn.
import { ApiError, pollJob, type JobState } from '../api';
import { emptyBox, errorBox, h, progressBox, replace } from '../dom';
import { shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { unitsOf } from './features';
import { className, deleteJson, fetchObjectUrl, fieldId, isAbort, keyOf, messageOf, postJson, segmentedControl, selectControl, replaceControls } from './tabkit';

/** One target of `result.targets` (as `convscope maximize --json`). */
export interface MaximizeTarget {
  target: string;
  kind: string;
  index: number;
  layer: string | null;
  status: string;
  message: string;
  start_score: number | null;
  score: number | null;
  prob: number | null;
  top: [string, number | null][];
  steps: number;
}

export interface MaximizeResult {
  model: string;
  objective: string;
  seconds: number;
  targets: MaximizeTarget[];
  image: string;
}

/** A status in a few words (the table), and in a sentence (the caption, the empty state). */
export const STATUS_SHORT: Record<string, string> = {
  converged: 'converged',
  'step-limit': 'step limit reached, still rising',
  stalled: 'stalled',
  'vanishing-gradient': 'vanishing gradient',
};

export const STATUS_TEXT: Record<string, string> = {
  converged: 'converged: the objective rose and levelled off',
  'step-limit': 'reached the step limit while still rising (more steps may raise it further)',
  stalled: 'stalled: the objective did not rise',
  'vanishing-gradient': 'vanishing gradient: the objective had no gradient to follow',
};

/** Whether a target's picture is worth showing: it had a gradient and its score rose. */
export function drawn(target: MaximizeTarget): boolean {
  if (target.status === 'vanishing-gradient' || target.status === 'stalled') return false;
  if (target.score === null || target.start_score === null) return target.status === 'converged' || target.status === 'step-limit';
  return target.score > target.start_score;
}

/** The most classes "all classes" is offered for (one optimisation each: 10 take a few seconds on LeNet). */
export const MAX_ALL_CLASSES = 20;

/** Whether to offer "all classes" for a model with these classes. */
export function offersAllClasses(classes: string[] | null | undefined): boolean {
  return !!classes && classes.length > 1 && classes.length <= MAX_ALL_CLASSES;
}

export const MAX_SEED = 2 ** 32 - 1;

/**
 * The request body: `{"class": K}` (or `{"class": "all"}`, as `--class all`) or
 * `{"channel": "LAYER:C"}`, with `steps` and `seed` when given.
 */
export function maximizeBody(kind: 'class' | 'channel', layer: string, index: number | 'all', steps: number | null, seed: number | null = null): Record<string, string | number> {
  const body: Record<string, string | number> = kind === 'class' ? { class: index } : { channel: `${layer}:${index}` };
  if (steps !== null) body.steps = steps;
  if (seed !== null) body.seed = seed;
  return body;
}

/** A seed typed in: a whole number from 0 to 2³² − 1, or null for the default (empty or not a number). */
export function parseSeed(text: string): number | null {
  const v = text.trim();
  if (v === '' || !/^\d+$/.test(v)) return null;
  return Math.min(MAX_SEED, Number(v));
}

export class MaximizeTab {
  readonly el: HTMLElement;
  private readonly controls: HTMLElement;
  private readonly body: HTMLElement;
  private ctx: LayerPanelContext | null = null;
  private kind: 'class' | 'channel' = 'class';
  private classIndex: number | 'all' = 0;
  private channel = 0;
  private steps: number | null = null;
  private seed: number | null = null;
  private job: { id: string; controller: AbortController; key: string; cancelled: boolean } | null = null;
  private resultKey = '';
  private objectUrl: string | null = null;
  private startButton: HTMLButtonElement | null = null;

  constructor(private readonly sharedChannel: () => number | null) {
    this.controls = h('div', { class: 'control-row cs-controls' });
    this.body = h('div', { class: 'cs-tab-body' });
    this.el = h('div', { class: 'cs-maximize' }, this.controls, this.body);
  }

  /** What a result depends on: the model (and its epoch), and the layer for a channel. */
  private keyFor(ctx: LayerPanelContext): string {
    return keyOf(ctx.model, this.kind, this.kind === 'channel' ? ctx.layer : null, this.kind === 'class' ? this.classIndex : this.channel, this.steps, this.seed);
  }

  show(ctx: LayerPanelContext): void {
    const first = !this.ctx;
    const layerChanged = this.ctx && (this.ctx.layer !== ctx.layer || this.ctx.info.name !== ctx.info.name);
    this.ctx = ctx;
    if (first || layerChanged) {
      const shared = this.sharedChannel();
      this.channel = shared ?? 0;
    }
    this.drawControls(ctx);
    const key = this.keyFor(ctx);
    if (this.job && this.job.key !== key) {
      this.stopJob(true);
      this.idle('The model, epoch or target changed while it ran: the job was cancelled. Start again for this one.');
    } else if (!this.job && this.resultKey && this.resultKey !== key) {
      this.idle('The result shown was for another model, epoch or target: start again for this one.');
    } else if (!this.job && !this.resultKey) {
      this.idle();
    }
  }

  private drawControls(ctx: LayerPanelContext): void {
    const classes = ctx.info.classes;
    const channels = unitsOf(ctx.outputShape);
    const unit = ctx.outputShape && ctx.outputShape.length === 2 ? 'unit' : 'channel';
    const kind = segmentedControl('Maximise', [['class', 'a class'], ['channel', `a ${unit} of ${ctx.layer}`]], this.kind, (v) => {
      this.kind = v as 'class' | 'channel';
      if (this.ctx) this.show(this.ctx);
    });
    const parts: HTMLElement[] = [kind.el];
    if (this.kind === 'class') {
      const all = offersAllClasses(classes);
      if (this.classIndex === 'all' && !all) this.classIndex = 0;
      if (classes && classes.length) {
        if (typeof this.classIndex === 'number' && this.classIndex >= classes.length) this.classIndex = 0;
        const options: [string, string][] = classes.map((name, i): [string, string] => [String(i), name]);
        if (all) options.push(['all', `all ${classes.length} classes`]);
        parts.push(selectControl('Class', options, String(this.classIndex), (v) => {
          this.classIndex = v === 'all' ? 'all' : Number(v);
          if (this.ctx) this.show(this.ctx);
        }).el);
      } else {
        parts.push(this.numberInput('Output', typeof this.classIndex === 'number' ? this.classIndex : 0, null, (v) => (this.classIndex = v)));
      }
    } else {
      parts.push(this.numberInput(unit === 'unit' ? 'Unit' : 'Channel', this.channel, channels, (v) => (this.channel = v)));
    }
    parts.push(this.stepsInput(), this.seedInput());
    const start = h('button', { type: 'button', class: 'button cs-primary', 'data-testid': 'maximize-start' }, 'Start') as HTMLButtonElement;
    start.disabled = this.job !== null;
    start.addEventListener('click', () => this.start());
    this.startButton = start;
    parts.push(start);
    replaceControls(this.controls, ...parts);
  }

  private numberInput(label: string, value: number, count: number | null, set: (v: number) => void): HTMLElement {
    const id = fieldId('num');
    const input = h('input', { id, type: 'number', min: 0, max: count !== null ? count - 1 : null, step: 1, value, class: 'cs-number' }) as HTMLInputElement;
    input.addEventListener('change', () => {
      const v = Math.max(0, Math.floor(Number(input.value) || 0));
      set(count !== null ? Math.min(count - 1, v) : v);
      if (this.ctx) this.show(this.ctx);
    });
    return h('span', { class: 'control' }, h('label', { for: id }, label), input, count !== null ? h('span', { class: 'small muted' }, `of 0–${count - 1}`) : null);
  }

  private stepsInput(): HTMLElement {
    const id = fieldId('steps');
    const input = h('input', { id, type: 'number', min: 1, max: 4096, step: 1, placeholder: 'default', class: 'cs-number' }) as HTMLInputElement;
    if (this.steps !== null) input.value = String(this.steps);
    input.addEventListener('change', () => {
      const v = input.value.trim();
      this.steps = v === '' ? null : Math.max(1, Math.min(4096, Math.floor(Number(v) || 1)));
      if (this.ctx) this.show(this.ctx);
    });
    return h('span', { class: 'control' }, h('label', { for: id }, 'Steps'), input);
  }

  /** The random seed of the starts (the server's default, 0, when empty): another seed, other starting noise. */
  private seedInput(): HTMLElement {
    const id = fieldId('seed');
    const input = h('input', { id, type: 'number', min: 0, max: MAX_SEED, step: 1, placeholder: '0', class: 'cs-number', title: 'the random seed of the starting noise; another seed gives other starts' }) as HTMLInputElement;
    if (this.seed !== null) input.value = String(this.seed);
    input.addEventListener('change', () => {
      this.seed = parseSeed(input.value);
      input.value = this.seed === null ? '' : String(this.seed);
      if (this.ctx) this.show(this.ctx);
    });
    return h('span', { class: 'control' }, h('label', { for: id }, 'Seed'), input);
  }

  private idle(note?: string): void {
    this.releaseImage();
    this.resultKey = '';
    const ctx = this.ctx;
    const unit = ctx?.outputShape && ctx.outputShape.length === 2 ? 'unit' : 'channel';
    const what = ctx ? (this.kind === 'class' ? (this.classIndex === 'all' ? `each of the ${ctx.info.classes?.length ?? ''} classes` : `class ${className(ctx.info, this.classIndex)}`) : `${unit} ${this.channel} of ${ctx.layer}`) : '';
    replace(this.body, emptyBox(note ?? `Synthesise an input that excites ${what}`, `Gradient ascent from noise, with jitter and blur so the picture stays smooth; it takes a few seconds on a small model${this.classIndex === 'all' && this.kind === 'class' ? ' for each class' : ''}. Press Start.`));
  }

  private async start(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || this.job) return;
    const key = this.keyFor(ctx);
    const body = maximizeBody(this.kind, ctx.layer, this.kind === 'class' ? this.classIndex : this.channel, this.steps, this.seed);
    const progress = progressBox('Starting…');
    progress.el.setAttribute('data-testid', 'maximize-progress');
    const cancel = h('button', { type: 'button', class: 'button' }, 'Cancel') as HTMLButtonElement;
    replace(this.body, h('div', { class: 'cs-job' }, progress.el, cancel));
    this.releaseImage();
    this.resultKey = '';
    if (this.startButton) this.startButton.disabled = true;
    const controller = new AbortController();
    const job = { id: '', controller, key, cancelled: false };
    this.job = job;
    cancel.addEventListener('click', () => {
      cancel.disabled = true;
      this.stopJob(true);
      this.idle('Cancelled.');
      this.drawControls(ctx);
    });
    try {
      const started = await postJson<{ job: string | number }>(modelUrl(ctx.model, 'maximize'), body);
      job.id = String(started.job);
      if (job.cancelled) {
        void deleteJson(`api/jobs/${encodeURIComponent(job.id)}`).catch(() => undefined);
        return;
      }
      const done = await pollJob(job.id, {
        signal: controller.signal,
        onProgress: (state: JobState) => progress.update(state.progress, state.message || (state.status === 'queued' ? 'Waiting for a worker…' : 'Climbing the gradient…')),
      });
      if (this.job !== job) return;
      this.job = null;
      await this.showResult(ctx, key, done.result as MaximizeResult);
    } catch (error) {
      if (this.job !== job && (isAbort(error) || job.cancelled)) return;
      if (job.cancelled || isAbort(error)) return;
      this.job = null;
      this.resultKey = '';
      replace(this.body, error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 409
        ? emptyBox('This cannot be maximised', h('p', { class: 'error-line' }, error.message))
        : errorBox(messageOf(error), 'The maximisation failed'));
    } finally {
      if (this.ctx) this.drawControls(this.ctx);
    }
  }

  /** Stop polling (and cancel the job on the server when `cancel`). */
  private stopJob(cancel: boolean): void {
    const job = this.job;
    if (!job) return;
    this.job = null;
    job.cancelled = true;
    job.controller.abort();
    if (cancel && job.id) void deleteJson(`api/jobs/${encodeURIComponent(job.id)}`).catch(() => undefined);
  }

  private releaseImage(): void {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  private async showResult(ctx: LayerPanelContext, key: string, result: MaximizeResult): Promise<void> {
    const targets = result?.targets ?? [];
    const target = targets[0];
    if (!target) {
      replace(this.body, errorBox('the job finished without a result', 'The maximisation failed'));
      return;
    }
    this.resultKey = key;
    const nameOf = (t: MaximizeTarget) => (t.kind === 'class' ? className(ctx.info, t.index) : `${ctx.outputShape?.length === 2 ? 'unit' : 'channel'} ${t.index} of ${t.layer ?? ctx.layer}`);
    const many = targets.length > 1;
    const name = many ? `${targets.length} ${target.kind === 'class' ? 'classes' : 'targets'}` : nameOf(target);
    const status = STATUS_TEXT[target.status] ?? target.status;
    const seedHint = (t: MaximizeTarget) => (/seed/i.test(t.message) ? ' Change the Seed above and press Start again for other starts.' : '');
    const numbers = many ? this.targetsTable(result, nameOf) : h('table', { class: 'scores cs-numbers' }, h('caption', {}, `${name}: the numbers`), h('tbody', {},
      ...([
        ['status', STATUS_SHORT[target.status] ?? target.status],
        [`${result.objective} at the start`, shortNumber(target.start_score, 4)],
        [`${result.objective} at the end`, shortNumber(target.score, 4)],
        target.prob !== null ? ['its probability', shortNumber(target.prob, 3)] : null,
        ['steps', String(target.steps)],
        ['seconds', shortNumber(result.seconds, 3)],
        target.top?.length ? ['the model sees', target.top.map(([n, p]) => `${n} (${shortNumber(p, 2)})`).join(', ')] : null,
      ].filter(Boolean) as [string, string][]).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
    const shownTargets = targets.filter(drawn);
    const box = h('div', { class: many ? 'cs-maximize-all' : 'cs-split cs-split-attr', 'data-testid': 'maximize-result', 'data-status': many ? (shownTargets.length === targets.length ? 'rose' : shownTargets.length ? 'some' : 'none') : target.status });
    if (!shownTargets.length) {
      const title = many ? `No picture: no target's objective rose (${STATUS_SHORT[target.status] ?? target.status} for ${nameOf(target)})` : `No picture: ${status}`;
      replace(box, emptyBox(title, (target.message || 'The optimisation could not raise the objective, so its picture would only be the starting noise.') + seedHint(target)), h('div', {}, numbers));
      replace(this.body, box);
      return;
    }
    let picture: string | null = null;
    try {
      picture = await fetchObjectUrl(result.image);
    } catch (error) {
      replace(box, errorBox(messageOf(error), 'The picture could not be read'), h('div', {}, numbers));
      replace(this.body, box);
      return;
    }
    if (this.resultKey !== key) {
      URL.revokeObjectURL(picture);
      return;
    }
    this.releaseImage();
    this.objectUrl = picture;
    const failed = targets.filter((t) => !drawn(t));
    const caption = many
      ? `${shownTargets.length} of ${targets.length} rose${failed.length ? `; no rise for ${failed.map(nameOf).join(', ')} (their panels are only the starting noise)` : ''}. One panel per target with its probability, and each one's objective over the steps (from convscope maximize).`
      : target.message || status;
    replace(box,
      h('figure', { class: 'cs-figure' }, h('img', { class: many ? 'cs-wide-img' : 'cs-attribution-img', src: picture, alt: `the inputs synthesised to excite ${name}, and their objective over the steps` }), h('figcaption', { class: 'small muted' }, caption)),
      h('div', {}, numbers));
    replace(this.body, box);
  }

  /** One row per target: its status, score at the start and the end, probability, what the model sees. */
  private targetsTable(result: MaximizeResult, nameOf: (t: MaximizeTarget) => string): HTMLElement {
    const head = h('tr', {}, ...['target', 'status', `${result.objective}: start`, 'end', 'p', 'the model sees'].map((t) => h('th', { scope: 'col' }, t)));
    return h('table', { class: 'scores cs-numbers cs-targets' },
      h('caption', {}, `${result.targets.length} targets in ${shortNumber(result.seconds, 3)} s`),
      h('thead', {}, head),
      h('tbody', {}, ...result.targets.map((t) => h('tr', {},
        h('th', { scope: 'row' }, nameOf(t)),
        h('td', { class: drawn(t) ? null : 'no' }, STATUS_SHORT[t.status] ?? t.status),
        h('td', { class: 'num' }, shortNumber(t.start_score, 3)),
        h('td', { class: 'num' }, shortNumber(t.score, 3)),
        h('td', { class: 'num' }, shortNumber(t.prob, 3)),
        h('td', {}, t.top?.[0] ? `${t.top[0][0]} (${shortNumber(t.top[0][1], 2)})` : '–')))));
  }

  /** A job keeps running while the context is withdrawn; `show` decides when it is stale. */
  pause(): void {}

  destroy(): void {
    this.stopJob(true);
    this.releaseImage();
  }
}
