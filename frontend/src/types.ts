// The API's answers as the page uses them, and the parsing that makes them so.
// Parsing is lenient about what may be missing (old runs, runs still training) and
// strict about shape, so a view never meets `undefined` where it expects an array.

export type Status = 'running' | 'finished' | 'failed' | 'interrupted' | string;

export interface RunSummary {
  id: string;
  name: string;
  study: string | null;
  model: string;
  dataset: string;
  status: Status;
  epochsCompleted: number;
  epochs: number | null;
  testAcc: number | null;
  created: string;
}

export interface RunDetail extends RunSummary {
  /** The layers the run recorded on its probe set (config.record). */
  recorded: string[];
  config: Record<string, unknown>;
}

export interface Metrics {
  epoch: number[];
  train_loss: (number | null)[];
  train_acc: (number | null)[];
  val_loss: (number | null)[];
  val_acc: (number | null)[];
  seconds: (number | null)[];
  test_acc: (number | null)[];
}

export type Scores = Record<string, number | null>;

export interface Embedding {
  run: string;
  layer: string;
  method: string;
  epochs: number[];
  /** Per epoch, one [x, y] per probe image in probe order. */
  points: Map<number, [number, number][]>;
  labels: number[];
  classes: string[];
  scores: Map<number, Scores>;
}

export interface Probe {
  run: string;
  classes: string[];
  labels: number[];
  /** Dataset index of each probe image (probe order). */
  indices: number[];
  epochs: number[];
  predictions: Map<number, number[]>;
  confidence: Map<number, number[]>;
  sprite: { url: string; size: number; columns: number } | null;
}

export interface RankingEntry {
  model: string;
  test_acc: number | null;
  learned: boolean;
  epoch: number;
  scores: Scores;
  gain_over_epoch0: Scores;
  mean_rank: number;
}

export interface StudyReport {
  verdict: string;
  ranking: RankingEntry[];
}

export interface StudySummary {
  name: string;
  runs: string[];
  models: string[];
}

type Json = Record<string, unknown>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : v == null ? fallback : String(v));
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function parseRunSummary(raw: unknown): RunSummary {
  const r = (raw ?? {}) as Json;
  return {
    id: str(r.id),
    name: str(r.name, str(r.id)),
    study: r.study == null || r.study === '' ? null : str(r.study),
    model: str(r.model),
    dataset: str(r.dataset),
    status: str(r.status, 'unknown'),
    epochsCompleted: num(r.epochs_completed) ?? 0,
    epochs: num(r.epochs) ?? num(((r.config as Json | undefined)?.config as Json | undefined)?.epochs),
    testAcc: num(r.test_acc) ?? lastTestAcc(r.metrics),
    created: str(r.created),
  };
}

function lastTestAcc(metrics: unknown): number | null {
  const rows = arr(metrics) as Json[];
  for (let i = rows.length - 1; i >= 0; i -= 1) {
    const value = num(rows[i]?.test_acc);
    if (value !== null) return value;
  }
  return null;
}

export function parseRuns(raw: unknown): RunSummary[] {
  return arr(raw).map(parseRunSummary);
}

export function parseRunDetail(raw: unknown): RunDetail {
  const r = (raw ?? {}) as Json;
  const config = (r.config && typeof r.config === 'object' ? r.config : {}) as Json;
  return { ...parseRunSummary(raw), recorded: arr(config.record).map((v) => str(v)), config };
}

export function parseMetrics(raw: unknown): Metrics {
  const m = (raw ?? {}) as Json;
  const epoch = arr(m.epoch).map((v) => num(v) ?? 0);
  const column = (key: string) => {
    const values = arr(m[key]).map(num);
    return epoch.map((_, i) => values[i] ?? null);
  };
  return {
    epoch,
    train_loss: column('train_loss'),
    train_acc: column('train_acc'),
    val_loss: column('val_loss'),
    val_acc: column('val_acc'),
    seconds: column('seconds'),
    test_acc: column('test_acc'),
  };
}

function parsePointList(raw: unknown): [number, number][] {
  return arr(raw).map((p) => {
    const pair = arr(p);
    return [num(pair[0]) ?? NaN, num(pair[1]) ?? NaN];
  });
}

function parseScores(raw: unknown): Scores {
  const out: Scores = {};
  for (const [key, value] of Object.entries((raw ?? {}) as Json)) out[key] = num(value);
  return out;
}

function byEpoch<T>(raw: unknown, each: (v: unknown) => T): Map<number, T> {
  const out = new Map<number, T>();
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [key, value] of Object.entries(raw as Json)) {
    const epoch = Number(key);
    if (Number.isInteger(epoch)) out.set(epoch, each(value));
  }
  return out;
}

/** Both forms: one epoch (`points` a list) or every epoch (`points` keyed by epoch). */
export function parseEmbedding(raw: unknown): Embedding {
  const e = (raw ?? {}) as Json;
  let points: Map<number, [number, number][]>;
  let scores: Map<number, Scores>;
  if (Array.isArray(e.points)) {
    const epoch = num(e.epoch) ?? 0;
    points = new Map([[epoch, parsePointList(e.points)]]);
    scores = new Map([[epoch, parseScores(e.scores)]]);
  } else {
    points = byEpoch(e.points, parsePointList);
    scores = byEpoch(e.scores, parseScores);
  }
  const listed = arr(e.epochs).map(num).filter((v): v is number => v !== null);
  const epochs = [...new Set([...listed.filter((ep) => points.has(ep)), ...points.keys()])].sort((a, b) => a - b);
  return {
    run: str(e.run),
    layer: str(e.layer),
    method: str(e.method),
    epochs,
    points,
    labels: arr(e.labels).map((v) => num(v) ?? -1),
    classes: arr(e.classes).map((v) => str(v)),
    scores,
  };
}

export function isEmbeddingBody(raw: unknown): raw is Json {
  return !!raw && typeof raw === 'object' && 'points' in (raw as Json) && 'labels' in (raw as Json);
}

/** A server path for the sprite made relative (`/api/x` -> `api/x`) so prefixes keep working. */
export function relativeUrl(url: string): string {
  return url.startsWith('/api/') ? url.slice(1) : url;
}

export function parseProbe(raw: unknown): Probe {
  const p = (raw ?? {}) as Json;
  const sprite = p.sprite as Json | undefined;
  const size = num(sprite?.size);
  const columns = num(sprite?.columns);
  return {
    run: str(p.run),
    classes: arr(p.classes).map((v) => str(v)),
    labels: arr(p.labels).map((v) => num(v) ?? -1),
    indices: arr(p.indices).map((v) => num(v) ?? -1),
    epochs: arr(p.epochs).map((v) => num(v) ?? 0),
    predictions: byEpoch(p.predictions, (v) => arr(v).map((x) => num(x) ?? -1)),
    confidence: byEpoch(p.confidence, (v) => arr(v).map((x) => num(x) ?? NaN)),
    sprite: sprite && typeof sprite.url === 'string' && size && columns
      ? { url: relativeUrl(sprite.url), size, columns }
      : null,
  };
}

export function parseStudies(raw: unknown): StudySummary[] {
  return arr(raw).map((s) => {
    const o = (s ?? {}) as Json;
    return { name: str(o.name), runs: arr(o.runs).map((v) => str(v)), models: arr(o.models).map((v) => str(v)) };
  });
}

export function parseStudyReport(raw: unknown): StudyReport {
  const r = (raw ?? {}) as Json;
  return {
    verdict: str(r.verdict),
    ranking: arr(r.ranking).map((x) => {
      const o = (x ?? {}) as Json;
      return {
        model: str(o.model),
        test_acc: num(o.test_acc),
        learned: o.learned === true,
        epoch: num(o.epoch) ?? 0,
        scores: parseScores(o.scores),
        gain_over_epoch0: parseScores(o.gain_over_epoch0),
        mean_rank: num(o.mean_rank) ?? NaN,
      };
    }),
  };
}

export function isStudyBody(raw: unknown): raw is Json {
  return !!raw && typeof raw === 'object' && 'verdict' in (raw as Json) && 'ranking' in (raw as Json);
}

/** The score names as people read them; the order they are shown in. */
export const SCORE_NAMES: Record<string, string> = {
  knn_hidden: 'k-NN (layer)',
  knn_map: 'k-NN (map)',
  linear_probe: 'linear probe',
  silhouette: 'silhouette',
  trustworthiness: 'trustworthiness',
};

export function scoreKeys(scores: Iterable<Scores>): string[] {
  const seen = new Set<string>();
  for (const s of scores) for (const key of Object.keys(s)) seen.add(key);
  const known = Object.keys(SCORE_NAMES).filter((k) => seen.has(k));
  return [...known, ...[...seen].filter((k) => !(k in SCORE_NAMES)).sort()];
}
