// Training curves: loss and accuracy per epoch, one colour per run, train dashed and
// validation solid. The option is built by a pure function (tested); the view draws it.
import type { ChartOption } from '../charts';
import { TEXT_STYLE } from '../charts';
import type { Metrics } from '../types';

export interface CurveRun {
  id: string;
  name: string;
  colour: string;
  metrics: Metrics;
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
    aria: { enabled: true, label: { description: `${name} per epoch of ${runs.map((r) => r.name).join(', ')}; train dashed, validation solid` } },
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
    series: curveSeries(runs, quantity),
  };
}
