// The layer panel's pure parts: reading tiles back, layouts and hit tests, the one-load
// runner, kernel health words, the explain check, request bodies and parameters.
import { describe, expect, it } from 'vitest';
import { attributionParams } from './attribution';
import type { ModelInfo } from './context';
import { exampleCaption, isExamples } from './examples';
import { cellOrigin, channelsOf, colourPosition, decodeValue, defaultTop, gridLayout, hitTest, isClassVector, isVector, tileByte, unitsOf, tileStart, tileValue, type FeatureTiles } from './features';
import { flagGlyphs, healthFlags, kernelHit, kernelLayout, kernelOrigin, kernelValue, tileCount, tileKernel } from './kernels';
import { defaultTab, tabAfterKey } from './layer';
import { drawn, maximizeBody, type MaximizeTarget } from './maximize';
import { atlasColumns, atlasSlot, className, isConvType, keyOf, knownNotConv, knownNotExplainable, LatestRunner, tileGap, upscale } from './tabkit';
import { absMax, agreesWithMap, channelSum, spaced, type Explanation } from './unit';

const info: ModelInfo = {
  name: 'lenet5', model: 'run:ab@3', weights: 'run ab epoch 3', dataset: 'mnist', input_shape: [1, 28, 28], params: 44426,
  classes: ['zero', 'one', 'two'], run: 'ab', epoch: 3, epochs: [0, 1, 2, 3],
};

/** A gray tiles PNG's pixels (RGBA, gray in R=G=B), tiles `columns` to a row. */
function pixelsOf(tiles: number[][][], columns: number, gap = 0) {
  const [th, tw] = [tiles[0].length, tiles[0][0].length];
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * tw + (columns - 1) * gap;
  const height = rows * th + (rows - 1) * gap;
  const data = new Uint8ClampedArray(width * height * 4);
  tiles.forEach((tile, i) => {
    const y0 = Math.floor(i / columns) * (th + gap);
    const x0 = (i % columns) * (tw + gap);
    tile.forEach((row, r) => row.forEach((q, c) => data.fill(q, ((y0 + r) * width + x0 + c) * 4, ((y0 + r) * width + x0 + c) * 4 + 3)));
  });
  return { data, width, height };
}

const tiles: FeatureTiles = {
  layer: 'conv', type: 'Conv2d', shape: [3, 2, 2], channels: [0, 1, 2], columns: 2, tile: [2, 2], min: -1, max: 4,
  map_min: [0, -1, 2], map_max: [1, 1, 4], png: 'api/x.png',
};

describe('feature tiles', () => {
  it('decode a byte over its map range: min + q/255 (max − min)', () => {
    expect(decodeValue(0, -1, 1)).toBe(-1);
    expect(decodeValue(255, -1, 1)).toBe(1);
    expect(decodeValue(51, 0, 1)).toBeCloseTo(0.2, 12);
    expect(decodeValue(128, 2, 2)).toBe(2); // a constant map stands for its value
  });

  it('read each tile at its place in the PNG, with or without a gap', () => {
    const maps = [[[0, 255], [51, 102]], [[0, 255], [128, 0]], [[255, 0], [0, 0]]];
    for (const gap of [0, 1]) {
      const px = pixelsOf(maps, 2, gap);
      expect(tileStart(tiles, px, 2)).toEqual([2 + gap, 0]);
      expect(tileByte(tiles, px, 1, 1, 0)).toBe(128);
      expect(tileValue(tiles, px, 0, 1, 0)).toBeCloseTo(0.2, 12);
      expect(tileValue(tiles, px, 1, 0, 1)).toBe(1);
      expect(tileValue(tiles, px, 1, 1, 0)).toBeCloseTo(-1 + (128 / 255) * 2, 12);
      expect(tileValue(tiles, px, 2, 0, 0)).toBe(4);
    }
  });

  it('place a byte on the shared or the per-map scale', () => {
    expect(colourPosition(tiles, 1, 255, false)).toBe(1);
    expect(colourPosition(tiles, 1, 255, true)).toBeCloseTo((1 - -1) / 5, 12);
    expect(colourPosition(tiles, 2, 0, true)).toBeCloseTo(3 / 5, 12);
    expect(colourPosition({ ...tiles, min: 1, max: 1 }, 0, 9, true)).toBe(0.5);
  });

  it('ask a wide layer for its 32 most active maps', () => {
    expect(defaultTop(64)).toBeNull();
    expect(defaultTop(65)).toBe(32);
    expect(defaultTop(null)).toBeNull();
    expect(channelsOf([1, 256, 7, 7])).toBe(256);
    expect(channelsOf([1, 120])).toBeNull();
    expect(unitsOf([1, 120])).toBe(120);
    expect(unitsOf([1, 6, 24, 24])).toBe(6);
    expect(unitsOf(null)).toBeNull();
  });

  it('tell vectors from maps and class scores from other vectors', () => {
    expect(isVector({ layer: 'd', type: 'Linear', shape: [3], values: [1, 2, 3] })).toBe(true);
    expect(isVector(tiles)).toBe(false);
    expect(isClassVector({ info }, 3)).toBe(true);
    expect(isClassVector({ info, lastLayer: false }, 3)).toBe(false);
    expect(isClassVector({ info }, 4)).toBe(false);
    expect(isClassVector({ info: { ...info, classes: null } }, 3)).toBe(false);
  });

  it('lay maps out in whole-pixel steps and find the unit under the pointer', () => {
    const layout = gridLayout(6, [24, 24], 320);
    expect(layout.scale).toBe(4);
    expect(layout.cols).toBe(3);
    expect(layout.rows).toBe(2);
    expect(layout.width).toBeLessThanOrEqual(320);
    const [x, y] = cellOrigin(layout, 4);
    expect(hitTest(layout, x + 4 * 5 + 1, y + 4 * 7 + 2)).toEqual({ index: 4, row: 7, col: 5 });
    expect(hitTest(layout, x - 2, y + 1)).toBeNull(); // the gap
    expect(hitTest(layout, x + 1, y - 3)).toBeNull(); // the label
    expect(hitTest(gridLayout(5, [24, 24], 320), ...cellOrigin(layout, 5))).toBeNull(); // past the last map
    expect(gridLayout(1, [224, 224], 100).scale).toBe(1);
  });

  it('keep atlas canvases within size limits', () => {
    expect(atlasColumns(4096, 3)).toBe(2730);
    expect(atlasColumns(6, 24)).toBe(6);
    expect(atlasSlot(7, 3, [5, 4])).toEqual([4, 10]);
    expect(tileGap(74, 3, 24)).toBe(1);
    expect(tileGap(72, 3, 24)).toBe(0);
    expect(tileGap(73, 3, 24)).toBe(0); // does not divide: none
    expect(upscale(5, 60)).toBe(12);
    expect(upscale(500, 60)).toBe(1);
  });
});

describe('kernels', () => {
  const grid = { layout: 'grid', columns: 3, grid: [2, 3] as [number, number], shown: 6, tile: [5, 5] as [number, number] };
  const channels = { layout: 'channels', columns: 3, grid: [4, 3] as [number, number], shown: 4, tile: [3, 3] as [number, number] };

  it('name the kernel and input channel of a tile', () => {
    expect(tileKernel(grid, 4)).toEqual({ kernel: 4, input: null });
    expect(tileKernel(channels, 7)).toEqual({ kernel: 2, input: 1 });
    expect(tileCount(grid)).toBe(6);
    expect(tileCount(channels)).toBe(12);
  });

  it('find the tile under the pointer in either layout', () => {
    for (const data of [grid, channels]) {
      const layout = kernelLayout(data, 600);
      for (const i of [0, 2, tileCount(data) - 1]) {
        const [x, y] = kernelOrigin(layout, i);
        expect(kernelHit(layout, tileCount(data), x + 1, y + 1)).toBe(i);
      }
      expect(kernelHit(layout, tileCount(data), -5, -5)).toBeNull();
    }
  });

  it('read weights from bytes where the grid has one scale', () => {
    expect(kernelValue({ range: [-0.08, 0.08], rgb: false }, 255)).toBeCloseTo(0.08, 12);
    expect(kernelValue({ range: [-0.08, 0.08], rgb: false }, 0)).toBeCloseTo(-0.08, 12);
    expect(kernelValue({ range: null, rgb: false }, 3)).toBeNull();
  });

  it('say health flags in words and glyphs', () => {
    const healthy = { index: 0, norm: 0.2, dead: false, duplicate_of: null, high_freq_energy: 0.3, noisy: false, finite: true };
    expect(healthFlags(healthy)).toEqual([]);
    expect(flagGlyphs(healthy)).toBe('');
    const bad = { ...healthy, dead: true, duplicate_of: 3, noisy: true };
    expect(healthFlags(bad)).toEqual(['dead (norm near zero)', 'duplicate of kernel 3', 'noisy (high-frequency)']);
    expect(flagGlyphs(bad)).toBe('∅=≈');
  });

  it('know which layer types have kernels, and which explain covers', () => {
    for (const t of ['Conv2d', 'Conv2dAct', 'SameConv2d', 'ConvTranspose2d']) expect(isConvType(t)).toBe(true);
    for (const t of ['MaxPool2d', 'ReLU', 'BatchNorm2d', 'Linear', 'LinearAct', 'Flatten', 'Add', 'Dropout', 'AdaptiveAvgPool2d']) {
      expect(isConvType(t)).toBe(false);
      expect(knownNotConv(t)).toBe(true);
    }
    for (const t of ['Bottleneck', 'Sequential', 'Conv2d', 'InceptionBlock']) expect(knownNotConv(t)).toBe(false);
    expect(knownNotExplainable('MaxPool2d')).toBe(false);
    expect(knownNotExplainable('AdaptiveAvgPool2d')).toBe(false);
    expect(knownNotExplainable('BatchNorm2d')).toBe(true);
    expect(knownNotExplainable('Bottleneck')).toBe(false); // unknown: the server says
    expect(defaultTab('Conv2dAct')).toBe('kernels');
    expect(defaultTab('MaxPool2d')).toBe('features');
  });
});

describe('the one-load runner', () => {
  it('runs one load at a time, keeps only the newest waiting and marks older ones stale', async () => {
    const runner = new LatestRunner();
    const started: number[] = [];
    const finished: [number, boolean][] = [];
    const gates: (() => void)[] = [];
    const signals: AbortSignal[] = [];
    const load = (n: number) => async (token: number, signal: AbortSignal) => {
      started.push(n);
      signals.push(signal);
      await new Promise<void>((resolve) => gates.push(resolve));
      finished.push([n, runner.current(token)]);
    };
    runner.run(load(1));
    runner.run(load(2));
    runner.run(load(3));
    await Promise.resolve();
    expect(started).toEqual([1]);
    expect(runner.busy).toBe(true);
    expect(signals[0].aborted).toBe(true); // load 1 is no longer the newest
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(finished).toEqual([[1, false]]);
    expect(started).toEqual([1, 3]); // 2 was dropped
    expect(signals[1].aborted).toBe(false);
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(finished).toEqual([[1, false], [3, true]]);
    expect(runner.busy).toBe(false);
  });

  it('cancel makes the running load stale and stop refuses new ones', async () => {
    const runner = new LatestRunner();
    let current = true;
    runner.run(async (token) => {
      await Promise.resolve();
      current = runner.current(token);
    });
    runner.cancel();
    await new Promise((r) => setTimeout(r, 0));
    expect(current).toBe(false);
    runner.stop();
    let ran = false;
    runner.run(async () => {
      ran = true;
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(ran).toBe(false);
  });

  it('keys contexts by what a load depends on', () => {
    expect(keyOf('run:a@1', 'conv', null)).not.toBe(keyOf('run:a@1', 'conv', ''));
    expect(keyOf('run:a@1', 'conv', undefined)).toBe(keyOf('run:a@1', 'conv', null));
  });
});

describe('the unit explainer', () => {
  const data = {
    kind: 'conv', inputs: [{ channel: 0, patch: [[1]], padded: [[false]], sum: 0.25 }, { channel: 1, patch: [[1]], padded: [[false]], sum: -0.05 }],
    bias: 0.1, total: 0.3, value: 0.3,
  } as unknown as Explanation;

  it('adds the channel sums the bias is added to', () => {
    expect(channelSum(data)).toBeCloseTo(0.2, 12);
  });

  it('checks the value against the map within half a quantisation step', () => {
    const step = 0.861 / 255;
    expect(agreesWithMap(0.1714, 0.1714 + step / 2 - 1e-9, step)).toBe(true);
    expect(agreesWithMap(0.1714, 0.1714 + step, step)).toBe(false);
    expect(agreesWithMap(0.5, 0.5, 0)).toBe(true);
  });

  it('spaces dilated windows and scales grids symmetrically', () => {
    expect(spaced(10, 14, 5)).toEqual([10, 11, 12, 13, 14]);
    expect(spaced(-2, 2, 3)).toEqual([-2, 0, 2]);
    expect(spaced(4, 4, 1)).toEqual([4]);
    expect(absMax([[0.5, -2], [null, 1]])).toBe(2);
    expect(absMax([[0, 0]])).toBe(1);
  });
});

describe('attribution, maximisation, examples', () => {
  it('gives Grad-CAM this layer only when it is a convolution', () => {
    expect(attributionParams({ layer: 'conv2d_2', layerType: 'Conv2dAct', image: 'mnist:test:1' }, 'gradcam', 3)).toEqual({ image: 'mnist:test:1', method: 'gradcam', target: 3, layer: 'conv2d_2' });
    expect(attributionParams({ layer: 'pool', layerType: 'MaxPool2d', image: 'mnist:test:1' }, 'gradcam', null).layer).toBeNull();
    expect(attributionParams({ layer: 'conv2d_2', layerType: 'Conv2dAct', image: 'mnist:test:1' }, 'saliency', null).layer).toBeNull();
  });

  it('builds the maximize body for a class or a channel', () => {
    expect(maximizeBody('class', 'conv', 3, null)).toEqual({ class: 3 });
    expect(maximizeBody('channel', 'conv2d_1', 5, 64)).toEqual({ channel: 'conv2d_1:5', steps: 64 });
  });

  it('shows a picture only when the objective rose', () => {
    const base: MaximizeTarget = { target: 'c', kind: 'class', index: 0, layer: null, status: 'converged', message: '', start_score: 1, score: 5, prob: 0.9, top: [], steps: 10 };
    expect(drawn(base)).toBe(true);
    expect(drawn({ ...base, status: 'vanishing-gradient' })).toBe(false);
    expect(drawn({ ...base, status: 'stalled' })).toBe(false);
    expect(drawn({ ...base, score: 0.5 })).toBe(false);
  });

  it('names classes, never bare indices', () => {
    expect(className(info, 1)).toBe('one');
    expect(className(info, 7)).toBe('output 7');
    expect(className({ ...info, classes: null }, 2)).toBe('output 2');
    expect(exampleCaption({ spec: 's', label: 2, class: null, activation: 1.23456 }, info.classes)).toBe('two · 1.23');
    expect(exampleCaption({ spec: 's', label: null, class: 'cat', activation: null }, null)).toBe('cat · –');
    expect(isExamples({ top: [], bottom: [] })).toBe(true);
    expect(isExamples({ job: 1 })).toBe(false);
  });

  it('moves between tabs with the arrow keys, wrapping', () => {
    expect(tabAfterKey(0, 'ArrowRight', 5)).toBe(1);
    expect(tabAfterKey(0, 'ArrowLeft', 5)).toBe(4);
    expect(tabAfterKey(4, 'ArrowRight', 5)).toBe(0);
    expect(tabAfterKey(2, 'Home', 5)).toBe(0);
    expect(tabAfterKey(2, 'End', 5)).toBe(4);
    expect(tabAfterKey(2, 'Enter', 5)).toBeNull();
  });
});
