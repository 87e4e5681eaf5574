/**
 * Side by side: Parley, Prosody and ejabberd under the same load (loopback only).
 *
 *   sudo bench/peers/install.sh          # once: Prosody and ejabberd from Debian
 *   npm run bench:compare                # 3 runs of every scenario on every server (~45 min)
 *   npm run bench:compare -- --quick --runs 1        # a few minutes
 *   npm run bench:compare -- --help
 *
 * For each run, each scenario and each server: start the server (bench/peers/peers.ts: its
 * own generated configuration, equivalent for the three, on its own port of 127.0.0.1,
 * pinned to core 0), run the load generator (bench/load.ts with --target, pinned to core 1)
 * against it, collect its JSON lines, stop the server. Every scenario gets a freshly started
 * server; the data directory, and so the accounts (registered in-band by the generator,
 * `--register`), is kept across scenarios and runs. Servers are interleaved within a
 * scenario (Parley, Prosody, ejabberd, then the next scenario), so that a slow drift of the
 * machine touches all three alike.
 *
 * Output: one markdown table on stdout — a row per figure, a column per server with the
 * median and the range [min–max] of the runs, and the ratio of Parley's median to the
 * better of the other two — and every JSON line of every run, with the server, run and
 * scenario added, in bench/results/<timestamp>.jsonl (the table also in <timestamp>.md).
 * `--from FILE.jsonl` prints the table of an earlier comparison again.
 *
 * What the figures are, and how the raw lines map to them, is in FIGURES below (one place).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PEER_NAMES, hardNofile, logTail, peerVersion, startPeer, type PeerName, type PeerServer } from './peers/peers.ts';
import { registerAccounts } from './peers/client.ts';
import { buildGoGenerator } from './lib/gogen.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH_DIR);

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const HELP = `Usage: npm run bench:compare -- [options]

  --servers LIST         servers to compare (default parley,prosody,ejabberd)
  --runs N               runs of every scenario on every server (default 3)
  --scenarios LIST       login-tls, login-plain, chat, muc, idle (default: all)
  --quick                smaller counts and shorter steps: the whole comparison in a few
                         minutes per run (figures for trying it out, not for publishing)
  --logins N             logins per login scenario (default 2000; quick 300)
  --concurrency K        logins in flight (default 20)
  --login-passes P       timed passes of the logins per login cell, the sessions closed
                         between them; the cell's figure is the pass with the median
                         logins/s (default 3; quick 1)
  --generator G          who makes the login scenarios' logins: go (default: the Go
                         generator, bench/gen/login.go, needs Debian's golang-go, which
                         bench/peers/install.sh installs) or node (bench/lib/xmpp.ts; its TLS
                         client costs more CPU per login than the servers, so TLS logins/s
                         would measure the generator); the other scenarios use node
  --chat-users U         chat scenario users (default 200; quick 50)
  --chat-rates R1,…      chat sweep, total msg/s (must contain 1000)
  --chat-duration T      seconds per chat step (default 5; quick 2)
  --muc-occupants N      room occupants (default 100; quick 30)
  --muc-senders S        senders (default 10; quick 5)
  --muc-rates R1,…       muc sweep, room msg/s (must contain 20)
  --muc-duration T       seconds per muc step (default 5; quick 2)
  --idle N1,N2,…         idle sessions (default 0,5000,10000; quick 0,1000)
  --ports P1,P2,P3       c2s ports of parley,prosody,ejabberd (default 25222,25322,25422)
  --data-dir DIR         servers' data (accounts are kept here across invocations;
                         default bench/results/peers-data)
  --fresh                empty the data directory first
  --no-pin               do not pin (default: server on core 0, generator on core 1)
  --disturbed-pct P      mark a figure whose lines saw other CPU use over P % of the wall
                         time (default 10)
  --from FILE.jsonl      print the table of an earlier comparison, run nothing
  --help`;

const { values: opt } = parseArgs({
  options: {
    servers: { type: 'string', default: PEER_NAMES.join(',') },
    runs: { type: 'string', default: '3' },
    scenarios: { type: 'string' },
    quick: { type: 'boolean', default: false },
    logins: { type: 'string' },
    concurrency: { type: 'string', default: '20' },
    'login-passes': { type: 'string' },
    generator: { type: 'string', default: 'go' },
    'chat-users': { type: 'string' },
    'chat-rates': { type: 'string' },
    'chat-duration': { type: 'string' },
    'muc-occupants': { type: 'string' },
    'muc-senders': { type: 'string' },
    'muc-rates': { type: 'string' },
    'muc-duration': { type: 'string' },
    idle: { type: 'string' },
    ports: { type: 'string', default: '25222,25322,25422' },
    'data-dir': { type: 'string', default: join(BENCH_DIR, 'results', 'peers-data') },
    fresh: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    'disturbed-pct': { type: 'string', default: '10' },
    from: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (opt.help) {
  console.log(HELP);
  process.exit(0);
}

function usage(message: string): never {
  console.error(`bench:compare: ${message}`);
  process.exit(64);
}

function int(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) usage(`--${name}: expected an integer from ${min} to ${max}, got '${value}'`);
  return n;
}

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of items) if (!allowed.includes(s as T)) usage(`--${name}: unknown '${s}' (expected ${allowed.join(', ')})`);
  if (items.length === 0) usage(`--${name}: empty`);
  return items as T[];
}

const Q = opt.quick;
/** What every scenario asks of the generator (the same for every server). */
const P = {
  logins: int('logins', opt.logins ?? (Q ? '300' : '2000'), 1, 15_000),
  concurrency: int('concurrency', opt.concurrency, 1, 1000),
  /** Timed passes per login cell (bench/lib/options.ts --login-passes). */
  loginPasses: int('login-passes', opt['login-passes'] ?? (Q ? '1' : '3'), 1, 20),
  /** Who makes the login scenarios' logins (bench/lib/options.ts --generator). */
  generator: opt.generator,
  chatUsers: int('chat-users', opt['chat-users'] ?? (Q ? '50' : '200'), 2, 2000),
  // Steps of ~1.25–1.5×: the sweep's answer is one of these rates, so the grid sets the resolution.
  chatRates:
    opt['chat-rates'] ??
    (Q ? '500,1000,2000,4000,8000,16000,32000,64000' : '500,1000,1500,2000,3000,4000,5000,6000,8000,10000,12500,16000,20000,25000,32000,40000,50000,64000,80000,100000,125000'),
  chatDuration: opt['chat-duration'] ?? (Q ? '2' : '5'),
  mucOccupants: int('muc-occupants', opt['muc-occupants'] ?? (Q ? '30' : '100'), 2, 5000),
  mucSenders: int('muc-senders', opt['muc-senders'] ?? (Q ? '5' : '10'), 1, 5000),
  mucRates: opt['muc-rates'] ?? (Q ? '20,50,100,200,400,800,1600,3200' : '20,50,100,150,200,300,400,500,600,800,1000,1200,1500,2000,2500,3000,4000,5000'),
  mucDuration: opt['muc-duration'] ?? (Q ? '2' : '5'),
  idle: opt.idle ?? (Q ? '0,1000' : '0,5000,10000'),
};
/**
 * The generator's accounts: `bench0 … bench<n-1>` with one password (bench/lib/options.ts,
 * `account(i)` and `PASSWORD`). They are created by this runner, in-band, before the first
 * scenario (see prepareAccounts), the same way on every server.
 */
const ACCOUNT = (i: number): string => `bench${i}`;
const PASSWORD = 'bench-password';

if (P.generator !== 'node' && P.generator !== 'go') usage(`--generator: expected node or go, got '${P.generator}'`);
if (!P.chatRates.split(',').includes('1000')) usage('--chat-rates must contain 1000 (the p99 at 1000 msg/s is a row of the table)');
if (!P.mucRates.split(',').includes('20')) usage('--muc-rates must contain 20 (the p99 at 20 room msg/s is a row of the table)');

// ---------------------------------------------------------------------------
// Scenarios: what runs against a freshly started server
// ---------------------------------------------------------------------------

const SCENARIO_IDS = ['login-tls', 'login-plain', 'chat', 'muc', 'idle'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];

interface Scenario {
  id: ScenarioId;
  /** The server's c2s_require_encryption for this scenario. */
  requireTls: boolean;
  /** The generator's scenario options. */
  args: string[];
}

const SCENARIOS: Record<ScenarioId, Scenario> = {
  'login-tls': {
    id: 'login-tls',
    requireTls: true,
    args: ['--logins', String(P.logins), '--concurrency', String(P.concurrency), '--login-passes', String(P.loginPasses), '--generator', P.generator],
  },
  // STARTTLS not required by the server, not started by the client: SCRAM-SHA-1 on the plain stream.
  'login-plain': {
    id: 'login-plain',
    requireTls: false,
    args: ['--no-tls', '--logins', String(P.logins), '--concurrency', String(P.concurrency), '--login-passes', String(P.loginPasses), '--generator', P.generator],
  },
  chat: {
    id: 'chat',
    requireTls: true,
    args: ['--chat-users', String(P.chatUsers), '--chat-rates', P.chatRates, '--chat-duration', P.chatDuration, '--concurrency', String(P.concurrency)],
  },
  muc: {
    id: 'muc',
    requireTls: true,
    args: [
      '--muc-occupants', String(P.mucOccupants), '--muc-senders', String(P.mucSenders),
      '--muc-rates', P.mucRates, '--muc-duration', P.mucDuration, '--concurrency', String(P.concurrency),
    ],
  },
  idle: { id: 'idle', requireTls: true, args: ['--idle', P.idle, '--concurrency', String(P.concurrency)] },
};

// ---------------------------------------------------------------------------
// Figures: the rows of the table, read from the generator's JSON lines (the one place
// that knows the generator's output format)
// ---------------------------------------------------------------------------

/** One JSON line of the generator, with what this runner adds (`server`, `run`, `cell`). */
type Line = Record<string, unknown>;

interface Figure {
  label: string;
  /** Which way is better, for the ratio column. */
  better: 'higher' | 'lower';
  scenario: ScenarioId;
  /** Digits after the point in the table. */
  digits: number;
  /** The figure from the lines of one (server, run, scenario), and the lines it rests on (for the disturbance check); null when absent. */
  read(lines: Line[]): { value: number; basis: Line[] } | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const ok = (l: Line): boolean => !l.error && !l.partial;

/**
 * The steps a sweep's result rests on: the best step and the first step that failed (a
 * disturbance there could have ended the sweep early). A step below the best passed, so a
 * disturbance there did not change the figure and does not mark it.
 */
function sweepBasis(lines: Line[], step: string, sweep: Line): Line[] {
  const rates = [num(sweep.best_rate), num(sweep.first_failed_rate)].filter((r): r is number => r !== null);
  return lines.filter((l) => {
    const rate = num(l.rate);
    return l.scenario === step && rate !== null && rates.includes(rate);
  });
}

/** A field of the login line (logins/s, or the server's CPU time per login). */
function login(tls: boolean, field: 'per_second' | 'server_us_per_op' = 'per_second') {
  return (lines: Line[]): { value: number; basis: Line[] } | null => {
    const l = lines.find((x) => x.scenario === 'login' && x.tls === tls && ok(x) && num(x.errors) === 0);
    const v = l ? num(l[field]) : null;
    return v === null ? null : { value: v, basis: [l!] };
  };
}

function sweepFigure(scenario: 'chat' | 'muc', field: 'best' | 'ref_p99') {
  return (lines: Line[]): { value: number; basis: Line[] } | null => {
    const s = lines.find((x) => x.scenario === `${scenario}-sweep`);
    if (!s) return null;
    if (field === 'ref_p99') {
      // Only a clean step counts (nothing lost at the reference rate).
      const v = num(s.ref_p99_ms);
      if (v === null || (num(s.ref_lost) ?? 0) > 0) return null;
      return { value: v, basis: lines.filter((l) => l.scenario === scenario && num(l.rate) === num(s.ref_rate)) };
    }
    const rate = num(s.best_rate);
    if (rate === null) return null;
    // The offered rate that held (the grid sets the resolution); muc: × occupants = deliveries/s.
    const occupants = num(s.occupants) ?? P.mucOccupants;
    return { value: scenario === 'muc' ? rate * occupants : rate, basis: sweepBasis(lines, scenario, s) };
  };
}

const FIGURES: Figure[] = [
  { label: 'TLS logins/s', better: 'higher', scenario: 'login-tls', digits: 0, read: login(true) },
  { label: 'non-TLS logins/s', better: 'higher', scenario: 'login-plain', digits: 0, read: login(false) },
  // Logins are not cleanly bound by one side (client and server TLS handshakes cost about
  // the same, eight round trips each): the server's CPU per login says what the server pays.
  { label: 'server CPU µs per TLS login', better: 'lower', scenario: 'login-tls', digits: 0, read: login(true, 'server_us_per_op') },
  { label: 'server CPU µs per non-TLS login', better: 'lower', scenario: 'login-plain', digits: 0, read: login(false, 'server_us_per_op') },
  { label: 'chat: max msg/s with p99 < 100 ms', better: 'higher', scenario: 'chat', digits: 0, read: sweepFigure('chat', 'best') },
  { label: 'MUC: max deliveries/s with p99 < 100 ms', better: 'higher', scenario: 'muc', digits: 0, read: sweepFigure('muc', 'best') },
  { label: 'chat: p99 ms at 1,000 msg/s', better: 'lower', scenario: 'chat', digits: 1, read: sweepFigure('chat', 'ref_p99') },
  { label: 'MUC: p99 ms at 20 room msg/s', better: 'lower', scenario: 'muc', digits: 1, read: sweepFigure('muc', 'ref_p99') },
  {
    label: 'KB per idle TLS session',
    better: 'lower',
    scenario: 'idle',
    digits: 1,
    read: (lines) => {
      // The last step (most sessions) against the first.
      const steps = lines.filter((l) => l.scenario === 'idle' && ok(l) && num(l.kb_per_session) !== null);
      const last = steps.at(-1);
      return last ? { value: num(last.kb_per_session)!, basis: lines.filter((l) => l.scenario === 'idle') } : null;
    },
  },
];

/** A result line that counted something wrong (errors, losses, duplicates, reordering, foreign or unexpected stanzas, dropped sessions). */
function troubled(l: Line): boolean {
  return ['errors', 'lost', 'duplicates', 'out_of_order', 'foreign', 'unexpected', 'dropped'].some((k) => (num(l[k]) ?? 0) > 0);
}

/** A line that saw more than `pct` % of its wall time used by other processes (a disturbed measurement). */
function disturbed(l: Line, pct: number): boolean {
  const other = num(l.other_cpu_ms);
  const seconds = num(l.seconds) ?? num(l.open_seconds);
  return other !== null && seconds !== null && seconds > 0 && other > (pct / 100) * seconds * 1000;
}

// ---------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(n: number, digits: number): string {
  const s = n.toFixed(digits);
  // Thousands with a thin space-free comma for readability in markdown.
  const [i, d] = s.split('.');
  return `${i!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${d ? `.${d}` : ''}`;
}

interface Meta {
  started: string;
  servers: PeerName[];
  versions: Record<string, string>;
  runs: number;
  scenarios: ScenarioId[];
  params: typeof P;
  quick: boolean;
  pinned: boolean;
  cpu: string;
  cores: number;
  node: string;
}

function table(meta: Meta, lines: Line[], pct: number): string {
  const servers = meta.servers;
  const out: string[] = [];
  const header = ['figure', ...servers.map((s) => `${s} ${meta.versions[s] ?? ''}`.trim())];
  const others = servers.filter((s) => s !== 'parley');
  const withRatio = servers.includes('parley') && others.length > 0;
  if (withRatio) header.push(`Parley / better of ${others.join(', ')}`);
  out.push(`| ${header.join(' | ')} |`);
  out.push(`|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  let anyDisturbed = false;
  let anyComplaint = false;
  const missing: string[] = [];
  for (const f of FIGURES) {
    if (!meta.scenarios.includes(f.scenario)) continue;
    const medians = new Map<string, number>();
    const cells = servers.map((s) => {
      const values: number[] = [];
      let flagged = false;
      let failed = 0;
      let complained = false;
      for (let run = 1; run <= meta.runs; run++) {
        const mine = lines.filter((l) => l.server === s && l.run === run && l.cell === f.scenario && !String(l.type ?? '').startsWith('compare-'));
        const exit = lines.find((l) => l.type === 'compare-cell' && l.server === s && l.run === run && l.cell === f.scenario)?.exit;
        if (mine.length === 0) continue;
        const r = f.read(mine);
        if (r === null) {
          failed++;
          continue;
        }
        // The generator failed the run (exit 1): does that touch this figure? A sweep that
        // lost messages past its knee says so in its line (first_failed_rate) and that is
        // no complaint; an error line, or trouble in the lines the figure rests on, is.
        if (exit !== undefined && exit !== 0 && (mine.some((l) => l.error) || r.basis.some(troubled))) complained = true;
        values.push(r.value);
        if (r.basis.some((l) => disturbed(l, pct))) flagged = true;
      }
      if (values.length === 0) return failed ? 'failed' : 'n/a';
      const m = median(values);
      medians.set(s, m);
      if (flagged) anyDisturbed = true;
      if (complained) anyComplaint = true;
      const lo = Math.min(...values);
      const hi = Math.max(...values);
      const range = values.length > 1 ? ` [${fmt(lo, f.digits)}–${fmt(hi, f.digits)}]` : '';
      return `${fmt(m, f.digits)}${range}${flagged ? ' \\*' : ''}${complained ? ' †' : ''}${failed ? ` (${failed} failed)` : ''}`;
    });
    if (cells.every((c) => c === 'n/a')) missing.push(f.label);
    const row = [f.better === 'lower' ? `${f.label} (lower is better)` : f.label, ...cells];
    if (withRatio) {
      const mine = medians.get('parley');
      const theirs = others.map((s) => medians.get(s)).filter((v): v is number => v !== undefined);
      if (mine === undefined || theirs.length === 0) row.push('');
      else {
        const best = f.better === 'higher' ? Math.max(...theirs) : Math.min(...theirs);
        const who = others.find((s) => medians.get(s) === best);
        row.push(best === 0 ? '' : `${(mine / best).toFixed(2)}× (vs ${who})`);
      }
    }
    out.push(`| ${row.join(' | ')} |`);
  }
  const notes: string[] = [];
  notes.push(
    `Median of ${meta.runs} run${meta.runs > 1 ? 's' : ''}${meta.runs > 1 ? ' [min–max]' : ''}; ${meta.pinned ? 'server on core 0, generator on core 1' : 'unpinned'}; ` +
      `${meta.cpu}, ${meta.cores} cores, node ${meta.node}; ${meta.started}${meta.quick ? '; --quick (small counts, short steps)' : ''}.`,
  );
  const has = (id: ScenarioId): boolean => meta.scenarios.includes(id);
  const what: string[] = [];
  if (has('login-tls') || has('login-plain')) {
    what.push(
      `Logins: ${meta.params.logins} of distinct accounts, ${meta.params.concurrency} in flight ` +
        '(connect → [STARTTLS →] SCRAM-SHA-1 → bind → roster get → initial presence → ping)' +
        `${meta.params.generator === 'go' ? ', made by the Go generator (bench/gen/login.go)' : ''}` +
        // Tables saved before --login-passes existed have no loginPasses (one pass).
        `${(meta.params.loginPasses ?? 1) > 1 ? `; each cell is the pass with the median logins/s of ${meta.params.loginPasses} passes, the sessions closed between them` : ''}.`,
    );
  }
  if (has('chat')) what.push(`Chat: ${meta.params.chatUsers} users sending to random other users' bare JIDs, steps of ${meta.params.chatDuration} s at ${meta.params.chatRates} msg/s.`);
  if (has('muc')) {
    what.push(
      `MUC: one room, ${meta.params.mucOccupants} occupants, ${meta.params.mucSenders} senders, steps of ${meta.params.mucDuration} s at ${meta.params.mucRates} room msg/s ` +
        '(deliveries/s = room msg/s × occupants).',
    );
  }
  if (has('chat') || has('muc')) what.push('A max rate is the highest offered rate of the sweep at which that step and every one before it had p99 < 100 ms and lost nothing.');
  if (has('idle')) what.push(`Idle: ${meta.params.idle} sessions; KB per session = (RSS at the last step − RSS at the first) / sessions added.`);
  if (what.length) notes.push(what.join(' '));
  if (withRatio) notes.push('Ratio: Parley’s median over the better median of the others (for “lower is better” rows, under 1 means Parley is better).');
  if (anyComplaint) {
    notes.push('† the generator reported a failure touching this figure in a run (an error, or a loss, duplicate, reordering or unexpected stanza in the lines it rests on: see the .log file).');
  }
  if (anyDisturbed) {
    notes.push(
      `\\* in at least one run, other processes used more than ${pct} % of the wall time while the lines this figure rests on were measured ` +
        '(the login line; a sweep\'s best step and first failed step, or its step at the reference rate; the idle steps): a disturbed figure.',
    );
  }
  if (missing.length) notes.push(`No figure (the generator printed no line for it): ${missing.join('; ')}.`);
  return `${out.join('\n')}\n\n${notes.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

function cpuModel(): string {
  return os.cpus()[0]?.model?.trim() ?? '?';
}

function canPin(): boolean {
  if (os.availableParallelism() < 2) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let currentServer: PeerServer | null = null;
let currentGenerator: ChildProcess | null = null;

/** Runs the generator against a server; resolves with its JSON lines and exit code. */
function runGenerator(args: string[], nofile: number, log: (s: string) => void): Promise<{ lines: Line[]; code: number | null }> {
  // With --pin the generator moves itself, all its threads included, to core 1.
  const argv = ['prlimit', `--nofile=${nofile}:${nofile}`, process.execPath, '--import', 'tsx', join(BENCH_DIR, 'load.ts'), ...args];
  log(`  $ ${argv.slice(2).join(' ').replace(process.execPath, 'node')}`);
  return new Promise((resolve) => {
    const g = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    currentGenerator = g;
    const lines: Line[] = [];
    let outBuf = '';
    g.stdout.on('data', (d: Buffer) => {
      outBuf += d.toString('utf8');
      let i: number;
      while ((i = outBuf.indexOf('\n')) >= 0) {
        const s = outBuf.slice(0, i).trim();
        outBuf = outBuf.slice(i + 1);
        if (s === '') continue;
        try {
          lines.push(JSON.parse(s) as Line);
        } catch {
          log(`  (generator stdout) ${s}`);
        }
      }
    });
    let errBuf = '';
    g.stderr.on('data', (d: Buffer) => {
      errBuf += d.toString('utf8');
      let i: number;
      while ((i = errBuf.indexOf('\n')) >= 0) {
        log(`  | ${errBuf.slice(0, i)}`);
        errBuf = errBuf.slice(i + 1);
      }
    });
    g.once('exit', (code) => {
      currentGenerator = null;
      if (errBuf) log(`  | ${errBuf}`);
      resolve({ lines, code });
    });
  });
}

/**
 * Creates the accounts the scenarios need on one server, in-band (XEP-0077 over STARTTLS,
 * bench/peers/client.ts), untimed, once per data directory: the count is remembered in
 * `<dataDir>/<server>/accounts.json`. (The generator's own `--register` registers many
 * accounts on one unauthenticated stream, which ejabberd closes after its 30 s
 * negotiation timeout; this one opens a new stream every 50 registrations.)
 */
async function prepareAccounts(name: PeerName, dataDir: string, port: number, count: number, nofile: number, log: (s: string) => void): Promise<void> {
  const marker = join(dataDir, name, 'accounts.json');
  let have = 0;
  try {
    const m = JSON.parse(readFileSync(marker, 'utf8')) as { count?: number; password?: string };
    if (m.password === PASSWORD) have = m.count ?? 0;
  } catch {
    // none yet
  }
  if (have >= count) return;
  log(`\n== accounts on ${name}: bench${have} … bench${count - 1} (in-band, untimed) ==`);
  const server = await startPeer(name, { dataDir, c2sPort: port, core: null, requireTls: true, nofile });
  currentServer = server;
  try {
    const t0 = Date.now();
    const names = Array.from({ length: count - have }, (_, i) => ACCOUNT(have + i));
    const r = await registerAccounts({ port, domain: server.domain, tls: true }, names, PASSWORD, {
      progress: (done) => log(`  ${done} of ${names.length}`),
    });
    log(`  ${r.created} created, ${r.existed} existed, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await server.stop();
    currentServer = null;
  }
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, `${JSON.stringify({ count, password: PASSWORD })}\n`);
}

/** The kernel's ephemeral port range (Linux), or null where it cannot be read. */
function ephemeralPorts(): [number, number] | null {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(lo) && Number.isInteger(hi) ? [lo!, hi!] : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const pct = Number(opt['disturbed-pct']);
  if (opt.from) {
    const text = readFileSync(opt.from, 'utf8');
    const all = text.split('\n').filter(Boolean).map((s) => JSON.parse(s) as Line);
    const meta = all.find((l) => l.type === 'compare-meta') as unknown as Meta | undefined;
    if (!meta) usage(`${opt.from}: no compare-meta line`);
    process.stdout.write(table(meta, all.filter((l) => l.type !== 'compare-meta'), pct));
    return;
  }

  const servers = list('servers', opt.servers, PEER_NAMES);
  const scenarios = list('scenarios', opt.scenarios ?? SCENARIO_IDS.join(','), SCENARIO_IDS);
  const runs = int('runs', opt.runs, 1, 100);
  const ports = opt.ports.split(',').map((p) => int('ports', p, 1024, 65_535));
  if (ports.length !== 3) usage('--ports: three ports, for parley, prosody and ejabberd');
  // A server port inside the kernel's ephemeral range can be held by one of the generator's own
  // client connections (in TIME-WAIT after thousands of logins): the next server start then
  // fails with EADDRINUSE, as seen with 35222/35322 after an idle cell.
  const ephemeral = ephemeralPorts();
  if (ephemeral) {
    const inside = ports.filter((p) => p >= ephemeral[0] && p <= ephemeral[1]);
    if (inside.length > 0) usage(`--ports: ${inside.join(', ')} within the ephemeral port range ${ephemeral[0]}–${ephemeral[1]} (net.ipv4.ip_local_port_range), where the generator's own connections can hold them; pick ports below ${ephemeral[0]}`);
  }
  const portOf = (s: PeerName): number => ports[PEER_NAMES.indexOf(s)]!;
  const pin = !opt['no-pin'] && canPin();
  if (!opt['no-pin'] && !pin) console.error('bench:compare: taskset or a second core is missing; running unpinned');

  // The Go login generator is built once, here (each generator run would otherwise fail on its own).
  if (P.generator === 'go' && scenarios.some((x) => x.startsWith('login'))) {
    try {
      buildGoGenerator();
    } catch (e) {
      usage((e as Error).message);
    }
  }

  const versions: Record<string, string> = {};
  for (const s of servers) {
    const v = peerVersion(s);
    if (v === null) usage(`${s} is not installed: run 'sudo bench/peers/install.sh' first`);
    versions[s] = v;
  }

  const dataDir = resolve(opt['data-dir']);
  if (opt.fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
  const jsonl = join(resultsDir, `${stamp}.jsonl`);
  const logFile = join(resultsDir, `${stamp}.log`);
  const log = (s: string): void => {
    process.stderr.write(`${s}\n`);
    appendFileSync(logFile, `${s}\n`);
  };
  const record = (l: Line): void => appendFileSync(jsonl, `${JSON.stringify(l)}\n`);

  // (This process is not pinned: it idles while the others work, and its children would
  // inherit its affinity — the generator pins itself to core 1 with --pin.)
  const cores = os.availableParallelism();
  const nofile = Math.min(65_536, hardNofile());

  const meta: Meta = {
    started: started.toISOString(),
    servers,
    versions,
    runs,
    scenarios,
    params: P,
    quick: Q,
    pinned: pin,
    cpu: cpuModel(),
    cores,
    node: process.version,
  };
  record({ type: 'compare-meta', ...meta });
  log(`bench:compare: ${servers.map((s) => `${s} ${versions[s]}`).join(', ')}; ${runs} run(s) of ${scenarios.join(', ')}; open-files limit ${nofile}`);
  log(`raw lines: ${jsonl}; log: ${logFile}; server data: ${dataDir}`);

  const failures: string[] = [];
  // Every account any scenario uses (the generator's ACCOUNTS for these options).
  const accountsNeeded = Math.max(
    scenarios.some((x) => x.startsWith('login')) ? P.logins : 0,
    scenarios.includes('chat') ? P.chatUsers : 0,
    scenarios.includes('muc') ? P.mucOccupants : 0,
    scenarios.includes('idle') ? Math.max(...P.idle.split(',').map(Number)) : 0,
    1,
  );
  const usable: PeerName[] = [];
  for (const name of servers) {
    try {
      await prepareAccounts(name, dataDir, portOf(name), accountsNeeded, nofile, log);
      usable.push(name);
    } catch (e) {
      const msg = `accounts on ${name}: ${(e as Error).message}`;
      log(msg);
      failures.push(msg.split('\n')[0]!);
      record({ type: 'compare-error', server: name, error: msg });
    }
  }

  const all: Line[] = [];
  const cellExits: Line[] = [];
  for (let run = 1; run <= runs; run++) {
    // Run r starts with the r-th server, so that being first after the cell before (after
    // 10,000 idle connections closed, say) falls on each server once, not on Parley every
    // time. (In the run of 36706c1 Parley's CPU per TLS login was 1,235 µs in run 1 and
    // 1,625 and 1,860 in runs 2 and 3, each right after ejabberd's idle cell; alone, in
    // the same state of the machine, 1,065-1,275.)
    const order = usable.map((_, i) => usable[(i + run - 1) % usable.length]!);
    for (const id of scenarios) {
      const sc = SCENARIOS[id];
      for (const name of order) {
        const tag = `run ${run}/${runs} · ${id} · ${name}`;
        log(`\n== ${tag} ==`);
        let server: PeerServer;
        try {
          server = await startPeer(name, { dataDir, c2sPort: portOf(name), core: pin ? 0 : null, requireTls: sc.requireTls, nofile });
        } catch (e) {
          const msg = `${tag}: ${(e as Error).message}`;
          log(msg);
          failures.push(msg.split('\n')[0]!);
          record({ type: 'compare-error', server: name, run, cell: id, error: (e as Error).message });
          continue;
        }
        currentServer = server;
        log(`  ${name} ${server.version}: 127.0.0.1:${server.c2sPort}, pid ${server.pid}${pin ? ' (core 0)' : ''}, STARTTLS ${sc.requireTls ? 'required' : 'optional'}`);
        const args = [
          '--target', `127.0.0.1:${server.c2sPort}`, '--domain', server.domain, '--server-pid', String(server.pid),
          ...(pin ? ['--pin'] : []), ...sc.args,
        ];
        const t0 = Date.now();
        const { lines, code } = await runGenerator(args, nofile, log);
        await server.stop();
        currentServer = null;
        for (const l of lines) {
          const tagged = { ...l, server: name, server_version: server.version, run, cell: id };
          all.push(tagged);
          record(tagged);
        }
        record({ type: 'compare-cell', server: name, run, cell: id, exit: code, seconds: Math.round((Date.now() - t0) / 1000) });
        cellExits.push({ server: name, run, cell: id, exit: code });
        log(`  ${lines.length} result lines in ${((Date.now() - t0) / 1000).toFixed(0)} s, generator exit ${code}`);
        if (code !== 0) {
          const why = lines.find((l) => l.error)?.error ?? `generator exit ${code}`;
          failures.push(`${tag}: ${String(why)}`);
          log(`  server log tail (${server.logFile}):\n${logTail(server.logFile, 10)}`);
        }
      }
    }
  }

  const md = table(meta, [...all, ...cellExits.map((c) => ({ ...c, type: 'compare-cell' }))], pct);
  writeFileSync(join(resultsDir, `${stamp}.md`), md);
  if (failures.length) log(`\n${failures.length} failure(s):\n${failures.map((f) => `- ${f}`).join('\n')}`);
  log(`\nraw lines: ${jsonl}`);
  process.stdout.write(`\n${md}`);
}

async function cleanup(): Promise<void> {
  currentGenerator?.kill('SIGTERM');
  await currentServer?.stop();
}

process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
process.on('SIGTERM', () => {
  void cleanup().then(() => process.exit(143));
});

main().catch(async (err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  await cleanup();
  process.exit(1);
});
