// A study's verdict and its ranking table: the same data as `convscope report STUDY --json`.
import { acc, fmt, h, signed } from '../dom';
import { SCORE_NAMES, scoreKeys, type StudyReport } from '../types';

export function rankingTable(report: StudyReport): HTMLElement {
  const keys = scoreKeys(report.ranking.map((r) => r.scores));
  const head = h(
    'tr',
    {},
    h('th', { scope: 'col' }, 'Model'),
    h('th', { scope: 'col' }, 'Learned'),
    h('th', { scope: 'col', class: 'num' }, 'Test acc.'),
    h('th', { scope: 'col', class: 'num' }, 'Epoch'),
    ...keys.map((k) => h('th', { scope: 'col', class: 'num' }, SCORE_NAMES[k] ?? k)),
    h('th', { scope: 'col', class: 'num' }, 'Mean rank'),
  );
  const rows = report.ranking.map((r) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, r.model),
      h('td', {}, r.learned ? h('span', { class: 'yes' }, 'yes') : h('span', { class: 'no' }, 'not yet')),
      h('td', { class: 'num' }, acc(r.test_acc)),
      h('td', { class: 'num' }, String(r.epoch)),
      ...keys.map((k) => {
        const gain = r.gain_over_epoch0[k];
        return h('td', { class: 'num' }, fmt(r.scores[k]), ' ', h('span', { class: gain !== null && gain !== undefined && gain < 0 ? 'gain neg' : 'gain' }, `(${signed(gain)})`));
      }),
      h('td', { class: 'num' }, fmt(r.mean_rank, 2)),
    ),
  );
  return h(
    'table',
    { class: 'data ranking' },
    h('caption', {}, 'The ranking the verdict rests on: each score at the epoch shown, its gain over the model’s own epoch 0 in brackets; mean rank 1 = the largest gains.'),
    h('thead', {}, head),
    h('tbody', {}, ...rows),
  );
}

export function verdictBlock(report: StudyReport): HTMLElement {
  return h('blockquote', { class: 'verdict' }, ...report.verdict.split(/\n+/).filter(Boolean).map((line) => h('p', {}, line)));
}
