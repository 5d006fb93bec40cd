// The embedding explorer: the chosen runs' maps of the probe set side by side on shared
// axes, an epoch slider with playback, colour-by modes, and one selection linked across
// every map (brushed, clicked or picked by class in the legend) that stays lit while
// the epochs move.
import { getComputed, getJson } from '../api';
import { code, emptyBox, errorBox, h, loadingBox, replace, uid } from '../dom';
import { COLOUR_BY_NAMES, isColourBy, legendEntries, pointGroups, type ColourBy } from '../explore/colour';
import { sharedLimits, type Limits } from '../explore/limits';
import { MapCard } from '../explore/mapCard';
import { epochAtOrBefore, Player } from '../explore/playback';
import { combine, idsOf, idsOfClass, LinkedSelection } from '../explore/selection';
import { debounce } from '../live';
import { listParam } from '../router';
import { isEmbeddingBody, parseEmbedding, parseProbe, parseRunDetail, parseRuns, type Probe, type RunDetail, type RunSummary } from '../types';
import { NO_RUNS_HINT, type Cleanup, type ViewContext } from '../view';

const METHODS = [
  ['umap', 'UMAP'],
  ['pca', 'PCA'],
  ['tsne', 't-SNE'],
] as const;
type Method = (typeof METHODS)[number][0];
const isMethod = (v: string | null): v is Method => METHODS.some(([m]) => m === v);

export function epochLabel(epoch: number): string {
  return epoch === 0 ? 'epoch 0 (before training)' : `epoch ${epoch}`;
}

export function exploreView(root: HTMLElement, ctx: ViewContext): Cleanup {
  let alive = true;
  let runs: RunSummary[] = [];
  let chosen: string[] = listParam(ctx.params, 'runs');
  let method: Method = isMethod(ctx.params.get('method')) ? (ctx.params.get('method') as Method) : 'umap';
  let layer = ctx.params.get('layer') ?? '';
  let colourBy: ColourBy = isColourBy(ctx.params.get('colour')) ? (ctx.params.get('colour') as ColourBy) : 'class';
  let trails = ctx.params.get('trails') === '1';
  const wantedEpoch = ctx.params.get('epoch');
  let epochs: number[] = [];
  let epoch = wantedEpoch !== null && Number.isFinite(Number(wantedEpoch)) ? Number(wantedEpoch) : -1;
  let limits: Limits | null = null;
  const selection = new LinkedSelection();
  const cards = new Map<string, MapCard>();
  const details = new Map<string, RunDetail>();
  const generation = new Map<string, number>();

  // --- the controls -------------------------------------------------------------------
  const runsBox = h('fieldset', { class: 'run-picker' }, h('legend', {}, 'Runs'), loadingBox('Loading the runs…'));
  const layerId = uid('layer');
  const layerSelect = h('select', { id: layerId }) as HTMLSelectElement;
  const methodBox = h('fieldset', { class: 'segmented' }, h('legend', {}, 'Map'), ...METHODS.map(([value, text]) => {
    const input = h('input', { type: 'radio', name: 'method', value, id: `method-${value}` }) as HTMLInputElement;
    input.checked = value === method;
    input.addEventListener('change', () => {
      if (!input.checked) return;
      method = value;
      syncParams();
      loadAll();
    });
    return h('span', {}, input, h('label', { for: `method-${value}` }, text));
  }));
  const colourId = uid('colour');
  const colourSelect = h('select', { id: colourId }, ...(Object.keys(COLOUR_BY_NAMES) as ColourBy[]).map((k) => h('option', { value: k }, COLOUR_BY_NAMES[k]))) as HTMLSelectElement;
  colourSelect.value = colourBy;
  const trailsBox = h('input', { type: 'checkbox', id: 'trails' }) as HTMLInputElement;
  trailsBox.checked = trails;
  const clearButton = h('button', { type: 'button', class: 'button' }, 'Clear selection') as HTMLButtonElement;
  const selectionText = h('span', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  const playButton = h('button', { type: 'button', class: 'button play', 'aria-label': 'play the epochs' }, '▶ Play') as HTMLButtonElement;
  const slider = h('input', { type: 'range', id: 'epoch', min: 0, max: 0, step: 1, value: 0, 'aria-label': 'epoch' }) as HTMLInputElement;
  const epochText = h('output', { for: 'epoch', class: 'epoch-text' }, '–');
  const legend = h('div', { class: 'class-legend', role: 'group', 'aria-label': 'classes: click to select their images in every map, shift-click to add' });
  const grid = h('div', { class: 'maps' });

  replace(
    root,
    h('h1', {}, 'Embedding explorer'),
    h(
      'section',
      { class: 'panel controls', 'aria-label': 'explorer controls' },
      runsBox,
      h(
        'div',
        { class: 'control-row', 'data-needs-runs': '' },
        h('span', { class: 'control' }, h('label', { for: layerId }, 'Layer'), layerSelect),
        methodBox,
        h('span', { class: 'control' }, h('label', { for: colourId }, 'Colour by'), colourSelect),
        h('span', { class: 'control' }, trailsBox, h('label', { for: 'trails' }, 'Trails of the selected points')),
        clearButton,
        selectionText,
      ),
      h('div', { class: 'control-row epoch-row', 'data-needs-runs': '' }, playButton, h('label', { for: 'epoch', class: 'sr-only' }, 'Epoch'), slider, epochText),
      legend,
    ),
    grid,
    h('p', { class: 'muted small help' }, 'Brush points with the rectangle or lasso tool above a map, click a point, or click a class in the legend: the same probe images light up in every map and stay lit at every epoch. Hold shift to add to the selection. Maps share their axes; ← → move the slider.'),
  );

  const player = new Player([], 0, (e) => showEpoch(e, true), (playing) => {
    playButton.textContent = playing ? '❚❚ Pause' : '▶ Play';
    playButton.setAttribute('aria-label', playing ? 'pause' : 'play the epochs');
    playButton.setAttribute('aria-pressed', String(playing));
  });

  playButton.addEventListener('click', () => player.toggle());
  slider.addEventListener('input', () => {
    player.pause();
    showEpoch(epochs[Number(slider.value)] ?? 0, false);
  });
  colourSelect.addEventListener('change', () => {
    colourBy = colourSelect.value as ColourBy;
    syncParams();
    drawLegend();
    drawAll(false);
  });
  trailsBox.addEventListener('change', () => {
    trails = trailsBox.checked;
    syncParams();
    drawAll(false);
  });
  layerSelect.addEventListener('change', () => {
    layer = layerSelect.value;
    syncParams();
    loadAll();
  });
  clearButton.addEventListener('click', () => selection.clear());
  const unsubscribeSelection = selection.subscribe(() => {
    drawSelectionText();
    drawLegend();
    drawAll(false);
  });

  function syncParams() {
    ctx.setParams({ runs: chosen.join(',') || null, layer: layer || null, method, colour: colourBy === 'class' ? null : colourBy, trails: trails ? '1' : null, epoch: epoch >= 0 ? epoch : null });
  }

  function drawSelectionText() {
    selectionText.textContent = selection.size ? `${selection.size} probe image${selection.size === 1 ? '' : 's'} selected` : 'nothing selected';
    clearButton.disabled = selection.size === 0;
  }

  // --- runs and layers ----------------------------------------------------------------
  function drawRunPicker() {
    for (const row of root.querySelectorAll<HTMLElement>('[data-needs-runs]')) row.hidden = runs.length === 0;
    if (!runs.length) {
      replace(runsBox, h('legend', {}, 'Runs'), emptyBox('No runs yet', NO_RUNS_HINT[0], code(NO_RUNS_HINT[1]), NO_RUNS_HINT[2], code(NO_RUNS_HINT[3]), NO_RUNS_HINT[4]));
      return;
    }
    replace(
      runsBox,
      h('legend', {}, 'Runs'),
      ...runs.map((run) => {
        const id = `show-${run.id}`;
        const box = h('input', { type: 'checkbox', id }) as HTMLInputElement;
        box.checked = chosen.includes(run.id);
        box.addEventListener('change', () => {
          chosen = box.checked ? [...chosen, run.id] : chosen.filter((c) => c !== run.id);
          syncParams();
          void arrange();
        });
        return h('span', { class: 'chip' }, box, h('label', { for: id }, run.name));
      }),
    );
  }

  async function loadDetail(id: string): Promise<RunDetail | null> {
    if (details.has(id)) return details.get(id)!;
    if (!runs.some((r) => r.id === id)) {
      // not asked for: the store lists its runs, and a 404 would only fill the console
      cards.get(id)?.failed(`no run ${id} in this store: tick one of its runs above`, 'Unknown run');
      return null;
    }
    try {
      const detail = parseRunDetail(await getJson(`api/runs/${encodeURIComponent(id)}`));
      details.set(id, detail);
      return detail;
    } catch (error) {
      cards.get(id)?.failed((error as Error).message, 'This run could not be read');
      return null;
    }
  }

  function drawLayers() {
    const recorded = [...new Set(chosen.flatMap((id) => details.get(id)?.recorded ?? []))];
    if (!layer || !recorded.includes(layer)) layer = recorded[0] ?? layer;
    replace(layerSelect, ...(recorded.length ? recorded : [layer || 'none']).map((l) => h('option', { value: l }, l)));
    layerSelect.value = layer;
    layerSelect.disabled = recorded.length === 0;
  }

  /** Cards for the chosen runs (in the order chosen), then their maps. */
  async function arrange() {
    for (const [id, card] of cards) {
      if (!chosen.includes(id)) {
        card.dispose();
        card.el.remove();
        cards.delete(id);
      }
    }
    if (!chosen.length) {
      replace(grid, emptyBox(runs.length ? 'Tick one or more runs above to see their maps.' : 'No runs to map.'));
      return;
    }
    grid.querySelector('.state')?.remove();
    for (const id of chosen) {
      const run = runs.find((r) => r.id === id) ?? { id, name: id, study: null, model: '', dataset: '', status: '', epochsCompleted: 0, epochs: null, testAcc: null, created: '' };
      if (!cards.has(id)) {
        const card = new MapCard(run, { onPick: (positions, add) => pick(card, positions, add) });
        cards.set(id, card);
      }
      grid.append(cards.get(id)!.el);
    }
    await Promise.all(chosen.map(loadDetail));
    if (!alive) return;
    drawLayers();
    syncParams();
    for (const id of chosen) if (!cards.get(id)?.embedding) void loadRun(id, false);
  }

  function pick(card: MapCard, positions: number[], add: boolean) {
    const ids = idsOf(positions, card.probe?.indices);
    selection.pick(ids, add ? 'toggle' : 'replace');
  }

  function loadAll() {
    for (const id of chosen) void loadRun(id, false);
  }

  /** One run's map (every epoch in one answer) and probe facts; `quiet` keeps the old map shown. */
  async function loadRun(id: string, quiet: boolean) {
    const card = cards.get(id);
    const detail = details.get(id);
    if (!card || !detail) return;
    const mine = (generation.get(id) ?? 0) + 1;
    generation.set(id, mine);
    const current = () => alive && generation.get(id) === mine && cards.get(id) === card;
    if (!detail.recorded.length) {
      card.empty('This run recorded no layer', 'Maps need a layer recorded on the probe set every epoch, for example:', code(`convscope train ${detail.model || 'MODEL'} --record hidden --store DIR`));
      refreshEpochs();
      return;
    }
    if (!detail.recorded.includes(layer)) {
      card.empty(`This run did not record layer “${layer}”`, `It recorded: ${detail.recorded.join(', ')}.`);
      refreshEpochs();
      return;
    }
    if (!quiet) card.loading(`Loading the ${methodName()} map of “${layer}”…`);
    let update: ((f: number, m?: string) => void) | null = null;
    try {
      const url = `api/runs/${encodeURIComponent(id)}/embedding?layer=${encodeURIComponent(layer)}&method=${method}`;
      const [raw, probe] = await Promise.all([
        getComputed(url, {
          accept: isEmbeddingBody,
          signal: ctx.signal,
          onProgress: (job) => {
            if (!current()) return;
            const text = job.message || `Computing the ${methodName()} maps of every epoch${method === 'umap' ? ' (the server’s first UMAP takes about a minute)' : ''}`;
            if (quiet) card.quietly(`updating: ${Math.round(job.progress * 100)}%`);
            else {
              update ??= card.computing(text);
              update(job.progress, text);
            }
          },
        }),
        loadProbe(id),
      ]);
      if (!current()) return;
      card.setData(parseEmbedding(raw), probe);
    } catch (error) {
      if (!current() || ctx.signal.aborted) return;
      if (quiet) card.quietly(`update failed: ${(error as Error).message}`);
      else card.failed((error as Error).message);
    }
    refreshEpochs();
  }

  async function loadProbe(id: string): Promise<Probe | null> {
    try {
      return parseProbe(await getJson(`api/runs/${encodeURIComponent(id)}/probe`));
    } catch {
      return null; // the map still shows; predictions and thumbnails say they are missing
    }
  }

  const methodName = () => METHODS.find(([m]) => m === method)![1];

  // --- epochs, legend, drawing --------------------------------------------------------
  function refreshEpochs() {
    const loaded = [...cards.values()].filter((c) => c.embedding);
    epochs = [...new Set(loaded.flatMap((c) => c.embedding!.epochs))].sort((a, b) => a - b);
    limits = sharedLimits(loaded.flatMap((c) => [...c.embedding!.points.values()]));
    player.epochs = epochs;
    slider.max = String(Math.max(0, epochs.length - 1));
    slider.disabled = epochs.length < 2;
    playButton.disabled = epochs.length < 2;
    if (!epochs.length) {
      epochText.textContent = '–';
      drawLegend();
      return;
    }
    if (epoch < 0 || !epochs.includes(epoch)) epoch = epoch < 0 ? epochs[epochs.length - 1] : epochAtOrBefore(epochs, epoch) ?? epochs[0];
    drawLegend();
    showEpoch(epoch, false);
  }

  function showEpoch(next: number, animate: boolean) {
    epoch = next;
    player.current = next;
    const i = epochs.indexOf(next);
    slider.value = String(Math.max(0, i));
    slider.setAttribute('aria-valuetext', epochLabel(next));
    epochText.textContent = `${epochLabel(next)}${epochs.length ? ` of ${epochs[epochs.length - 1]}` : ''}`;
    syncParams();
    drawAll(animate);
  }

  function drawAll(animate: boolean) {
    if (epoch < 0) return;
    for (const card of cards.values()) card.show({ epoch, colourBy, limits, selected: selection.ids, trails, animate });
  }

  function drawLegend() {
    const card = [...cards.values()].find((c) => c.embedding);
    if (!card) {
      replace(legend);
      return;
    }
    const e = card.embedding!;
    const classes = e.classes.length ? e.classes : card.probe?.classes ?? [];
    const anyUnknown = colourBy !== 'class' && [...cards.values()].some((c) => {
      if (!c.embedding) return false;
      const shown = c.shownEpoch(epoch);
      return pointGroups(colourBy, c.embedding.labels, shown === null ? undefined : c.probe?.predictions.get(shown)).includes('unknown');
    });
    const entries = legendEntries(colourBy, classes, anyUnknown);
    replace(
      legend,
      h('span', { class: 'muted small legend-title' }, colourBy === 'class' ? 'True class:' : colourBy === 'predicted' ? 'Predicted class (click selects the true class):' : 'Prediction:'),
      ...entries.map((entry) => {
        const swatch = h('span', { class: 'swatch', style: `background:${entry.colour}`, 'aria-hidden': 'true' });
        if (entry.classIndex === null) return h('span', { class: 'legend-item' }, swatch, entry.name);
        const k = entry.classIndex;
        const ids = classIds(k);
        const pressed = ids.length > 0 && ids.every((id) => selection.ids.has(id));
        const button = h('button', { type: 'button', class: 'legend-button', 'aria-pressed': String(pressed), title: `select the images of class ${entry.name} in every map` }, swatch, entry.name);
        button.addEventListener('click', (ev) => {
          const add = (ev as MouseEvent).shiftKey;
          const only = pressed && selection.size === ids.length;
          if (add) selection.pick(ids, 'toggle');
          else if (only) selection.clear();
          else selection.set(combine(new Set(), ids, 'replace'));
          legend.querySelectorAll('button')[entries.indexOf(entry)]?.focus();
        });
        return button;
      }),
      classes.length > 10 ? h('span', { class: 'muted small' }, `(${classes.length} classes: the ten colours repeat)`) : null,
    );
  }

  function classIds(k: number): number[] {
    const ids = new Set<number>();
    for (const c of cards.values()) if (c.embedding) for (const id of idsOfClass(c.embedding.labels, k, c.probe?.indices)) ids.add(id);
    return [...ids];
  }

  // --- keyboard: space plays, arrows are the slider's own -----------------------------
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key === 'Escape' && selection.size) selection.clear();
  };
  document.addEventListener('keydown', onKey);

  // --- live: a new epoch of a shown run brings its new map ----------------------------
  const pending = new Set<string>();
  const refreshLive = debounce(() => {
    for (const id of pending) if (cards.has(id)) void loadRun(id, true);
    pending.clear();
  }, 1500);
  const unsubscribe = ctx.live.subscribe((event) => {
    if (event.kind === 'run') void loadRuns();
    if (cards.has(event.run) && event.kind === 'epoch') {
      pending.add(event.run);
      refreshLive();
    }
  });

  async function loadRuns() {
    try {
      runs = parseRuns(await getJson('api/runs'));
    } catch (error) {
      if (!alive) return;
      replace(runsBox, h('legend', {}, 'Runs'), errorBox((error as Error).message, 'The runs could not be read'));
      replace(grid);
      return;
    }
    if (!alive) return;
    if (!chosen.length) {
      // Nothing named: the newest study's runs, up to four.
      const newest = [...runs].sort((a, b) => b.created.localeCompare(a.created));
      const study = newest.find((r) => r.study)?.study;
      chosen = (study ? newest.filter((r) => r.study === study) : newest).slice(0, 4).map((r) => r.id).reverse();
    }
    drawRunPicker();
    await arrange();
  }

  drawSelectionText();
  void loadRuns();

  return () => {
    alive = false;
    player.pause();
    unsubscribe();
    unsubscribeSelection();
    refreshLive.cancel();
    document.removeEventListener('keydown', onKey);
    for (const card of cards.values()) card.dispose();
  };
}
