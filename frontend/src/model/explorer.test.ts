// The model explorer's view logic: routes, epochs, the picker's options, the diagram's
// pan/zoom math and tooltips, the layer defaults, and the input's parsing and paging.
import { describe, expect, it } from 'vitest';
import { formatRoute, parseRoute } from '../router';
import type { RunSummary } from '../types';
import {
  boxInside,
  clampView,
  defaultLayer,
  fitView,
  flatShape,
  GRAPH_HINT,
  KEEP_PX,
  formatCount,
  isLastLayer,
  isLayerNode,
  layerOptionText,
  layersInside,
  nodesBounds,
  nodeForLayer,
  openingView,
  panBy,
  parseGraph,
  parseLayers,
  parseTrainable,
  parseViewBox,
  resizeView,
  revealBox,
  scaleLimits,
  scaleOf,
  shapeText,
  tooltipRows,
  viewBoxText,
  visiblePixels,
  wheelPan,
  wheelPixels,
  zoomAt,
  type Box,
  type GraphNode,
  type LayerRow,
} from './graph';
import { datasetUrl, firstOfRange, imageUrl, isBrowsable, normaliseSpec, pageStep, pageText, parseDatasetPage, parsePrediction, parseSamples, percent, rovingStep, rovingStop, sourceOf } from './input';
import {
  askedEpoch,
  dashboardDescription,
  defaultModel,
  distinctTails,
  epochNote,
  epochsText,
  givenSource,
  epochLabel,
  epochOfText,
  keepsImage,
  modelChoices,
  modelRouteParams,
  normaliseEpochs,
  parseModelRef,
  pickEpoch,
  readModelRoute,
  requestModel,
  sameRun,
  withEpoch,
} from './picker';

const close = (a: Box, b: Box) => {
  for (const k of ['x', 'y', 'w', 'h'] as const) expect(a[k]).toBeCloseTo(b[k], 6);
};

describe('model route', () => {
  it('reads model, epoch, layer and image, and writes them back readable', () => {
    const route = readModelRoute(parseRoute('#/model?model=run:ab12&epoch=2&layer=layer1.0.conv1&image=mnist:test:3').params);
    expect(route).toEqual({ model: 'run:ab12', epoch: 2, layer: 'layer1.0.conv1', image: 'mnist:test:3' });
    expect(formatRoute('model', modelRouteParams(route))).toBe('#/model?model=run:ab12&epoch=2&layer=layer1.0.conv1&image=mnist:test:3');
    expect(parseRoute('#/model').view).toBe('model');
  });

  it('takes the epoch of run:ID@EPOCH when no epoch is given, and none for a zoo model', () => {
    expect(readModelRoute(new URLSearchParams('model=run:ab12@3')).epoch).toBe(3);
    expect(readModelRoute(new URLSearchParams('model=run:ab12@3&epoch=1')).epoch).toBe(1);
    expect(readModelRoute(new URLSearchParams('model=lenet5&epoch=2')).epoch).toBeNull();
    expect(readModelRoute(new URLSearchParams('model=run:ab&epoch=x')).epoch).toBeNull();
    expect(readModelRoute(new URLSearchParams('')).model).toBeNull();
  });

  it('round-trips a typed zoo name with a colon and an upload SPEC', () => {
    const hash = formatRoute('model', { model: 'torchvision:resnet50', epoch: null, layer: 'conv1', image: 'upload:9f8e' });
    expect(hash).toBe('#/model?model=torchvision:resnet50&layer=conv1&image=upload:9f8e');
    expect(readModelRoute(parseRoute(hash).params)).toEqual({ model: 'torchvision:resnet50', epoch: null, layer: 'conv1', image: 'upload:9f8e' });
  });
});

describe('model and epoch', () => {
  it('splits run:ID@EPOCH and builds the MODEL of requests', () => {
    expect(parseModelRef('run:ab12@3')).toEqual({ base: 'run:ab12', run: 'ab12', epoch: 3 });
    expect(parseModelRef(' run:ab12 ')).toEqual({ base: 'run:ab12', run: 'ab12', epoch: null });
    expect(parseModelRef('torchvision:resnet50')).toEqual({ base: 'torchvision:resnet50', run: null, epoch: null });
    expect(requestModel('run:ab12', 0)).toBe('run:ab12@0');
    expect(requestModel('run:ab12@5', 2)).toBe('run:ab12@2');
    expect(requestModel('run:ab12', null)).toBe('run:ab12');
    expect(requestModel('lenet5', 2)).toBe('lenet5');
  });

  it('matches short and full run ids', () => {
    expect(sameRun('ab12', 'ab12cd34')).toBe(true);
    expect(sameRun('ab12cd34', 'ab12cd34')).toBe(true);
    expect(sameRun('ab13', 'ab12cd34')).toBe(false);
    expect(sameRun(null, 'ab')).toBe(false);
  });

  it('keeps the wanted epoch if the run has it, else the latest before it, else the last', () => {
    const epochs = normaliseEpochs([3, 0, 1, 1, 'x', -1, 2.5, 5]);
    expect(epochs).toEqual([0, 1, 3, 5]);
    expect(pickEpoch(epochs, 3)).toBe(3);
    expect(pickEpoch(epochs, 4)).toBe(3);
    expect(pickEpoch(epochs, 99)).toBe(5);
    expect(pickEpoch(epochs, null)).toBe(5);
    expect(pickEpoch([2, 3], 1)).toBe(2);
    expect(pickEpoch([], 1)).toBeNull();
  });

  it('extends the epochs with a live checkpoint, once', () => {
    expect(withEpoch([0, 1], 2)).toEqual([0, 1, 2]);
    expect(withEpoch([0, 1, 2], 1)).toEqual([0, 1, 2]);
    expect(withEpoch([], 0)).toEqual([0]);
  });

  it('says what epoch 0 is', () => {
    expect(epochLabel(0)).toBe('epoch 0 = before training');
    expect(epochOfText(0, [0, 1, 2])).toBe('epoch 0 = before training (of 2)');
    expect(epochOfText(2, [0, 1, 2])).toBe('epoch 2 (latest)');
    expect(epochOfText(1, [0, 1, 2])).toBe('epoch 1 (of 2)');
  });

  it('reads the epoch the route asked for, as written', () => {
    expect(askedEpoch(new URLSearchParams('model=run:ab&epoch=7'))).toBe('7');
    expect(askedEpoch(new URLSearchParams('model=run:ab&epoch=-1'))).toBe('-1');
    expect(askedEpoch(new URLSearchParams('model=run:ab&epoch=abc'))).toBe('abc');
    expect(askedEpoch(new URLSearchParams('model=run:ab@5'))).toBe('5');
    expect(askedEpoch(new URLSearchParams('model=run:ab&epoch='))).toBeNull();
    expect(askedEpoch(new URLSearchParams('model=run:ab'))).toBeNull();
  });

  it('says when the run lacks the epoch asked, and which it shows instead', () => {
    const epochs = [0, 1, 2, 3];
    expect(epochNote('lenet5-mnist', '7', epochs, pickEpoch(epochs, 7))).toBe('run lenet5-mnist has no epoch 7; showing epoch 3 (its epochs: 0–3)');
    expect(epochNote('lenet5-mnist', '-1', epochs, 3)).toBe('run lenet5-mnist has no epoch -1; showing epoch 3 (its epochs: 0–3)');
    expect(epochNote('lenet5-mnist', 'abc', epochs, 3)).toBe('run lenet5-mnist has no epoch abc; showing epoch 3 (its epochs: 0–3)');
    expect(epochNote('r', '2', [0, 1, 3], pickEpoch([0, 1, 3], 2))).toBe('run r has no epoch 2; showing epoch 1 (its epochs: 0, 1, 3)');
    expect(epochNote('r', '2', epochs, 2)).toBeNull();
    expect(epochNote('r', '02', epochs, 2)).toBeNull();
    expect(epochNote('r', null, epochs, 3)).toBeNull();
    expect(epochNote('r', '1', [], null)).toBe('run r has no epoch 1 (it has no checkpoints yet)');
    expect(epochsText([0, 1, 2, 5, 7, 8, 10, 11, 12, 13])).toBe('0–2, 5, 7, 8, 10–13');
    expect(epochsText([])).toBe('');
  });

  it('words the trained-weights hint for the dashboard (the server takes --model NAME=imagenet)', () => {
    expect(dashboardDescription('resnet50', 'torchvision ResNet-50 (ImageNet, 1000 classes); --weights imagenet for trained weights')).toBe(
      'torchvision ResNet-50 (ImageNet, 1000 classes); trained weights: start the server with --model resnet50=imagenet (or --model FILE)',
    );
    expect(dashboardDescription('efficientnet-lite0', 'EfficientNet-Lite0 (ImageNet, 1000 classes); --weights imagenet with convscope[pretrained]')).toBe(
      'EfficientNet-Lite0 (ImageNet, 1000 classes); trained weights: start the server with --model efficientnet-lite0=imagenet (or --model FILE); needs convscope[pretrained]',
    );
    expect(dashboardDescription('lenet5', 'Keras LeNet-5 on 28x28')).toBe('Keras LeNet-5 on 28x28');
    const zoo = modelChoices([{ name: 'resnet50', params: 25610152, dataset: 'imagenet', description: 'torchvision ResNet-50 (ImageNet, 1000 classes); --weights imagenet for trained weights' }], []);
    expect(zoo[0].title).not.toMatch(/--weights/);
  });

  it('tells same-named --model files apart and lists an unloadable one disabled, its error as its title', () => {
    expect(givenSource('given with --model: /tmp/b/checkpoint.ckpt (run f84719ab epoch 1)')).toBe('/tmp/b/checkpoint.ckpt');
    expect(givenSource('given with --model: resnet50=imagenet (random init (seed 0))')).toBe('resnet50=imagenet');
    expect(givenSource('given with --model: /tmp/a (x)/m.pt', false)).toBe('/tmp/a (x)/m.pt');
    expect(distinctTails(['/a/b/m.pt', '/a/c/m.pt'])).toEqual(['b/m.pt', 'c/m.pt']);
    expect(distinctTails(['/x/b/m.pt', '/y/b/m.pt'])).toEqual(['x/b/m.pt', 'y/b/m.pt']);
    const choices = modelChoices(
      [
        { name: 'checkpoint.ckpt', params: 59082, dataset: 'fashion-mnist', description: 'given with --model: /tmp/fe/b/checkpoint.ckpt (run f84719ab epoch 1)' },
        { name: 'checkpoint.ckpt (2)', params: 44426, dataset: 'mnist', description: 'given with --model: /tmp/fe/c/checkpoint.ckpt (run ab69c721 epoch 1)' },
        { name: 'checkpoint.ckpt (3)', params: null, description: 'given with --model: /tmp/fe/a/checkpoint.ckpt', error: '/tmp/fe/a/checkpoint.ckpt: corrupt or unsafe PyTorch file (UnpicklingError)' },
        { name: 'other.pt', params: 10, description: 'given with --model: /tmp/other.pt (file)' },
      ],
      [],
    );
    expect(choices.map((c) => c.label)).toEqual([
      'checkpoint.ckpt (fashion-mnist, 59,082 params) — b/checkpoint.ckpt',
      'checkpoint.ckpt (2) (mnist, 44,426 params) — c/checkpoint.ckpt',
      'checkpoint.ckpt (3) — a/checkpoint.ckpt (could not be loaded)',
      'other.pt (10 params)',
    ]);
    expect(choices[1].title).toBe('given with --model: /tmp/fe/c/checkpoint.ckpt (run ab69c721 epoch 1)');
    expect(choices[1].source).toBe('/tmp/fe/c/checkpoint.ckpt');
    expect(choices[2]).toMatchObject({ disabled: true, title: '/tmp/fe/a/checkpoint.ckpt: corrupt or unsafe PyTorch file (UnpicklingError)' });
    expect(choices[0].disabled).toBeUndefined();
    // a broken name is never the one a view opens with
    expect(defaultModel(choices.slice(2, 3))).toBeNull();
  });

  it('lists runs (newest first), the zoo and the --model names, and opens the newest run', () => {
    const run = (id: string, created: string, status = 'finished'): RunSummary => ({ id, name: `study/${id}`, study: 'study', model: 'lenet5', dataset: 'mnist', status, epochsCompleted: 3, epochs: 3, testAcc: 0.9, created });
    const models = [
      { name: 'lenet5', params: 44426, dataset: 'mnist', description: 'LeNet-5' },
      { name: 'mine', params: 1234567, dataset: null, description: 'given with --model: ./m.pt (trained)' },
      { name: 'broken', params: null, description: 'given with --model: ./x.pt', error: 'not a model' },
      { params: 3 },
    ];
    const choices = modelChoices(models, [run('old', '2026-01-01'), run('new', '2026-02-01', 'running')]);
    expect(choices.map((c) => [c.value, c.group])).toEqual([
      ['run:new', 'run'],
      ['run:old', 'run'],
      ['lenet5', 'zoo'],
      ['mine', 'given'],
      ['broken', 'given'],
    ]);
    expect(choices[0].label).toBe('study/new — lenet5 on mnist (training)');
    expect(choices[2].label).toBe('lenet5 (mnist, 44,426 params)');
    expect(choices[3].label).toBe('mine (1,234,567 params)');
    expect(choices[4].title).toBe('not a model');
    expect(defaultModel(choices)).toBe('run:new');
    expect(defaultModel(modelChoices(models, []))).toBe('lenet5');
    expect(defaultModel([])).toBeNull();
  });

  it('keeps the image across models when it still makes sense', () => {
    expect(keepsImage('sample:chelsea', 'mnist', null)).toBe(true);
    expect(keepsImage('upload:ab', null, 'mnist')).toBe(true);
    expect(keepsImage('fashion-mnist:test:3', 'fashion-mnist', 'fashion-mnist')).toBe(true);
    expect(keepsImage('mnist:test:3', 'mnist', 'fashion-mnist')).toBe(false);
    expect(keepsImage('mnist:test:3', null, null)).toBe(false);
    expect(keepsImage(null, 'mnist', 'mnist')).toBe(false);
  });
});

describe('diagram pan and zoom', () => {
  const content: Box = { x: 0, y: 0, w: 887, h: 2158 }; // torchvision:resnet50, collapsed
  const port = { width: 600, height: 800 };

  it('reads and writes the viewBox', () => {
    expect(parseViewBox('0 0 706.4 880.0')).toEqual({ x: 0, y: 0, w: 706.4, h: 880 });
    expect(parseViewBox('0,0,10,20')).toEqual({ x: 0, y: 0, w: 10, h: 20 });
    expect(parseViewBox('0 0 0 10')).toBeNull();
    expect(parseViewBox(null)).toBeNull();
    expect(viewBoxText({ x: 1 / 3, y: 0, w: 10, h: 20 })).toBe('0.33 0 10 20');
  });

  it('fits the whole diagram, centred, at the viewport aspect', () => {
    const v = fitView(content, port, 0);
    expect(v.w / v.h).toBeCloseTo(port.width / port.height, 9);
    expect(scaleOf(v, port)).toBeCloseTo(800 / 2158, 9);
    expect(v.x + v.w / 2).toBeCloseTo(887 / 2, 9);
    expect(v.y + v.h / 2).toBeCloseTo(2158 / 2, 9);
    // a small diagram is not blown up past 1.5×
    expect(scaleOf(fitView({ x: 0, y: 0, w: 100, h: 100 }, port, 0), port)).toBe(1.5);
  });

  it('opens a tall diagram width-fitted and readable, from the top', () => {
    const v = openingView(content, port, 0);
    expect(scaleOf(v, port)).toBeCloseTo(0.7, 9); // 600/887 = 0.68 is below the readable scale
    expect(v.y).toBeCloseTo(0, 9);
    const small = openingView({ x: 0, y: 0, w: 706, h: 880 }, { width: 700, height: 900 }, 0);
    expect(boxInside({ x: 0, y: 0, w: 706, h: 880 }, small)).toBe(true); // lenet5 fits whole
  });

  it('zooms about the pointer: the point under it stays put', () => {
    const v = fitView(content, port);
    const fx = 0.25;
    const fy = 0.75;
    const before = { x: v.x + fx * v.w, y: v.y + fy * v.h };
    const z = zoomAt(v, 2, fx, fy, content, port);
    expect(scaleOf(z, port)).toBeCloseTo(scaleOf(v, port) * 2, 9);
    expect(z.x + fx * z.w).toBeCloseTo(before.x, 6);
    expect(z.y + fy * z.h).toBeCloseTo(before.y, 6);
    // zoom in then out by the same factor at the same point comes back
    close(zoomAt(z, 0.5, fx, fy, content, port), v);
  });

  it('limits the zoom', () => {
    const v = fitView(content, port);
    const [lo, hi] = scaleLimits(content, port);
    expect(scaleOf(zoomAt(v, 1000, 0.5, 0.5, content, port), port)).toBeCloseTo(hi, 9);
    expect(scaleOf(zoomAt(v, 1e-6, 0.5, 0.5, content, port), port)).toBeCloseTo(lo, 9);
    expect(lo).toBeLessThan(scaleOf(v, port));
  });

  it('pans with the drag, in pixels, and keeps some of the diagram in view', () => {
    const v = zoomAt(fitView(content, port), 2, 0.5, 0.5, content, port);
    const s = scaleOf(v, port);
    const p = panBy(v, 30, -60, content, port);
    expect(p.x).toBeCloseTo(v.x - 30 / s, 9);
    expect(p.y).toBeCloseTo(v.y + 60 / s, 9);
    expect(p.w).toBe(v.w);
    const far = panBy(v, 1e6, 1e6, content, port);
    expect(far.x + far.w).toBeGreaterThan(content.x);
    expect(far.y + far.h).toBeGreaterThan(content.y);
    const clamped = clampView({ ...v, x: -1e6, y: 1e6 }, content, port);
    expect(clamped.x + clamped.w).toBeCloseTo(content.x + KEEP_PX / s, 6);
    expect(clamped.y).toBeCloseTo(content.y + content.h - KEEP_PX / s, 6);
  });

  it('never lets a drag take the diagram out of view: 80 px of its nodes stay, at any zoom and either way', () => {
    const nodes: Box = { x: 271.6, y: 50, w: 163.2, h: 810 }; // lenet5's column of boxes
    const padded = nodesBounds([nodes], 24)!;
    const small = { width: 420, height: 500 };
    for (const factor of [0.01, 0.5, 1, 3, 100]) {
      const v = zoomAt(fitView(padded, small), factor, 0.5, 0.5, padded, small, nodes);
      for (const [dx, dy] of [[1e5, 0], [-1e5, 0], [0, 1e5], [0, -1e5], [1e5, -1e5], [-3e4, 2e4]]) {
        const p = panBy(v, dx, dy, padded, small, nodes);
        const seen = visiblePixels(p, nodes, small);
        const s = scaleOf(p, small);
        // 80 px each way, or all of the nodes where they are narrower than that on screen
        expect(seen.x).toBeGreaterThanOrEqual(Math.min(KEEP_PX, nodes.w * s) - 1e-6);
        expect(seen.y).toBeGreaterThanOrEqual(Math.min(KEEP_PX, nodes.h * s) - 1e-6);
      }
    }
    // a diagram smaller than 80 px on screen stays in view whole
    const tiny: Box = { x: 0, y: 0, w: 20, h: 20 };
    const t = clampView({ x: 500, y: -500, w: 600, h: 800 }, tiny, port);
    expect(visiblePixels(t, tiny, port)).toEqual({ x: 20, y: 20 });
  });

  it('scrolls a tall diagram with the wheel like a page, and hands the wheel to the page at its ends', () => {
    const top = openingView(content, port, 0); // width-fitted, at the top
    const s = scaleOf(top, port);
    const down = wheelPan(top, 0, 100, content, port)!;
    expect(down.y).toBeCloseTo(top.y + 100 / s, 9);
    expect(down.w).toBe(top.w);
    expect(wheelPan(top, 0, -100, content, port)).toBeNull(); // already at the top: the page scrolls
    const bottom = wheelPan(top, 0, 1e6, content, port)!;
    expect(bottom.y + bottom.h).toBeCloseTo(content.y + content.h, 6); // stops at the end
    expect(wheelPan(bottom, 0, 50, content, port)).toBeNull();
    // a diagram that fits whole never takes the wheel
    const whole = fitView(content, port);
    expect(wheelPan(whole, 0, 100, content, port)).toBeNull();
    expect(wheelPan(whole, 0, -100, content, port)).toBeNull();
    expect(wheelPixels(0, 3, 1, port)).toEqual([0, 48]);
    expect(wheelPixels(0, 1, 2, port)).toEqual([0, 800]);
    expect(GRAPH_HINT).toMatch(/Ctrl\+scroll .*pinch to zoom/);
  });

  it('keeps scale and corner when the viewport is resized', () => {
    const v = zoomAt(fitView(content, port), 2, 0.5, 0.5, content, port);
    const r = resizeView(v, port, { width: 300, height: 800 }, content);
    expect(scaleOf(r, { width: 300, height: 800 })).toBeCloseTo(scaleOf(v, port), 9);
    expect(r.x).toBeCloseTo(v.x, 9);
    expect(r.y).toBeCloseTo(v.y, 9);
  });

  it('bounds the nodes with a margin', () => {
    expect(nodesBounds([{ x: 10, y: 50, w: 100, h: 54 }, { x: 40, y: 300, w: 200, h: 54 }], 24)).toEqual({ x: -14, y: 26, w: 278, h: 352 });
    expect(nodesBounds([])).toBeNull();
  });

  it('moves to a selected node only when it is out of view', () => {
    const v = { x: 0, y: 0, w: 600, h: 800 };
    const seen = { x: 100, y: 100, w: 160, h: 54 };
    expect(revealBox(v, seen, content, port)).toBe(v);
    const below = { x: 300, y: 1800, w: 160, h: 54 };
    const r = revealBox(v, below, content, port);
    expect(boxInside(below, r)).toBe(true);
    expect(r.w).toBe(v.w);
  });
});

describe('diagram nodes and layers', () => {
  const raw = {
    nodes: [
      { id: 'x', name: 'input', type: 'Input', op: 'placeholder', output_shape: [1, 3, 224, 224], params: 0, collapsed: false, activation: null },
      { id: 'conv1', name: 'conv1', type: 'Conv2d', op: 'call_module', output_shape: [1, 64, 112, 112], params: 9408, collapsed: false, activation: null },
      { id: 'bn1', name: 'bn1', type: 'BatchNorm2d', op: 'call_module', output_shape: [1, 64, 112, 112], params: 256 },
      { id: 'layer1_0', name: 'layer1.0', type: 'Bottleneck', op: 'call_module', output_shape: [1, 256, 56, 56], params: 75008, collapsed: true },
      { id: 'layer1_1', name: 'layer1.1', type: 'Bottleneck', op: 'call_module', output_shape: [1, 256, 56, 56], params: 70400, collapsed: true },
      { id: 'flatten', name: 'flatten', type: 'flatten', op: 'call_function', output_shape: [1, 2048], params: 0 },
      { id: 'dense', name: 'dense_1', type: 'LinearAct', op: 'call_module', output_shape: [1, 120], params: 30840, activation: 'relu' },
      { id: 'out', name: 'output', type: 'Output', op: 'output', output_shape: [[1, 10], [1, 10]], params: 0 },
    ],
    edges: [['x', 'conv1'], ['conv1', 'bn1']],
    note: null,
  };
  const graph = parseGraph(raw);
  const node = (id: string) => graph.nodes.find((n) => n.id === id) as GraphNode;
  const layers: LayerRow[] = parseLayers([
    { name: 'bn0', type: 'BatchNorm2d', output_shape: [1, 3, 224, 224], params: 6 },
    { name: 'conv1', type: 'Conv2d', output_shape: [1, 64, 112, 112], params: 9408 },
    { name: 'layer1', type: 'Sequential', output_shape: [1, 256, 56, 56], params: 215808 },
    { name: 'layer1.0', type: 'Bottleneck', output_shape: [1, 256, 56, 56], params: 75008 },
    { name: 'layer1.0.conv1', type: 'Conv2d', output_shape: [1, 64, 56, 56], params: 4096 },
    { name: 'layer1.0.bn1', type: 'BatchNorm2d', output_shape: [1, 64, 56, 56], params: 128 },
    { nope: 1 },
  ]);

  it('parses the graph leniently', () => {
    expect(graph.nodes).toHaveLength(8);
    expect(graph.edges).toEqual([['x', 'conv1'], ['conv1', 'bn1']]);
    expect(node('bn1').collapsed).toBe(false);
    expect(node('bn1').activation).toBeNull();
    expect(node('out').outputShape).toEqual([[1, 10], [1, 10]]);
    expect(layers.map((l) => l.name)).toEqual(['bn0', 'conv1', 'layer1', 'layer1.0', 'layer1.0.conv1', 'layer1.0.bn1']);
  });

  it('knows which nodes are layers', () => {
    expect(graph.nodes.filter(isLayerNode).map((n) => n.name)).toEqual(['conv1', 'bn1', 'layer1.0', 'layer1.1', 'dense_1']);
  });

  it('writes shapes as the diagram does and counts with thousands separators', () => {
    expect(shapeText([1, 64, 112, 112])).toBe('64×112×112');
    expect(shapeText([[1, 10], [1, 10]])).toBe('10, 10');
    expect(shapeText([10])).toBe('10');
    expect(shapeText(null)).toBe('–');
    expect(formatCount(25610152)).toBe('25,610,152');
    expect(formatCount(0)).toBe('0');
  });

  it('finds the box of a layer, or of the collapsed block it is inside', () => {
    expect(nodeForLayer(graph.nodes, 'conv1')).toEqual({ node: node('conv1'), exact: true });
    expect(nodeForLayer(graph.nodes, 'layer1.0.conv1')).toEqual({ node: node('layer1_0'), exact: false });
    expect(nodeForLayer(graph.nodes, 'layer1.10')).toBeNull(); // not inside layer1.1
    expect(nodeForLayer(graph.nodes, 'flatten')).toBeNull(); // a function is not a layer
    expect(layersInside(layers, 'layer1.0')).toBe(2);
  });

  it('opens the first convolution (a leaf), else the first layer with weights', () => {
    expect(defaultLayer(layers)).toBe('conv1');
    expect(defaultLayer(parseLayers([{ name: 'block', type: 'ConvBlock', params: 5 }, { name: 'block.conv', type: 'Conv2dAct', params: 5 }]))).toBe('block.conv');
    expect(defaultLayer(parseLayers([{ name: 'flat', type: 'Flatten', params: 0 }, { name: 'fc', type: 'Linear', params: 10 }]))).toBe('fc');
    expect(defaultLayer([])).toBeNull();
  });

  it('tooltips: type, output, parameters, trainable', () => {
    const trainable = parseTrainable({ layers: [{ name: 'conv1', trainable_params: 9408 }, { name: 'bn1', trainable_params: 128 }, { name: 'x' }] });
    expect(tooltipRows(node('conv1'), trainable.get('conv1'))).toEqual([
      ['Type', 'Conv2d'],
      ['Output', '64×112×112'],
      ['Parameters', '9,408'],
      ['Trainable', 'all (9,408)'],
    ]);
    expect(tooltipRows(node('bn1'), trainable.get('bn1')).at(-1)).toEqual(['Trainable', '128']);
    expect(tooltipRows(node('dense'), 0)).toContainEqual(['Type', 'LinearAct · relu']);
    expect(tooltipRows(node('dense'), 0).at(-1)).toEqual(['Trainable', 'none (frozen or statistics only)']);
    expect(tooltipRows(node('layer1_0'), undefined, 10)).toContainEqual(['Block', 'collapsed: 10 layers inside (in the layer list)']);
    expect(tooltipRows(node('layer1_0'), undefined).at(-1)).toEqual(['Trainable', '–']);
    expect(tooltipRows(node('x'), undefined)).toEqual([['Type', "the model's input"], ['Output', '3×224×224']]);
    expect(tooltipRows(node('flatten'), undefined)[0]).toEqual(['Type', 'flatten (function call, not a layer)']);
  });

  it('knows the last layer (or the block that ends in it) and one-tensor shapes', () => {
    expect(isLastLayer(layers, 'layer1.0.bn1')).toBe(true);
    expect(isLastLayer(layers, 'layer1.0')).toBe(true);
    expect(isLastLayer(layers, 'layer1.0.conv1')).toBe(false);
    expect(isLastLayer([], 'x')).toBe(false);
    expect(flatShape([1, 64, 56, 56])).toEqual([1, 64, 56, 56]);
    expect(flatShape([[1, 10], [1, 10]])).toBeNull();
    expect(flatShape(null)).toBeNull();
  });

  it('indents nested layers in the list', () => {
    expect(layerOptionText(layers[4])).toBe('\u2003\u2003layer1.0.conv1 · Conv2d');
    expect(layerOptionText(layers[1])).toBe('conv1 · Conv2d');
  });
});

describe('input', () => {
  it('browses the registered datasets only', () => {
    expect(isBrowsable('mnist')).toBe(true);
    expect(isBrowsable('Fashion-MNIST')).toBe(true);
    expect(isBrowsable('imagenet')).toBe(false);
    expect(isBrowsable(null)).toBe(false);
  });

  it('parses a page of dataset images with class names', () => {
    const page = parseDatasetPage({ dataset: 'mnist', split: 'test', total: 10000, start: 24, count: 2, classes: ['zero', 'one'], images: [{ spec: 'mnist:test:24', label: 1, class: 'one' }, { spec: 'mnist:test:25', label: 0 }, { label: 3 }] });
    expect(page.images).toEqual([
      { spec: 'mnist:test:24', label: 1, className: 'one' },
      { spec: 'mnist:test:25', label: 0, className: 'zero' },
    ]);
    expect(page.total).toBe(10000);
    expect(parseDatasetPage(null).images).toEqual([]);
  });

  it('pages: text and steps', () => {
    expect(pageText(0, 24, 10000)).toBe('1–24 of 10,000');
    expect(pageText(9984, 16, 10000)).toBe('9,985–10,000 of 10,000');
    expect(pageText(0, 0, 0)).toBe('0 of 0');
    expect(pageStep(0, 24, 100, -1)).toBeNull();
    expect(pageStep(10, 24, 100, -1)).toBe(0);
    expect(pageStep(48, 24, 100, -1)).toBe(24);
    expect(pageStep(72, 24, 100, 1)).toBe(96);
    expect(pageStep(96, 24, 100, 1)).toBeNull();
  });

  it('builds relative URLs', () => {
    expect(datasetUrl('fashion-mnist', 24, 24, '3')).toBe('api/datasets/fashion-mnist/images?split=test&start=24&count=24&label=3');
    expect(datasetUrl('mnist', 0, 24, '')).toBe('api/datasets/mnist/images?split=test&start=0&count=24');
    expect(imageUrl('mnist:test:0', 'run:ab@2')).toBe('api/image.png?image=mnist%3Atest%3A0&model=run%3Aab%402');
    expect(imageUrl('sample:chelsea')).toBe('api/image.png?image=sample%3Achelsea');
  });

  it('reads a prediction, flat or as predict --json, with class names', () => {
    const flat = parsePrediction({ model: 'lenet5', weights: 'epoch 3', input: 'mnist:test:0', label: '7', top: [['7', 0.9], ['1', 0.05], ['bad']], probs: [] });
    expect(flat).toEqual({ top: [['7', 0.9], ['1', 0.05]], label: '7', weights: 'epoch 3' });
    const nested = parsePrediction({ model: 'm', weights: 'w', predictions: [{ input: 'x', top: [[2, 0.5]], label: 2 }] }, ['cat', 'dog', 'bird']);
    expect(nested).toEqual({ top: [['bird', 0.5]], label: 'bird', weights: 'w' });
    expect(parsePrediction({ top: [] }).label).toBeNull();
  });

  it('lists the samples and says which tab a SPEC belongs to', () => {
    expect(parseSamples([{ spec: 'sample:chelsea', name: 'chelsea', shape: [300, 451, 3] }, { name: 'x' }])).toEqual([{ spec: 'sample:chelsea', name: 'chelsea', shape: [300, 451, 3] }]);
    expect(sourceOf('mnist:test:3', true)).toBe('dataset');
    expect(sourceOf('mnist:test:3-9', true)).toBe('spec');
    expect(sourceOf('mnist:test:3', false)).toBe('spec');
    expect(sourceOf('sample:coffee', true)).toBe('samples');
    expect(sourceOf('upload:ab', true)).toBe('upload');
    expect(sourceOf(null, false)).toBe('samples');
    expect(sourceOf(null, true)).toBe('dataset');
  });

  it('shows a range SPEC as its first image, and says so', () => {
    expect(firstOfRange('mnist:test:0-5')).toBe('mnist:test:0');
    expect(firstOfRange(' fashion-mnist:train:007-9 ')).toBe('fashion-mnist:train:7');
    expect(firstOfRange('mnist:test:5-5')).toBeNull(); // empty: the server says why
    expect(firstOfRange('mnist:test:3')).toBeNull();
    expect(firstOfRange('sample:chelsea')).toBeNull();
    expect(normaliseSpec('mnist:test:0-5')).toEqual({ spec: 'mnist:test:0', note: 'mnist:test:0-5 is a range: showing its first image, mnist:test:0' });
    expect(normaliseSpec('mnist:test:4')).toEqual({ spec: 'mnist:test:4', note: null });
    expect(normaliseSpec(null)).toEqual({ spec: null, note: null });
  });

  it('moves one Tab stop through the thumbnails with the arrows (roving focus)', () => {
    // 24 thumbnails, 6 to a row
    expect(rovingStep(0, 'ArrowRight', 24, 6)).toBe(1);
    expect(rovingStep(23, 'ArrowRight', 24, 6)).toBe(23);
    expect(rovingStep(0, 'ArrowLeft', 24, 6)).toBe(0);
    expect(rovingStep(7, 'ArrowLeft', 24, 6)).toBe(6);
    expect(rovingStep(2, 'ArrowDown', 24, 6)).toBe(8);
    expect(rovingStep(20, 'ArrowDown', 24, 6)).toBe(20);
    expect(rovingStep(8, 'ArrowUp', 24, 6)).toBe(2);
    expect(rovingStep(2, 'ArrowUp', 24, 6)).toBe(2);
    expect(rovingStep(9, 'Home', 24, 6)).toBe(0);
    expect(rovingStep(9, 'End', 24, 6)).toBe(23);
    expect(rovingStep(3, 'Enter', 24, 6)).toBeNull(); // the button itself chooses
    expect(rovingStep(3, 'a', 24, 6)).toBeNull();
    // a short last row: down from above a gap stays
    expect(rovingStep(4, 'ArrowDown', 8, 6)).toBe(4);
    expect(rovingStep(1, 'ArrowDown', 8, 6)).toBe(7);
    expect(rovingStep(0, 'ArrowDown', 3, 0)).toBe(1); // no layout known: one column
    expect(rovingStep(0, 'ArrowRight', 0, 6)).toBeNull();
    // the Tab stop: the chosen image, else the first
    expect(rovingStop(['mnist:test:0', 'mnist:test:1', 'mnist:test:2'], 'mnist:test:2')).toBe(2);
    expect(rovingStop(['mnist:test:0', 'mnist:test:1'], 'sample:chelsea')).toBe(0);
    expect(rovingStop(['mnist:test:0'], null)).toBe(0);
  });

  it('writes probabilities', () => {
    expect(percent(0.8312)).toBe('83.1%');
    expect(percent(0.99999)).toBe('100%');
    expect(percent(0.0004)).toBe('0.04%');
  });
});
