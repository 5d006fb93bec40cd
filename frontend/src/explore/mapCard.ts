// One run's map in the explorer: its states (loading, computing, error, no layer), the
// scatter at the epoch shown, the epoch's scores beside it and the scores over epochs.
import { makeChart, TEXT_STYLE, type Chart } from '../charts';
import { emptyBox, errorBox, fmt, h, loadingBox, progressBox, replace } from '../dom';
import { CLASS_PALETTE } from '../palette';
import { SCORE_NAMES, scoreKeys, type Embedding, type Probe, type RunSummary } from '../types';
import { pointGroups, type ColourBy } from './colour';
import type { Limits } from './limits';
import { epochAtOrBefore } from './playback';
import { axesOption, frameSeries, trailsOf } from './scatter';
import { inPolygon, inRect, positionsOf, type Point } from './selection';
import { styleText, thumbnailStyle } from './sprite';

export const TRAIL_CAP = 300;

export interface ShowState {
  epoch: number;
  colourBy: ColourBy;
  limits: Limits | null;
  selected: ReadonlySet<number>;
  trails: boolean;
  animate: boolean;
}

export interface CardEvents {
  /** Points picked in this map, by position; `add` when shift was held. */
  onPick(positions: number[], add: boolean): void;
}

type BrushArea = { brushType: string; range: unknown; coordRange?: unknown };

export class MapCard {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly side: HTMLElement;
  private readonly note: HTMLElement;
  private readonly quiet: HTMLElement;
  private chart: { chart: Chart; dispose: () => void } | null = null;
  private spark: { chart: Chart; dispose: () => void } | null = null;
  private chartEl: HTMLElement | null = null;
  private sparkEl: HTMLElement | null = null;
  embedding: Embedding | null = null;
  probe: Probe | null = null;
  private shiftHeld = false;
  private lastShown: number | null = null;

  constructor(readonly run: RunSummary, private readonly events: CardEvents) {
    this.body = h('div', { class: 'map-body' }, loadingBox('Loading…'));
    this.side = h('div', { class: 'map-side' });
    this.note = h('p', { class: 'map-note muted small' });
    this.quiet = h('span', { class: 'muted small', role: 'status' });
    this.el = h(
      'article',
      { class: 'panel map-card', 'aria-label': `map of ${run.name}` },
      h('div', { class: 'panel-head' }, h('h3', {}, run.name), h('span', { class: 'muted' }, [run.model, run.dataset, run.status].filter(Boolean).join(' · ')), this.quiet),
      h('div', { class: 'map-row' }, this.body, this.side),
      this.note,
    );
  }

  loading(text: string): void {
    this.drop();
    replace(this.body, loadingBox(text));
    replace(this.side);
  }

  /** A progress bar for the job computing the map; returns its updater. */
  computing(text: string): (fraction: number, message?: string) => void {
    this.drop();
    const box = progressBox(text);
    replace(this.body, box.el);
    replace(this.side);
    return box.update;
  }

  /** Progress while a newer map replaces the one shown (live updates): a line only. */
  quietly(text: string): void {
    this.quiet.textContent = text;
  }

  failed(message: string, title = 'No map for this run'): void {
    this.drop();
    replace(this.body, errorBox(message, title));
    replace(this.side);
  }

  empty(title: string, ...lines: (string | HTMLElement)[]): void {
    this.drop();
    replace(this.body, emptyBox(title, ...lines));
    replace(this.side);
  }

  setData(embedding: Embedding, probe: Probe | null): void {
    this.embedding = embedding;
    this.probe = probe;
    // Fetch the sprite now, so the first hover already has its thumbnail.
    if (probe?.sprite) new Image().src = probe.sprite.url;
    this.quiet.textContent = '';
    if (!this.chart) {
      this.chartEl = h('div', { class: 'map-chart', role: 'img', 'aria-label': `2-D map of the probe set for ${this.run.name}` });
      this.sparkEl = h('div', { class: 'spark', role: 'img', 'aria-label': 'separation scores over epochs' });
      replace(this.body, this.chartEl);
      this.chart = makeChart(this.chartEl);
      this.initChart(this.chart.chart, this.chartEl);
    }
  }

  /** The epoch this run shows for the slider's epoch (its nearest recorded one at or before). */
  shownEpoch(epoch: number): number | null {
    return this.embedding ? epochAtOrBefore(this.embedding.epochs, epoch) : null;
  }

  points(epoch: number): readonly Point[] {
    const shown = this.shownEpoch(epoch);
    return shown === null ? [] : this.embedding?.points.get(shown) ?? [];
  }

  show(state: ShowState): void {
    const embedding = this.embedding;
    if (!embedding || !this.chart) return;
    const epoch = this.shownEpoch(state.epoch);
    if (epoch === null) return;
    const points = embedding.points.get(epoch) ?? [];
    const predictions = this.probe?.predictions.get(epoch);
    const groups = pointGroups(state.colourBy, embedding.labels, predictions);
    const selected = positionsOf(state.selected, points.length, this.probe?.indices);
    const upTo = embedding.epochs.filter((e) => e <= epoch);
    const trails = state.trails ? trailsOf(selected, embedding.points, upTo, groups, TRAIL_CAP) : [];
    this.chart.chart.setOption(
      {
        ...axesOption(state.limits),
        series: frameSeries({ points, groups, selected, trails, animate: state.animate && this.lastShown !== epoch }),
      },
      { replaceMerge: ['series'] },
    );
    this.lastShown = epoch;
    this.tooltipState = { epoch, predictions };
    const notes: string[] = [];
    if (epoch !== state.epoch) notes.push(`Epoch ${state.epoch} is not recorded for this run: showing epoch ${epoch}.`);
    if (state.trails && selected.length > TRAIL_CAP) notes.push(`Trails drawn for the first ${TRAIL_CAP} of the ${selected.length} selected points.`);
    if (this.probe && !this.probe.predictions.size) notes.push('This run recorded no predictions on its probe set: colour by predicted class and right/wrong need a newer run.');
    else if (state.colourBy !== 'class' && !predictions) notes.push(`No predictions recorded at epoch ${epoch}.`);
    this.note.textContent = notes.join(' ');
    this.drawScores(epoch);
  }

  private tooltipState: { epoch: number; predictions: number[] | undefined } = { epoch: 0, predictions: undefined };

  private tooltip(position: number): string {
    const e = this.embedding;
    if (!e) return '';
    const classes = e.classes.length ? e.classes : this.probe?.classes ?? [];
    const name = (k: number | undefined) => (k === undefined || k < 0 ? '–' : classes[k] ?? `class ${k}`);
    const label = e.labels[position];
    const predicted = this.tooltipState.predictions?.[position];
    const confidence = this.probe?.confidence.get(this.tooltipState.epoch)?.[position];
    const index = this.probe?.indices[position] ?? position;
    const sprite = this.probe?.sprite;
    const thumb = sprite ? `<div class="thumb" style='${escapeHtml(styleText(thumbnailStyle(position, sprite, e.labels.length, 64)))}'></div>` : '';
    const verdict = predicted === undefined || predicted < 0 ? '' : predicted === label ? ' <span class="yes">✓</span>' : ' <span class="no">✗</span>';
    const conf = confidence !== undefined && Number.isFinite(confidence) ? ` (${(confidence * 100).toFixed(0)}%)` : '';
    return `<div class="tip">${thumb}<div><div><b>${escapeHtml(name(label))}</b></div>` +
      `<div>predicted at epoch ${this.tooltipState.epoch}: ${predicted === undefined ? 'not recorded' : escapeHtml(name(predicted)) + conf + verdict}</div>` +
      `<div class="muted">image #${index}</div></div></div>`;
  }

  private initChart(chart: Chart, el: HTMLElement): void {
    chart.setOption({
      aria: { enabled: true, label: { description: `Scatter map of ${this.run.name}'s probe images; brush points to select them in every map` } },
      textStyle: TEXT_STYLE,
      animationDurationUpdate: 450,
      grid: { left: 42, right: 12, top: 36, bottom: 26 },
      tooltip: {
        trigger: 'item',
        confine: true,
        textStyle: { color: '#1f2733' },
        formatter: (p: { data?: unknown }) => (Array.isArray(p.data) ? this.tooltip(Number(p.data[2])) : ''),
      },
      toolbox: {
        right: 8,
        top: 2,
        itemSize: 15,
        feature: { brush: { type: ['rect', 'polygon', 'clear'], title: { rect: 'Select a rectangle', polygon: 'Select by lasso', clear: 'Clear the brush' } } },
      },
      brush: {
        toolbox: ['rect', 'polygon', 'clear'],
        xAxisIndex: 0,
        yAxisIndex: 0,
        throttleType: 'debounce',
        transformable: false,
        brushStyle: { borderWidth: 1, color: 'rgba(0,114,178,0.08)', borderColor: 'rgba(0,114,178,0.8)' },
        outOfBrush: { colorAlpha: 0.3 },
      },
      series: [],
    });
    el.addEventListener('pointerdown', (ev) => (this.shiftHeld = ev.shiftKey), { capture: true });
    chart.on('brushEnd', (params: unknown) => {
      const areas = ((params as { areas?: BrushArea[] }).areas ?? []);
      if (!areas.length) return;
      const picked = new Set<number>();
      const points = this.lastPoints();
      for (const area of areas) for (const p of this.inArea(chart, area, points)) picked.add(p);
      chart.dispatchAction({ type: 'brush', areas: [] });
      this.events.onPick([...picked], this.shiftHeld);
    });
    chart.on('click', (params) => {
      if (!Array.isArray(params.data)) return;
      const raw = params.event?.event as { shiftKey?: boolean } | undefined;
      this.events.onPick([Number(params.data[2])], !!raw?.shiftKey);
    });
  }

  private lastPoints(): readonly Point[] {
    return this.lastShown === null ? [] : this.embedding?.points.get(this.lastShown) ?? [];
  }

  private inArea(chart: Chart, area: BrushArea, points: readonly Point[]): number[] {
    const toData = (px: number[]) => chart.convertFromPixel({ gridIndex: 0 }, px) as number[];
    if (area.brushType === 'rect') {
      const r = (area.coordRange ?? null) as number[][] | null;
      let xs: [number, number], ys: [number, number];
      if (r && r.length === 2 && r[0].length === 2) {
        xs = [r[0][0], r[0][1]];
        ys = [r[1][0], r[1][1]];
      } else {
        const px = area.range as number[][];
        const a = toData([px[0][0], px[1][0]]);
        const b = toData([px[0][1], px[1][1]]);
        xs = [a[0], b[0]];
        ys = [a[1], b[1]];
      }
      return inRect(points, xs, ys);
    }
    if (area.brushType === 'polygon') {
      const coords = (area.coordRange as number[][] | undefined) ?? (area.range as number[][]).map((px) => toData(px));
      return inPolygon(points, coords.map((c) => [c[0], c[1]] as const));
    }
    return [];
  }

  private drawScores(epoch: number): void {
    const e = this.embedding;
    if (!e) return;
    const keys = scoreKeys(e.scores.values());
    if (!keys.length) {
      replace(this.side, h('p', { class: 'muted small' }, 'No separation scores recorded.'));
      return;
    }
    const now = e.scores.get(epoch) ?? {};
    const table = h(
      'table',
      { class: 'scores' },
      h('caption', {}, `Separation at epoch ${epoch}`),
      h('tbody', {}, ...keys.map((k, i) => h('tr', {}, h('th', { scope: 'row' }, h('span', { class: 'swatch', style: `background:${CLASS_PALETTE[i]}`, 'aria-hidden': 'true' }), SCORE_NAMES[k] ?? k), h('td', { class: 'num' }, fmt(now[k]))))),
    );
    if (!this.sparkEl!.isConnected) replace(this.side, table, this.sparkEl!);
    else this.side.replaceChild(table, this.side.firstChild!);
    if (!this.spark) {
      this.spark = makeChart(this.sparkEl!);
      this.sparkOf = null;
    }
    // The curves change with the data only; moving the epoch moves the marker alone.
    if (this.sparkOf !== e) {
      this.sparkOf = e;
      this.spark.chart.setOption(sparkOption(e, keys), { notMerge: true });
    }
    this.spark.chart.setOption({ series: [{ id: 'score-0', markLine: { data: [{ xAxis: epoch }] } }] });
  }

  private sparkOf: Embedding | null = null;

  private drop(): void {
    this.chart?.dispose();
    this.spark?.dispose();
    this.chart = null;
    this.spark = null;
    this.sparkOf = null;
    this.chartEl = null;
    this.sparkEl = null;
    this.lastShown = null;
    this.embedding = null;
    this.note.textContent = '';
  }

  dispose(): void {
    this.drop();
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sparkOption(e: Embedding, keys: string[]) {
  return {
    textStyle: TEXT_STYLE,
    animation: false,
    grid: { left: 30, right: 8, top: 8, bottom: 20 },
    tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : '–') },
    xAxis: { type: 'value', min: e.epochs[0] ?? 0, max: Math.max(1, e.epochs[e.epochs.length - 1] ?? 1), minInterval: 1, axisLabel: { fontSize: 9 } },
    yAxis: { type: 'value', scale: true, axisLabel: { fontSize: 9 }, splitNumber: 3 },
    series: keys.map((k, i) => ({
      id: `score-${i}`,
      name: SCORE_NAMES[k] ?? k,
      type: 'line',
      symbolSize: 3,
      lineStyle: { width: 1.5, color: CLASS_PALETTE[i] },
      itemStyle: { color: CLASS_PALETTE[i] },
      data: e.epochs.map((ep) => [ep, e.scores.get(ep)?.[k] ?? null]),
      markLine: i === 0 ? { silent: true, symbol: 'none', label: { show: false }, animation: false, lineStyle: { color: '#2b3340', type: 'solid', width: 1 }, data: [] } : undefined,
    })),
  };
}
