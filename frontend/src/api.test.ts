import { describe, expect, it } from 'vitest';
import { ApiError, getComputed, getJson, pollJob, type FetchLike } from './api';
import { isEmbeddingBody, parseEmbedding, parseMetrics, parseProbe, parseRunDetail, parseRuns, parseStudyReport, relativeUrl } from './types';
import { parseLiveEvent } from './live';
import { formatRoute, listParam, parseRoute } from './router';
import { curveSeries, curvesOption } from './runs/curves';
import { acc } from './dom';

/** A fetch that answers from a script of (url prefix -> [status, body]) and logs the calls. */
function fakeFetch(script: [string, number, unknown][]) {
  const calls: string[] = [];
  const fn: FetchLike = async (url, init) => {
    calls.push(url);
    expect(init?.credentials).toBe('same-origin');
    const i = script.findIndex(([prefix]) => url.startsWith(prefix));
    if (i < 0) throw new TypeError('Failed to fetch');
    const [, status, body] = script.splice(i, 1)[0];
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
  return { fn, calls };
}

const noSleep = async () => {};

describe('api', () => {
  it('gives the server error line of a 4xx', async () => {
    const { fn } = fakeFetch([['api/runs/x', 404, { error: 'no run x in the store' }]]);
    await expect(getJson('api/runs/x', fn)).rejects.toEqual(new ApiError(404, 'no run x in the store'));
  });

  it('says the server did not answer when fetch itself fails', async () => {
    const { fn } = fakeFetch([]);
    await expect(getJson('api/health', fn)).rejects.toMatchObject({ status: 0, message: expect.stringContaining('did not answer') });
  });

  it('polls a 202 job with its progress, then asks the URL again', async () => {
    const { fn, calls } = fakeFetch([
      ['api/runs/a/embedding', 202, { job: 'j1' }],
      ['api/jobs/j1', 200, { status: 'queued', progress: 0 }],
      ['api/jobs/j1', 200, { status: 'running', progress: 0.5 }],
      ['api/jobs/j1', 200, { status: 'done', progress: 1, result: { ok: true } }],
      ['api/runs/a/embedding', 200, { points: [], labels: [] }],
    ]);
    const progress: number[] = [];
    const body = await getComputed('api/runs/a/embedding?layer=hidden', { fetchFn: fn, sleep: noSleep, accept: isEmbeddingBody, onProgress: (j) => progress.push(j.progress) });
    expect(body).toEqual({ points: [], labels: [] });
    expect(progress).toEqual([0, 0.5, 1]);
    expect(calls.filter((c) => c.startsWith('api/jobs/'))).toHaveLength(3);
  });

  it('uses a finished job result that already is the answer', async () => {
    const { fn, calls } = fakeFetch([
      ['api/studies/demo', 202, { job: 7 }],
      ['api/jobs/7', 200, { status: 'done', progress: 1, result: { verdict: 'v', ranking: [] } }],
    ]);
    const body = await getComputed('api/studies/demo', { fetchFn: fn, sleep: noSleep, accept: (r: unknown): r is object => !!r && typeof r === 'object' && 'verdict' in r });
    expect(body).toEqual({ verdict: 'v', ranking: [] });
    expect(calls).toEqual(['api/studies/demo', 'api/jobs/7']);
  });

  it('throws the line of a failed job', async () => {
    const { fn } = fakeFetch([['api/jobs/j', 200, { status: 'failed', progress: 0.2, error: 'layer nope is not recorded' }]]);
    await expect(pollJob('j', { fetchFn: fn, sleep: noSleep })).rejects.toMatchObject({ message: 'layer nope is not recorded' });
  });

  it('stops polling when the view is left', async () => {
    const { fn, calls } = fakeFetch([['api/jobs/j', 200, { status: 'running', progress: 0.1 }]]);
    const controller = new AbortController();
    const sleep = async () => controller.abort();
    await expect(pollJob('j', { fetchFn: fn, sleep, signal: controller.signal })).rejects.toBeDefined();
    expect(calls).toEqual(['api/jobs/j']);
  });
});

describe('parsing', () => {
  it('reads both embedding forms: one epoch, and every epoch keyed', () => {
    const one = parseEmbedding({ run: 'a', layer: 'hidden', method: 'pca', epoch: 2, epochs: [0, 1, 2], points: [[1, 2], [3, 4]], labels: [0, 1], classes: ['a', 'b'], scores: { silhouette: 0.5 } });
    expect(one.epochs).toEqual([2]);
    expect(one.points.get(2)).toEqual([[1, 2], [3, 4]]);
    expect(one.scores.get(2)).toEqual({ silhouette: 0.5 });
    const all = parseEmbedding({ epochs: [0, 1], points: { '1': [[0, 0]], '0': [[1, 1]] }, labels: [3], classes: [], scores: { '0': { knn_map: 0.1 }, '1': { knn_map: null } } });
    expect(all.epochs).toEqual([0, 1]);
    expect(all.points.get(0)).toEqual([[1, 1]]);
    expect(all.scores.get(1)).toEqual({ knn_map: null });
  });

  it('reads the probe: predictions by epoch (or none), sprite URL made relative', () => {
    const p = parseProbe({ run: 'a', classes: ['x'], labels: [0], indices: [42], epochs: [0], predictions: {}, confidence: {}, sprite: { url: '/api/runs/a/probe/sprite.png', size: 28, columns: 30 } });
    expect(p.predictions.size).toBe(0);
    expect(p.sprite).toEqual({ url: 'api/runs/a/probe/sprite.png', size: 28, columns: 30 });
    expect(parseProbe({ predictions: { '3': [1, 2] } }).predictions.get(3)).toEqual([1, 2]);
    expect(relativeUrl('api/x')).toBe('api/x');
  });

  it('reads runs, run details (recorded layers) and metrics with nulls', () => {
    const [r] = parseRuns([{ id: 'a', name: 'demo/x', study: 'demo', model: 'x', dataset: 'd', status: 'running', epochs_completed: 1, test_acc: null, epochs: 3, created: 'c' }]);
    expect(r).toMatchObject({ id: 'a', epochsCompleted: 1, epochs: 3, testAcc: null, study: 'demo' });
    expect(parseRunDetail({ id: 'a', config: { record: ['hidden'], config: { epochs: 5 } } })).toMatchObject({ recorded: ['hidden'], epochs: 5 });
    expect(parseRunDetail({ id: 'b', config: {} }).recorded).toEqual([]);
    const m = parseMetrics({ epoch: [0, 1], train_loss: [null, 1.5], val_loss: [2, 1] });
    expect(m.train_loss).toEqual([null, 1.5]);
    expect(m.train_acc).toEqual([null, null]);
  });

  it('reads a study report', () => {
    const s = parseStudyReport({ verdict: 'residual learned best', ranking: [{ model: 'residual', test_acc: 0.8, learned: true, epoch: 3, scores: { knn_map: 0.7 }, gain_over_epoch0: { knn_map: 0.2 }, mean_rank: 1 }] });
    expect(s.ranking[0]).toMatchObject({ model: 'residual', learned: true, mean_rank: 1 });
  });

  it('reads live events', () => {
    expect(parseLiveEvent('message', '{"run":"a","epoch":2}')).toEqual({ kind: 'epoch', run: 'a', epoch: 2 });
    expect(parseLiveEvent('status', '{"run":"a","status":"finished"}')).toEqual({ kind: 'status', run: 'a', status: 'finished' });
    expect(parseLiveEvent('run', '{"run":"b"}')).toEqual({ kind: 'run', run: 'b' });
    expect(parseLiveEvent('message', 'not json')).toBeNull();
  });
});

describe('routes', () => {
  it('round-trips the explorer route with readable commas', () => {
    const hash = formatRoute('explore', { runs: 'a,b', layer: 'hidden', method: 'umap', epoch: 0, colour: null });
    expect(hash).toBe('#/explore?runs=a,b&layer=hidden&method=umap&epoch=0');
    const route = parseRoute(hash);
    expect(route.view).toBe('explore');
    expect(listParam(route.params, 'runs')).toEqual(['a', 'b']);
    expect(parseRoute('').view).toBe('runs');
    expect(parseRoute('#/nonsense').view).toBe('runs');
  });
});

describe('training curves', () => {
  it('draws train dashed and validation solid in the run colour', () => {
    const metrics = parseMetrics({ epoch: [0, 1], train_loss: [null, 1], val_loss: [2, 1] });
    const series = curveSeries([{ id: 'a', name: 'demo/x', colour: '#0072B2', metrics }], 'loss');
    expect(series.map((s) => [s.name, s.lineStyle.type, s.lineStyle.color])).toEqual([
      ['demo/x · train', 'dashed', '#0072B2'],
      ['demo/x · validation', 'solid', '#0072B2'],
    ]);
    expect(series[0].data).toEqual([[0, null], [1, 1]]);
  });

  it('shows accuracies as the API and the CLI print them (0.729, not 72.9%)', () => {
    expect([acc(0.72893), acc(1), acc(null), acc(Number.NaN)]).toEqual(['0.729', '1.000', '–', '–']);
    const option = curvesOption([], 'acc') as { tooltip: { valueFormatter: (v: unknown) => string }; yAxis: { min?: number; max?: number } };
    expect(option.tooltip.valueFormatter(0.72893)).toBe('0.729');
    expect([option.yAxis.min, option.yAxis.max]).toEqual([0, 1]);
  });
});
