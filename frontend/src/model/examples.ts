// Dataset examples: the images that activate a channel of this layer most and least
// (`GET api/models/{model}/examples`, which may answer 202 while a job ranks the set),
// as thumbnails with their class and activation. Pressing one makes it the input.
import { getComputed } from '../api';
import { emptyBox, h, loadingBox, progressBox, replace } from '../dom';
import { shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { unitsOf } from './features';
import { failureBox, fetchObjectUrl, fieldId, isAbort, keyOf, LatestRunner, replaceControls } from './tabkit';

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

export class ExamplesTab {
  readonly el: HTMLElement;
  private readonly runner = new LatestRunner();
  private readonly controls: HTMLElement;
  private readonly body: HTMLElement;
  private ctx: LayerPanelContext | null = null;
  private key = '';
  private channel = 0;
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
    if (layerChanged) this.channel = shared ?? 0;
    else if (shared !== null && shared !== this.lastShared) this.channel = shared;
    this.lastShared = shared;
    this.drawControls(ctx);
    this.load(ctx);
  }

  private lastShared: number | null = null;

  private drawControls(ctx: LayerPanelContext): void {
    const channels = unitsOf(ctx.outputShape);
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
    replaceControls(this.controls,
      h('span', { class: 'control' }, h('label', { for: id }, 'Channel'), input, channels !== null ? h('span', { class: 'small muted' }, `of 0–${channels - 1}`) : null),
      h('span', { class: 'small muted' }, 'Clicking a unit in the feature maps picks its channel here too.'));
  }

  private load(ctx: LayerPanelContext): void {
    const url = modelUrl(ctx.model, 'examples', { layer: ctx.layer, channel: this.channel, top: EXAMPLES_TOP });
    const key = keyOf(url);
    if (key === this.key) return;
    this.key = key;
    const channel = this.channel;
    replace(this.body, loadingBox(`Finding the images that excite channel ${channel} of ${ctx.layer}…`));
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
              progress = progressBox(`Ranking the images by channel ${channel}`);
              replace(this.body, progress.el);
            }
            progress.update(job.progress, job.message || `Ranking the images by channel ${channel}`);
          },
        });
        if (stale()) return;
        this.draw(ctx, answer);
      } catch (error) {
        if (isAbort(error) || stale()) return;
        this.key = '';
        replace(this.body, failureBox(error, `No examples for channel ${channel} of ${ctx.layer}`, 'The examples could not be found'));
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
    replace(this.body,
      this.row(ctx, `Most active: the ${data.top.length} images with the largest mean of channel ${data.channel}`, data.top, 'examples-top'),
      this.row(ctx, `Least active: the ${data.bottom.length} with the smallest`, data.bottom, 'examples-bottom'),
      h('p', { class: 'small muted' }, `Ranked over ${data.count} images: the ${data.images} (the ${data.statistic} of the channel's map per image). Press an image to make it the input.`),
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
