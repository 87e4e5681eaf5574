/**
 * Results of the load generator: one JSON line per scenario step on stdout, progress and
 * the human summary on stderr, and the small statistics every scenario uses.
 */
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One machine-readable result (one JSON line). */
export type Result = Record<string, string | number | boolean | null | (number | null)[]>;

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);

/** The code measured: `git rev-parse --short HEAD`, `+dirty` when packages/ has uncommitted changes; null outside git. */
function codeVersion(): string | null {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'packages') === '' ? head : `${head}+dirty`;
  } catch {
    return null;
  }
}
export const COMMIT = codeVersion();

/** Every line emitted so far (for the summary). */
export const results: Result[] = [];

/** Set once the run has been aborted and reported: nothing more is printed. */
let aborted = false;
export function markAborted(): void {
  aborted = true;
}

/** Fields added to every line (server kind, pinning, …), set once the server is known. */
export const common: Result = {};

export function emit(r: Result): void {
  if (aborted) return;
  const line = { ...r, ...common, commit: COMMIT };
  results.push(line);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export function info(s: string): void {
  if (aborted) return;
  process.stderr.write(`${s}\n`);
}

/** What reports the scenario in progress when the hard timeout fires (or null). */
export let partial: ((server: import('./server.ts').ServerStats | null) => Result) | null = null;
export function setPartial(p: typeof partial): void {
  partial = p;
}

/** Nearest-rank percentile of sorted values (q in 0..1). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** The latency fields of a result line from latencies (ms; sorted here, in place). */
export function latencyFigures(values: Float64Array): { p50_ms: number | null; p99_ms: number | null; max_ms: number | null } {
  const sorted = values.sort();
  const r = (n: number): number | null => (Number.isNaN(n) ? null : round(n));
  return {
    p50_ms: r(percentile(sorted, 0.5)),
    p99_ms: r(percentile(sorted, 0.99)),
    max_ms: r(sorted.length ? sorted[sorted.length - 1]! : Number.NaN),
  };
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
