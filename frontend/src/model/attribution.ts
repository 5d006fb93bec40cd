// Which pixels of the input count for a class: saliency, Grad-CAM (on this layer when it
// is a convolution), integrated gradients or occlusion, as `convscope attribute` draws
// them overlaid on the image (`attribute.png`), with the numbers of the JSON route
// beside it (target and predicted class, score, probability, each map's range).
import { getJson } from '../api';
import { emptyBox, h, loadingBox, replace } from '../dom';
import { shortNumber } from './colormap';
import { modelUrl, type LayerPanelContext } from './context';
import { failureBox, fetchObjectUrl, fieldId, isAbort, isConvType, keyOf, LatestRunner, segmentedControl, selectControl, replaceControls } from './tabkit';

export const METHODS: [string, string][] = [
  ['saliency', 'Saliency'],
  ['gradcam', 'Grad-CAM'],
  ['ig', 'Integrated gradients'],
  ['occlusion', 'Occlusion'],
];

export interface AttributionMethod {
  method: string;
  min: number;
  max: number;
  layer?: string;
  note?: string;
  [option: string]: unknown;
}

/** `GET api/models/{model}/attribute` for one image. */
export interface Attribution {
  model: string;
  weights?: string;
  image: string;
  target: number;
  target_name: string;
  predicted: number;
  predicted_name: string;
  score: string;
  target_score: number;
  target_probability: number;
  methods: AttributionMethod[];
  label?: string;
}

/** The query of an attribution: Grad-CAM gets `layer` when the clicked layer is a convolution. */
export function attributionParams(ctx: Pick<LayerPanelContext, 'layer' | 'layerType' | 'image'>, method: string, target: number | null): Record<string, string | number | null> {
  return {
    image: ctx.image,
    method,
    target,
    layer: method === 'gradcam' && isConvType(ctx.layerType) ? ctx.layer : null,
  };
}

/** Methods that run the model many times (tens of passes): say they take a while. */
const SLOW: Record<string, string> = { ig: '~10 s', occlusion: '~15 s' };

/** What the tab says while a method computes: "Computing integrated gradients… (this can take ~10 s on big models)". */
export function computingText(method: string): string {
  const label = METHODS.find(([m]) => m === method)?.[1] ?? method;
  const name = method === 'gradcam' ? label : label.toLowerCase();
  return `Computing ${name}…${SLOW[method] ? ` (this can take ${SLOW[method]} on big models)` : ''}`;
}

const OPTION_NAMES: Record<string, string> = { reduce: 'reduced as', steps: 'steps', baseline: 'baseline', window: 'window', stride: 'stride', placement: 'placed by', layer_shape: 'layer shape' };

export class AttributionTab {
  readonly el: HTMLElement;
  private readonly runner = new LatestRunner();
  private readonly controls: HTMLElement;
  private readonly body: HTMLElement;
  private ctx: LayerPanelContext | null = null;
  private key = '';
  private method = 'saliency';
  /** The chosen class index, or null for the predicted class. */
  private target: number | null = null;
  private predicted: { model: string; image: string; name: string } | null = null;
  private objectUrl: string | null = null;
  private shown = false;
  /** The method of the picture shown. */
  private shownMethod: string | null = null;

  constructor() {
    this.controls = h('div', { class: 'control-row cs-controls' });
    this.body = h('div', { class: 'cs-tab-body' });
    this.el = h('div', { class: 'cs-attribution' }, this.controls, this.body);
  }

  show(ctx: LayerPanelContext): void {
    if (this.ctx && this.ctx.info.name !== ctx.info.name) this.target = null;
    this.ctx = ctx;
    this.drawControls(ctx);
    if (!ctx.image) {
      this.key = '';
      this.runner.cancel();
      this.release();
      replace(this.body, emptyBox('No input chosen', 'Choose an input image above to see which of its pixels count for a class.'));
      return;
    }
    const params = attributionParams(ctx, this.method, this.target);
    const key = keyOf(ctx.model, JSON.stringify(params));
    if (key === this.key) return;
    this.key = key;
    // Another method: its own loading state (the old picture under the new method's
    // button would read as the new one's). The same method for another epoch, class or
    // input: the old picture dimmed under a status line, so the page does not jump.
    const text = computingText(this.method);
    if (!this.shown || this.shownMethod !== this.method) {
      this.release();
      replace(this.body, loadingBox(text));
    } else {
      for (const old of this.body.querySelectorAll('.cs-computing')) old.remove();
      for (const child of this.body.children) child.classList.add('cs-stale');
      this.body.prepend(h('p', { class: 'cs-computing', role: 'status' }, text));
    }
    const method = this.method;
    this.runner.run(async (token) => {
      const stale = () => !this.runner.current(token);
      let url: string | null = null;
      try {
        const [numbers, picture] = await Promise.all([
          getJson<Attribution | Attribution[]>(modelUrl(ctx.model, 'attribute', params)),
          fetchObjectUrl(modelUrl(ctx.model, 'attribute.png', params)),
        ]);
        url = picture;
        if (stale()) {
          URL.revokeObjectURL(picture);
          return;
        }
        const record = Array.isArray(numbers) ? numbers[0] : numbers;
        this.predicted = { model: ctx.model, image: ctx.image!, name: record.predicted_name };
        this.drawControls(ctx);
        this.draw(record, picture, method);
      } catch (error) {
        if (url) URL.revokeObjectURL(url);
        if (isAbort(error) || stale()) return;
        this.key = '';
        this.release();
        this.body.classList.remove('cs-stale');
        replace(this.body, failureBox(error, 'No attribution for this choice', 'The attribution could not be computed'));
      }
    });
  }

  private drawControls(ctx: LayerPanelContext): void {
    const classes = ctx.info.classes;
    const predicted = this.predicted && this.predicted.model === ctx.model && this.predicted.image === ctx.image ? this.predicted.name : null;
    const parts: HTMLElement[] = [];
    if (classes && classes.length) {
      const options: [string, string][] = [['', predicted ? `the predicted class (${predicted})` : 'the predicted class'], ...classes.map((name, i): [string, string] => [String(i), name])];
      parts.push(selectControl('For class', options, this.target === null ? '' : String(this.target), (v) => {
        this.target = v === '' ? null : Number(v);
        if (this.ctx) this.show(this.ctx);
      }).el);
    } else {
      const id = fieldId('target');
      const input = h('input', { id, type: 'number', min: 0, step: 1, placeholder: 'predicted', class: 'cs-number' }) as HTMLInputElement;
      if (this.target !== null) input.value = String(this.target);
      input.addEventListener('change', () => {
        const v = input.value.trim();
        this.target = v === '' ? null : Math.max(0, Math.floor(Number(v)));
        if (this.ctx) this.show(this.ctx);
      });
      parts.push(h('span', { class: 'control' }, h('label', { for: id }, 'For output'), input));
    }
    parts.push(segmentedControl('Method', METHODS, this.method, (v) => {
      this.method = v;
      if (this.ctx) this.show(this.ctx);
    }).el);
    if (this.method === 'gradcam') {
      parts.push(h('span', { class: 'small muted' }, isConvType(ctx.layerType) ? `Grad-CAM on this layer (${ctx.layer})` : `Grad-CAM on the model's last convolution (${ctx.layer} is a ${ctx.layerType}, not a convolution)`));
    }
    replaceControls(this.controls, ...parts);
  }

  private release(): void {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    this.shown = false;
    this.shownMethod = null;
  }

  private draw(data: Attribution, picture: string, asked: string): void {
    this.release();
    this.objectUrl = picture;
    this.shown = true;
    this.shownMethod = asked;
    this.body.classList.remove('cs-stale');
    const method = data.methods[0];
    const label = METHODS.find(([m]) => m === method?.method)?.[1] ?? method?.method ?? '';
    const right = data.label !== undefined ? data.label === data.predicted_name : null;
    const img = h('img', {
      class: 'cs-attribution-img',
      src: picture,
      alt: `${label} of ${data.image} for class ${data.target_name}, overlaid on the image`,
    });
    const rows: [string, Node | string][] = [
      ['for class', data.target_name],
      ['predicted', h('span', {}, data.predicted_name, right === null ? '' : h('span', { class: right ? 'yes' : 'no' }, right ? ' ✓ right' : ` ✗ (label ${data.label})`))],
      [`${data.score} of the class`, shortNumber(data.target_score, 4)],
      ['its probability', shortNumber(data.target_probability, 3)],
    ];
    if (method) {
      if (method.layer) rows.push(['on layer', method.layer]);
      rows.push(['map range', `${shortNumber(method.min)} to ${shortNumber(method.max)}`]);
      for (const [key, value] of Object.entries(method)) {
        if (['method', 'min', 'max', 'layer', 'note'].includes(key) || value === null || typeof value === 'object') continue;
        rows.push([OPTION_NAMES[key] ?? key.replace(/_/g, ' '), typeof value === 'number' ? shortNumber(value, 4) : String(value)]);
      }
    }
    const table = h('table', { class: 'scores cs-numbers' }, h('caption', {}, `${label}: the numbers`),
      h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
    replace(this.body, h('div', { class: 'cs-split cs-split-attr' },
      h('figure', { class: 'cs-figure' }, img, h('figcaption', { class: 'small muted' }, `The input, then the ${label} map for ${data.target_name} over it (from convscope attribute).`)),
      h('div', {}, table, method?.note ? h('p', { class: 'small no' }, method.note) : null),
    ));
  }

  /** The context was withdrawn (the view moved on): drop what is in flight; the next show loads again. */
  pause(): void {
    this.runner.cancel();
    this.key = '';
  }

  destroy(): void {
    this.runner.stop();
    this.release();
  }
}
