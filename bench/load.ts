/**
 * Parley load benchmark (loopback only): the load generator. `npm run bench -- --help`
 * lists the options; docs/benchmark.md describes the scenarios and every result field.
 *
 * Drives Parley started in a child process (bench/server-child.ts: its own event loop and,
 * with `--pin`, its own core) or any XMPP server already listening on this machine
 * (`--target 127.0.0.1:PORT`, e.g. Prosody or ejabberd; `--server-pid` for its CPU and
 * memory, `--register` to create the accounts in-band first). Scenarios, each run only when
 * asked for (with no scenario option: login and messages, the default run):
 *
 *  - login    — N logins of N accounts, K in flight: connect → STARTTLS (not with
 *               --no-tls) → SCRAM → bind → roster get → initial presence → ping result;
 *               logins/s and the latency of the whole sequence (bench/lib/login.ts).
 *  - messages — pairs of sessions exchanging chat messages between full JIDs, as fast as a
 *               window allows or at a rate (bench/lib/messages.ts).
 *  - chat     — U online users sending to random other users' bare JIDs, a sweep of total
 *               rates (bench/lib/chat.ts).
 *  - muc      — one room, N occupants, S senders, a rate sweep (bench/lib/muc.ts).
 *  - idle     — the server's resident memory with 0, N1, N2 … idle sessions
 *               (bench/lib/idle.ts).
 *
 * Output: one JSON line per scenario step on stdout (each with a `scenario` field), then a
 * human summary on stderr. Every line carries the CPU time this generator used, the
 * server's (when known), and the CPU used by anything else on the machine, so one can see
 * which side was saturated and whether the run was disturbed.
 * Exit status: 0 on success; 1 when a login, a registration or a room join failed, or a
 * message was lost (or duplicated, reordered, bounced); 2 on the hard timeout (after
 * reporting what was measured so far); 64 on a usage error.
 *
 * The generator is kept cheap on purpose (bench/lib/xmpp.ts): raw node:net/node:tls sockets
 * with one shared client TLS context, stanzas built as strings, the server's replies read by
 * string scanning instead of an XML parser, writes batched per event, and the SCRAM keys
 * of each account derived once (untimed) and kept (bench/lib/scram.ts).
 */
import os from 'node:os';
import { join } from 'node:path';
import { ACCOUNTS, MAX_SESSIONS, O, PASSWORD, account } from './lib/options.ts';
import { BENCH_DIR, COMMIT, common, emit, info, markAborted, partial, results, round, setPartial, type Result } from './lib/report.ts';
import { CORES, externalServer, openFilesLimit, startChild, type Server } from './lib/server.ts';
import { configureLogin, registerAccounts } from './lib/xmpp.ts';
import { loginScenario } from './lib/login.ts';
import { messageScenario } from './lib/messages.ts';
import { chatScenario } from './lib/chat.ts';
import { mucScenario } from './lib/muc.ts';
import { idleScenario } from './lib/idle.ts';

let server: Server | null = null;

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

/** A figure for the human summary: `n/a` for what was not measured. */
function fig(v: Result[string] | undefined, unit = ''): string {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? 'n/a' : `${v}${unit}`;
}

/** The non-zero failure counters of a line, for the summary. */
function bad(r: Result, keys: string[]): string {
  return keys
    .filter((k) => r[k])
    .map((k) => `, ${r[k]} ${k.replaceAll('_', ' ').toUpperCase()}`)
    .join('');
}

function sweepLine(r: Result, unit: string): string {
  return (
    `sweep of ${r.steps} steps (${r.rates} ${unit}): ` +
    (r.best_rate === null
      ? `the first step was already over p99 ${r.p99_limit_ms} ms (or lost messages)`
      : `highest rate with p99 < ${r.p99_limit_ms} ms at every step up to it, nothing lost: ${r.best_rate} ${unit} ` +
        `(p99 ${r.best_p99_ms} ms, server ${fig(r.best_server_cpu_pct, ' %')} of a core, generator ${fig(r.best_generator_cpu_pct, ' %')})`) +
    (r.first_failed_rate === null ? '' : `; first over the limit: ${r.first_failed_rate} ${unit}`) +
    (r.ref_p99_ms === null ? `; no step at ${r.ref_rate}` : `; p99 at ${r.ref_rate} ${unit}: ${r.ref_p99_ms} ms`)
  );
}

function summary(): void {
  if (results.length === 0) return;
  const where = server ? (server.kind === 'external' ? `${server.host}:${server.port}${server.pid ? ` (pid ${server.pid})` : ''}` : 'the Parley child') : '?';
  const lines = ['', `== Parley load benchmark: ${where} ==`];
  lines.push(
    `commit ${COMMIT ?? '?'}, node ${process.version}, ${CORES} cores (${os.cpus()[0]?.model ?? '?'}), ` +
      `${server?.pinned ? (server.kind === 'external' ? 'generator pinned to core 1' : 'server pinned to core 0, generator to core 1') : 'unpinned'}, ` +
      `${O.transport}${O.transport === 'tcp' ? (O.tls ? ' with STARTTLS' : ' without TLS') : ''}, ${O.mechanism}`,
  );
  for (const r of results) {
    const part = r.partial ? ' (PARTIAL: hard timeout)' : '';
    const s = r.scenario as string;
    if (r.error) {
      lines.push(`${s.padEnd(8)} FAILED: ${r.error}`);
      continue;
    }
    let op = 'msg';
    switch (s) {
      case 'muc-sweep':
        lines.push(`muc      ${sweepLine(r, 'room msg/s')}`);
        continue;
      case 'chat-sweep':
        lines.push(`chat     ${sweepLine(r, 'msg/s')}`);
        continue;
      case 'idle':
        lines.push(
          `idle     ${r.sessions} sessions: server RSS ${fig(r.rss_kb, ' kB')}` +
            (r.kb_per_session === null ? '' : `, ${r.kb_per_session} kB per session above ${r.base_sessions} sessions`) +
            (r.heap_kb_per_session === null ? '' : ` (JS heap ${r.heap_kb_per_session} kB)`) +
            (r.opened ? `; opened ${r.opened} in ${r.open_seconds} s` : '') +
            (r.dropped ? `, ${r.dropped} DROPPED` : ''),
        );
        if (!r.opened) continue;
        op = 'login';
        r.seconds = r.open_seconds!;
        break;
      case 'muc-join':
        op = 'join';
        lines.push(
          `muc join ${r.joined}/${r.occupants} occupants joined one room (${r.concurrency} in flight): ${r.per_second} joins/s, ` +
            `p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms; ${r.presences}/${r.presences_expected} occupant presences` +
            `${r.errors ? `, ${r.errors} ERRORS` : ''}${r.unexpected ? `, ${r.unexpected} unexpected stanzas` : ''}${part}`,
        );
        break;
      case 'muc':
        op = 'delivery';
        lines.push(
          `muc      ${r.delivered}/${r.deliveries_expected} delivered (${r.occupants} occupants, ${r.senders} senders × ${r.messages_per_sender}, ` +
            `${r.rate ? `${r.rate} room msg/s offered` : `window ${r.window}`}${bad(r, ['lost', 'duplicates', 'out_of_order', 'foreign', 'unexpected', 'errors'])}): ` +
            `${r.messages_per_second} room msg/s, ${r.per_second} deliveries/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms, max ${fig(r.max_ms)} ms${part}`,
        );
        break;
      case 'chat':
        lines.push(
          `chat     ${r.delivered}/${r.sent} delivered (${r.users} users, ${r.rate} msg/s offered for ${r.duration_s} s` +
            `${bad(r, ['lost', 'duplicates', 'out_of_order', 'foreign', 'errors'])}${r.unexpected ? `, ${r.unexpected} unexpected` : ''}` +
            `${r.fell_behind ? `; the server FELL BEHIND: ${r.undelivered} still undelivered` : ''}): ` +
            `${r.per_second} msg/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms, max ${fig(r.max_ms)} ms${part}`,
        );
        break;
      case 'login-pass':
        op = 'login';
        lines.push(`  pass ${r.pass}: ${r.logins} logins${r.errors ? `, ${r.errors} FAILED` : ''}: ${r.per_second} logins/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms${part}`);
        break;
      case 'login':
        op = 'login';
        lines.push(
          `login    ${r.logins} logins (${r.mechanism}, i=${fig(r.iterations)}, ${r.tls ? 'TLS' : 'no TLS'}, ${r.concurrency} in flight${r.errors ? `, ${r.errors} FAILED` : ''}): ` +
            `${r.per_second} logins/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms${part}` +
            (r.generator_pbkdf2 ? `; the generator ran PBKDF2 ${r.generator_pbkdf2} times (new salt per login?)` : '') +
            (Array.isArray(r.pass_per_second) ? `; the median of ${r.passes} passes (${r.pass_per_second.join(', ')} logins/s)` : ''),
        );
        break;
      default:
        lines.push(
          `messages ${r.delivered}/${r.sent} delivered (${r.pairs} pairs × 2 senders × ${r.messages_per_sender}, ` +
            `${r.rate_per_sender ? `${r.rate_per_sender}/s per sender` : `window ${r.window}`}` +
            `${r.lost ? `, ${r.lost} LOST` : ''}${r.out_of_order ? `, ${r.out_of_order} out of order` : ''}): ` +
            `${r.per_second} msg/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms${part}`,
        );
    }
    lines.push(
      `         ${r.seconds} s; generator CPU ${fig(r.generator_cpu_ms)} ms (${fig(r.generator_cpu_pct, ' %')} of a core, ${fig(r.generator_us_per_op)} µs/${op}); ` +
        `server CPU ${fig(r.server_cpu_ms)} ms (${fig(r.server_cpu_pct, ' %')}, ${fig(r.server_us_per_op)} µs/${op}); other CPU on the machine ${fig(r.other_cpu_ms)} ms` +
        (typeof r.generator_cpu_pct === 'number' && r.generator_cpu_pct > 90 ? '  <- the GENERATOR was near its limit' : '') +
        (r.listen_overflows ? `; ${r.listen_overflows} connections DROPPED by a full listen queue (SYN retried after 1 s: a short listen backlog?)` : ''),
    );
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** Reports the scenario in progress (with the server's CPU if it answers within 500 ms), then exits. */
async function abort(code: number, why: string): Promise<never> {
  info(why);
  if (partial) {
    const report = partial;
    setPartial(null);
    const stats = server ? await Promise.race([server.stats(), new Promise<null>((r) => setTimeout(() => r(null), 500))]) : null;
    emit(report(stats));
  }
  summary();
  markAborted();
  await server?.stop(1000);
  process.exit(code);
}

// Not unref'd: it also ends a run that hangs with nothing else pending.
setTimeout(() => void abort(2, `hard timeout after ${O.timeoutS} s`), O.timeoutS * 1000);

/**
 * Why this run would open more sockets than a process may (the generator, or the server
 * once known), or null. Node raises its soft limit to the hard one at start, so the hard
 * limit of the shell (`ulimit -Hn`) is what counts for the generator and the Parley child.
 */
function openFilesProblem(): string | null {
  const need = MAX_SESSIONS + 100;
  const check = (who: string, pid: number | 'self'): string | null => {
    const limit = openFilesLimit(pid);
    return limit !== null && limit < need
      ? `${who} may open at most ${limit} files (ulimit -n) and this run keeps up to ${MAX_SESSIONS} sessions open at once: ` +
          `raise the limit (e.g. ulimit -n 20000 in the shell, LimitNOFILE for a service, prlimit --nofile for a running process) and run again`
      : null;
  };
  return check('the generator', 'self') ?? (server?.pid ? check(`the server (pid ${server.pid})`, server.pid) : null);
}

async function main(): Promise<number> {
  // The generator's own limit first (before starting anything).
  const early = openFilesProblem();
  if (early) {
    info(early);
    return 1;
  }
  if (O.target) {
    server = externalServer({ host: O.target.host, port: O.target.port, domain: O.domain, pid: O.serverPid, pin: O.pin });
    info(`target ${O.target.host}:${O.target.port}, domain ${O.domain}${O.serverPid ? `, server pid ${O.serverPid}` : ' (no --server-pid: no server CPU or memory figures)'}${server.pinned ? ' (generator pinned to core 1)' : ''}`);
  } else {
    const child = await startChild({
      accounts: ACCOUNTS,
      password: PASSWORD,
      domain: O.domain,
      requireEncryption: O.transport !== 'tcp' || O.tls,
      pin: O.pin,
      profile: O.profileServer,
      nodeArgs: O.serverNodeArgs,
      onUnexpectedExit: (why) => void abort(1, why),
    });
    server = child;
    info(`server child: port ${child.port}, ${child.accounts} accounts, SCRAM i=${child.iterations}, set up in ${round(child.setupMs, 0)} ms${child.pinned ? ' (pinned)' : ''}`);
  }
  Object.assign(common, { server_kind: server.kind, pinned: server.pinned });
  const late = openFilesProblem();
  if (late) {
    info(late);
    await server.stop();
    return 1;
  }
  const port = O.transport === 'tcp' ? server.port : O.transport === 'ws' ? server.httpPort! : server.httpsPort!;
  configureLogin({ host: server.host, port, domain: server.domain, transport: O.transport, tls: O.tls, mechanism: O.mechanism, password: PASSWORD });

  if (O.register) {
    const t0 = performance.now();
    const names = Array.from({ length: ACCOUNTS }, (_, i) => account(i));
    try {
      const r = await registerAccounts(names, PASSWORD, 8, (done) => {
        if (done % 1000 === 0) info(`register: ${done} of ${ACCOUNTS}`);
      });
      info(`register: ${r.created} accounts created, ${r.existed} existed already, in ${round((performance.now() - t0) / 1000, 1)} s (untimed)`);
    } catch (e) {
      emit({ scenario: 'register', error: (e as Error).message });
      await server.stop();
      summary();
      return 1;
    }
  }

  let ok = true;
  if (O.logins > 0) ok = (await loginScenario(server)) && ok;
  if (O.pairs > 0) ok = (await messageScenario(server)) && ok;
  if (O.chatUsers > 0) ok = (await chatScenario(server)) && ok;
  if (O.mucOccupants > 0) ok = (await mucScenario(server)) && ok;
  if (O.idle.length > 0) ok = (await idleScenario(server)) && ok;
  await server.stop();
  summary();
  if (O.profileServer && server.kind === 'parley-child') info(`server CPU profile written to ${join(BENCH_DIR, 'profiles')}/`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => abort(1, err instanceof Error ? (err.stack ?? err.message) : String(err)),
);
