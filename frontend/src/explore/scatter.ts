// What one map draws at one epoch, as ECharts series: every point coloured by its group
// (faded while a selection exists), the selected points on top with an outline, and the
// selected points' trails over the epochs up to the one shown.
import { withAlpha } from '../palette';
import { groupColour, type Group } from './colour';
import type { Limits } from './limits';

export interface Frame {
  points: readonly (readonly [number, number])[];
  groups: readonly Group[];
  /** Positions of the selected points. */
  selected: readonly number[];
  /** One polyline per selected point with a trail, and its group. */
  trails: readonly { coords: [number, number][]; group: Group }[];
  animate: boolean;
}

export const POINT_SIZE = 5;
export const SELECTED_SIZE = 8;
export const FADED_ALPHA = 0.14;

export function pointColour(group: Group, faded: boolean): string {
  return faded ? withAlpha(groupColour(group), FADED_ALPHA) : groupColour(group);
}

/** Positions per group, in first-seen order (one scatter series each). */
export function byGroup(groups: readonly Group[]): Map<Group, number[]> {
  const out = new Map<Group, number[]>();
  groups.forEach((g, p) => {
    const list = out.get(g);
    if (list) list.push(p);
    else out.set(g, [p]);
  });
  return out;
}

/**
 * The series of one frame. Points go in one series per colour group drawn in ECharts'
 * large mode (one canvas path per series instead of one element per point), which keeps
 * four maps of a thousand points smooth while the slider moves; the selection is drawn
 * on top as ordinary points, so it animates between epochs.
 */
export function frameSeries(frame: Frame) {
  const faded = frame.selected.length > 0;
  const duration = frame.animate ? 450 : 0;
  const groups = [...byGroup(frame.groups)].map(([group, positions]) => ({
    id: `group-${group}`,
    type: 'scatter',
    large: true,
    largeThreshold: 0,
    data: positions.map((p) => [frame.points[p][0], frame.points[p][1], p]),
    symbolSize: POINT_SIZE,
    itemStyle: { color: pointColour(group, faded) },
    emphasis: { itemStyle: { borderColor: '#111', borderWidth: 1 } },
    animation: false,
    z: 2,
  }));
  return [
    ...groups,
    {
      id: 'trails',
      type: 'lines',
      coordinateSystem: 'cartesian2d',
      polyline: true,
      silent: true,
      data: frame.trails.map((t) => ({ coords: t.coords, lineStyle: { color: withAlpha(groupColour(t.group), 0.55) } })),
      lineStyle: { width: 1.2 },
      animation: false,
      z: 3,
    },
    {
      id: 'selected',
      type: 'scatter',
      data: frame.selected.map((p) => [frame.points[p][0], frame.points[p][1], p]),
      symbolSize: SELECTED_SIZE,
      itemStyle: {
        color: (item: { data: [number, number, number] }) => groupColour(frame.groups[item.data[2]]),
        borderColor: '#111',
        borderWidth: 1,
      },
      animationDurationUpdate: duration,
      z: 4,
    },
  ];
}

export function axesOption(limits: Limits | null) {
  const axis = (min?: number, max?: number) => ({
    type: 'value',
    min,
    max,
    scale: true,
    splitLine: { lineStyle: { color: '#eef0f3' } },
    axisLabel: { fontSize: 10, color: '#6b7380', hideOverlap: true, showMinLabel: false, showMaxLabel: false },
    axisLine: { lineStyle: { color: '#c7ccd4' } },
  });
  return {
    xAxis: axis(limits?.xmin, limits?.xmax),
    yAxis: axis(limits?.ymin, limits?.ymax),
  };
}

/** Trails of the selected positions through `epochs` (in order), up to the `cap` first. */
export function trailsOf(
  selected: readonly number[],
  pointsByEpoch: ReadonlyMap<number, readonly (readonly [number, number])[]>,
  epochs: readonly number[],
  groups: readonly Group[],
  cap: number,
): { coords: [number, number][]; group: Group }[] {
  return selected
    .slice(0, cap)
    .map((p) => ({
      coords: epochs
        .map((e) => pointsByEpoch.get(e)?.[p])
        .filter((xy): xy is readonly [number, number] => !!xy && Number.isFinite(xy[0]) && Number.isFinite(xy[1]))
        .map(([x, y]) => [x, y] as [number, number]),
      group: groups[p],
    }))
    .filter((t) => t.coords.length >= 2); // one point is no trail (and ECharts cannot draw it)
}
