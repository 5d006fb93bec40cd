// The runs table: status (running is live), model, dataset, epochs done/planned and test
// accuracy, with a checkbox per run to compare its curves.
import { acc, h } from '../dom';
import { formatRoute } from '../router';
import type { RunSummary } from '../types';

export function statusBadge(status: string): HTMLElement {
  const live = status === 'running';
  return h('span', { class: `badge badge-${status.replace(/[^a-z]/g, '')}` }, live ? h('span', { class: 'pulse', 'aria-hidden': 'true' }) : null, status);
}

export function epochsText(run: RunSummary): string {
  return run.epochs ? `${run.epochsCompleted} / ${run.epochs}` : String(run.epochsCompleted);
}

export function runsTable(runs: readonly RunSummary[], selected: ReadonlySet<string>, colourOf: (id: string) => string | null, onToggle: (id: string, on: boolean) => void): HTMLElement {
  const rows = runs.map((run) => {
    const colour = colourOf(run.id);
    const box = h('input', { type: 'checkbox', id: `pick-${run.id}`, 'aria-label': `compare ${run.name}` }) as HTMLInputElement;
    box.checked = selected.has(run.id);
    box.addEventListener('change', () => onToggle(run.id, box.checked));
    return h(
      'tr',
      { class: selected.has(run.id) ? 'picked' : '', 'data-run': run.id },
      h('td', { class: 'pick' }, box, colour ? h('span', { class: 'swatch', style: `background:${colour}`, 'aria-hidden': 'true' }) : null),
      h(
        'td',
        {},
        h('label', { for: `pick-${run.id}` }, run.name),
        h('div', { class: 'muted mono' }, run.id),
        h('a', { class: 'small model-link', href: formatRoute('model', { model: `run:${run.id}` }), 'data-testid': 'open-in-model-explorer' }, 'Open in model explorer', h('span', { class: 'sr-only' }, `: ${run.name}`)),
      ),
      h('td', {}, run.study ?? '–'),
      h('td', {}, run.model),
      h('td', {}, run.dataset),
      h('td', {}, statusBadge(run.status)),
      h('td', { class: 'num' }, epochsText(run)),
      h('td', { class: 'num' }, acc(run.testAcc)),
      h('td', { class: 'muted' }, run.created ? run.created.slice(0, 16).replace('T', ' ') : '–'),
    );
  });
  return h(
    'table',
    { class: 'data runs-table' },
    h('caption', { class: 'sr-only' }, 'Runs in the store; tick runs to compare their training curves'),
    h(
      'thead',
      {},
      h('tr', {}, ...['Compare', 'Run', 'Study', 'Model', 'Dataset', 'Status', 'Epochs', 'Test acc.', 'Created'].map((t, i) => h('th', { scope: 'col', class: i >= 6 && i <= 7 ? 'num' : '' }, t))),
    ),
    h('tbody', {}, ...rows),
  );
}
