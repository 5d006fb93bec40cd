// What the model explorer's view shares with its layer panel: the chosen model, epoch,
// layer and input. The view (views/model.ts) owns the choices; the layer panel
// (model/layer.ts) redraws its tabs whenever `update` hands it a new context.
// The routes behind both are in docs/dashboard/api.md and ../shared/DESIGN.md.

/** `GET api/models/{model}/info`. */
export interface ModelInfo {
  name: string;
  /** The MODEL string to put in requests (`run:ID@EPOCH` for a run at an epoch). */
  model: string;
  weights: string;
  dataset: string | null;
  input_shape: number[];
  params: number;
  classes: string[] | null;
  run: string | null;
  epoch: number | null;
  epochs: number[] | null;
}

export interface LayerPanelContext {
  /** The MODEL string of every request (`run:ID@EPOCH` when a run's epoch is chosen). */
  model: string;
  info: ModelInfo;
  /** The clicked layer's module name, as `layers --json` gives it. */
  layer: string;
  /** Its type (`Conv2d`, `Conv2dAct`, `MaxPool2d`, `Bottleneck`, ...). */
  layerType: string;
  /** The chosen input's SPEC (`mnist:test:0`, `sample:NAME`, `upload:ID`), or null. */
  image: string | null;
  /** Aborted when the context changes or the view is left. */
  signal: AbortSignal;
  /**
   * Optional: the layer's `output_shape` as `layers --json` gives it (batch first,
   * `[1, C, H, W]`). The panel then asks a wide layer (more than 64 channels) for its
   * 32 most active maps at once instead of learning the width from a first answer.
   */
  outputShape?: number[] | null;
  /**
   * Optional: whether the layer is the model's last (its output is the class scores).
   * Without it, a vector as long as `info.classes` is taken for the class scores.
   */
  lastLayer?: boolean;
}

export interface LayerPanel {
  /** Show (or redraw for) a new model, epoch, layer or input. */
  update(ctx: LayerPanelContext): void;
  /** Tear down: stop polling, drop listeners. */
  destroy(): void;
}

/** `encodeURIComponent` for a `{model}` path segment (run:ID@EPOCH keeps its `:` and `@`). */
export function modelPath(model: string): string {
  return encodeURIComponent(model).replace(/%3A/gi, ':').replace(/%40/g, '@');
}

/** `api/models/{model}/{route}?key=value...` with empty values left out. */
export function modelUrl(model: string, route: string, params: Record<string, string | number | boolean | null | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '' || value === false) continue;
    query.set(key, String(value));
  }
  const text = query.toString();
  return `api/models/${modelPath(model)}/${route}${text ? `?${text}` : ''}`;
}
