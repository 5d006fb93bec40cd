import { describe, expect, it } from 'vitest';
import { parseMetrics } from '../types';
import { batchLossNote, batchLossSeries, batchLossUrl, curvesOption, parseBatchLoss, type CurveRun } from './curves';

const metrics = parseMetrics({ epoch: [0, 1, 2], train_loss: [null, 1.2, 0.8], val_loss: [2.3, 1.1, 0.9] });

function run(id: string, batchLoss?: unknown): CurveRun {
  return { id, name: `demo/${id}`, colour: id === 'a' ? '#0072B2' : '#E69F00', metrics, batchLoss: batchLoss === undefined ? undefined : parseBatchLoss(batchLoss) };
}

// What `api/runs/{id}/batch-loss` answers for 2 epochs of 3 batches, one of them diverged.
const RECORDED = {
  run: 'a',
  recorded: true,
  epochs: [1, 2],
  batches: [3, 3],
  epoch: [0.33333, 0.66667, 1, 1.33333, 1.66667, 2],
  loss: [2.2, 1.9, null, 1.1, 0.95, 0.9],
};
const NOT_RECORDED = { run: 'b', recorded: false, epochs: [], batches: [], epoch: [], loss: [] };

describe('per-batch loss', () => {
  it('pairs each batch with its place on the epoch axis, a missing loss as a gap', () => {
    const parsed = parseBatchLoss(RECORDED);
    expect(parsed.recorded).toBe(true);
    expect(parsed.epoch).toEqual(RECORDED.epoch);
    expect(parsed.loss).toEqual([2.2, 1.9, null, 1.1, 0.95, 0.9]);
    expect(parseBatchLoss(NOT_RECORDED)).toEqual({ recorded: false, epoch: [], loss: [] });
    // a malformed answer: positions that are not numbers are dropped with their loss
    expect(parseBatchLoss({ epoch: [0.5, 'x', 1], loss: [1, 2, 'y'] })).toEqual({ recorded: true, epoch: [0.5, 1], loss: [1, null] });
    expect(parseBatchLoss(null)).toEqual({ recorded: false, epoch: [], loss: [] });
    expect(batchLossUrl('ab/12')).toBe('api/runs/ab%2F12/batch-loss');
  });

  it('is a thin light line under the loss curves, for the runs that recorded it', () => {
    const runs = [run('a', RECORDED), run('b', NOT_RECORDED)];
    const series = batchLossSeries(runs);
    expect(series).toHaveLength(1);
    const [line] = series;
    expect(line.id).toBe('a-batch');
    expect(line.data).toEqual([[0.33333, 2.2], [0.66667, 1.9], [1, null], [1.33333, 1.1], [1.66667, 0.95], [2, 0.9]]);
    expect(line.lineStyle).toEqual({ color: '#0072B2', width: 1, opacity: 0.4 });
    expect(line.connectNulls).toBe(false);
    expect(line.showSymbol).toBe(false);

    const loss = curvesOption(runs, 'loss') as { series: { id: string; z?: number }[]; aria: { label: { description: string } } };
    expect(loss.series.map((s) => s.id)).toEqual(['a-batch', 'a-train', 'a-val', 'b-train', 'b-val']);
    expect(loss.series[0].z).toBeLessThan(2); // under the epoch curves
    expect(loss.aria.label.description).toContain('thin light lines: per-batch training loss of demo/a (6 batches)');
    const acc = curvesOption(runs, 'acc') as { series: { id: string }[]; aria: { label: { description: string } } };
    expect(acc.series.map((s) => s.id)).toEqual(['a-train', 'a-val', 'b-train', 'b-val']);
    expect(acc.aria.label.description).not.toContain('per-batch');
  });

  it('says in the legend whether it is drawn or not recorded', () => {
    expect(batchLossNote([run('a', RECORDED)])).toMatchObject({ text: 'per batch', drawn: true });
    expect(batchLossNote([run('a', RECORDED), run('b', NOT_RECORDED)])).toMatchObject({ text: 'per batch (not recorded by demo/b)', drawn: true });
    const none = batchLossNote([run('b', NOT_RECORDED)]);
    expect(none).toMatchObject({ text: 'per-batch loss: not recorded', drawn: false });
    expect(none?.title).toContain('--record-batch-loss');
    // not read yet, or recording but before its first epoch: nothing said yet
    expect(batchLossNote([run('a')])).toBeNull();
    expect(batchLossNote([run('a', { recorded: true, epoch: [], loss: [] })])).toBeNull();
  });

  it('grows with each live epoch: a new answer draws the new batches', () => {
    const first = batchLossSeries([run('a', { ...RECORDED, epoch: RECORDED.epoch.slice(0, 3), loss: RECORDED.loss.slice(0, 3) })]);
    const later = batchLossSeries([run('a', RECORDED)]);
    expect(first[0].data).toHaveLength(3);
    expect(later[0].data).toHaveLength(6);
  });
});
