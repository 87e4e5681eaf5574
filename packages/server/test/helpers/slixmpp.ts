import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../interop/slixmpp_client.py', import.meta.url));
const IM_SCRIPT = fileURLToPath(new URL('../interop/slixmpp_im.py', import.meta.url));
/** Debian's python, where python3-slixmpp is installed (not a pyenv shim). */
export const PYTHON = '/usr/bin/python3';

/** Throws a clear error when python3-slixmpp is missing (`.ci/run` installs it). */
export function requireSlixmpp(): void {
  const r = spawnSync(PYTHON, ['-c', 'import slixmpp'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3-slixmpp is not installed (apt-get install python3-slixmpp): ${r.stderr}`);
}

/** One JSON event printed by the slixmpp driver script. */
export type SliEvent = { event: string; [k: string]: unknown };

/** A running slixmpp client process; `events` fills as it prints. */
export interface SliRun {
  events: SliEvent[];
  /** Resolves with the first event of that name (rejects after `ms`). */
  waitEvent(name: string, ms?: number): Promise<SliEvent>;
  /** Resolves with the exit code and every event. */
  done: Promise<{ code: number | null; events: SliEvent[]; stderr: string }>;
  /** Writes a line to the driver's standard input. */
  send(line: string): void;
  kill(): void;
}

/** Runs any driver script of `interop/` with its arguments. */
export function runDriver(script: string, args: string[]): SliRun {
  return runPython([fileURLToPath(new URL(`../interop/${script}`, import.meta.url)), ...args]);
}

/** Runs `slixmpp_client.py PORT JID PASSWORD MECHANISM SCENARIO ARGS…`. */
export function runSlixmpp(port: number, jid: string, password: string, mechanism: string, scenario: string, ...args: string[]): SliRun {
  return runPython([SCRIPT, String(port), jid, password, mechanism, scenario, ...args]);
}

/** Runs `slixmpp_im.py PORT JID PASSWORD [--no-auto]`: slixmpp as an IM contact (RFC 6121). */
export function runSlixmppContact(port: number, jid: string, password: string, auto = true): SliRun {
  return runPython([IM_SCRIPT, String(port), jid, password, ...(auto ? [] : ['--no-auto'])]);
}

const REGISTER_SCRIPT = fileURLToPath(new URL('../interop/slixmpp_register.py', import.meta.url));

/** Runs `slixmpp_register.py PORT SCENARIO JID PASSWORD ARGS…`: in-band registration (XEP-0077). */
export function runSlixmppRegister(port: number, scenario: 'register' | 'passwd' | 'remove' | 'login', jid: string, password: string, ...args: string[]): SliRun {
  return runPython([REGISTER_SCRIPT, String(port), scenario, jid, password, ...args]);
}

const BLOCKING_SCRIPT = fileURLToPath(new URL('../interop/slixmpp_blocking.py', import.meta.url));
const AIOXMPP_BLOCKING_SCRIPT = fileURLToPath(new URL('../interop/aioxmpp_blocking.py', import.meta.url));

/** Runs `slixmpp_blocking.py PORT JID PASSWORD`: slixmpp with its xep_0191 and xep_0012 plugins, driven by chat commands. */
export function runSlixmppBlocking(port: number, jid: string, password: string): SliRun {
  return runPython([BLOCKING_SCRIPT, String(port), jid, password]);
}

/** Throws a clear error when python3-aioxmpp is missing. */
export function requireAioxmpp(): void {
  const r = spawnSync(PYTHON, ['-c', 'import aioxmpp.blocking'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3-aioxmpp is not installed (apt-get install python3-aioxmpp): ${r.stderr}`);
}

/** Runs `aioxmpp_blocking.py PORT JID PASSWORD ACTION…`: aioxmpp's BlockingClient (XEP-0191). */
export function runAioxmppBlocking(port: number, jid: string, password: string, ...actions: string[]): SliRun {
  return runPython([AIOXMPP_BLOCKING_SCRIPT, String(port), jid, password, ...actions]);
}

function runPython(argv: string[]): SliRun {
  const child = spawn(PYTHON, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  const events: SliEvent[] = [];
  let buf = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as SliEvent);
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; events: SliEvent[]; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      for (const w of waiters.splice(0)) w();
      resolve({ code, events, stderr });
    }),
  );
  let exited = false;
  void done.then(() => (exited = true));
  return {
    events,
    done,
    send: (line) => void child.stdin.write(line + '\n'),
    kill: () => child.kill(),
    async waitEvent(name, ms = 20000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const e = events.find((ev) => ev.event === name);
        if (e) return e;
        if (exited || Date.now() > deadline) throw new Error(`slixmpp: no '${name}' event; events ${JSON.stringify(events)}; stderr ${stderr.slice(-2000)}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, 200);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
}

const MUC_SCRIPT = fileURLToPath(new URL('../interop/slixmpp_muc.py', import.meta.url));

/**
 * Runs `slixmpp_muc.py PORT JID PASSWORD`: slixmpp with its xep_0045 plugin as a
 * multi-user chat client, printing every presence and message from the MUC service and
 * executing JSON commands written to its standard input (see the script's docstring).
 */
export function runSlixmppMuc(port: number, jid: string, password: string): SliRun {
  return runPython([MUC_SCRIPT, String(port), jid, password]);
}
