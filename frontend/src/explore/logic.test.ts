import { describe, expect, it } from 'vitest';
import { groupOf, legendEntries, pointGroups } from './colour';
import { sharedLimits } from './limits';
import { epochAtOrBefore, nextEpoch, Player, type Timer } from './playback';
import { frameSeries, trailsOf, FADED_ALPHA } from './scatter';
import { combine, idsOf, idsOfClass, inPolygon, inRect, insidePolygon, LinkedSelection, positionsOf } from './selection';
import { spriteCell, thumbnailStyle } from './sprite';
import { CLASS_PALETTE, RIGHT, UNKNOWN, WRONG, withAlpha } from '../palette';

describe('shared axis limits', () => {
  it('covers every run and epoch, padded by 5% of the span', () => {
    const a = [[0, 0], [10, 5]] as const;
    const b = [[-10, -5], [2, 15]] as const;
    expect(sharedLimits([a, b])).toEqual({ xmin: -11, xmax: 11, ymin: -6, ymax: 16 });
  });

  it('skips NaN points and widens a single point to a unit box', () => {
    expect(sharedLimits([[[3, 4], [NaN, 1]]])).toEqual({ xmin: 2, xmax: 4, ymin: 3, ymax: 5 });
  });

  it('is null without points', () => {
    expect(sharedLimits([[], []])).toBeNull();
  });

  it('rounds outwards so no point falls outside', () => {
    const pts = [[0.123456, -0.987654], [1.234567, 2.345678]] as const;
    const l = sharedLimits([pts], 0)!;
    expect(l.xmin).toBeLessThanOrEqual(0.123456);
    expect(l.xmax).toBeGreaterThanOrEqual(1.234567);
    expect(l.ymin).toBeLessThanOrEqual(-0.987654);
    expect(l.ymax).toBeGreaterThanOrEqual(2.345678);
    expect(String(l.xmax).length).toBeLessThanOrEqual(6);
  });
});

describe('colour by', () => {
  const labels = [0, 1, 2, 1];
  const predicted = [0, 2, 2, -1];

  it('true class, predicted class and right/wrong', () => {
    expect(pointGroups('class', labels, predicted)).toEqual([0, 1, 2, 1]);
    expect(pointGroups('predicted', labels, predicted)).toEqual([0, 2, 2, 'unknown']);
    expect(pointGroups('correct', labels, predicted)).toEqual(['right', 'wrong', 'right', 'unknown']);
  });

  it('says unknown when the epoch has no predictions', () => {
    expect(pointGroups('correct', labels, undefined)).toEqual(['unknown', 'unknown', 'unknown', 'unknown']);
    expect(groupOf('class', 3, undefined)).toBe(3);
  });

  it('legend names classes by name, right/wrong with the colour-blind-safe pair', () => {
    const classes = ['T-shirt/top', 'Trouser', 'Pullover'];
    expect(legendEntries('class', classes, false).map((e) => [e.name, e.colour, e.classIndex])).toEqual([
      ['T-shirt/top', CLASS_PALETTE[0], 0],
      ['Trouser', CLASS_PALETTE[1], 1],
      ['Pullover', CLASS_PALETTE[2], 2],
    ]);
    expect(legendEntries('correct', classes, true).map((e) => [e.name, e.colour])).toEqual([
      ['right', RIGHT],
      ['wrong', WRONG],
      ['no prediction recorded', UNKNOWN],
    ]);
  });

  it('has ten distinct class colours', () => {
    expect(new Set(CLASS_PALETTE.map((c) => c.toLowerCase())).size).toBe(10);
  });
});

describe('linked selection', () => {
  const points = [[0, 0], [1, 1], [2, 2], [3, 0]] as const;

  it('picks points in a rectangle given in either order', () => {
    expect(inRect(points, [0.5, 2.5], [0.5, 2.5])).toEqual([1, 2]);
    expect(inRect(points, [2.5, 0.5], [2.5, 0.5])).toEqual([1, 2]);
  });

  it('picks points in a lasso polygon', () => {
    const triangle = [[-1, -1], [4, -1], [4, 0.5], [-1, 0.5]] as const;
    expect(insidePolygon(3, 0, triangle)).toBe(true);
    expect(inPolygon(points, triangle)).toEqual([0, 3]);
    expect(inPolygon(points, [[0, 0], [1, 1]])).toEqual([]);
  });

  it('links maps by dataset index, whatever each probe order', () => {
    const runA = [100, 200, 300, 400];
    const runB = [400, 300, 200, 100];
    const ids = idsOf([0, 1], runA);
    expect(ids).toEqual([100, 200]);
    expect(positionsOf(new Set(ids), 4, runB)).toEqual([2, 3]);
    // without indices, a position is its own id
    expect(positionsOf(new Set([1, 3]), 4, undefined)).toEqual([1, 3]);
  });

  it('selects a class, adds with shift and toggles a pick wholly inside out', () => {
    expect(idsOfClass([0, 1, 0, 2], 0, [10, 11, 12, 13])).toEqual([10, 12]);
    const s = new Set([1, 2]);
    expect([...combine(s, [3], 'replace')]).toEqual([3]);
    expect([...combine(s, [3], 'add')].sort()).toEqual([1, 2, 3]);
    expect([...combine(s, [1, 2], 'toggle')]).toEqual([]);
    expect([...combine(s, [2, 3], 'toggle')].sort()).toEqual([1, 2, 3]);
  });

  it('tells every map when it changes, and stays put across epochs', () => {
    const shared = new LinkedSelection();
    const seen: number[][] = [];
    const stop = shared.subscribe((ids) => seen.push([...ids]));
    shared.pick([5, 6]);
    shared.pick([7], 'add');
    shared.clear();
    shared.clear(); // nothing to clear: no second call
    stop();
    shared.pick([1]);
    expect(seen).toEqual([[5, 6], [5, 6, 7], []]);
  });
});

describe('epoch playback', () => {
  it('steps through the recorded epochs and stops at the last', () => {
    expect(nextEpoch([0, 1, 2], 0)).toBe(1);
    expect(nextEpoch([0, 1, 2], 2)).toBeNull();
    expect(nextEpoch([0, 2, 4], 1)).toBe(2);
    expect(nextEpoch([], 0)).toBeNull();
    expect(epochAtOrBefore([0, 2, 4], 3)).toBe(2);
    expect(epochAtOrBefore([2, 4], 1)).toBe(2);
  });

  function fakeTimer() {
    let tick: (() => void) | null = null;
    const timer: Timer = {
      start: (fn) => {
        tick = fn;
        return 1;
      },
      stop: () => {
        tick = null;
      },
    };
    return { timer, fire: () => tick?.(), running: () => tick !== null };
  }

  it('plays from the epoch shown, pauses itself at the end, restarts from epoch 0', () => {
    const t = fakeTimer();
    const shown: number[] = [];
    const states: boolean[] = [];
    const player = new Player([0, 1, 2, 3], 1, (e) => shown.push(e), (p) => states.push(p), 100, t.timer);
    player.play();
    t.fire();
    t.fire();
    expect(shown).toEqual([2, 3]);
    expect(player.playing).toBe(false);
    expect(t.running()).toBe(false);
    player.play(); // at the end: back to the first epoch
    expect(shown).toEqual([2, 3, 0]);
    player.toggle();
    expect(states).toEqual([true, false, true, false]);
  });

  it('does not play fewer than two epochs', () => {
    const t = fakeTimer();
    const player = new Player([0], 0, () => {}, () => {}, 100, t.timer);
    player.play();
    expect(player.playing).toBe(false);
  });
});

describe('sprite thumbnails', () => {
  const sprite = { url: 'api/runs/r/probe/sprite.png', size: 28, columns: 10 };

  it('finds a cell row-major', () => {
    expect(spriteCell(0, sprite)).toEqual({ x: 0, y: 0 });
    expect(spriteCell(9, sprite)).toEqual({ x: 252, y: 0 });
    expect(spriteCell(23, sprite)).toEqual({ x: 84, y: 56 });
  });

  it('scales the whole sheet and offsets to the cell', () => {
    const style = thumbnailStyle(23, sprite, 300, 56);
    expect(style['background-size']).toBe('560px 1680px');
    expect(style['background-position']).toBe('-168px -112px');
    expect(style.width).toBe('56px');
  });
});

describe('map frames', () => {
  const points = [[0, 0], [1, 1], [2, 2]] as const;

  it('one large-mode series per colour group, faded while a selection exists, the selection on top', () => {
    type S = { id: string; large?: boolean; data: unknown; itemStyle: { color?: unknown } };
    const series = frameSeries({ points, groups: [0, 1, 0], selected: [1], trails: [], animate: false }) as unknown as S[];
    const groups = series.filter((s) => s.id.startsWith('group-'));
    expect(groups.map((s) => [s.id, s.data])).toEqual([
      ['group-0', [[0, 0, 0], [2, 2, 2]]],
      ['group-1', [[1, 1, 1]]],
    ]);
    expect(groups.every((s) => s.large === true)).toBe(true);
    expect(groups[0].itemStyle.color).toBe(withAlpha(CLASS_PALETTE[0], FADED_ALPHA));
    expect(series.find((s) => s.id === 'selected')!.data).toEqual([[1, 1, 1]]);
    const none = frameSeries({ points, groups: [0, 1, 0], selected: [], trails: [], animate: false }) as unknown as S[];
    expect(none[0].itemStyle.color).toBe(CLASS_PALETTE[0]);
  });

  it('trails follow a point through the epochs, up to a cap', () => {
    const byEpoch = new Map<number, [number, number][]>([
      [0, [[0, 0], [5, 5]]],
      [1, [[1, 0], [5, 6]]],
      [2, [[2, 0], [5, 7]]],
    ]);
    expect(trailsOf([0, 1], byEpoch, [0, 1], [3, 4], 1)).toEqual([{ coords: [[0, 0], [1, 0]], group: 3 }]);
    expect(trailsOf([0, 1], byEpoch, [0], [3, 4], 5)).toEqual([]); // epoch 0 alone: no trail yet
  });
});
