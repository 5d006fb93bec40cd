import { describe, expect, it } from 'vitest';
import { colourAt, COLORMAPS, inkOn, lightness, lutIndex, niceTicks, shortNumber } from './colormap';

const L = (name: keyof typeof COLORMAPS, i: number) => {
  const lut = COLORMAPS[name];
  return lightness(lut[3 * i], lut[3 * i + 1], lut[3 * i + 2]);
};

describe('colour maps', () => {
  it('are 256-entry RGB tables', () => {
    for (const lut of Object.values(COLORMAPS)) expect(lut.length).toBe(256 * 3);
  });

  it('have the endpoints of matplotlib viridis, gray and RdBu reversed', () => {
    expect(colourAt(COLORMAPS.viridis, 0)).toEqual([0x44, 0x01, 0x54]);
    expect(colourAt(COLORMAPS.viridis, 1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(colourAt(COLORMAPS.gray, 0)).toEqual([0, 0, 0]);
    expect(colourAt(COLORMAPS.gray, 1)).toEqual([255, 255, 255]);
    const [r0, , b0] = colourAt(COLORMAPS.diverging, 0);
    const [r1, , b1] = colourAt(COLORMAPS.diverging, 1);
    expect(b0).toBeGreaterThan(r0); // negative end blue
    expect(r1).toBeGreaterThan(b1); // positive end red
    const [rm, gm, bm] = colourAt(COLORMAPS.diverging, 0.5);
    expect(Math.min(rm, gm, bm)).toBeGreaterThan(235); // zero is near white
  });

  it('viridis and gray rise in lightness from end to end', () => {
    for (const name of ['viridis', 'gray'] as const) {
      for (let i = 1; i < 256; i += 1) expect(L(name, i)).toBeGreaterThanOrEqual(L(name, i - 1) - 0.05);
      expect(L(name, 255) - L(name, 0)).toBeGreaterThan(60);
    }
  });

  it('the diverging map is lightest at zero and darkens monotonically towards both ends', () => {
    for (let i = 1; i <= 127; i += 1) expect(L('diverging', i)).toBeGreaterThanOrEqual(L('diverging', i - 1) - 0.05);
    for (let i = 129; i < 256; i += 1) expect(L('diverging', i)).toBeLessThanOrEqual(L('diverging', i - 1) + 0.05);
    expect(L('diverging', 128)).toBeGreaterThan(90);
    expect(L('diverging', 0)).toBeLessThan(35);
    expect(L('diverging', 255)).toBeLessThan(35);
  });

  it('clamps positions and reads NaN as the low end', () => {
    expect(lutIndex(-1)).toBe(0);
    expect(lutIndex(2)).toBe(255);
    expect(lutIndex(Number.NaN)).toBe(0);
    expect(lutIndex(0.5)).toBe(128);
  });

  it('chooses legible ink', () => {
    expect(inkOn(255, 255, 255)).not.toBe('#ffffff');
    expect(inkOn(0, 0, 0)).toBe('#ffffff');
  });
});

describe('ticks and numbers', () => {
  it('gives round ticks inside the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(0, 0.861, 5)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(niceTicks(-0.08, 0.08, 5)).toEqual([-0.05, 0, 0.05]);
    expect(niceTicks(-3.4, 2.85, 5)).toEqual([-2, 0, 2]);
    expect(niceTicks(2, 2)).toEqual([2]);
    expect(niceTicks(Number.NaN, 1)).toEqual([]);
  });

  it('writes short numbers', () => {
    expect(shortNumber(0.171389, 4)).toBe('0.1714');
    expect(shortNumber(-0.5)).toBe('−0.5');
    expect(shortNumber(0)).toBe('0');
    expect(shortNumber(1.6e-5, 2)).toBe('1.6e−5');
    expect(shortNumber(-1.6e-5, 2)).toBe('−1.6e−5');
    expect(shortNumber(null)).toBe('–');
    expect(shortNumber(Infinity)).toBe('∞');
  });
});
