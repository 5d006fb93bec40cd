// The epoch slider's playback: step through the recorded epochs, stop at the last.

/** The epoch after `current`, or null at the end. Unknown epochs start from the first. */
export function nextEpoch(epochs: readonly number[], current: number): number | null {
  if (!epochs.length) return null;
  const i = epochs.indexOf(current);
  if (i < 0) return epochs.find((e) => e > current) ?? null;
  return i + 1 < epochs.length ? epochs[i + 1] : null;
}

/** The recorded epoch nearest below (or at) `wanted`: what a run shows for it. */
export function epochAtOrBefore(epochs: readonly number[], wanted: number): number | null {
  let best: number | null = null;
  for (const e of epochs) if (e <= wanted && (best === null || e > best)) best = e;
  return best ?? (epochs.length ? Math.min(...epochs) : null);
}

export interface Timer {
  start(tick: () => void, ms: number): unknown;
  stop(handle: unknown): void;
}

const browserTimer: Timer = {
  start: (tick, ms) => setInterval(tick, ms),
  stop: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

/**
 * Play from the epoch shown (from the first when at the end), one step per `ms`,
 * stopping at the last epoch. `show` draws an epoch; `onState` tells the play button.
 */
export class Player {
  private handle: unknown = null;
  epochs: number[];
  current: number;

  constructor(
    epochs: number[],
    current: number,
    private readonly show: (epoch: number) => void,
    private readonly onState: (playing: boolean) => void = () => {},
    private readonly ms = 900,
    private readonly timer: Timer = browserTimer,
  ) {
    this.epochs = epochs;
    this.current = current;
  }

  get playing(): boolean {
    return this.handle !== null;
  }

  play(): void {
    if (this.playing || this.epochs.length < 2) return;
    if (nextEpoch(this.epochs, this.current) === null) this.seek(this.epochs[0]);
    this.handle = this.timer.start(() => this.tick(), this.ms);
    this.onState(true);
  }

  pause(): void {
    if (!this.playing) return;
    this.timer.stop(this.handle);
    this.handle = null;
    this.onState(false);
  }

  toggle(): void {
    if (this.playing) this.pause();
    else this.play();
  }

  seek(epoch: number): void {
    this.current = epoch;
    this.show(epoch);
  }

  private tick(): void {
    const next = nextEpoch(this.epochs, this.current);
    if (next === null) {
      this.pause();
      return;
    }
    this.seek(next);
    if (nextEpoch(this.epochs, next) === null) this.pause();
  }
}
