// Colour by: the true class, the class predicted at the epoch shown, or right/wrong.
import { classColour, RIGHT, UNKNOWN, WRONG } from '../palette';

export type ColourBy = 'class' | 'predicted' | 'correct';

export const COLOUR_BY_NAMES: Record<ColourBy, string> = {
  class: 'true class',
  predicted: 'predicted class',
  correct: 'right / wrong',
};

export function isColourBy(v: string | null | undefined): v is ColourBy {
  return v === 'class' || v === 'predicted' || v === 'correct';
}

/** The group a point falls in: a class index, or 'right' / 'wrong' / 'unknown'. */
export type Group = number | 'right' | 'wrong' | 'unknown';

export function groupOf(mode: ColourBy, label: number, predicted: number | undefined): Group {
  if (mode === 'class') return label >= 0 ? label : 'unknown';
  if (predicted === undefined || predicted < 0) return 'unknown';
  if (mode === 'predicted') return predicted;
  return predicted === label ? 'right' : 'wrong';
}

export function groupColour(group: Group): string {
  if (group === 'right') return RIGHT;
  if (group === 'wrong') return WRONG;
  if (group === 'unknown') return UNKNOWN;
  return classColour(group);
}

/** Each point's group under `mode`; `predictions` undefined when the epoch has none. */
export function pointGroups(mode: ColourBy, labels: readonly number[], predictions: readonly number[] | undefined): Group[] {
  return labels.map((label, i) => groupOf(mode, label, predictions?.[i]));
}

export interface LegendEntry {
  group: Group;
  name: string;
  colour: string;
  /** The class a click on this entry selects (none for right/wrong). */
  classIndex: number | null;
}

export function legendEntries(mode: ColourBy, classes: readonly string[], anyUnknown: boolean): LegendEntry[] {
  const entries: LegendEntry[] =
    mode === 'correct'
      ? [
          { group: 'right', name: 'right', colour: RIGHT, classIndex: null },
          { group: 'wrong', name: 'wrong', colour: WRONG, classIndex: null },
        ]
      : classes.map((name, k) => ({ group: k, name, colour: classColour(k), classIndex: k }));
  if (anyUnknown) entries.push({ group: 'unknown', name: 'no prediction recorded', colour: UNKNOWN, classIndex: null });
  return entries;
}
