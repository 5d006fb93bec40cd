// The layer panel's pure parts: reading tiles back, layouts and hit tests, the one-load
// runner, kernel health words, the explain check, request bodies and parameters.
import { describe, expect, it } from 'vitest';
import { attributionParams, computingText } from './attribution';
import type { ModelInfo } from './context';
import { defaultSetText, exampleCaption, hasDefaultSet, isExamples, specProblem, unitWord } from './examples';
import { cellOrigin, channelsOf, colourPosition, decodeValue, defaultTop, gridLayout, hitTest, isClassVector, isVector, mapCap, vectorTop, tileByte, unitsOf, tileStart, tileValue, wideMaps, type FeatureTiles } from './features';
import { defaultLimit, flagGlyphs, healthFlags, historyFigureUrl, kernelHit, kernelLayout, kernelOrigin, kernelValue, labelEvery, limitChoices, tileCount, tileKernel } from './kernels';
import { defaultTab, tabAfterKey } from './layer';
import { drawn, maximizeBody, offersAllClasses, parseSeed, type MaximizeTarget } from './maximize';
import { atlasColumns, atlasSlot, className, explainable, flattenSource, flatUnitText, isConvType, keyOf, knownNotConv, LatestRunner, notExplainableLine, tileGap, unflatten, upscale } from './tabkit';
import { absMax, agreesWithMap, channelSum, equationParts, spaced, spanText, windowMark, type Explanation } from './unit';

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
    expect(vectorTop([1, 25088])).toBe(256); // VGG's flatten: more than the server sends at once
    expect(vectorTop([1, 4096])).toBeNull();
    expect(vectorTop([1, 64, 7, 7])).toBeNull();
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
    expect(gridLayout(1, [224, 224], 100).cellW).toBe(100); // never wider than the space
  });

  it('cap large maps and give many or large ones the whole width', () => {
    // ResNet-50 conv1: 64 maps of 112×112 in a 760-pixel panel
    const layout = gridLayout(64, [112, 112], 760);
    expect(layout.cellW).toBe(mapCap(64));
    expect(layout.cellW).toBeLessThanOrEqual(80);
    expect(layout.cols).toBeGreaterThanOrEqual(8);
    expect(layout.height).toBeLessThan(1000);
    const [x, y] = cellOrigin(layout, 9);
    const hit = hitTest(layout, x + 79.5, y + 79.5);
    expect(hit).toEqual({ index: 9, row: 111, col: 111 }); // the last unit, not one past it
    expect(hitTest(layout, x + 40, y)?.col).toBe(Math.floor(40 / layout.scale));
    expect(gridLayout(6, [12, 12], 320).scale).toBe(8); // small maps still whole-pixel upscaled
    expect(wideMaps(6, [24, 24])).toBe(false);
    expect(wideMaps(32, [8, 8])).toBe(true);
    expect(wideMaps(3, [112, 112])).toBe(true);
    expect(mapCap(200)).toBeLessThan(mapCap(64));
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

  it("lay kernels out in the server's grid columns, smaller before fewer", () => {
    const conv1 = { layout: 'grid', columns: 8, grid: [8, 8] as [number, number], shown: 64, tile: [7, 7] as [number, number] };
    const wide = kernelLayout(conv1, 600);
    expect(wide.cols).toBe(8);
    expect(wide.rows).toBe(8);
    expect(wide.width).toBeLessThanOrEqual(600);
    const narrow = kernelLayout(conv1, 250);
    expect(narrow.cols).toBe(8); // tiles shrink first
    expect(narrow.width).toBeLessThanOrEqual(250);
    expect(kernelLayout(conv1, 40).cols).toBeLessThan(8); // then columns go
    expect(kernelLayout(grid, 600).cols).toBe(3); // 2×3, not a fixed count
  });

  it('offer the first N kernels and the figure over the epochs', () => {
    expect(limitChoices(64)).toEqual([8, 16, 32]);
    expect(limitChoices(6)).toEqual([]);
    expect(historyFigureUrl('ab12', 'conv2d_1', 'layer', null, null)).toBe('api/runs/ab12/kernels.png?layer=conv2d_1&norm=layer');
    expect(historyFigureUrl('ab12', 'features.0', 'diverging', 'none', 8)).toBe('api/runs/ab12/kernels.png?layer=features.0&norm=diverging&limit=8');
    expect(historyFigureUrl('ab12', 'c', 'per-kernel', 'mean', null)).toContain('reduce=mean');
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
    for (const t of ['Conv2d', 'SameConv2d', 'PartialConv2d', 'MyLayer']) expect(knownNotConv(t)).toBe(false); // asked
    for (const t of ['Bottleneck', 'BasicBlock', 'Sequential', 'InceptionBlock']) expect(knownNotConv(t)).toBe(true); // containers: said, not asked
    expect(defaultTab('Conv2dAct')).toBe('kernels');
    expect(defaultTab('MaxPool2d')).toBe('features');
  });
});

describe('which layers explain covers', () => {
  it('asks only for Conv2d and its kinds and the four 2-D pooling layers', () => {
    for (const t of ['Conv2d', 'Conv2dAct', 'SameConv2d', 'KerasConv2d', 'MaxPool2d', 'AvgPool2d', 'AdaptiveMaxPool2d', 'AdaptiveAvgPool2d']) expect(explainable(t)).toBe(true);
    for (const t of ['Bottleneck', 'BasicBlock', 'Sequential', 'BatchNorm2d', 'ReLU', 'Linear', 'LinearAct', 'Flatten', 'Dropout', 'Add', 'InceptionBlock',
      'Conv1d', 'Conv3d', 'ConvTranspose2d', 'Conv2dNormActivation', 'ConvNeXtBlock', 'PartialConv2d', 'SeparableConv2d', 'PaddedConv2d', 'Subsampling', 'LPPool2d', 'MaxPool1d', 'GlobalPool2d', '']) {
      expect(explainable(t)).toBe(false);
    }
  });

  it('says what explain covers in one line', () => {
    expect(notExplainableLine('layer1.0', 'Bottleneck')).toBe('explain covers convolution and pooling layers; layer1.0 is a Bottleneck');
    expect(notExplainableLine('x', 'Identity')).toBe('explain covers convolution and pooling layers; x is an Identity');
  });
});

describe('flattened units', () => {
  const rows = [
    { name: 'pool2', type: 'MaxPool2d', output_shape: [1, 16, 4, 4] },
    { name: 'flatten', type: 'Flatten', output_shape: [1, 256] },
    { name: 'dense', type: 'Linear', output_shape: [1, 120] },
  ];

  it('map a Flatten unit back to the channel, row and column of the layer before', () => {
    const source = flattenSource(rows, 'flatten');
    expect(source).toEqual({ layer: 'pool2', shape: [16, 4, 4] });
    expect(unflatten(0, [16, 4, 4])).toEqual({ channel: 0, row: 0, col: 0 });
    expect(unflatten(37, [16, 4, 4])).toEqual({ channel: 2, row: 1, col: 1 });
    expect(unflatten(255, [16, 4, 4])).toEqual({ channel: 15, row: 3, col: 3 });
    expect(flatUnitText(37, source)).toBe("unit 37 = channel 2, row 1, column 1 of pool2's 16×4×4 output");
    expect(flatUnitText(5, null)).toBe('unit 5');
  });

  it('knows no source when the shapes do not add up or the layer is no Flatten', () => {
    expect(flattenSource(rows, 'dense')).toBeNull();
    expect(flattenSource([{ ...rows[0], output_shape: [1, 16, 5, 5] }, rows[1]], 'flatten')).toBeNull();
    expect(flattenSource([rows[1]], 'flatten')).toBeNull();
    expect(flattenSource([{ name: 'p', type: 'MaxPool2d', output_shape: null }, rows[1]], 'flatten')).toBeNull();
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

  it('says a padded window in words', () => {
    expect(spanText('rows', 6, 7, 24)).toBe('rows 6 to 7');
    expect(spanText('columns', -1, 3, 28)).toBe('columns −1 to 3 (−1 is padding)');
    expect(spanText('columns', -2, 2, 28)).toBe('columns −2 to 2 (−2 and −1 are padding)');
    expect(spanText('rows', 109, 113, 112)).toBe('rows 109 to 113 (112 and 113 are padding)');
    expect(spanText('rows', -1, 1, 1)).toBe('rows −1 to 1 (−1 and 1 are padding)');
    expect(spanText('columns', 4, 4, 8)).toBe('column 4');
  });

  it('writes each number of the equation once', () => {
    const numbers = (parts: ReturnType<typeof equationParts>) => parts.filter((p) => typeof p !== 'string').map((p) => (p as { role: string }).role);
    const text = (parts: ReturnType<typeof equationParts>) => parts.map((p) => (typeof p === 'string' ? p : `[${p.role}]`)).join('');
    const conv = { kind: 'conv', inputs: data.inputs, bias: 0.1, total: 0.3, value: 0.3, activation: 'relu' } as Explanation;
    expect(text(equationParts(conv))).toBe('Σ of the 2 channel sums = [sum] + bias [bias] = [total] → relu → [value]');
    expect(text(equationParts({ ...conv, activation: null }))).toBe('Σ of the 2 channel sums = [sum] + bias [bias] = [value]');
    // no bias: the sum is the total, said once
    expect(text(equationParts({ ...conv, bias: null }))).toBe('Σ of the 2 channel sums = [total] → relu → [value]');
    expect(text(equationParts({ ...conv, bias: null, activation: null }))).toBe('Σ of the 2 channel sums = [value]');
    expect(numbers(equationParts({ ...conv, bias: undefined, activation: null }))).toEqual(['value']);
    expect(text(equationParts({ ...conv, kind: 'maxpool', bias: undefined, activation: null }))).toBe('max of the window = [value]');
    expect(text(equationParts({ ...conv, kind: 'avgpool', divisor: 4, bias: undefined, activation: null }))).toBe('sum of the window ÷ 4 = [value]');
  });

  it('outlines the max cell of a pooling window', () => {
    const pool = { argmax: [7, 9], receptive_field: { rows: [6, 7], cols: [8, 9] }, inputs: [{ channel: 2, patch: [[0.3, 0.3], [0.3, 0.34]], padded: [[false, false], [false, false]] }] } as unknown as Explanation;
    expect(windowMark(pool)).toEqual([1, 1]);
    expect(windowMark({ ...pool, argmax: [6, 8] })).toEqual([0, 0]);
    expect(windowMark({ ...pool, argmax: undefined })).toBeNull();
    expect(windowMark({ ...pool, argmax: [2, 2] })).toBeNull();
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

  it('builds the maximize body for a class, all classes or a channel, with a seed', () => {
    expect(maximizeBody('class', 'conv', 3, null)).toEqual({ class: 3 });
    expect(maximizeBody('channel', 'conv2d_1', 5, 64)).toEqual({ channel: 'conv2d_1:5', steps: 64 });
    expect(maximizeBody('class', 'conv', 'all', null, 7)).toEqual({ class: 'all', seed: 7 });
    expect(maximizeBody('class', 'conv', 0, null, 0)).toEqual({ class: 0, seed: 0 });
    expect(offersAllClasses(info.classes)).toBe(true);
    expect(offersAllClasses(Array.from({ length: 1000 }, (_, i) => String(i)))).toBe(false);
    expect(offersAllClasses(null)).toBe(false);
    expect(parseSeed('')).toBeNull();
    expect(parseSeed(' 42 ')).toBe(42);
    expect(parseSeed('-3')).toBeNull();
    expect(parseSeed('1.5')).toBeNull();
    expect(parseSeed('99999999999')).toBe(2 ** 32 - 1);
  });

  it('says a slow attribution is slow while it computes', () => {
    expect(computingText('ig')).toBe('Computing integrated gradients… (this can take ~10 s on big models)');
    expect(computingText('occlusion')).toBe('Computing occlusion… (this can take ~15 s on big models)');
    expect(computingText('gradcam')).toBe('Computing Grad-CAM…');
    expect(computingText('saliency')).toBe('Computing saliency…');
  });

  it('ranks a default set only where there is one, and checks a typed SPEC', () => {
    expect(hasDefaultSet({ run: 'ab', dataset: 'mnist' })).toBe(true);
    expect(hasDefaultSet({ run: null, dataset: 'fashion-mnist' })).toBe(true);
    expect(hasDefaultSet({ run: null, dataset: 'imagenet' })).toBe(false);
    expect(hasDefaultSet({ run: null, dataset: null })).toBe(false);
    expect(hasDefaultSet({ run: 'ab', dataset: null })).toBe(true);
    expect(defaultSetText({ run: 'ab', dataset: 'mnist' })).toBe('the probe set of run ab');
    expect(defaultSetText({ run: null, dataset: 'mnist' })).toBe('a stratified sample of the mnist test split');
    for (const ok of ['', 'mnist:test:0-500', 'fashion-mnist:test:12', 'sample:chelsea', 'upload:ab12']) expect(specProblem(ok)).toBeNull();
    expect(specProblem('mnist:test')).toContain('not a SPEC');
    expect(specProblem('/etc/passwd')).toContain('not a SPEC');
    expect(specProblem('mnist:test:5-5')).toContain('empty range');
    expect(unitWord([1, 120])).toBe('unit');
    expect(unitWord([1, 6, 24, 24])).toBe('channel');
    expect(unitWord(undefined)).toBe('channel');
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

describe('kernel grid defaults', () => {
  it('shows a deep layer\'s first 64 kernels until told otherwise', () => {
    expect(defaultLimit(512)).toBe(64);
    expect(defaultLimit(64)).toBeNull();
    expect(defaultLimit(null)).toBeNull();
  });
  it('labels every n-th tile so labels never overlap', () => {
    expect(labelEvery(10, 40)).toBe(1);
    expect(labelEvery(20, 12)).toBe(2);
    expect(labelEvery(30, 10)).toBe(4);
  });
});
