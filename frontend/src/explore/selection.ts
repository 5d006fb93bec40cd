// Linked selection: the probe images picked in one map light up in every map.
// A selection holds probe images by their dataset index, so runs whose probe sets list
// the same images in another order still link; each map turns it into its positions.

export type Point = readonly [number, number];

/** Positions of the points inside the rectangle [x0, x1] x [y0, y1] (either order). */
export function inRect(points: readonly Point[], xs: readonly [number, number], ys: readonly [number, number]): number[] {
  const [x0, x1] = xs[0] <= xs[1] ? xs : [xs[1], xs[0]];
  const [y0, y1] = ys[0] <= ys[1] ? ys : [ys[1], ys[0]];
  const out: number[] = [];
  points.forEach(([x, y], i) => {
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(i);
  });
  return out;
}

/** Even-odd rule: is (x, y) inside the polygon? */
export function insidePolygon(x: number, y: number, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i, i += 1) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function inPolygon(points: readonly Point[], polygon: readonly Point[]): number[] {
  if (polygon.length < 3) return [];
  const out: number[] = [];
  points.forEach(([x, y], i) => {
    if (insidePolygon(x, y, polygon)) out.push(i);
  });
  return out;
}

/** The dataset index of each position (the position itself when the run names none). */
export function idsOf(positions: readonly number[], indices: readonly number[] | undefined): number[] {
  return positions.map((p) => (indices && indices[p] !== undefined && indices[p] >= 0 ? indices[p] : p));
}

/** Positions in one map of the selected ids. */
export function positionsOf(selected: ReadonlySet<number>, count: number, indices: readonly number[] | undefined): number[] {
  const out: number[] = [];
  for (let p = 0; p < count; p += 1) {
    const id = indices && indices[p] !== undefined && indices[p] >= 0 ? indices[p] : p;
    if (selected.has(id)) out.push(p);
  }
  return out;
}

export type Combine = 'replace' | 'add' | 'toggle';

export function combine(previous: ReadonlySet<number>, picked: readonly number[], how: Combine): Set<number> {
  if (how === 'replace') return new Set(picked);
  const next = new Set(previous);
  if (how === 'add') {
    for (const id of picked) next.add(id);
    return next;
  }
  // toggle: a pick wholly inside the selection is taken out, else added
  const allIn = picked.length > 0 && picked.every((id) => next.has(id));
  for (const id of picked) {
    if (allIn) next.delete(id);
    else next.add(id);
  }
  return next;
}

/** Ids of the probe images of class `k`. */
export function idsOfClass(labels: readonly number[], k: number, indices: readonly number[] | undefined): number[] {
  const positions: number[] = [];
  labels.forEach((label, p) => {
    if (label === k) positions.push(p);
  });
  return idsOf(positions, indices);
}

type Listener = (selected: ReadonlySet<number>) => void;

/** The one selection the maps share; maps listen and redraw their highlight. */
export class LinkedSelection {
  private selected: Set<number> = new Set();
  private readonly listeners = new Set<Listener>();

  get ids(): ReadonlySet<number> {
    return this.selected;
  }

  get size(): number {
    return this.selected.size;
  }

  pick(ids: readonly number[], how: Combine = 'replace'): void {
    this.set(combine(this.selected, ids, how));
  }

  clear(): void {
    if (this.selected.size) this.set(new Set());
  }

  set(ids: Set<number>): void {
    this.selected = ids;
    for (const listener of this.listeners) listener(this.selected);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
