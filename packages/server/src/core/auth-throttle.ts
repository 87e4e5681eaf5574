/**
 * Slows down repeated authentication failures from one address: after the n-th
 * consecutive failure the answer is delayed by `base × 2^(n-1)` ms, capped at
 * `max` (RFC 6120 §13.9.? / §6.4.5 "reasonable number of retries").
 * Entries are forgotten after `forgetAfter` ms without failure.
 */
export class AuthThrottle {
  private failures = new Map<string, { count: number; last: number }>();
  constructor(
    private base: number,
    private max: number,
    private forgetAfter = 10 * 60_000,
  ) {}

  /** Records a failure from `address`; returns the delay (ms) to wait before answering it. */
  fail(address: string, now = Date.now()): number {
    let e = this.failures.get(address);
    if (!e || now - e.last > this.forgetAfter) e = { count: 0, last: now };
    e.count++;
    e.last = now;
    this.failures.set(address, e);
    if (this.failures.size > 100_000) this.prune(now);
    return Math.min(this.base * 2 ** (e.count - 1), this.max);
  }

  /** Clears the record of `address` after a success. */
  succeed(address: string): void {
    this.failures.delete(address);
  }

  private prune(now: number): void {
    for (const [k, v] of this.failures) if (now - v.last > this.forgetAfter) this.failures.delete(k);
  }
}
