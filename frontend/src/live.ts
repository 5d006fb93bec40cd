// Live updates from `api/events` (server-sent events): an epoch committed, a run's
// status changed, a run appeared. Views subscribe; one EventSource serves them all.

export type LiveEvent =
  | { kind: 'epoch'; run: string; epoch: number }
  | { kind: 'status'; run: string; status: string }
  | { kind: 'run'; run: string };

/** The event an SSE message carries (`type` is the SSE event name), or null if malformed. */
export function parseLiveEvent(type: string, data: string): LiveEvent | null {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(data) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!body || typeof body.run !== 'string') return null;
  if (type === 'message' && typeof body.epoch === 'number') return { kind: 'epoch', run: body.run, epoch: body.epoch };
  if (type === 'status' && typeof body.status === 'string') return { kind: 'status', run: body.run, status: body.status };
  if (type === 'run') return { kind: 'run', run: body.run };
  return null;
}

type Listener = (event: LiveEvent) => void;
export type Connection = 'connecting' | 'live' | 'reconnecting';

interface SourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  close(): void;
}

export class LiveFeed {
  private source: SourceLike | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly stateListeners = new Set<(state: Connection) => void>();
  state: Connection = 'connecting';

  constructor(
    private readonly url = 'api/events',
    private readonly open: (url: string) => SourceLike = (u) => new EventSource(u, { withCredentials: false }),
  ) {}

  start(): void {
    if (this.source) return;
    const source = this.open(this.url);
    this.source = source;
    for (const type of ['message', 'status', 'run']) {
      source.addEventListener(type, (event: MessageEvent) => {
        const parsed = parseLiveEvent(type, String(event.data));
        if (parsed) for (const listener of this.listeners) listener(parsed);
      });
    }
    // EventSource reconnects by itself; the header only says whether it is live.
    source.onopen = () => this.setState('live');
    source.onerror = () => this.setState('reconnecting');
  }

  stop(): void {
    this.source?.close();
    this.source = null;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (state: Connection) => void): void {
    this.stateListeners.add(listener);
    listener(this.state);
  }

  private setState(state: Connection): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}

/** Calls `fn` once, `ms` after the last of a burst of calls (epochs of several runs). */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): ((...args: A) => void) & { cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const wrapped = (...args: A) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
  wrapped.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return wrapped;
}
