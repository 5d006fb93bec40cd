// The model explorer: any model the server serves (the zoo, the store's runs, names given
// with --model), through the epochs of a recorded run. The architecture as an interactive
// diagram, the input and its prediction, and the layer panel of the chosen layer; all of
// it in the route (`#/model?model=run:ID&epoch=2&layer=conv1&image=mnist:test:0`), so a
// reload or a shared link reopens it.
import { getJson } from '../api';
import { emptyBox, errorBox, h, loadingBox, replace } from '../dom';
import { debounce } from '../live';
import { modelUrl, type LayerPanelContext, type ModelInfo } from '../model/context';
import { defaultLayer, flatShape, GraphView, isAbort, isLastLayer, type LayerRow } from '../model/graph';
import { InputPanel, normaliseSpec } from '../model/input';
import { CHOOSE_IMAGE_EVENT, layerPanel } from '../model/layer';
import { askedEpoch, defaultModel, epochNote, keepsImage, ModelBar, modelChoices, modelRouteParams, normaliseEpochs, parseModelRef, pickEpoch, readModelRoute, requestModel, sameRun, type ModelChoice } from '../model/picker';
import { formatRoute } from '../router';
import { parseRunDetail, parseRuns, type RunDetail, type RunSummary } from '../types';
import type { Cleanup, ViewContext } from '../view';

function child(parent: AbortSignal): AbortController {
  const c = new AbortController();
  if (parent.aborted) c.abort();
  else parent.addEventListener('abort', () => c.abort(), { once: true });
  return c;
}

export function modelView(root: HTMLElement, ctx: ViewContext): Cleanup {
  let alive = true;
  const route = readModelRoute(ctx.params);
  const asked = parseModelRef(route.model ?? '').run ? askedEpoch(ctx.params) : null;
  // A range typed into the route (`mnist:test:0-5`) shows its first image, and says so.
  const routeImage = normaliseSpec(route.image);
  let base: string | null = route.model;
  let epoch: number | null = route.epoch;
  let layer: string | null = route.layer;
  let image: string | null = routeImage.spec;
  let info: ModelInfo | null = null;
  let layers: LayerRow[] = [];
  let choices: ModelChoice[] = [];
  let runs: RunSummary[] = [];
  const infos = new Map<string, ModelInfo>();
  const details = new Map<string, Promise<RunDetail | null>>();
  let modelAbort: AbortController | null = null;
  let inputAbort: AbortController | null = null;
  let panelAbort: AbortController | null = null;
  let opening = 0;

  const bar = new ModelBar({ onModel: (b) => void openModel(b, null), onEpoch: (e) => setEpoch(e) });
  const graph = new GraphView({ onSelect: (l) => setLayer(l) });
  const input = new InputPanel({ onImage: (s) => setImage(s) });
  if (routeImage.note && routeImage.spec) input.setNote(routeImage.note, routeImage.spec);
  const panelRoot = h('div', { class: 'layer-panel-root' });
  const panelNote = h('div', { class: 'layer-panel-note' });
  const panelHost = h('section', { class: 'layer-panel-host', 'data-testid': 'layer-panel', 'aria-label': 'layer panel' }, panelNote, panelRoot);
  const panel = layerPanel(panelRoot);
  // A dataset example pressed in the panel becomes the input.
  panelRoot.addEventListener(CHOOSE_IMAGE_EVENT, (event) => {
    const spec = (event as CustomEvent<{ spec?: unknown }>).detail?.spec;
    if (typeof spec === 'string' && spec) setImage(spec);
  });

  replace(
    root,
    h('h1', {}, 'Model explorer'),
    bar.el,
    h('div', { class: 'model-grid' }, h('div', { class: 'model-left' }, graph.el), h('div', { class: 'model-right' }, input.el, panelHost)),
  );

  const syncParams = () => ctx.setParams(modelRouteParams({ model: base, epoch: info?.run ? epoch : null, layer, image }));
  const layerRow = (name: string) => layers.find((l) => l.name === name);

  function updateInput() {
    if (!info) return;
    inputAbort?.abort();
    inputAbort = child(modelAbort?.signal ?? ctx.signal);
    input.update({ model: info.model, info, image, signal: inputAbort.signal });
  }

  function updatePanel() {
    panelAbort?.abort();
    panelAbort = child(modelAbort?.signal ?? ctx.signal);
    if (!info || !layer) {
      panelRoot.hidden = true;
      replace(panelNote, info ? emptyBox('No layer to show', 'This model lists no layers.') : emptyBox('Choose a model above.'));
      return;
    }
    panelRoot.hidden = false;
    replace(panelNote);
    const row = layerRow(layer);
    const context: LayerPanelContext = { model: info.model, info, layer, layerType: row?.type ?? '', image, signal: panelAbort.signal, outputShape: flatShape(row?.outputShape), lastLayer: isLastLayer(layers, layer) };
    panel.update(context);
  }

  function setLayer(next: string) {
    if (next === layer) return;
    layer = next;
    graph.select(next);
    syncParams();
    updatePanel();
  }

  function setImage(next: string) {
    if (next === image) return;
    image = next;
    syncParams();
    updateInput();
    updatePanel();
  }

  /** The info of `model` (a run at an epoch): cached, else the base's with the epoch, fetched meanwhile. */
  function infoAt(model: string, e: number | null): ModelInfo {
    const known = infos.get(model);
    if (known) return known;
    const guess: ModelInfo = { ...info!, model, epoch: e };
    const signal = modelAbort?.signal;
    void getJson<ModelInfo>(modelUrl(model, 'info'), undefined, signal).then(
      (real) => {
        infos.set(model, real);
        if (!alive || info?.model !== model) return;
        info = { ...info, weights: real.weights };
        bar.setInfo(info);
      },
      () => undefined, // the facts line keeps the base's; the panels report their own errors
    );
    return guess;
  }

  function setEpoch(next: number) {
    if (!info?.run || next === epoch) return;
    epoch = next;
    bar.setNote(null); // "showing epoch N" is no longer what is shown
    const model = requestModel(base!, next);
    info = infoAt(model, next);
    bar.setInfo(info);
    syncParams();
    updateInput();
    updatePanel();
  }

  /** The run's record (`api/runs/{id}`), once per run; null when it cannot be read. */
  function runDetail(id: string, signal: AbortSignal): Promise<RunDetail | null> {
    let known = details.get(id);
    if (!known) {
      known = getJson(`api/runs/${encodeURIComponent(id)}`, undefined, signal).then(parseRunDetail, () => {
        details.delete(id);
        return null;
      });
      details.set(id, known);
    }
    return known;
  }

  /** A run whose store recorded layers on its probe set has maps in the embedding explorer: link to them. */
  async function showRunLinks(run: string, signal: AbortSignal) {
    const id = runs.find((r) => sameRun(r.id, run))?.id ?? run;
    const detail = await runDetail(id, signal);
    if (!alive || signal.aborted || !detail?.recorded.length) return;
    bar.setLinks(
      h('a', { class: 'model-link', href: formatRoute('explore', { runs: id }), 'data-testid': 'explore-link' }, 'Embedding explorer for this run'),
      h('span', { class: 'muted' }, ` — maps of ${detail.recorded.join(', ')} on its probe set`),
    );
  }

  async function openModel(next: string, wantedEpoch: number | null, wantedText: string | null = null) {
    const mine = (opening += 1);
    const oldDataset = info?.dataset ?? null;
    modelAbort?.abort();
    const abort = child(ctx.signal);
    modelAbort = abort;
    const signal = abort.signal;
    const current = () => alive && mine === opening && !signal.aborted;
    base = parseModelRef(next).base;
    info = null;
    epoch = wantedEpoch;
    bar.setCurrent(base);
    bar.setEpochs(null, null);
    bar.setNote(null);
    bar.setLinks();
    bar.setInfo(null, 'Loading the model…');
    input.loading();
    updatePanel();
    syncParams();

    // A --model name the server could not load is listed with its error, not opened
    // (every route would answer the same 400).
    const broken = choices.find((c) => c.value === base && c.disabled);
    if (broken) {
      bar.setInfo(null);
      replace(bar.el.querySelector('.model-bar-status')!, errorBox(broken.title ?? 'the server could not load it', `The model ${base} could not be loaded`));
      input.failed('The model could not be loaded (see above).');
      panelRoot.hidden = true;
      replace(panelNote, emptyBox('No layer to show', 'The model could not be loaded (see above).'));
      graph.clear(emptyBox('No model to draw', 'The server could not load this model (see above); choose another.'));
      return;
    }

    // A model the server listed is traced while its info loads; a typed one is traced
    // only once the server knows it (else every route would answer the same 404).
    const loadGraph = (model: string) =>
      graph.load(model, signal).then(
        (g) => g.layers,
        (error: unknown) => (isAbort(error, signal) ? null : ([] as LayerRow[])),
      );
    const listed = choices.some((c) => c.value === base);
    let graphLoad: Promise<LayerRow[] | null> | null = listed ? loadGraph(base) : null;
    if (!listed) graph.clear(loadingBox('Opening the model…'));
    let loaded: ModelInfo;
    try {
      loaded = await getJson<ModelInfo>(modelUrl(base, 'info'), undefined, signal);
    } catch (error) {
      if (!current()) return;
      const message = (error as Error).message;
      bar.setInfo(null);
      replace(bar.el.querySelector('.model-bar-status')!, errorBox(message, `The model ${base} could not be opened`));
      input.failed('The model could not be opened (see above).');
      panelRoot.hidden = true;
      replace(panelNote, emptyBox('No layer to show', 'The model could not be opened (see above).'));
      if (!listed) graph.clear(emptyBox('No model to draw', 'Choose one of the models above, or type a name the server serves.'));
      return;
    }
    if (!current()) return;
    replace(bar.el.querySelector('.model-bar-status')!);
    infos.set(loaded.model, loaded);
    if (loaded.run) {
      const canonical = choices.find((c) => c.group === 'run' && sameRun(parseModelRef(c.value).run, loaded.run));
      if (canonical && canonical.value !== base) {
        base = canonical.value;
        bar.setCurrent(base);
      }
    }
    const epochs = loaded.run ? normaliseEpochs(loaded.epochs) : null;
    epoch = epochs ? pickEpoch(epochs, wantedEpoch ?? loaded.epoch) : null;
    const model = loaded.run && epoch !== null ? requestModel(base, epoch) : loaded.model;
    info = model === loaded.model ? loaded : { ...loaded, model, epoch };
    if (model !== loaded.model) info = infoAt(model, epoch);
    bar.setEpochs(epochs, epoch);
    bar.setInfo(info);
    if (loaded.run && epochs) {
      const runName = runs.find((r) => sameRun(r.id, loaded.run))?.name ?? loaded.run;
      bar.setNote(epochNote(runName, wantedText, epochs, epoch));
      void showRunLinks(loaded.run, signal);
    }

    if (!keepsImage(image, oldDataset, info.dataset) && !(mine === 1 && image)) image = null;
    const imageLoad = image ? Promise.resolve(image) : input.defaultImage(info, signal).catch(() => null);
    graphLoad ??= loadGraph(base);
    const [rows, chosen] = await Promise.all([graphLoad, imageLoad]);
    if (!current() || rows === null) return;
    layers = rows;
    if (!layer || !layers.some((l) => l.name === layer)) layer = defaultLayer(layers);
    image = chosen;
    graph.select(layer);
    syncParams();
    updateInput();
    updatePanel();
  }

  async function loadChoices(): Promise<void> {
    bar.loading();
    const [models, runList] = await Promise.allSettled([getJson('api/models', undefined, ctx.signal), getJson('api/runs', undefined, ctx.signal)]);
    if (!alive) return;
    runs = runList.status === 'fulfilled' ? parseRuns(runList.value) : [];
    choices = modelChoices(models.status === 'fulfilled' ? models.value : [], runs);
    bar.setChoices(choices, base ?? '');
    if (models.status === 'rejected') bar.failed((models.reason as Error).message);
  }

  // --- live: a new checkpoint of the shown run reaches the slider; new runs the picker
  const refreshRuns = debounce(async () => {
    try {
      runs = parseRuns(await getJson('api/runs', undefined, ctx.signal));
    } catch {
      return;
    }
    if (!alive) return;
    const models = choices.filter((c) => c.group !== 'run');
    choices = [...modelChoices([], runs), ...models];
    bar.setChoices(choices, base ?? '');
  }, 1000);
  const unsubscribe = ctx.live.subscribe((event) => {
    if (event.kind === 'epoch' && info?.run && sameRun(event.run, info.run)) bar.addEpoch(event.epoch);
    if (event.kind === 'run' || event.kind === 'status') refreshRuns();
  });

  void (async () => {
    await loadChoices();
    if (!alive) return;
    base ??= defaultModel(choices);
    if (!base) {
      bar.setInfo(null);
      graph.clear(emptyBox('No model to draw', 'The server lists no models.'));
      input.failed('The server lists no models.');
      return;
    }
    await openModel(base, epoch, asked);
  })();

  return () => {
    alive = false;
    unsubscribe();
    refreshRuns.cancel();
    modelAbort?.abort();
    inputAbort?.abort();
    panelAbort?.abort();
    bar.destroy();
    graph.destroy();
    input.destroy();
    panel.destroy();
  };
}
