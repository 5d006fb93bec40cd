// The Runs view: the store's runs and studies, the chosen runs' training curves, each
// study's verdict and ranking; all kept current by the live feed without a reload.
import { ApiError, getComputed, getJson } from '../api';
import { makeChart, type Chart } from '../charts';
import { code, emptyBox, errorBox, h, loadingBox, progressBox, replace } from '../dom';
import { debounce } from '../live';
import { runColour } from '../palette';
import { formatRoute, listParam } from '../router';
import { batchLossNote, batchLossUrl, curvesOption, parseBatchLoss, type BatchLoss, type CurveRun } from '../runs/curves';
import { rankingTable, verdictBlock } from '../runs/study';
import { runsTable } from '../runs/table';
import {
  isStudyBody,
  parseMetrics,
  parseRuns,
  parseStudies,
  parseStudyReport,
  type Metrics,
  type RunSummary,
  type StudySummary,
} from '../types';
import { NO_RUNS_HINT, type Cleanup, type ViewContext } from '../view';

const MAX_DEFAULT = 6;

export function runsView(root: HTMLElement, ctx: ViewContext): Cleanup {
  const tableBox = h('div', { class: 'panel-body' }, loadingBox('Loading the runs…'));
  const exploreLink = h('a', { class: 'button', href: '#/explore' }, 'Explore the embeddings of the ticked runs →');
  const legendBox = h('div', { class: 'curve-legend', 'aria-label': 'curve legend' });
  const lossEl = h('div', { class: 'chart', role: 'img', 'aria-label': 'loss per epoch' });
  const accEl = h('div', { class: 'chart', role: 'img', 'aria-label': 'accuracy per epoch' });
  const curvesNote = h('div', { class: 'curves-note' });
  const studiesBox = h('div', {});
  const chartPair = h('div', { class: 'chart-pair', hidden: true }, h('figure', {}, h('figcaption', {}, 'Loss'), lossEl), h('figure', {}, h('figcaption', {}, 'Accuracy'), accEl));
  replace(
    root,
    h('h1', {}, 'Runs'),
    h('section', { class: 'panel', 'aria-labelledby': 'runs-h' }, h('div', { class: 'panel-head' }, h('h2', { id: 'runs-h' }, 'Runs in the store'), exploreLink), tableBox),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'curves-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'curves-h' }, 'Training curves'), legendBox),
      curvesNote,
      chartPair,
    ),
    h('section', { 'aria-labelledby': 'studies-h' }, h('h2', { id: 'studies-h' }, 'Studies'), studiesBox),
  );

  let runs: RunSummary[] = [];
  let selected = new Set<string>();
  let chosenByUser = ctx.params.has('sel');
  // The map method the studies are ranked with (`#/runs?method=pca`): a link or a reload
  // keeps it, and the explorer links carry it, so no UMAP is computed unless asked for.
  let studyMethod: Method = isMethod(ctx.params.get('method')) ? (ctx.params.get('method') as Method) : 'umap';
  const routeParams = () => ({ sel: chosenByUser ? [...selected].join(',') || null : null, method: studyMethod === 'umap' ? null : studyMethod });
  const metrics = new Map<string, Metrics>();
  const batchLoss = new Map<string, BatchLoss>();
  const studyCards = new Map<string, { refresh: () => void }>();
  let loss: { chart: Chart; dispose: () => void } | null = null;
  let acc: { chart: Chart; dispose: () => void } | null = null;
  let alive = true;

  const selectedRuns = () => runs.filter((r) => selected.has(r.id));
  const colourOf = (id: string): string | null => {
    const i = selectedRuns().findIndex((r) => r.id === id);
    return i < 0 ? null : runColour(i);
  };

  function drawTable() {
    if (!runs.length) {
      replace(tableBox, emptyBox('No runs yet', NO_RUNS_HINT[0], code(NO_RUNS_HINT[1]), NO_RUNS_HINT[2], code(NO_RUNS_HINT[3]), NO_RUNS_HINT[4]));
      return;
    }
    // A live update redraws the table; keep the keyboard focus where it was.
    const focused = tableBox.contains(document.activeElement) ? document.activeElement?.id : undefined;
    replace(tableBox, runsTable(runs, selected, colourOf, toggle));
    if (focused) document.getElementById(focused)?.focus();
  }

  function toggle(id: string, on: boolean) {
    chosenByUser = true;
    if (on) selected.add(id);
    else selected.delete(id);
    ctx.setParams(routeParams());
    drawTable();
    void drawCurves();
  }

  function updateExploreLink() {
    exploreLink.hidden = runs.length === 0;
    const ids = selectedRuns().map((r) => r.id);
    exploreLink.setAttribute('href', formatRoute('explore', { runs: ids.join(',') || null, method: routeParams().method }));
  }

  async function loadMetrics(id: string) {
    try {
      // the per-batch loss with the metrics: read again on each live epoch as they are
      const [values, batches] = await Promise.all([getJson(`api/runs/${encodeURIComponent(id)}/metrics`), getJson(batchLossUrl(id))]);
      metrics.set(id, parseMetrics(values));
      batchLoss.set(id, parseBatchLoss(batches));
    } catch (error) {
      if (alive) curvesNote.append(errorBox((error as Error).message, `No metrics for run ${id}`));
    }
  }

  async function drawCurves() {
    updateExploreLink();
    const chosen = selectedRuns();
    if (!chosen.length) {
      replace(curvesNote, emptyBox(runs.length ? 'Tick runs in the table to compare their training curves.' : 'No runs to draw.'));
      replace(legendBox);
      chartPair.hidden = true;
      loss?.chart.clear();
      acc?.chart.clear();
      return;
    }
    replace(curvesNote);
    chartPair.hidden = false;
    await Promise.all(chosen.filter((r) => !metrics.has(r.id)).map((r) => loadMetrics(r.id)));
    if (!alive) return;
    const curveRuns: CurveRun[] = chosen
      .filter((r) => metrics.has(r.id))
      .map((r, i) => ({ id: r.id, name: r.name, colour: runColour(i), metrics: metrics.get(r.id)!, batchLoss: batchLoss.get(r.id) }));
    const batchNote = batchLossNote(curveRuns);
    replace(
      legendBox,
      ...curveRuns.map((r) => h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: `background:${r.colour}` }), r.name)),
      h('span', { class: 'legend-item muted' }, h('span', { class: 'dash dashed', 'aria-hidden': 'true' }), 'train'),
      h('span', { class: 'legend-item muted' }, h('span', { class: 'dash', 'aria-hidden': 'true' }), 'validation'),
      batchNote && h('span', { class: 'legend-item muted batch-note', title: batchNote.title }, batchNote.drawn && h('span', { class: 'dash', style: 'border-top-width:1px', 'aria-hidden': 'true' }), batchNote.text),
    );
    loss ??= makeChart(lossEl);
    acc ??= makeChart(accEl);
    loss.chart.setOption(curvesOption(curveRuns, 'loss'), { notMerge: true });
    acc.chart.setOption(curvesOption(curveRuns, 'acc'), { notMerge: true });
  }

  function defaultSelection(): Set<string> {
    const wanted = listParam(ctx.params, 'sel').filter((id) => runs.some((r) => r.id === id));
    if (chosenByUser) return new Set(wanted.length ? wanted : [...selected].filter((id) => runs.some((r) => r.id === id)));
    // Nothing chosen yet: the newest study's runs (or the newest runs), so the page opens with curves.
    const newest = [...runs].sort((a, b) => b.created.localeCompare(a.created));
    const study = newest.find((r) => r.study)?.study;
    const pool = study ? newest.filter((r) => r.study === study) : newest;
    return new Set(pool.slice(0, MAX_DEFAULT).map((r) => r.id));
  }

  async function loadRuns(first = false) {
    try {
      runs = parseRuns(await getJson('api/runs'));
    } catch (error) {
      if (!alive) return;
      if (first) replace(tableBox, storeError(error));
      return;
    }
    if (!alive) return;
    selected = defaultSelection();
    drawTable();
    await drawCurves();
  }

  async function loadStudies() {
    let studies: StudySummary[];
    try {
      studies = parseStudies(await getJson('api/studies'));
    } catch (error) {
      if (alive) replace(studiesBox, errorBox((error as Error).message, 'The studies could not be read'));
      return;
    }
    if (!alive) return;
    if (!studies.length) {
      if (!studyCards.size) replace(studiesBox, emptyBox('No studies yet', 'A study trains several architectures with the same data and seed, and ranks them:', code('convscope study --name demo --epochs 3 --store DIR')));
      return;
    }
    if (!studyCards.size) replace(studiesBox);
    for (const study of studies) {
      if (studyCards.has(study.name)) continue;
      const card = studyCard(study, () => alive, ctx.signal, () => studyMethod, (method) => {
        studyMethod = method;
        ctx.setParams(routeParams());
        updateExploreLink();
      });
      studyCards.set(study.name, card);
      studiesBox.append(card.el);
    }
  }

  const refreshRuns = debounce(() => void loadRuns(), 400);
  const refreshStudies = debounce((names: Set<string>) => {
    for (const name of names) studyCards.get(name)?.refresh();
    names.clear();
    void loadStudies();
  }, 3000);
  const dirtyStudies = new Set<string>();

  const unsubscribe = ctx.live.subscribe((event) => {
    const run = runs.find((r) => r.id === event.run);
    if (event.kind === 'epoch' && selected.has(event.run)) {
      // a new epoch of a drawn run: read its metrics again, redraw (cursor reads would be smaller)
      void loadMetrics(event.run).then(() => {
        if (alive) void drawCurves();
      });
    }
    refreshRuns();
    // A study is ranked again when one of its runs changes status (finishes, fails) or a
    // run appears, not at every epoch: each ranking maps every run's latest epoch.
    if (event.kind === 'epoch') return;
    if (run?.study) dirtyStudies.add(run.study);
    refreshStudies(dirtyStudies);
  });

  void loadRuns(true);
  void loadStudies();

  return () => {
    alive = false;
    unsubscribe();
    refreshRuns.cancel();
    refreshStudies.cancel();
    loss?.dispose();
    acc?.dispose();
  };
}

function storeError(error: unknown): HTMLElement {
  const message = (error as Error).message;
  if (error instanceof ApiError && error.status === 0) return errorBox(message, 'The server did not answer');
  return h('div', {}, errorBox(message, 'The runs could not be read'), h('p', { class: 'muted' }, 'Start the dashboard on a run store: ', code('convscope serve --store DIR'), '.'));
}

const METHODS = [
  ['umap', 'UMAP'],
  ['pca', 'PCA'],
  ['tsne', 't-SNE'],
] as const;
type Method = (typeof METHODS)[number][0];
const isMethod = (v: string | null): v is Method => METHODS.some(([m]) => m === v);

/** One study: its runs, its verdict and ranking, read with the map method chosen. */
function studyCard(
  study: StudySummary,
  alive: () => boolean,
  signal: AbortSignal,
  method: () => Method,
  onMethod: (method: Method) => void,
): { el: HTMLElement; refresh: () => void } {
  const body = h('div', {}, loadingBox('Reading the study…'));
  const selectId = `method-${study.name.replace(/\W/g, '_')}`;
  const select = h('select', { id: selectId }, ...METHODS.map(([v, t]) => h('option', { value: v }, t))) as HTMLSelectElement;
  select.value = method();
  const exploreLink = h('a', { class: 'button' }, 'Explore its maps →');
  const linkTo = () => exploreLink.setAttribute('href', formatRoute('explore', { runs: study.runs.slice(0, 4).join(','), method: method() === 'umap' ? null : method() }));
  linkTo();
  const updating = h('span', { class: 'muted small', role: 'status' });
  let generation = 0;

  async function load(quiet: boolean) {
    const mine = (generation += 1);
    const progress = progressBox(`Computing the ${select.selectedOptions[0]?.text ?? ''} maps the ranking rests on`);
    if (!quiet) replace(body, loadingBox('Reading the study…'));
    else updating.textContent = 'updating…';
    try {
      const report = parseStudyReport(
        await getComputed(`api/studies/${encodeURIComponent(study.name)}?method=${select.value}`, {
          accept: isStudyBody,
          signal,
          onProgress: (job) => {
            if (mine !== generation || !alive()) return;
            if (!quiet && !progress.el.isConnected) replace(body, progress.el);
            progress.update(job.progress, job.message || undefined);
          },
        }),
      );
      if (mine !== generation || !alive()) return;
      replace(body, report.ranking.length ? [verdictBlock(report), rankingTable(report)] : verdictBlock(report));
    } catch (error) {
      if (mine !== generation || !alive() || signal.aborted) return;
      replace(body, errorBox((error as Error).message, 'The study could not be ranked'));
    } finally {
      if (mine === generation) updating.textContent = '';
    }
  }

  select.addEventListener('change', () => {
    if (isMethod(select.value)) onMethod(select.value);
    linkTo();
    void load(false);
  });
  void load(false);
  const el = h(
    'article',
    { class: 'panel study' },
    h(
      'div',
      { class: 'panel-head' },
      h('h3', {}, 'Study ', h('span', { class: 'mono' }, study.name)),
      h('span', { class: 'muted' }, `${study.runs.length} runs · ${study.models.join(', ')}`),
      exploreLink,
      h('label', { for: selectId, class: 'inline-label' }, 'maps by'),
      select,
      updating,
    ),
    body,
  );
  return { el, refresh: () => void load(true) };
}
