// Shared axes: every map of the explorer uses the same limits, taken over every run and
// every epoch shown, so side-by-side maps compare and the axes stay put while playing.

export interface Limits {
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
}

/** The limits around all points (NaN skipped), padded by `pad` of the span on each side. */
export function sharedLimits(pointSets: Iterable<Iterable<readonly [number, number]>>, pad = 0.05): Limits | null {
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (const points of pointSets) {
    for (const [x, y] of points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < xmin) xmin = x;
      if (x > xmax) xmax = x;
      if (y < ymin) ymin = y;
      if (y > ymax) ymax = y;
    }
  }
  if (xmin > xmax) return null;
  const widen = (lo: number, hi: number): [number, number] => {
    const span = hi - lo;
    if (span === 0) return [lo - 1, hi + 1];
    return [lo - span * pad, hi + span * pad];
  };
  const [x0, x1] = widen(xmin, xmax);
  const [y0, y1] = widen(ymin, ymax);
  return { xmin: rounded(x0, Math.floor), xmax: rounded(x1, Math.ceil), ymin: rounded(y0, Math.floor), ymax: rounded(y1, Math.ceil) };
}

// Four significant digits keep the axis labels short; a lower limit rounds down and an
// upper one up, so no point falls outside.
function rounded(v: number, direction: (x: number) => number): number {
  if (v === 0) return 0;
  const digits = 4 - Math.ceil(Math.log10(Math.abs(v)));
  const f = 10 ** Math.max(0, digits);
  return direction(v * f) / f;
}
