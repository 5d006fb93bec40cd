// What every view gets from the shell, and gives back: a function that tears it down.
import type { LiveFeed } from './live';
import type { RunSummary } from './types';

export interface ViewContext {
  live: LiveFeed;
  params: URLSearchParams;
  /** Rewrite the current route's query without re-rendering (the view already shows it). */
  setParams(params: Record<string, string | number | null>): void;
  /** The signal that aborts the view's polling when it is left. */
  signal: AbortSignal;
}

export type Cleanup = () => void;

export const NO_RUNS_HINT = [
  'Runs appear here as they are recorded, without a reload. Make some with',
  'convscope study --name demo --epochs 3 --store DIR',
  'or',
  'convscope train MODEL --store DIR',
  'then start the dashboard on the same store: convscope serve --store DIR.',
];

export function runLabel(run: RunSummary | undefined, id: string): string {
  return run ? run.name : id;
}
