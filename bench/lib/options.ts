/**
 * Command-line options of the load generator (bench/load.ts), parsed and checked once.
 *
 * Scenario selection: a scenario runs when one of its own options is given (`--logins`,
 * `--pairs`/`--messages-per-sender`/`--rate`, `--chat-*`, `--muc-*`, `--idle`); with none
 * of them the documented default run is login (500) and messages (50 pairs). A count of 0
 * skips its scenario.
 */
import { parseArgs } from 'node:util';

export const HELP = `Usage: npm run bench -- [options]

Scenarios (each runs only when one of its options is given; with none: --logins 500 --pairs 50):
  --logins N               login scenario: N logins of N distinct accounts (at most 15000; 0
                           skips it): connect, STARTTLS, SCRAM, bind, roster get, initial
                           presence, ping round trip
  --concurrency K          logins in flight, in every scenario (default 20)
  --login-passes P         the login scenario's timed passes, the sessions closed between them
                           (default 1): with P > 1 each pass is a login-pass line and the
                           login line is the pass with the median logins/s (every pass's
                           figures in its pass_* fields)
  --generator G            who makes the login scenario's logins (warm-up and measurement):
                           node (default: this process, bench/lib/xmpp.ts) or go (a Go process,
                           bench/gen/login.go, built on first use with Debian's golang-go: the
                           same login sequence at about half the client CPU per TLS login, so
                           the generator is not the bottleneck; GOMAXPROCS=1, on core 1 with
                           --pin; its CPU is the line's generator_* figures). --transport tcp
                           only; the other scenarios always use node
  --pairs P                messages scenario: P pairs of sessions (default 50 in the default run)
  --messages-per-sender M  messages each session sends to its partner's full JID (default 200)
  --rate R                 messages/s per sender; 0 = as fast as possible (default 0)
  --window W               with --rate 0 (or --muc-rate 0), messages in flight per sender
                           (default 50)
  --chat-users U           chat scenario: U online users send to random other users' bare
                           JIDs (default 200)
  --chat-rates R1,R2,…     the sweep: total messages/s over all senders, one step per rate
                           (default 1000,2000,4000,8000,16000,32000)
  --chat-duration T        seconds each chat step sends (default 5)
  --muc-occupants N        muc scenario: N occupants of one room (default 100 when another
                           --muc-* option is given; 0 skips it)
  --muc-senders S          the first S occupants send to the room (default 10)
  --muc-messages M         messages each sender sends per step (default 200)
  --muc-rate R             room messages/s in total across the senders; 0 = as fast as
                           possible with --window messages in flight per sender (default 0)
  --muc-rates R1,R2,…      a sweep: one step per rate (increasing); reports the highest rate
                           up to which every step had p99 < 100 ms (overrides --muc-rate;
                           stops after two steps in a row over 100 ms or at the first loss)
  --muc-duration T         with a rate: each step sends for T seconds instead of
                           --muc-messages per sender (default 0: use --muc-messages)
  --muc-service D          the MUC service (default conference.<domain>)
  --idle N1,N2,…           idle scenario: the server's resident memory with N1, N2, …
                           authenticated idle sessions (with initial presence), e.g. 0,5000,10000
  --idle-settle T          seconds to let the server settle before each memory reading (default 5)
  --idle-batch B           idle sessions are opened B at a time (default 1000)

Server:
  (default)                start Parley in a child process (bench/server-child.ts), with the
                           accounts bench0 … bench<n-1> created directly
  --target HOST:PORT       drive the server listening there instead (loopback only); no child
  --domain D               XMPP domain (default localhost)
  --server-pid PID         the target's process: its CPU time (/proc/PID/stat) and resident
                           memory (/proc/PID/status VmRSS) are reported
  --register               first create every account the run needs, in-band (XEP-0077, over
                           TLS), untimed; an existing account is fine
  --no-tls                 log in on a plain stream (no STARTTLS); SCRAM still, never PLAIN
  --mechanism M            SCRAM-SHA-1 (default) or SCRAM-SHA-256
  --transport T            tcp (default), ws (WebSocket, RFC 7395, plain HTTP on loopback) or
                           wss (WebSocket over HTTPS); ws/wss only with the Parley child

Run:
  --pin                    server child on core 0, generator on core 1 (taskset, 2+ cores);
                           with --target only the generator is pinned (to core 1). The pinned
                           child runs with --single-threaded-gc, as bin/parley starts Node on
                           one core (--server-node-arg=--no-single-threaded-gc: without)
  --timeout S              hard limit for the whole run, seconds (default: from the scenarios
                           asked for, at least 120)
  --profile-server         run the server child with --cpu-prof (profile in bench/profiles/)
  --server-node-arg A      extra node option for the server child (repeatable), e.g. --trace-gc
  --help`;

const { values: raw } = parseArgs({
  options: {
    logins: { type: 'string' },
    concurrency: { type: 'string' },
    'login-passes': { type: 'string' },
    pairs: { type: 'string' },
    'messages-per-sender': { type: 'string' },
    rate: { type: 'string' },
    window: { type: 'string' },
    transport: { type: 'string' },
    generator: { type: 'string' },
    'no-tls': { type: 'boolean', default: false },
    mechanism: { type: 'string' },
    'chat-users': { type: 'string' },
    'chat-rates': { type: 'string' },
    'chat-duration': { type: 'string' },
    'muc-occupants': { type: 'string' },
    'muc-senders': { type: 'string' },
    'muc-messages': { type: 'string' },
    'muc-rate': { type: 'string' },
    'muc-rates': { type: 'string' },
    'muc-duration': { type: 'string' },
    'muc-service': { type: 'string' },
    idle: { type: 'string' },
    'idle-settle': { type: 'string' },
    'idle-batch': { type: 'string' },
    target: { type: 'string' },
    domain: { type: 'string' },
    'server-pid': { type: 'string' },
    register: { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
    timeout: { type: 'string' },
    'profile-server': { type: 'boolean', default: false },
    'server-node-arg': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (raw.help) {
  console.log(HELP);
  process.exit(0);
}

function usage(message: string): never {
  console.error(message);
  process.exit(64);
}

function int(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) usage(`--${name}: expected an integer from ${min} to ${max}, got '${value}'`);
  return n;
}

function seconds(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !(n >= min && n <= max)) usage(`--${name}: expected seconds from ${min} to ${max}, got '${value}'`);
  return n;
}

function intList(name: string, value: string, min: number, max: number): number[] {
  const list = value.split(',').map((r) => int(name, r.trim(), 0, min, max));
  if (list.length === 0) usage(`--${name}: expected a comma-separated list`);
  return list;
}

// -- Which scenarios run.

const given = (...names: (keyof typeof raw)[]): boolean => names.some((n) => raw[n] !== undefined);
const loginAsked = given('logins');
const messagesAsked = given('pairs', 'messages-per-sender', 'rate');
const chatAsked = given('chat-users', 'chat-rates', 'chat-duration');
const mucAsked = given('muc-occupants', 'muc-senders', 'muc-messages', 'muc-rate', 'muc-rates', 'muc-duration', 'muc-service');
const idleAsked = given('idle', 'idle-settle', 'idle-batch');
/** No scenario option at all: the documented default run (login and messages). */
const defaults = !(loginAsked || messagesAsked || chatAsked || mucAsked || idleAsked);

// Every session of a scenario stays open until it ends: keep them under the open-files limit.
const LOGINS = int('logins', raw.logins, defaults ? 500 : 0, 0, 15_000);
const PAIRS = int('pairs', raw.pairs, defaults || messagesAsked ? 50 : 0, 0, 5_000);
const CHAT_USERS = chatAsked ? int('chat-users', raw['chat-users'], 200, 0, 2_000) : 0;
if (CHAT_USERS === 1) usage('--chat-users: at least 2 (each sends to another one)');
const MUC_OCCUPANTS = mucAsked ? int('muc-occupants', raw['muc-occupants'], 100, 0, 5_000) : 0;
const IDLE = idleAsked ? intList('idle', raw.idle ?? '0,5000,10000', 0, 15_000) : [];
for (let i = 1; i < IDLE.length; i++) if (IDLE[i]! < IDLE[i - 1]!) usage('--idle: the session counts must not decrease (sessions are added step by step)');

const transport = raw.transport ?? 'tcp';
if (!['tcp', 'ws', 'wss'].includes(transport)) usage(`--transport: expected tcp, ws or wss, got '${transport}'`);
const generator = raw.generator ?? 'node';
if (generator !== 'node' && generator !== 'go') usage(`--generator: expected node or go, got '${generator}'`);
if (generator === 'go' && transport !== 'tcp') usage(`--generator go: only with --transport tcp (the Go generator has no WebSocket client), got '${transport}'`);
const mechanism = raw.mechanism ?? 'SCRAM-SHA-1';
if (mechanism !== 'SCRAM-SHA-1' && mechanism !== 'SCRAM-SHA-256') usage(`--mechanism: expected SCRAM-SHA-1 or SCRAM-SHA-256, got '${mechanism}'`);

let target: { host: string; port: number } | null = null;
if (raw.target !== undefined) {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(raw.target);
  const host = m ? (m[1] ?? m[2]!) : '';
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65_535) usage(`--target: expected HOST:PORT, e.g. 127.0.0.1:5222, got '${raw.target}'`);
  // The benchmark is a loopback load test: it sends traffic to this machine only.
  if (!(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost')) {
    usage(`--target: loopback addresses only (127.0.0.0/8, ::1, localhost), got '${host}'`);
  }
  target = { host, port };
  if (transport !== 'tcp') usage('--transport ws|wss: only with the Parley child (no --target)');
}
const serverPid = raw['server-pid'] === undefined ? null : int('server-pid', raw['server-pid'], 0, 1, 2 ** 22);
if (serverPid !== null && target === null) usage('--server-pid: only with --target (the child reports its own figures)');
const domain = raw.domain ?? 'localhost';
if (!/^[a-z0-9.-]+$/i.test(domain)) usage(`--domain: expected a domain name, got '${domain}'`);
if (transport !== 'tcp' && raw['no-tls']) usage('--no-tls: only with --transport tcp');

const MUC_SENDERS = int('muc-senders', raw['muc-senders'], 10, 1, 5_000);
const MUC_MESSAGES = int('muc-messages', raw['muc-messages'], 200, 1, 1_000_000);
const MUC_DURATION = seconds('muc-duration', raw['muc-duration'], 0, 0, 3_600);
const MUC_SWEEP = raw['muc-rates'] !== undefined;
/** The room message rates (total, messages/s) of the muc steps: one step per rate; 0 = as fast as the window allows. */
const MUC_RATES = MUC_SWEEP ? intList('muc-rates', raw['muc-rates']!, 1, 1_000_000) : [int('muc-rate', raw['muc-rate'], 0, 0, 1_000_000)];
if (MUC_OCCUPANTS > 0 && MUC_SENDERS > MUC_OCCUPANTS) usage(`--muc-senders: at most --muc-occupants (${MUC_OCCUPANTS}), got ${MUC_SENDERS}`);

const CHAT_RATES = intList('chat-rates', raw['chat-rates'] ?? '1000,2000,4000,8000,16000,32000', 1, 1_000_000);
const CHAT_DURATION = seconds('chat-duration', raw['chat-duration'], 5, 0.1, 3_600);

/** Everything the generator was asked to do. */
export const O = {
  logins: LOGINS,
  concurrency: int('concurrency', raw.concurrency, 20, 1, 5_000),
  /** Timed passes of the login scenario (bench/lib/login.ts). */
  loginPasses: int('login-passes', raw['login-passes'], 1, 1, 20),
  pairs: PAIRS,
  messagesPerSender: int('messages-per-sender', raw['messages-per-sender'], 200, 1, 1_000_000),
  rate: int('rate', raw.rate, 0, 0, 1_000_000),
  window: int('window', raw.window, 50, 1, 100_000),
  transport: transport as 'tcp' | 'ws' | 'wss',
  /** STARTTLS on tcp (not with --no-tls). */
  tls: !raw['no-tls'],
  /** Whether the sessions' streams are encrypted (the `tls` field of every line): STARTTLS on tcp, wss. */
  encrypted: transport === 'tcp' ? !raw['no-tls'] : transport === 'wss',
  mechanism: mechanism as 'SCRAM-SHA-1' | 'SCRAM-SHA-256',
  /** Who makes the login scenario's logins: this process, or the Go generator (bench/lib/gogen.ts). */
  generator: generator as 'node' | 'go',
  chatUsers: CHAT_USERS,
  chatRates: CHAT_RATES,
  chatDuration: CHAT_DURATION,
  mucOccupants: MUC_OCCUPANTS,
  mucSenders: MUC_SENDERS,
  mucMessages: MUC_MESSAGES,
  mucRates: MUC_RATES,
  mucSweep: MUC_SWEEP,
  mucDuration: MUC_DURATION,
  mucService: raw['muc-service'] ?? `conference.${domain}`,
  idle: IDLE,
  idleSettle: seconds('idle-settle', raw['idle-settle'], 5, 0, 600),
  idleBatch: int('idle-batch', raw['idle-batch'], 1000, 1, 15_000),
  target,
  domain,
  serverPid,
  register: raw.register,
  pin: raw.pin,
  profileServer: raw['profile-server'],
  serverNodeArgs: raw['server-node-arg'] ?? [],
  timeoutS: 0,
};

/** Messages per sender in a muc step at room rate `rate`: --muc-messages, or --muc-duration seconds' worth. */
export function mucMessagesPerSender(rate: number): number {
  return O.mucDuration > 0 && rate > 0 ? Math.max(1, Math.ceil((rate * O.mucDuration) / O.mucSenders)) : O.mucMessages;
}

if (O.mucOccupants > 0) {
  // Every delivery's latency is kept (8 bytes each) for exact percentiles.
  const deliveries = Math.max(...O.mucRates.map((r) => mucMessagesPerSender(r))) * O.mucSenders * O.mucOccupants;
  if (deliveries > 25_000_000) usage(`muc: ${deliveries} deliveries per step (messages × senders × occupants) is over the 25 000 000 this generator keeps; send fewer`);
}
if (O.chatUsers > 0) {
  const most = Math.max(...O.chatRates) * O.chatDuration;
  if (most > 25_000_000) usage(`chat: ${most} messages in one step (rate × duration) is over the 25 000 000 this generator keeps; send fewer`);
}

/** The same password for every account, on every server. */
export const PASSWORD = 'bench-password';
/** Account i is `<ACCOUNT_PREFIX><i>` (the same naming on every server, and in the Go generator). */
export const ACCOUNT_PREFIX = 'bench';
/** Account i (the same naming on every server). */
export const account = (i: number): string => `${ACCOUNT_PREFIX}${i}`;

/** Accounts the run needs: bench0 … bench<ACCOUNTS-1>. */
export const ACCOUNTS = Math.max(O.logins, 2 * O.pairs, O.chatUsers, O.mucOccupants, ...O.idle, 1);
/** Most sessions open at once (each scenario closes its own before the next starts). */
export const MAX_SESSIONS = Math.max(O.logins + O.concurrency, 2 * O.pairs, O.chatUsers, O.mucOccupants, ...O.idle, 1);

// The default hard limit grows with what was asked for (generously: it is a safety net).
{
  const mucSteps = O.mucOccupants > 0 ? O.mucRates.length : 0;
  const chatSteps = O.chatUsers > 0 ? O.chatRates.length : 0;
  const auto =
    120 +
    (O.register ? ACCOUNTS * 0.02 : ACCOUNTS * 0.003) +
    O.logins * 0.02 +
    O.pairs * 0.04 +
    chatSteps * (O.chatDuration + 20) +
    O.chatUsers * 0.02 +
    mucSteps * ((O.mucDuration || 10) + 20) +
    O.mucOccupants * 0.05 +
    Math.max(0, ...O.idle) * 0.02 +
    O.idle.length * (O.idleSettle + 10);
  O.timeoutS = int('timeout', raw.timeout, Math.ceil(auto), 1, 24 * 3_600);
}
