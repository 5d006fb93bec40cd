// The server's HTTP API: typed fetches, its error line, and long work as polled jobs.
// Every URL is relative (`api/runs`, never `/api/runs`) so the page works under any prefix.

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** A failed request, carrying the server's one-line `error` (or what went wrong). */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

const INIT: RequestInit = { credentials: 'same-origin', headers: { Accept: 'application/json' } };

function defaultFetch(): FetchLike {
  return (url, init) => fetch(url, init);
}

/** The server's one-line `error` of a failed answer, or its status line. */
export async function errorLine(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: unknown };
    if (body && typeof body.error === 'string' && body.error) return body.error;
  } catch {
    // not JSON: fall through to the status line
  }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

function aborted(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

/**
 * A request the signal abandons rather than aborts: one in flight is let finish and its
 * answer dropped (the caller sees the abort), because the browser logs an aborted fetch
 * as a failed request, and a view left or redrawn is not a failure.
 */
async function send(url: string, fetchFn: FetchLike, signal?: AbortSignal, init: RequestInit = INIT): Promise<Response> {
  if (signal?.aborted) throw aborted(signal);
  let response: Response;
  try {
    response = await fetchFn(url, init);
  } catch {
    if (signal?.aborted) throw aborted(signal);
    throw new ApiError(0, 'the server did not answer: is `convscope serve` still running?');
  }
  if (signal?.aborted) throw aborted(signal);
  return response;
}

/** A request (GET unless `init` says) whose failure carries the server's one line; abandoned, not aborted, by `signal`. */
export async function fetchOk(url: string, signal?: AbortSignal, init: RequestInit = {}): Promise<Response> {
  const response = await send(url, defaultFetch(), signal, { credentials: 'same-origin', ...init });
  if (!response.ok) throw new ApiError(response.status, await errorLine(response));
  return response;
}

/** GET a JSON body; a 4xx/5xx becomes an ApiError with the server's line. */
export async function getJson<T>(url: string, fetchFn: FetchLike = defaultFetch(), signal?: AbortSignal): Promise<T> {
  const response = await send(url, fetchFn, signal);
  if (!response.ok) throw new ApiError(response.status, await errorLine(response));
  return (await response.json()) as T;
}

export type Ready<T> = { kind: 'ready'; value: T } | { kind: 'job'; id: string };

/** GET that may answer 202 {"job": ID} while the server computes the answer. */
export async function getOrJob<T>(url: string, fetchFn: FetchLike = defaultFetch(), signal?: AbortSignal): Promise<Ready<T>> {
  const response = await send(url, fetchFn, signal);
  if (!response.ok) throw new ApiError(response.status, await errorLine(response));
  const body = (await response.json()) as unknown;
  if (response.status === 202) {
    const id = (body as { job?: unknown })?.job;
    if (typeof id !== 'string' && typeof id !== 'number') throw new ApiError(202, 'the server started work but named no job');
    return { kind: 'job', id: String(id) };
  }
  return { kind: 'ready', value: body as T };
}

export interface JobState {
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: number;
  result?: unknown;
  error?: string;
  message?: string;
}

export interface PollOptions {
  fetchFn?: FetchLike;
  onProgress?: (job: JobState) => void;
  intervalMs?: number;
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    }, { once: true });
  });
}

/** Poll `api/jobs/{id}` until it ends; resolve with the finished job, throw its error line. */
export async function pollJob(id: string, options: PollOptions = {}): Promise<JobState> {
  const { fetchFn = defaultFetch(), onProgress, intervalMs = 700, signal, sleep: wait = sleep } = options;
  for (;;) {
    // The signal stops the polling between requests; a request in flight is let finish
    // (an aborted fetch counts as a failed request in the browser's log).
    if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
    const job = await getJson<JobState>(`api/jobs/${encodeURIComponent(id)}`, fetchFn);
    onProgress?.(job);
    if (job.status === 'done') return job;
    if (job.status === 'failed') throw new ApiError(500, job.error || 'the job failed');
    if (job.status === 'cancelled') throw new ApiError(409, 'the job was cancelled (is the server shutting down?)');
    await wait(intervalMs, signal);
  }
}

export interface ComputedOptions<T> extends PollOptions {
  /** True when a finished job's `result` already is the answer (else the URL is asked again). */
  accept?: (result: unknown) => result is T;
}

/**
 * GET an answer the server may have to compute first: poll its job, then use the job's
 * result when it is the answer, or ask the URL again (the server has cached it by then).
 */
export async function getComputed<T>(url: string, options: ComputedOptions<T> = {}): Promise<T> {
  const fetchFn = options.fetchFn ?? defaultFetch();
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const first = await getOrJob<T>(url, fetchFn, options.signal);
    if (first.kind === 'ready') return first.value;
    const job = await pollJob(first.id, { ...options, fetchFn });
    if (options.accept?.(job.result)) return job.result;
  }
  throw new ApiError(500, `the server kept computing ${url} without an answer`);
}
