/**
 * A rate sweep (chat, muc): steps at increasing offered rates; the result is the highest
 * rate such that its step and every step before it had p99 under the limit and lost
 * nothing (a step that passes after one that failed is luck near the knee, not capacity).
 * The sweep stops after two steps in a row over the limit, or at the first unclean step
 * (a loss, a duplicate, an error: that also fails the run).
 */
import type { Result } from './report.ts';

export const P99_LIMIT_MS = 100;

export class Sweep {
  private best: Result | null = null;
  private ref: Result | null = null;
  private overLimit = 0;
  /** The first rate whose step failed (p99 over the limit or unclean). */
  private firstFailed: number | null = null;
  private steps = 0;
  private stopped: string | null = null;

  /** `refRate`: the rate whose p99 is reported apart (chat 1000 msg/s, muc 20 room msg/s). */
  constructor(
    private readonly name: string,
    private readonly refRate: number,
    private readonly log: (s: string) => void,
  ) {}

  /**
   * Records a step (with its `rate`, `p99_ms`); returns whether the sweep goes on. `fellBehind`:
   * the step ended with messages still on their way — a failed step, and the end of the sweep
   * (the next step would start on a server still busy with this one).
   */
  step(res: Result, clean: boolean, fellBehind = false): boolean {
    this.steps++;
    const rate = res.rate as number;
    if (rate === this.refRate) this.ref = res;
    const p99 = res.p99_ms as number | null;
    if (fellBehind) {
      this.firstFailed ??= rate;
      this.stopped = 'the server fell behind';
      this.log(`${this.name}: the server fell behind; the sweep stops here`);
      return false;
    }
    const pass = clean && p99 !== null && p99 < P99_LIMIT_MS;
    if (pass) {
      this.overLimit = 0;
      if (this.firstFailed === null) this.best = res;
      return true;
    }
    this.firstFailed ??= rate;
    if (!clean) {
      this.stopped = 'loss or errors';
      this.log(`${this.name}: a step lost messages or saw errors; the sweep stops here`);
      return false;
    }
    if (++this.overLimit >= 2) {
      this.stopped = `two steps over p99 ${P99_LIMIT_MS} ms`;
      this.log(`${this.name}: two steps in a row over p99 ${P99_LIMIT_MS} ms; the sweep stops here`);
      return false;
    }
    return true;
  }

  /** The fields of the `*-sweep` line. */
  summary(rates: number[]): Result {
    const b = this.best;
    return {
      rates: rates.join(','),
      steps: this.steps,
      p99_limit_ms: P99_LIMIT_MS,
      best_rate: b ? (b.rate as number) : null,
      best_messages_per_second: b ? b.messages_per_second! : null,
      best_deliveries_per_second: b ? b.per_second! : null,
      best_p50_ms: b ? b.p50_ms! : null,
      best_p99_ms: b ? b.p99_ms! : null,
      best_server_cpu_pct: b ? b.server_cpu_pct! : null,
      best_generator_cpu_pct: b ? b.generator_cpu_pct! : null,
      first_failed_rate: this.firstFailed,
      stopped: this.stopped,
      ref_rate: this.refRate,
      ref_p50_ms: this.ref ? this.ref.p50_ms! : null,
      ref_p99_ms: this.ref ? this.ref.p99_ms! : null,
      ref_lost: this.ref ? this.ref.lost! : null,
    };
  }
}
