/**
 * The servers of the side-by-side benchmark (bench/compare.ts): Parley, Prosody and
 * ejabberd, each started as a foreground child process with a configuration generated
 * here, in its own data directory, listening on 127.0.0.1 only.
 *
 *   const server = await startPeer('prosody', { dataDir, c2sPort: 15322, core: 0, requireTls: true });
 *   … run the load generator against 127.0.0.1:server.c2sPort, server.pid …
 *   await server.stop();
 *
 * Prosody and ejabberd come from Debian (`sudo bench/peers/install.sh`: prosody 0.12.3,
 * ejabberd 23.01 on bookworm); their system daemons, /etc configuration and /var data are
 * never used.
 *
 * The three configurations are meant to be equivalent — the same work for the same
 * traffic — and every choice is explained where it is made below:
 *
 *  - one domain (`localhost`), c2s on one port of 127.0.0.1 with STARTTLS (required or not,
 *    `requireTls`), no direct TLS, no s2s, no HTTP, no components but MUC;
 *  - the same certificate: one self-signed ECDSA P-256 certificate (what Parley generates
 *    by itself), made with openssl in the data directory and given to all three;
 *  - Nagle's algorithm off on client sockets (TCP_NODELAY), a listen backlog of 511;
 *  - accounts created in-band (XEP-0077) by the load generator, registration open with no
 *    rate limit; credentials stored as SCRAM-SHA-1 keys with 4096 PBKDF2 iterations and a
 *    per-account salt; no delay after a failed authentication;
 *  - no traffic shapers, no rate limits, no per-user session limits;
 *  - the same features loaded (Parley's defaults): roster (with versioning), presence,
 *    disco, ping, version, time, vcard-temp, private XML storage, last activity, blocking;
 *    MUC (XEP-0045) at `conference.<domain>`: rooms created by local users, locked until
 *    configured, 20 messages of history, room and presence rate limits off;
 *  - offline storage off and no MAM (Parley has no MAM; offline storage is turned off in
 *    all three so that nothing is stored per message in any of them), no stream
 *    management, no carbons, no PEP/pubsub, no CSI (Parley has none of these yet);
 *  - each server's default embedded storage (Parley: SQLite; Prosody: its internal file
 *    store; ejabberd: Mnesia) — what a single-node installation of each uses out of the box;
 *  - logging at warning level to a file in the data directory.
 *
 * Every server runs in the foreground as the user running the benchmark (root on the bench
 * machine: Prosody needs `run_as_root`), pinned with `taskset -c <core>` when `core` is set,
 * with the open-files limit raised (`prlimit --nofile`). `pid` is the server's own process
 * (node, lua5.4, beam.smp: the exec chain prlimit → taskset → [sh →] server keeps the pid), for
 * its CPU time (/proc/PID/stat) and resident memory (/proc/PID/status).
 *
 * Run by hand: `node --import tsx bench/peers/peers.ts start prosody [--port 15322]
 * [--data-dir DIR] [--core 0] [--no-require-tls]` starts one server and stops it on Ctrl-C.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type PeerName = 'parley' | 'prosody' | 'ejabberd';
export const PEER_NAMES: readonly PeerName[] = ['parley', 'prosody', 'ejabberd'];

export interface PeerServer {
  name: PeerName;
  /** e.g. `0.1.0 (6dda17e)`, `0.12.3-1+deb12u1`, `23.01-1` */
  version: string;
  domain: string;
  /** The MUC service: `conference.<domain>`. */
  mucDomain: string;
  c2sPort: number;
  /** The main server process, for CPU (/proc/PID/stat) and RSS (/proc/PID/status). */
  pid: number;
  /** This server's directory (configuration, data, certificate, logs). */
  dir: string;
  /** The server's log file (its own log plus its stdout/stderr). */
  logFile: string;
  /** Stops the server (SIGTERM, SIGKILL after 15 s) and waits until it has exited. */
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** Directory for this server's files; its own subdirectory `<dataDir>/<name>` is used (created if missing, reused if present: accounts stay). */
  dataDir: string;
  /** Client port (STARTTLS) on 127.0.0.1. */
  c2sPort: number;
  /** Pin the server to this core (`taskset -c`), or null. */
  core: number | null;
  /** STARTTLS required before authentication (false: SCRAM is offered on the plain stream too). */
  requireTls: boolean;
  /** Default `localhost`. */
  domain?: string;
  /** Open-files limit of the server process (soft and hard). Default: 65536, or the hard limit of this process when that is lower (raising it needs CAP_SYS_RESOURCE). */
  nofile?: number;
  /** How long to wait for the server to answer on its port. Default 60 s. */
  startTimeoutMs?: number;
}

const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const ROOT = dirname(BENCH_DIR);

/** PBKDF2 iterations for the stored SCRAM keys, the same in all three (RFC 7677 §4's minimum; Parley's and ejabberd's default). */
export const SCRAM_ITERATIONS = 4096;
/** Messages of discussion history a MUC room keeps (the default of all three). */
const MUC_HISTORY = 20;

// ---------------------------------------------------------------------------
// Versions and availability
// ---------------------------------------------------------------------------

function debianVersion(pkg: string): string | null {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [status, version] = out.split('\t');
    return status === 'install ok installed' && version ? version : null;
  } catch {
    return null;
  }
}

function parleyVersion(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'packages', 'server', 'package.json'), 'utf8')) as { version?: string };
  let commit = '';
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    commit = git('rev-parse', '--short', 'HEAD');
    if (git('status', '--porcelain', '--', 'packages') !== '') commit += '+dirty';
  } catch {
    // not a git checkout
  }
  return commit ? `${pkg.version ?? '?'} (${commit})` : (pkg.version ?? '?');
}

/** The version of a peer, or null when it is not installed (run `sudo bench/peers/install.sh`). */
export function peerVersion(name: PeerName): string | null {
  if (name === 'parley') return parleyVersion();
  return debianVersion(name);
}

// ---------------------------------------------------------------------------
// Certificate
// ---------------------------------------------------------------------------

/**
 * A self-signed certificate for `domain` and `*.domain`: ECDSA P-256, SHA-256, like the one
 * Parley generates for itself, so that the three servers do the same TLS handshake work.
 * Made once per directory with openssl; the load generator does not verify it.
 */
function ensureCertificate(dir: string, domain: string): { cert: string; key: string } {
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  mkdirSync(dir, { recursive: true });
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha256', '-nodes',
      '-days', '3650', '-subj', `/CN=${domain}`,
      '-addext', `subjectAltName=DNS:${domain},DNS:*.${domain}`,
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=digitalSignature,keyEncipherment',
      '-addext', 'extendedKeyUsage=serverAuth',
      '-keyout', key, '-out', cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert, key };
}

// ---------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------

interface Layout {
  dir: string;
  domain: string;
  port: number;
  requireTls: boolean;
  cert: string;
  key: string;
  logFile: string;
}

/** A command to run: program, arguments, environment additions. */
interface Launch {
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

/** Parley: `parley start --config <yaml>`, the way `npm start` runs it. */
function parleyLaunch(l: Layout): Launch {
  const config = join(l.dir, 'parley.yaml');
  const yaml = `# Generated by bench/peers/peers.ts for bench/compare.ts: do not edit (rewritten at every start).
domain: ${l.domain}
data_dir: ${JSON.stringify(join(l.dir, 'data'))}
# Warnings and errors only; the server's stdout/stderr go to ${l.logFile}.
log_level: warn
storage:
  driver: sqlite            # Parley's default embedded storage
  path: parley.db
c2s:
  port: ${l.port}
  direct_tls_port: null     # no XEP-0368 listener (nor in the others)
  interfaces: ["127.0.0.1"]
  require_encryption: ${l.requireTls}
http:
  port: null                # no HTTP/WebSocket/BOSH listener (nor in the others)
  tls_port: null
tls:
  # The certificate all three servers use (ECDSA P-256, self-signed).
  certificate: ${JSON.stringify(l.cert)}
  key: ${JSON.stringify(l.key)}
auth:
  # Default mechanisms (the generator picks SCRAM-SHA-1) and the default ${SCRAM_ITERATIONS} iterations.
  scram_iterations: ${SCRAM_ITERATIONS}
  # Prosody and ejabberd do not slow down a client after a failed authentication
  # (ejabberd's mod_fail2ban is not loaded).
  failure_delay: 0
  max_failure_delay: 0
ping:
  # Prosody's mod_ping and ejabberd's mod_ping (send_pings: false) only answer pings;
  # Parley would ping clients that were silent for 5 minutes.
  interval: null
modules:
  # Offline storage off in all three (see bench/peers/peers.ts); MAM does not exist in Parley.
  disabled: [offline]
  register:
    policy: open            # in-band registration (XEP-0077) open, as in the others
    exempt: ["127.0.0.0/8", "::1"]   # the registration rate limit does not apply to loopback
  muc:
    creation: local         # rooms created by local users (Prosody restrict_room_creation = "local", ejabberd access_create: local)
    history_length: ${MUC_HISTORY}
    max_users: 1000
    default_room:
      max_users: 200
`;
  writeFileSync(config, yaml);
  // The installed command (bin/parley: a shell that execs Node, so the pid stays the server's),
  // which picks Node's options for the CPUs it may use: on the benchmark's one core, V8's GC on
  // the main thread.
  return {
    cmd: 'sh',
    args: [join(ROOT, 'bin', 'parley'), '--config', config, 'start'],
    cwd: ROOT,
  };
}

/** Prosody 0.12: `prosody -F --config <lua>` (foreground). */
function prosodyLaunch(l: Layout): Launch {
  const dataPath = join(l.dir, 'data');
  mkdirSync(dataPath, { recursive: true });
  const config = join(l.dir, 'prosody.cfg.lua');
  const lua = (s: string): string => JSON.stringify(s); // a Lua string literal (ASCII paths)
  const cfg = `-- Generated by bench/peers/peers.ts for bench/compare.ts: do not edit (rewritten at every start).
-- Global section.

-- The benchmark runs all three servers as the same user (root on the bench machine);
-- Prosody would otherwise switch to the user prosody or refuse to start.
run_as_root = true
data_path = ${lua(dataPath)}
pidfile = ${lua(join(l.dir, 'prosody.pid'))}
plugin_paths = {}
admins = {}

-- Warnings and errors only, to a file.
log = { { levels = { min = "warn" }, to = "file", filename = ${lua(l.logFile)} } }

-- Nagle off on every socket (net.server_epoll's default is nagle = true), and a listen
-- backlog of 511 as in Parley (Node's default) and ejabberd below (Prosody's default: 128).
-- Everything else in network_settings is left at Prosody's defaults (epoll backend).
network_settings = { nagle = false; tcp_backlog = 511 }

-- Listeners: c2s on one port of 127.0.0.1 (STARTTLS), nothing else.
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${l.port} }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}

c2s_require_encryption = ${l.requireTls}
s2s_require_encryption = false
-- The certificate all three servers use (ECDSA P-256, self-signed).
ssl = { certificate = ${lua(l.cert)}, key = ${lua(l.key)} }
certificates = ${lua(dirname(l.cert))}

-- SCRAM-SHA-1 keys stored (internal_hashed, the default), with ${SCRAM_ITERATIONS} iterations
-- as in Parley and ejabberd (Prosody 0.12's default is 10000).
authentication = "internal_hashed"
default_iteration_count = ${SCRAM_ITERATIONS}
-- Prosody's own file store, its default embedded storage.
storage = "internal"

-- In-band registration (XEP-0077) open. No throttle: min_seconds_between_registrations
-- and registration_throttle_max are left unset (mod_register_limits then allows every
-- registration), and 127.0.0.1 is on the default registration allowlist anyway.
allow_registration = true

-- The features Parley loads by default. Not loaded: mod_limits (Debian's sample
-- configuration loads it with a 10 kB/s c2s rate), mod_mam, mod_smacks, mod_carbons,
-- mod_pep, mod_csi_simple, mod_bosh/mod_websocket (no HTTP), mod_posix daemonizing
-- (prosody -F stays in the foreground).
modules_enabled = {
	"roster";        -- RFC 6121 roster, with versioning (XEP-0237)
	"saslauth";      -- SASL (SCRAM-SHA-1)
	"tls";           -- STARTTLS
	"disco";         -- XEP-0030
	"ping";          -- XEP-0199 (answers only)
	"register";      -- XEP-0077
	"version";       -- XEP-0092
	"time";          -- XEP-0202
	"vcard";         -- vcard-temp, XEP-0054
	"private";       -- XEP-0049
	"lastactivity";  -- XEP-0012
	"blocklist";     -- XEP-0191
}
-- Autoloaded modules that are off: offline storage (off in all three) and s2s.
modules_disabled = { "offline"; "s2s"; "s2s_auth_certs"; "dialback" }

VirtualHost ${lua(l.domain)}

-- Multi-user chat (XEP-0045).
Component ${lua(`conference.${l.domain}`)} "muc"
	-- Rooms are created by local users only (Parley's default, ejabberd's access_create: local).
	restrict_room_creation = "local"
	-- A new room is locked until its owner configures it (XEP-0045 §10.1.1), as in Parley.
	muc_room_locking = true
	-- 20 messages of history, as the others (the generator asks for none on entering).
	muc_room_default_history_length = ${MUC_HISTORY}
	-- New rooms are public, as in Parley (Prosody's default is hidden).
	muc_room_default_public = true
	muc_room_default_persistent = false
	-- No MUC rate limits: mod_muc_limits (community module) is not loaded; no MUC MAM.
	modules_enabled = {}
`;
  writeFileSync(config, cfg);
  // The Debian script runs `lua5.4`; the pid is that interpreter's.
  return { cmd: '/usr/bin/prosody', args: ['-F', '--config', config] };
}

/** ejabberd 23.01: the Erlang VM started directly (what `ejabberdctl foreground` runs, without `su ejabberd`, /etc or a node name). */
function ejabberdLaunch(l: Layout, nofile: number): Launch {
  const spool = join(l.dir, 'spool');
  mkdirSync(spool, { recursive: true });
  const config = join(l.dir, 'ejabberd.yml');
  const q = (s: string): string => JSON.stringify(s);
  const yml = `# Generated by bench/peers/peers.ts for bench/compare.ts: do not edit (rewritten at every start).
hosts:
  - ${q(l.domain)}
loglevel: warning
log_rotate_count: 0
hide_sensitive_log_data: true

# The certificate all three servers use (ECDSA P-256, self-signed).
certfiles:
  - ${q(l.cert)}
  - ${q(l.key)}

# Mnesia (ejabberd's default embedded storage), in ${spool}.
default_db: mnesia
# ejabberd's caches (credentials, rosters, last activity …) hold 1000 entries by default and
# log "you should increase maximum cache size" when 10 000 accounts log in: sized for the
# benchmark's accounts, as its own advice says. (Parley and Prosody have no such cache.)
cache_size: 20000

# SCRAM-SHA-1 keys stored, not passwords: 4096 iterations (ejabberd's fixed count) and a
# random salt per account, as in Parley and Prosody.
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
# Mechanisms: the defaults (SCRAM-SHA-1 and its -PLUS, PLAIN over TLS) less the legacy ones.
disable_sasl_mechanisms:
  - "digest-md5"
  - "x-oauth2"

# In-band registration: no minimum time between two registrations from one address
# (the default is 600 s).
registration_timeout: infinity

acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    allow: all
  muc_create:
    allow: local

# No traffic shapers: none is defined and the listener names none (the default, 'none').
# No shaper_rules: max_user_sessions is then unlimited, as in Parley and Prosody.
# max_fsm_queue (10000 stanzas queued for one session before it is closed) is a safety
# limit, like Parley's limits.max_output_queue, and is left at its default.

# One listener: c2s on 127.0.0.1 with STARTTLS. Nagle is off on every ejabberd listener
# (ejabberd_listener opens its sockets with {nodelay, true}). No s2s, HTTP, STUN, MQTT.
listen:
  -
    port: ${l.port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    # A listen backlog of 511, as in Parley (Node's default) and Prosody above. ejabberd's
    # default is 5: 20 logins in flight then overflow it, and the dropped SYNs come back
    # a second later (p99 of a login over 1 s).
    backlog: 511
    starttls: true
    starttls_required: ${l.requireTls}
    access: c2s
    # TLS 1.2 and later, as in Parley (tls.min_version) and Prosody (its default).
    protocol_options:
      - "no_sslv3"
      - "no_tlsv1"
      - "no_tlsv1_1"

# The features Parley loads by default. Not loaded: mod_offline (offline storage off in all
# three), mod_mam, mod_stream_mgmt, mod_carboncopy, mod_pubsub/PEP, mod_client_state,
# mod_fail2ban (authentication failure limits), mod_pres_counter (presence rate limit),
# mod_announce, mod_http_*, mod_bosh, mod_mqtt.
modules:
  mod_roster:
    versioning: true       # XEP-0237, as in Parley and Prosody
  mod_disco: {}
  mod_ping: {}             # answers; send_pings: false (the default)
  mod_register:
    ip_access: all
    access: register
    password_strength: 0
  mod_version:
    show_os: false
  mod_time: {}
  mod_vcard:
    search: false
  mod_private: {}
  mod_last: {}
  mod_privacy: {}          # needed by mod_blocking
  mod_blocking: {}         # XEP-0191
  mod_caps: {}             # Parley verifies and caches clients' entity capabilities too
  mod_muc:
    host: ${q(`conference.${l.domain}`)}
    access:
      - allow
    access_create: muc_create
    access_persistent: muc_create
    access_admin: none
    access_mam: none
    # Large enough for a 100-occupant room, and no rate limits between messages or presences.
    history_size: ${MUC_HISTORY}
    max_users: 1000
    max_user_conferences: 1000
    max_users_presence: 1000
    min_message_interval: 0
    min_presence_interval: 0
    default_room_options:
      mam: false
      persistent: false
      public: true
      max_users: 200
`;
  writeFileSync(config, yml);
  const erlang = execFileSync('sh', ['-c', 'ls -d /usr/lib/x86_64-linux-gnu/ejabberd-* /usr/lib/*/ejabberd-* 2>/dev/null | head -1'], { encoding: 'utf8' }).trim();
  const libs = erlang ? dirname(erlang) : '/usr/lib/x86_64-linux-gnu';
  return {
    // The same VM options as ejabberdctl (kernel poll, 250 000 processes, no crash dump),
    // no distribution (no node name, so no epmd).
    cmd: '/usr/bin/erl',
    args: [
      '-noinput', '-noshell',
      '+K', 'true', '+P', '250000',
      '-env', 'ERL_CRASH_DUMP_BYTES', '0',
      '-mnesia', 'dir', q(spool),
      '-s', 'ejabberd',
    ],
    env: {
      EJABBERD_CONFIG_PATH: config,
      EJABBERD_LOG_PATH: l.logFile,
      ERL_LIBS: libs,
      ERL_MAX_PORTS: String(Math.max(32_000, nofile)),
      ERL_MAX_ETS_TABLES: '1400',
      ERL_CRASH_DUMP: join(l.dir, 'erl_crash.dump'),
      CONTRIB_MODULES_PATH: join(l.dir, 'contrib'),
      CONTRIB_MODULES_CONF_DIR: join(l.dir, 'contrib-conf'),
      HOME: l.dir,
    },
    cwd: spool,
  };
}

// ---------------------------------------------------------------------------
// Start / stop
// ---------------------------------------------------------------------------

/** The last `n` lines of a file ('' when there is none). */
export function logTail(file: string, n = 30): string {
  try {
    const lines = readFileSync(file, 'utf8').split('\n');
    return lines.slice(-n - 1).join('\n').trimEnd();
  } catch {
    return '';
  }
}

/** Lines of a server's log that mean it is not serving properly. */
function fatalLines(name: PeerName, log: string): string[] {
  const re =
    name === 'parley'
      ? /"level":(50|60)\b|^Invalid configuration|^parley: /
      : name === 'prosody'
        ? /\berror\b/i
        : /\[(error|critical|alert|emergency)\]/;
  return log.split('\n').filter((line) => re.test(line));
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Opens a stream on 127.0.0.1:port and resolves true when the server answers with stream
 * features (the server is serving XMPP, not just listening), false otherwise.
 */
function streamAnswers(port: number, domain: string, ms = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), ms);
    s.once('connect', () =>
      s.write(`<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`),
    );
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/<(stream:)?features[\s>]/.test(got)) {
        s.write('</stream:stream>');
        done(true);
      }
    });
    s.once('error', () => done(false));
    s.once('close', () => done(false));
  });
}

/** The hard open-files limit of this process (what a child may raise its soft limit to without privileges). */
export function hardNofile(): number {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? 1_048_576 : Number(out) || 1024;
  } catch {
    return 1024;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts one server and resolves once it serves XMPP on 127.0.0.1:c2sPort. */
export async function startPeer(name: PeerName, opts: PeerOptions): Promise<PeerServer> {
  const version = peerVersion(name);
  if (version === null) throw new Error(`${name} is not installed: run 'sudo bench/peers/install.sh'`);
  const domain = opts.domain ?? 'localhost';
  const nofile = opts.nofile ?? Math.min(65_536, hardNofile());
  const dir = resolve(opts.dataDir, name);
  mkdirSync(dir, { recursive: true });
  const { cert, key } = ensureCertificate(join(resolve(opts.dataDir), 'tls'), domain);
  const logFile = join(dir, `${name}.log`);
  if (await portInUse(opts.c2sPort)) {
    throw new Error(`${name}: 127.0.0.1:${opts.c2sPort} is already in use (another server running?)`);
  }
  const layout: Layout = { dir, domain, port: opts.c2sPort, requireTls: opts.requireTls, cert, key, logFile };
  const launch = name === 'parley' ? parleyLaunch(layout) : name === 'prosody' ? prosodyLaunch(layout) : ejabberdLaunch(layout, nofile);

  // prlimit and taskset exec the server: the child's pid is the server's.
  const argv = ['prlimit', `--nofile=${nofile}:${nofile}`];
  if (opts.core !== null) argv.push('taskset', '-c', String(opts.core));
  argv.push(launch.cmd, ...launch.args);
  const logOffset = existsSync(logFile) ? readFileSync(logFile).length : 0;
  const fd = openSync(logFile, 'a');
  writeFileSync(fd, `\n=== ${new Date().toISOString()} start ${name} ${version}: ${argv.join(' ')}\n`);
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      cwd: launch.cwd ?? dir,
      env: { ...process.env, ...launch.env },
      stdio: ['ignore', fd, fd],
      detached: false,
    });
  } finally {
    closeSync(fd);
  }
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  child.once('error', () => undefined);

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exit;
    clearTimeout(timer);
  };
  const newLog = (): string => {
    try {
      return readFileSync(logFile).subarray(logOffset).toString('utf8');
    } catch {
      return '';
    }
  };
  const failure = async (why: string): Promise<Error> => {
    await stop();
    return new Error(`${name} did not start: ${why}\n--- ${logFile} (last lines) ---\n${logTail(logFile)}`);
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      throw await failure(`it exited (${e.code ?? e.signal})`);
    }
    if (await streamAnswers(opts.c2sPort, domain)) break;
    if (Date.now() > deadline) throw await failure(`no XMPP stream on 127.0.0.1:${opts.c2sPort} after ${opts.startTimeoutMs ?? 60_000} ms`);
    await sleep(100);
  }
  // ejabberd and Prosody log configuration mistakes and go on: refuse to measure such a server.
  const fatal = fatalLines(name, newLog());
  if (fatal.length > 0) throw await failure(`it logged errors:\n${fatal.slice(0, 10).join('\n')}`);
  if (child.pid === undefined) throw await failure('no pid');

  return {
    name,
    version,
    domain,
    mucDomain: `conference.${domain}`,
    c2sPort: opts.c2sPort,
    pid: child.pid,
    dir,
    logFile,
    stop,
  };
}

// ---------------------------------------------------------------------------
// By hand
// ---------------------------------------------------------------------------

async function cli(argv: string[]): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '15222' },
      'data-dir': { type: 'string', default: join(BENCH_DIR, 'results', 'peers') },
      core: { type: 'string' },
      'no-require-tls': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const [cmd, name] = positionals;
  if (values.help || cmd !== 'start' || !PEER_NAMES.includes(name as PeerName)) {
    console.log(`Usage: node --import tsx bench/peers/peers.ts start parley|prosody|ejabberd [--port 15222] [--data-dir DIR] [--core N] [--no-require-tls]`);
    process.exit(values.help ? 0 : 64);
  }
  const server = await startPeer(name as PeerName, {
    dataDir: values['data-dir'],
    c2sPort: Number(values.port),
    core: values.core === undefined ? null : Number(values.core),
    requireTls: !values['no-require-tls'],
  });
  console.log(`${server.name} ${server.version}: ${server.domain} on 127.0.0.1:${server.c2sPort}, pid ${server.pid}, files in ${server.dir}; Ctrl-C stops it`);
  const stop = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
