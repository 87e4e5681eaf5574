/**
 * The configuration (`parley.yaml`): defaults, the `parley init` template, error messages
 * naming each wrong option by its dotted path, durations, and loading files.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  configTemplate,
  defaultConfig,
  duration,
  formatDuration,
  loadConfigFile,
  parseConfig,
  parseDuration,
  resolveDataPath,
  type ParleyConfig,
} from '../src/config/index.ts';

/** The documented defaults (docs/configuration.md), written out. */
const DEFAULTS: ParleyConfig = {
  domain: 'localhost',
  data_dir: './data',
  log_level: 'info',
  c2s: {
    port: 5222,
    direct_tls_port: 5223,
    interfaces: ['::'],
    require_encryption: true,
    auth_timeout: 30_000,
  },
  http: {
    port: 5280,
    tls_port: 5281,
    interfaces: ['127.0.0.1', '::1'],
    allowed_origins: [],
    secure_loopback: true,
    trust_proxy: false,
    websocket: { enabled: true, path: '/xmpp-websocket', keepalive: 30_000 },
    bosh: { enabled: true, path: '/http-bind', max_wait: 60_000, max_inactivity: 60_000, max_hold: 1, max_pause: 120_000 },
    chat: { enabled: true, path: '/chat' },
  },
  tls: { certificate: null, key: null, min_version: 'TLSv1.2' },
  auth: {
    mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'PLAIN'],
    scram_iterations: 4096,
    allow_plain_without_tls: false,
    failure_delay: 1000,
    max_failure_delay: 30_000,
  },
  limits: { max_stanza_size: 262_144, max_depth: 32, max_attributes: 64, max_output_queue: 4_194_304 },
  ping: { interval: 300_000, timeout: 60_000 },
  storage: { driver: 'sqlite', path: 'parley.db' },
  modules: { disabled: [], extra: [], version: { name: 'Parley', show_os: false }, vcard: { max_size: 131_072 }, roster: { max_items: 1000 }, offline: { max_messages: 500 }, muc: { host: null, name: 'Chatrooms', creation: 'local', admins: [], history_length: 20, max_users: 1000, groupchat_1_0: true, default_room: { public: true, persistent: false, members_only: false, moderated: false, whois: 'moderators', allow_pm: 'anyone', allow_invites: false, change_subject: false, logging: false, max_users: 200 } }, legacyauth: { enabled: false }, register: { policy: null, extra_fields: [], rate_limit: { max: 5, window: 3_600_000 }, exempt: ['127.0.0.0/8', '::1'] } },
  server_info: { contact: { abuse: [], admin: [], feedback: [], sales: [], security: [], status: [], support: [] }, extra_forms: [] },
};

/** Runs `fn`, expects a ConfigError, and returns its message lines. */
function configErrorLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message.split('\n');
  }
  assert.fail('expected a ConfigError, nothing was thrown');
}

/** Expects `input` to be rejected with a problem line starting `- <path>: ` and matching `pattern`. */
function assertProblem(input: unknown, path: string, pattern: RegExp): void {
  const lines = configErrorLines(() => parseConfig(input));
  const line = lines.find((candidate) => candidate.startsWith(`- ${path}: `));
  assert.ok(line !== undefined, `no problem reported for ${path}:\n${lines.join('\n')}`);
  assert.match(line, pattern);
}

/** The tree of option names in a parsed object (values dropped). */
function keyTree(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, child]) => [key, keyTree(child)]),
  );
}

describe('defaults', () => {
  it('an empty file (empty object, null or undefined) gives every default', () => {
    assert.deepEqual(parseConfig({}), DEFAULTS);
    assert.deepEqual(parseConfig(null), DEFAULTS);
    assert.deepEqual(parseConfig(undefined), DEFAULTS);
    assert.deepEqual(defaultConfig(), DEFAULTS);
  });

  it('a section left empty (YAML null) gives that section’s defaults', () => {
    const config = parseConfig(parseYaml('c2s:\ntls:\nstorage:\nmodules:\n  version:\n'));
    assert.deepEqual(config, DEFAULTS);
  });

  it('options given override only themselves', () => {
    const config = parseConfig({ domain: 'example.com', c2s: { port: 0 }, storage: { path: 'x.db' } });
    assert.equal(config.domain, 'example.com');
    assert.equal(config.c2s.port, 0);
    assert.equal(config.c2s.direct_tls_port, 5223);
    assert.deepEqual(config.storage, { driver: 'sqlite', path: 'x.db' });
  });

  it('parses do not share default lists', () => {
    const first = parseConfig({});
    first.auth.mechanisms.pop();
    first.c2s.interfaces.push('127.0.0.1');
    first.modules.disabled.push('ping');
    assert.deepEqual(parseConfig({}), DEFAULTS);
  });

  it('accepts PostgreSQL storage with its defaults', () => {
    const config = parseConfig({ storage: { driver: 'postgres', url: 'postgres://parley@db.example.com/parley' } });
    assert.deepEqual(config.storage, { driver: 'postgres', url: 'postgres://parley@db.example.com/parley', pool_size: 10 });
  });

  it('accepts null for the options that allow it', () => {
    const config = parseConfig({ c2s: { direct_tls_port: null }, ping: { interval: null } });
    assert.equal(config.c2s.direct_tls_port, null);
    assert.equal(config.ping.interval, null);
  });

  it('lower-cases the domain', () => {
    assert.equal(parseConfig({ domain: 'Chat.Example.COM' }).domain, 'chat.example.com');
    assert.equal(parseConfig({ domain: '[2001:db8::1]' }).domain, '[2001:db8::1]');
    assert.equal(parseConfig({ domain: 'bücher.example' }).domain, 'bücher.example');
  });
});

describe('configTemplate (parley init)', () => {
  it('parses to exactly the defaults', () => {
    assert.deepEqual(parseConfig(parseYaml(configTemplate())), DEFAULTS);
  });

  it('parses to the defaults with the given domain', () => {
    assert.deepEqual(parseConfig(parseYaml(configTemplate({ domain: 'chat.example.org' }))), {
      ...DEFAULTS,
      domain: 'chat.example.org',
    });
    // A domain YAML would misread unquoted is quoted.
    assert.equal(parseConfig(parseYaml(configTemplate({ domain: 'bücher.example' }))).domain, 'bücher.example');
    assert.equal(parseConfig(parseYaml(configTemplate({ domain: 'null.example' }))).domain, 'null.example');
  });

  it('lists every option, each with a comment', () => {
    const template = configTemplate();
    assert.deepEqual(keyTree(parseYaml(template)), keyTree(DEFAULTS));
    const lines = template.split('\n');
    lines.forEach((line, index) => {
      if (/^\s*[a-z_]+:/.test(line)) {
        assert.match(lines[index - 1] ?? '', /^\s*#/, `option line ${index + 1} has no comment above it: ${line}`);
      }
    });
  });
});

describe('errors name the option by its dotted path', () => {
  it('wrong type', () => {
    assertProblem({ c2s: { require_encryption: 'yes' } }, 'c2s.require_encryption', /expected true or false, got "yes"/);
    assertProblem({ domain: 42 }, 'domain', /expected a domain name .*got 42/);
    assertProblem({ c2s: 'on' }, 'c2s', /expected a mapping .*got "on"/);
    assertProblem({ auth: { mechanisms: 'PLAIN' } }, 'auth.mechanisms', /expected a list .*got "PLAIN"/);
    assertProblem([], '(top level)', /expected a mapping .*got a list/);
  });

  it('out of range or not an integer', () => {
    assertProblem({ c2s: { port: 'abc' } }, 'c2s.port', /^- c2s\.port: expected an integer between 0 and 65535, got "abc"$/);
    assertProblem({ c2s: { port: 70000 } }, 'c2s.port', /expected an integer between 0 and 65535, got 70000/);
    assertProblem({ c2s: { direct_tls_port: 52.5 } }, 'c2s.direct_tls_port', /got 52\.5/);
    assertProblem({ auth: { scram_iterations: 1000 } }, 'auth.scram_iterations', /at least 4096, got 1000/);
    assertProblem({ limits: { max_stanza_size: 100 } }, 'limits.max_stanza_size', /at least 10000 \(bytes\), got 100/);
    assertProblem({ storage: { driver: 'postgres', url: 'postgres://x/y', pool_size: 0 } }, 'storage.pool_size', /got 0/);
  });

  it('value not among the allowed ones', () => {
    assertProblem({ log_level: 'verbose' }, 'log_level', /expected one of "fatal", .*"silent", got "verbose"/);
    assertProblem({ tls: { min_version: 'TLSv1.1' } }, 'tls.min_version', /"TLSv1.2", "TLSv1.3", got "TLSv1.1"/);
    assertProblem({ auth: { mechanisms: ['PLAIN', 'DIGEST-MD5'] } }, 'auth.mechanisms[1]', /got "DIGEST-MD5"/);
    assertProblem({ auth: { mechanisms: [] } }, 'auth.mechanisms', /at least one mechanism/);
    assertProblem({ auth: { mechanisms: ['PLAIN', 'PLAIN'] } }, 'auth.mechanisms[1]', /listed twice/);
    assertProblem({ modules: { disabled: ['roster'] } }, 'modules.disabled[0]', /"disco", "ping", "version", "time"(?:, "[a-z]+")*, got "roster"/);
    assertProblem({ c2s: { interfaces: ['all'] } }, 'c2s.interfaces[0]', /expected an IP address/);
  });

  it('unknown option at the top level', () => {
    assertProblem({ foo: 1 }, 'foo', /^- foo: unknown option/);
    assertProblem({ dataDir: 'x' }, 'dataDir', /unknown option \(did you mean "data_dir"\?\)/);
    assertProblem({ port: 5222 }, 'port', /unknown option \(did you mean c2s\.port/);
  });

  it('HTTP paths', () => {
    assert.equal(parseConfig({ http: { chat: { path: '/' } } }).http.chat.path, '/');
    assert.equal(parseConfig({ http: { websocket: { path: '/xmpp/ws' } } }).http.websocket.path, '/xmpp/ws');
    assertProblem({ http: { chat: { path: '/chat/' } } }, 'http.chat.path', /no trailing "\/"/);
    assertProblem({ http: { chat: { path: 'chat' } } }, 'http.chat.path', /absolute URL path/);
    assertProblem({ http: { bosh: { path: '//x' } } }, 'http.bosh.path', /non-empty segments/);
    assertProblem({ http: { chat: { path: '/%2e' } } }, 'http.chat.path', /no escapes/);
    assertProblem({ http: { chat: { path: '/a/../b' } } }, 'http.chat.path', /without "\." or "\.\." segments/);
  });

  it('unknown option in a section', () => {
    assertProblem({ tls: { foo: 1 } }, 'tls.foo', /^- tls\.foo: unknown option/);
    assertProblem({ c2s: { requre_encryption: true } }, 'c2s.requre_encryption', /did you mean "require_encryption"/);
    assertProblem({ tls: { keyfile: 'k.pem', certificate: 'c.pem' } }, 'tls.keyfile', /did you mean "key"/);
    assertProblem({ modules: { version: { nmae: 'x' } } }, 'modules.version.nmae', /did you mean "name"/);
    assertProblem({ storage: { url: 'postgres://x/y' } }, 'storage.url', /option of driver: postgres/);
  });

  it('every unknown option is listed, one per line', () => {
    const lines = configErrorLines(() => parseConfig({ a: 1, b: 2, c2s: { c: 3 } }));
    assert.ok(lines.includes('- a: unknown option (options here: domain, data_dir, log_level, c2s, http, tls, auth, limits, ping, storage, modules, server_info)'));
    assert.ok(lines.some((line) => line.startsWith('- b: unknown option')));
    assert.ok(lines.some((line) => line.startsWith('- c2s.c: unknown option')));
  });

  it('tls certificate without key, and key without certificate', () => {
    assertProblem({ tls: { certificate: '/etc/parley/cert.pem' } }, 'tls.key', /must be set when tls\.certificate is set/);
    assertProblem({ tls: { key: '/etc/parley/key.pem' } }, 'tls.certificate', /must be set when tls\.key is set/);
  });

  it('invalid duration', () => {
    assertProblem({ ping: { interval: '5 minutes' } }, 'ping.interval', /expected a duration .*got "5 minutes"/);
    assertProblem({ ping: { timeout: '-1s' } }, 'ping.timeout', /expected a duration/);
    assertProblem({ c2s: { auth_timeout: true } }, 'c2s.auth_timeout', /expected a duration .*got true/);
    assertProblem({ auth: { failure_delay: '10s', max_failure_delay: '5s' } }, 'auth.max_failure_delay', /not be shorter than auth\.failure_delay \(10s\)/);
  });

  it('bad storage driver, and a missing required option', () => {
    assertProblem({ storage: { driver: 'mysql' } }, 'storage.driver', /expected one of "sqlite", "postgres", got "mysql"/);
    assertProblem({ storage: { driver: 'postgres' } }, 'storage.url', /required option is missing/);
    assertProblem({ storage: { driver: 'postgres', url: 'mysql://db/x' } }, 'storage.url', /expected a connection URL/);
  });

  it('invalid domain', () => {
    assertProblem({ domain: 'alice@example.com' }, 'domain', /without a user part/);
    assertProblem({ domain: 'example.com/res' }, 'domain', /without "\/"/);
    assertProblem({ domain: 'example.com:5222' }, 'domain', /c2s\.port/);
    assertProblem({ domain: '' }, 'domain', /empty/);
    assertProblem({ domain: 'a..b' }, 'domain', /empty label/);
  });

  it('direct TLS on the STARTTLS port', () => {
    assertProblem({ c2s: { port: 5222, direct_tls_port: 5222 } }, 'c2s.direct_tls_port', /must differ from c2s\.port/);
  });

  it('the error carries the source and the problems', () => {
    try {
      parseConfig({ c2s: { port: -1 }, foo: 1 }, '/etc/parley/parley.yaml');
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.name, 'ConfigError');
      assert.equal(error.source, '/etc/parley/parley.yaml');
      assert.equal(error.message.split('\n')[0], 'Invalid configuration in /etc/parley/parley.yaml:');
      assert.deepEqual(
        error.problems.map((problem) => problem.path),
        ['c2s.port', 'foo'],
      );
    }
  });
});

describe('durations', () => {
  it('parseDuration reads units and compounds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1m 30s'), 90_000);
    assert.equal(parseDuration('0s'), 0);
  });

  it('parseDuration refuses what is not a duration', () => {
    for (const text of ['', '5', '-1s', '5 minutes', '1w', 's', '1s2', 'abc']) {
      assert.equal(parseDuration(text), null, text);
    }
  });

  it('duration() takes milliseconds or strings and outputs milliseconds', () => {
    const schema = duration();
    assert.equal(schema.parse(1500), 1500);
    assert.equal(schema.parse('2m'), 120_000);
    assert.equal(schema.parse(0), 0);
    assert.equal(schema.safeParse(-1).success, false);
    assert.equal(schema.safeParse(Number.POSITIVE_INFINITY).success, false);
    assert.equal(schema.safeParse('10').success, false);
    assert.equal(duration({ min: 1000 }).safeParse('500ms').success, false);
  });

  it('config durations are milliseconds', () => {
    const config = parseConfig({ c2s: { auth_timeout: '1m' }, ping: { interval: '1h', timeout: 45_000 }, auth: { failure_delay: '250ms' } });
    assert.equal(config.c2s.auth_timeout, 60_000);
    assert.equal(config.ping.interval, 3_600_000);
    assert.equal(config.ping.timeout, 45_000);
    assert.equal(config.auth.failure_delay, 250);
  });

  it('formatDuration is the inverse of parseDuration', () => {
    for (const ms of [0, 1, 1500, 30_000, 300_000, 3_600_000, 86_400_000]) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
    assert.equal(formatDuration(30_000), '30s');
    assert.equal(formatDuration(300_000), '5m');
  });
});

describe('loadConfigFile', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-config-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let count = 0;
  /** A fresh empty directory under the temp root. */
  const freshDir = (): string => {
    count += 1;
    const dir = join(root, `case-${count}`);
    mkdirSync(dir);
    return dir;
  };

  it('with an explicit path that does not exist: ConfigError naming the file', () => {
    const dir = freshDir();
    const lines = configErrorLines(() => loadConfigFile(join(dir, 'missing.yaml')));
    assert.equal(lines[0], `Cannot read configuration file ${join(dir, 'missing.yaml')}:`);
    assert.match(lines[1] ?? '', /no such file/);
  });

  it('with null and no parley.yaml in the directory: the defaults, path null', () => {
    const dir = freshDir();
    const result = loadConfigFile(null, { cwd: dir });
    assert.equal(result.path, null);
    assert.deepEqual(result.config, { ...DEFAULTS, data_dir: join(dir, 'data') });
  });

  it('with null and a parley.yaml in the directory: reads it', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'parley.yaml'), configTemplate({ domain: 'example.net' }));
    const result = loadConfigFile(null, { cwd: dir });
    assert.equal(result.path, join(dir, 'parley.yaml'));
    assert.deepEqual(result.config, { ...DEFAULTS, domain: 'example.net', data_dir: join(dir, 'data') });
  });

  it('an empty file gives the defaults', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'empty.yaml'), '# nothing here\n');
    assert.deepEqual(loadConfigFile('empty.yaml', { cwd: dir }).config, { ...DEFAULTS, data_dir: join(dir, 'data') });
  });

  it('resolves relative paths against the file’s directory', () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(
      join(dir, 'etc', 'parley.yaml'),
      'data_dir: ../var\ntls:\n  certificate: certs/fullchain.pem\n  key: /abs/privkey.pem\nmodules:\n  extra: [./my-module.ts, parley-module-foo]\n',
    );
    const { config } = loadConfigFile('etc/parley.yaml', { cwd: dir });
    assert.equal(config.data_dir, join(dir, 'var'));
    assert.equal(config.tls.certificate, join(dir, 'etc', 'certs', 'fullchain.pem'));
    assert.equal(config.tls.key, '/abs/privkey.pem');
    assert.deepEqual(config.modules.extra, [join(dir, 'etc', 'my-module.ts'), 'parley-module-foo']);
    assert.equal(resolveDataPath(config, config.storage.driver === 'sqlite' ? config.storage.path : ''), join(dir, 'var', 'parley.db'));
  });

  it('a YAML syntax error names the line', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'bad.yaml'), 'domain: example.com\nc2s:\n  port: 5222: 5223\nlog_level: info\n');
    const lines = configErrorLines(() => loadConfigFile(join(dir, 'bad.yaml')));
    assert.equal(lines[0], `Invalid configuration in ${join(dir, 'bad.yaml')}:`);
    assert.match(lines[1] ?? '', /^- YAML syntax error at line 3, column \d+: /);
  });

  it('a duplicate key is a syntax error naming the line', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'dup.yaml'), 'domain: a.example\nlog_level: info\ndomain: b.example\n');
    const lines = configErrorLines(() => loadConfigFile(join(dir, 'dup.yaml')));
    assert.match(lines[1] ?? '', /^- YAML syntax error at line 3, .*unique/);
  });

  it('an invalid option names the dotted path and the line', () => {
    const dir = freshDir();
    writeFileSync(
      join(dir, 'parley.yaml'),
      'domain: example.com\nc2s:\n  port: abc\ntls:\n  certificate: /c.pem\n  keyfile: /k.pem\n',
    );
    const lines = configErrorLines(() => loadConfigFile(null, { cwd: dir }));
    assert.equal(lines[0], `Invalid configuration in ${join(dir, 'parley.yaml')}:`);
    assert.ok(lines.includes('- c2s.port: expected an integer between 0 and 65535, got "abc" (line 3)'), lines.join('\n'));
    assert.ok(lines.includes('- tls.keyfile: unknown option (did you mean "key"?) (line 6)'), lines.join('\n'));
  });
});

describe('resolveDataPath', () => {
  it('joins relative paths to data_dir and keeps absolute ones', () => {
    assert.equal(resolveDataPath({ data_dir: '/var/lib/parley' }, 'parley.db'), '/var/lib/parley/parley.db');
    assert.equal(resolveDataPath({ data_dir: '/var/lib/parley' }, 'tls/cert.pem'), '/var/lib/parley/tls/cert.pem');
    assert.equal(resolveDataPath({ data_dir: '/var/lib/parley' }, '/srv/parley.db'), '/srv/parley.db');
    assert.equal(resolveDataPath({ data_dir: './data' }, 'parley.db'), join(process.cwd(), 'data', 'parley.db'));
    assert.equal(resolveDataPath({ data_dir: '/var/lib/parley' }, ':memory:'), ':memory:');
  });
});

describe('modules.register (XEP-0077)', () => {
  it('accepts a policy, extra fields with defaults, a rate limit and exempt ranges', () => {
    const config = parseConfig({
      modules: {
        register: {
          policy: 'invite',
          extra_fields: [{ var: 'email', label: 'Email address', required: true }, { var: 'x-newsletter', type: 'boolean' }],
          rate_limit: { max: 2, window: '10m' },
          exempt: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'],
        },
      },
    });
    assert.deepEqual(config.modules.register, {
      policy: 'invite',
      extra_fields: [
        { var: 'email', label: 'Email address', type: 'text-single', required: true },
        { var: 'x-newsletter', type: 'boolean', required: false },
      ],
      rate_limit: { max: 2, window: 600_000 },
      exempt: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'],
    });
  });

  it('names what is wrong', () => {
    assertProblem({ modules: { register: { policy: 'public' } } }, 'modules.register.policy', /"open", "closed", "invite", got "public"/);
    assertProblem({ modules: { register: { extra_fields: [{ var: 'password' }] } } }, 'modules.register.extra_fields[0].var', /used by the registration form itself/);
    assertProblem({ modules: { register: { extra_fields: [{ var: 'email' }, { var: 'email' }] } } }, 'modules.register.extra_fields[1].var', /listed twice/);
    assertProblem({ modules: { register: { extra_fields: [{ var: 'color', type: 'list-single' }] } } }, 'modules.register.extra_fields[0].type', /got "list-single"/);
    assertProblem({ modules: { register: { exempt: ['localhost'] } } }, 'modules.register.exempt[0]', /IP address or CIDR range .*not an IP address/);
    assertProblem({ modules: { register: { exempt: ['10.0.0.0/33'] } } }, 'modules.register.exempt[0]', /prefix length must be 0–32/);
    assertProblem({ modules: { register: { rate_limit: { max: 0 } } } }, 'modules.register.rate_limit.max', /at least 1, got 0/);
  });
});
