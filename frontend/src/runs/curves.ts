// Training curves: loss and accuracy per epoch, one colour per run, train dashed and
// validation solid; under the loss curves, each run's per-batch training loss as a thin
// light line when the run recorded it. The option is built by a pure function (tested);
// the view draws it.
import type { ChartOption } from '../charts';
import { TEXT_STYLE } from '../charts';
import type { Metrics } from '../types';

/** A run's per-batch training loss, as `api/runs/{id}/batch-loss` answers it. */
export interface BatchLoss {
  /** The run keeps batch losses (`convscope train --record-batch-loss`), or has some. */
  recorded: boolean;
  /** Per batch, its place on the epoch axis: batch i of n in epoch e at e - 1 + (i + 1) / n. */
  epoch: number[];
  /** Per batch, its loss (null where it was not finite). */
  loss: (number | null)[];
}

export interface CurveRun {
  id: string;
  name: string;
  colour: string;
  metrics: Metrics;
  /** Absent until read; `recorded: false` for a run that did not keep it. */
  batchLoss?: BatchLoss;
}

/** The URL of a run's per-batch loss (relative, as every URL of the page). */
export function batchLossUrl(id: string): string {
  return `api/runs/${encodeURIComponent(id)}/batch-loss`;
}

const finiteOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The answer of `batchLossUrl`, checked: positions and losses paired, a bad position dropped. */
export function parseBatchLoss(raw: unknown): BatchLoss {
  const body = (raw ?? {}) as { recorded?: unknown; epoch?: unknown; loss?: unknown };
  const positions = Array.isArray(body.epoch) ? body.epoch : [];
  const losses = Array.isArray(body.loss) ? body.loss : [];
  const epoch: number[] = [];
  const loss: (number | null)[] = [];
  positions.forEach((x, i) => {
    const at = finiteOrNull(x);
    if (at === null) return;
    epoch.push(at);
    loss.push(finiteOrNull(losses[i]));
  });
  return { recorded: body.recorded === true || epoch.length > 0, epoch, loss };
}

const hasBatches = (run: CurveRun): boolean => (run.batchLoss?.epoch.length ?? 0) > 0;

/** The thin light per-batch loss lines of the runs that have them (drawn under the epoch curves). */
export function batchLossSeries(runs: readonly CurveRun[]) {
  return runs.filter(hasBatches).map((run) => {
    const { epoch, loss } = run.batchLoss!;
    return {
      id: `${run.id}-batch`,
      name: `${run.name} · per batch`,
      type: 'line',
      data: epoch.map((x, i) => [x, loss[i]]),
      connectNulls: false,
      showSymbol: false,
      symbol: 'none',
      sampling: 'lttb', // thousands of batches stay one cheap line
      z: 1, // under the epoch curves (2)
      silent: true,
      lineStyle: { color: run.colour, width: 1, opacity: 0.4 },
      itemStyle: { color: run.colour },
      emphasis: { disabled: true },
      animation: false,
    };
  });
}

/**
 * What the legend says of the per-batch loss: drawn (a thin line), not recorded by some
 * runs, or by none; null while nothing is known yet or a run recording it has no batch yet.
 */
export function batchLossNote(runs: readonly CurveRun[]): { text: string; title: string; drawn: boolean } | null {
  const known = runs.filter((r) => r.batchLoss);
  if (!known.length) return null;
  const missing = known.filter((r) => !r.batchLoss!.recorded);
  const title = 'convscope train --record-batch-loss keeps every batch\'s loss';
  if (runs.some(hasBatches)) {
    const text = missing.length ? `per batch (not recorded by ${missing.map((r) => r.name).join(', ')})` : 'per batch';
    return { text, title, drawn: true };
  }
  if (missing.length === known.length) return { text: 'per-batch loss: not recorded', title, drawn: false };
  return null;
}

function batchLossDescription(runs: readonly CurveRun[]): string {
  const drawn = runs.filter(hasBatches);
  if (!drawn.length) return '';
  const each = drawn.map((r) => `${r.name} (${r.batchLoss!.epoch.length} batches)`).join(', ');
  return `; thin light lines: per-batch training loss of ${each}`;
}

export type Quantity = 'loss' | 'acc';

const QUANTITY_NAME: Record<Quantity, string> = { loss: 'loss', acc: 'accuracy' };

export function curveSeries(runs: readonly CurveRun[], quantity: Quantity) {
  return runs.flatMap((run) =>
    (['train', 'val'] as const).map((split) => {
      const values = run.metrics[`${split}_${quantity}`];
      return {
        id: `${run.id}-${split}`,
        name: `${run.name} · ${split === 'train' ? 'train' : 'validation'}`,
        type: 'line',
        data: run.metrics.epoch.map((epoch, i) => [epoch, values[i]]),
        connectNulls: false,
        showSymbol: true,
        symbolSize: split === 'val' ? 6 : 4,
        lineStyle: { color: run.colour, width: 2, type: split === 'train' ? 'dashed' : 'solid' },
        itemStyle: { color: run.colour },
        emphasis: { focus: 'series' },
        animation: false,
      };
    }),
  );
}

export function curvesOption(runs: readonly CurveRun[], quantity: Quantity): ChartOption {
  const name = QUANTITY_NAME[quantity];
  return {
    aria: {
      enabled: true,
      label: {
        description: `${name} per epoch of ${runs.map((r) => r.name).join(', ')}; train dashed, validation solid${quantity === 'loss' ? batchLossDescription(runs) : ''}`,
      },
    },
    textStyle: TEXT_STYLE,
    title: undefined,
    grid: { left: 56, right: 16, top: 28, bottom: 44 },
    tooltip: {
      trigger: 'axis',
      valueFormatter: (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : '–'), // accuracy too: 0.729, as the table and the CLI
    },
    xAxis: {
      type: 'value',
      name: 'epoch (0 = before training)',
      nameLocation: 'middle',
      nameGap: 28,
      minInterval: 1,
      min: 0,
      max: (extent: { max: number }) => Math.max(1, extent.max),
    },
    yAxis: {
      type: 'value',
      name,
      nameLocation: 'end',
      nameGap: 12,
      nameTextStyle: { align: 'left' },
      scale: quantity === 'loss',
      min: quantity === 'acc' ? 0 : undefined,
      max: quantity === 'acc' ? 1 : undefined,
    },
    series: quantity === 'loss' ? [...batchLossSeries(runs), ...curveSeries(runs, quantity)] : curveSeries(runs, quantity),
  };
}
