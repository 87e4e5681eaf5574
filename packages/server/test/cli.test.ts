// The `parley` command, run as a real child process: init, check, user management, start and SIGTERM.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RawClient } from './helpers/raw-client.ts';

const BIN = fileURLToPath(new URL('../../../bin/parley.mjs', import.meta.url));
/** The installed command (`npm start`, package.json bin): a shell launcher that execs Node on BIN. */
const LAUNCHER = fileURLToPath(new URL('../../../bin/parley', import.meta.url));

function parley(cwd: string, args: string[], input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd, input, encoding: 'utf8', timeout: 60000 });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

describe('parley command', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--version and --help', () => {
    const v = parley(dir, ['--version']);
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
    const h = parley(dir, ['--help']);
    assert.equal(h.status, 0);
    for (const cmd of ['start', 'init', 'check', 'user']) assert.match(h.stdout, new RegExp(`\\b${cmd}\\b`));
  });

  test('init writes a commented config; a second init refuses to overwrite', () => {
    const r = parley(dir, ['init', '--domain', 'chat.example']);
    assert.equal(r.status, 0, r.stderr);
    const text = readFileSync(join(dir, 'parley.yaml'), 'utf8');
    assert.match(text, /^#/m);
    assert.match(text, /domain: chat\.example/);
    const again = parley(dir, ['init']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /exists/);
    rmSync(join(dir, 'parley.yaml'));
  });

  test('an invalid config stops with a message naming the option', () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'c2s:\n  port: "abc"\nlimits:\n  max_stanza_sise: 5\n');
    const r = parley(dir, ['--config', cfg, 'start']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /c2s\.port/);
    assert.match(r.stderr, /limits\.max_stanza_sise: unknown option/);
  });

  test('user add / list / passwd / remove, password from stdin when not given', () => {
    assert.equal(parley(dir, ['user', 'add', 'alice', 'pw1']).status, 0);
    const fromStdin = parley(dir, ['user', 'add', 'bob@localhost'], 'pw2\n');
    assert.equal(fromStdin.status, 0, fromStdin.stderr);
    const dup = parley(dir, ['user', 'add', 'alice', 'x']);
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /exists/);
    const bad = parley(dir, ['user', 'add', 'a b', 'x']);
    assert.equal(bad.status, 1);
    assert.deepEqual(parley(dir, ['user', 'list']).stdout.trim().split('\n'), ['alice@localhost', 'bob@localhost']);
    assert.equal(parley(dir, ['user', 'passwd', 'alice', 'pw3']).status, 0);
    assert.equal(parley(dir, ['user', 'remove', 'bob']).status, 0);
    assert.deepEqual(parley(dir, ['user', 'list']).stdout.trim().split('\n'), ['alice@localhost']);
    assert.equal(parley(dir, ['user', 'remove', 'bob']).status, 1);
  });

  test('check validates config, certificate, storage and ports', async () => {
    const port = await freePort();
    const cfg = join(dir, 'check.yaml');
    writeFileSync(cfg, `c2s:\n  port: ${port}\n  direct_tls_port: null\n  interfaces: ["127.0.0.1"]\n`);
    const ok = parley(dir, ['--config', cfg, 'check']);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /ok\s+certificate .* for localhost/);
    const blocker = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const r = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
        const c = spawn(process.execPath, [BIN, '--config', cfg, 'check'], { cwd: dir });
        let stdout = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.on('close', (status) => resolve({ status, stdout }));
      });
      assert.equal(r.status, 1);
      assert.match(r.stdout, new RegExp(`FAIL\\s+port ${port} on 127.0.0.1: already in use`));
    } finally {
      blocker.close();
    }
  });

  test('start serves clients; SIGTERM sends system-shutdown and </stream:stream>, then exits 0', async () => {
    const port = await freePort();
    const tlsPort = await freePort();
    const cfg = join(dir, 'run.yaml');
    writeFileSync(cfg, `c2s:\n  port: ${port}\n  direct_tls_port: ${tlsPort}\n  interfaces: ["127.0.0.1"]\nlog_level: silent\n`);
    const child = spawn(process.execPath, [BIN, '--config', cfg, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20000;
      while (!out.includes('Create an account') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(out, new RegExp(`127\\.0\\.0\\.1:${tlsPort}`));
      assert.match(out, /user add/);
      const { client } = await RawClient.login(port, 'alice', 'pw3');
      child.kill('SIGTERM');
      assert.equal(await client.streamError(10000), 'system-shutdown');
      await client.waitFor(() => client.ended, 5000, '</stream:stream>');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  /** Starts the server through the launcher (under `prefix`, e.g. taskset); its Node options, read from /proc once it serves. */
  async function launchedNodeOptions(prefix: string[], env: Record<string, string> = {}): Promise<string[]> {
    const port = await freePort();
    const cfg = join(dir, 'launch.yaml');
    writeFileSync(cfg, `c2s:\n  port: ${port}\n  direct_tls_port: null\n  interfaces: ["127.0.0.1"]\nhttp:\n  port: null\nlog_level: silent\n`);
    const argv = [...prefix, 'sh', LAUNCHER, '--config', cfg, 'start'];
    const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20000;
      while (!out.includes(`127.0.0.1:${port}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, new RegExp(`127\\.0\\.0\\.1:${port}`));
      // taskset and sh exec: the child's pid is Node's.
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      assert.match(cmdline[0]!, /node$/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      return cmdline.slice(1, cmdline.indexOf(BIN));
    } finally {
      child.kill('SIGKILL');
    }
  }

  test('the launcher runs V8\'s GC on the main thread where the process has one CPU, and only there', async () => {
    assert.deepEqual(await launchedNodeOptions(['taskset', '-c', '0']), ['--single-threaded-gc']);
    assert.deepEqual(await launchedNodeOptions(['taskset', '-c', '0'], { PARLEY_SINGLE_THREADED_GC: '0' }), []);
    if (availableParallelism() > 1) assert.deepEqual(await launchedNodeOptions([]), []);
    assert.deepEqual(await launchedNodeOptions([], { PARLEY_SINGLE_THREADED_GC: '1' }), ['--single-threaded-gc']);
  });
});
