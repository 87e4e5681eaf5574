/**
 * The schema of `parley.yaml`, the server's one configuration file (ARCHITECTURE.md §7).
 *
 * Every option has a default, so an empty file (or no file) gives a working server for
 * `localhost`. Every section is a strict object: an option the schema does not know is an
 * error, never silently ignored (a typo such as `requre_encryption` must not quietly leave
 * the default in force). A section written but left empty (`c2s:` with every child commented
 * out, which YAML reads as `null`) means "all defaults".
 *
 * Option names are snake_case, as written in YAML; the parsed `ParleyConfig` keeps them.
 * Durations are parsed to milliseconds. Each option is documented in docs/configuration.md.
 */
import { isIP, isIPv6 } from 'node:net';
import { z } from 'zod';

// ---------------------------------------------------------------------------------------
// Describing values in error messages
// ---------------------------------------------------------------------------------------

/**
 * A short human description of a configuration value, for error messages: strings quoted
 * (JSON style, cut at 60 characters), numbers and booleans as written, `null`, "a list",
 * "a mapping", "nothing" for `undefined`.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const cut = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(cut);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return `a date (${value.toISOString()}); quote it to make it a string`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** An error map giving every issue of one schema the same "expected …, got …" message. */
function expecting(expected: string): z.core.$ZodErrorMap {
  return (issue) =>
    issue.input === undefined
      ? `required option is missing (expected ${expected})`
      : `expected ${expected}, got ${describeValue(issue.input)}`;
}

// ---------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------

/**
 * A configuration section: a strict object (unknown keys are `unrecognized_keys` issues)
 * where `null` or a missing section means `{}`, i.e. all of the section's defaults.
 */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((value: unknown) => value ?? {}, schema);
}

/**
 * An integer option in `[min, max]` (`max` defaults to `Number.MAX_SAFE_INTEGER`), with one
 * message for every way it can be wrong, e.g. `expected an integer between 0 and 65535,
 * got "abc"`. `unit` is appended to the expectation (e.g. " (bytes)").
 */
function integer(min: number, max?: number, unit = ''): z.ZodNumber {
  const expected =
    max === undefined ? `an integer of at least ${min}${unit}` : `an integer between ${min} and ${max}${unit}`;
  const error = expecting(expected);
  const schema = z.int({ error }).min(min, { error });
  return max === undefined ? schema : schema.max(max, { error });
}

/** A TCP port number: an integer in 0..65535 (0 = let the operating system pick a free port). */
function port(): z.ZodNumber {
  return integer(0, 65535);
}

/** A boolean option; YAML 1.2 reads `yes`/`no`/`on`/`off` as strings, so say so. */
function flag(): z.ZodBoolean {
  return z.boolean({
    error: (issue) => {
      const got = describeValue(issue.input);
      const hint =
        typeof issue.input === 'string' && /^(y|yes|n|no|on|off|true|false)$/i.test(issue.input)
          ? ' (YAML 1.2: write true or false, unquoted)'
          : '';
      return `expected true or false, got ${got}${hint}`;
    },
  });
}

/** A non-empty string option. */
function text(what = 'a non-empty string'): z.ZodString {
  const error = expecting(what);
  return z.string({ error }).min(1, { error });
}

// ---------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION_PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/y;

/**
 * Parses a duration string into milliseconds (rounded to an integer).
 *
 * Takes one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`, optionally
 * separated by spaces: `"500ms"`, `"30s"`, `"1.5s"`, `"5m"`, `"1h30m"`. Returns the total in
 * ms, or `null` if the text is not such a duration (a bare number without a unit, a
 * negative value, an unknown unit, an empty string).
 */
export function parseDuration(text: string): number | null {
  const input = text.trim();
  if (input === '') return null;
  let total = 0;
  let position = 0;
  while (position < input.length) {
    DURATION_PART.lastIndex = position;
    const match = DURATION_PART.exec(input);
    if (match === null) return null;
    total += Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
    position = DURATION_PART.lastIndex;
    while (input[position] === ' ') position += 1;
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : null;
}

/**
 * Formats milliseconds as the shortest exact duration string of one unit: `30000` →
 * `"30s"`, `300000` → `"5m"`, `1500` → `"1500ms"`. The inverse of `parseDuration` for
 * non-negative integers.
 */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS_MS[unit] as number;
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** The schema type of a duration option: number (ms) or duration string in, ms out. */
export type DurationSchema = z.ZodPipe<
  z.ZodUnion<readonly [z.ZodNumber, z.ZodString]>,
  z.ZodTransform<number, number | string>
>;

/**
 * A duration option: a number of milliseconds (`1500`) or a string with units (`"500ms"`,
 * `"30s"`, `"5m"`, `"1h"`, `"1h30m"`, see `parseDuration`); the parsed value is an integer
 * number of milliseconds. `min` (ms, default 0) is the smallest accepted duration.
 * Wrong values give `expected a duration (…), got …`.
 */
export function duration(options: { min?: number } = {}): DurationSchema {
  const min = options.min ?? 0;
  const expected = `${min > 0 ? `a duration of at least ${formatDuration(min)}` : 'a duration'} such as "500ms", "30s", "5m" or "1h" (a bare number is milliseconds)`;
  const error = expecting(expected);
  return z.union([z.number(), z.string()], { error }).transform((value, ctx) => {
    const ms =
      typeof value === 'number'
        ? Number.isFinite(value) && value >= 0
          ? Math.round(value)
          : null
        : parseDuration(value);
    if (ms === null || ms < min) {
      ctx.issues.push({ code: 'custom', message: `expected ${expected}, got ${describeValue(value)}`, input: value });
      return z.NEVER;
    }
    return ms;
  });
}

// ---------------------------------------------------------------------------------------
// Domain
// ---------------------------------------------------------------------------------------

/**
 * Why `domain` is not a usable XMPP domainpart, or `null` if it is. A loose check
 * ("hostname-ish", RFC 7622 §3.2): DNS labels of letters, digits, `-`, `_` or non-ASCII
 * (internationalized) characters, or an IP literal (`192.0.2.1`, `[2001:db8::1]`); at most
 * 1023 bytes, labels at most 63 bytes.
 */
function domainProblem(domain: string): string | null {
  if (domain === '') return 'it is empty';
  if (domain.includes('@')) return 'give the domain only, without a user part ("@")';
  if (domain.includes('/')) return 'give the domain only, without "/" (no resource, scheme or URL path)';
  if (/[\s\p{Cc}]/u.test(domain)) return 'it contains spaces or control characters';
  if (domain.startsWith('[') && domain.endsWith(']')) {
    return isIPv6(domain.slice(1, -1)) ? null : 'the bracketed IPv6 literal is not a valid address';
  }
  if (domain.includes(':')) return 'it contains ":" (a port belongs in c2s.port, an IPv6 literal in [brackets])';
  if (Buffer.byteLength(domain, 'utf8') > 1023) return 'it is longer than 1023 bytes (RFC 7622 §3.2)';
  if (domain.endsWith('.')) return 'it ends with "." (RFC 7622 §3.2: leave the trailing dot out)';
  for (const label of domain.split('.')) {
    if (label === '') return 'it contains an empty label ("..", or a leading ".")';
    if (Buffer.byteLength(label, 'utf8') > 63) return `the label "${label.slice(0, 20)}…" is longer than 63 bytes`;
    if (/[\x00-\x7f]/.test(label) && !/^(?:[A-Za-z0-9_-]|[^\x00-\x7f])+$/.test(label)) {
      return `the label ${JSON.stringify(label)} contains a character other than letters, digits, "-" and "_"`;
    }
  }
  return null;
}

/** The XMPP domain: a hostname-ish string, lower-cased (domainparts are case-insensitive). */
const domainSchema = z
  .string({ error: expecting('a domain name such as "example.com"') })
  .transform((value, ctx) => {
    const problem = domainProblem(value);
    if (problem !== null) {
      ctx.issues.push({
        code: 'custom',
        message: `expected a domain name such as "example.com", got ${describeValue(value)}: ${problem}`,
        input: value,
      });
      return z.NEVER;
    }
    return isIP(value) === 0 ? value.toLowerCase() : value;
  });

// ---------------------------------------------------------------------------------------
// Enumerations
// ---------------------------------------------------------------------------------------

/** Log levels, pino's names (`silent` turns logging off). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A pino log level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * SASL mechanisms the server can offer (RFC 6120 §6): SCRAM (RFC 5802, RFC 7677; `-PLUS` =
 * with channel binding, RFC 9266 `tls-exporter`) and PLAIN (RFC 4616).
 */
export const SASL_MECHANISMS = [
  'SCRAM-SHA-1',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-512',
  'SCRAM-SHA-512-PLUS',
  'PLAIN',
] as const;

/** A SASL mechanism name, as advertised in `<mechanisms/>` (RFC 6120 §6.4.1). */
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** `auth.mechanisms` by default: the strongest first, channel-binding variants preferred. */
export const DEFAULT_SASL_MECHANISMS: readonly SaslMechanism[] = [
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-1',
  'PLAIN',
];

/**
 * The built-in modules that `modules.disabled` may name. A new built-in module adds its
 * name here (the module loader refuses names it does not know).
 */
export const BUILTIN_MODULES = ['disco', 'ping', 'version', 'time', 'presence', 'offline', 'vcard', 'private', 'register', 'caps', 'legacyauth', 'blocking', 'last', 'muc'] as const;

/** The name of a built-in module. */
export type BuiltinModuleName = (typeof BUILTIN_MODULES)[number];

/** TLS protocol versions accepted as `tls.min_version` (node:tls names). */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** A PostgreSQL schema name, as the storage layer accepts it. */
const PG_SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

// ---------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------

/** A list of IP addresses to listen on, at least one. */
function interfaces(defaults: string[]) {
  return z
    .array(
      z.string({ error: expecting('an IP address such as "::" or "127.0.0.1"') }).refine((value) => isIP(value) !== 0, {
        error: expecting('an IP address such as "::" or "127.0.0.1"'),
      }),
      { error: expecting('a list of IP addresses, e.g. ["::"]') },
    )
    .min(1, { error: 'expected at least one address to listen on, got an empty list' })
    .default(() => [...defaults]);
}

/** An HTTP path: `/`, or `/`-separated non-empty segments of unreserved characters (no `.`/`..`, no trailing `/`). */
function urlPath(def: string) {
  const error = expecting('an absolute URL path such as "/chat": "/" or non-empty segments, no trailing "/", no escapes, query or fragment');
  return text('an absolute URL path such as "/chat"')
    .regex(/^(\/|(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+)$/, { error })
    .refine((p) => !p.split('/').some((segment) => segment === '.' || segment === '..'), { error: expecting('a URL path without "." or ".." segments') })
    .default(def);
}

/**
 * `http`: the one HTTP(S) listener (ARCHITECTURE §6) — WebSocket (RFC 7395), BOSH
 * (XEP-0124/0206), connection-method discovery (XEP-0156) and the web chat page.
 */
const httpSchema = section(
  z
    .strictObject({
      port: port().nullable().default(5280),
      tls_port: port().nullable().default(5281),
      // Loopback only by default: a public listener is a decision (behind a reverse proxy, or with a real certificate).
      interfaces: interfaces(['127.0.0.1', '::1']),
      allowed_origins: z
        .array(
          text('an origin such as "https://example.com", or "*"').refine((v) => v === '*' || /^https?:\/\/[^/\s]+$/.test(v), {
            error: expecting('an origin such as "https://example.com" (scheme, host, optional port; no path), or "*"'),
          }),
          { error: expecting('a list of origins') },
        )
        .default(() => []),
      secure_loopback: flag().default(true),
      trust_proxy: flag().default(false),
      websocket: section(
        z.strictObject({
          enabled: flag().default(true),
          path: urlPath('/xmpp-websocket'),
          keepalive: duration({ min: 1000 }).prefault('30s'),
        }),
      ),
      bosh: section(
        z.strictObject({
          enabled: flag().default(true),
          path: urlPath('/http-bind'),
          max_wait: duration({ min: 1000 }).prefault('60s'),
          max_inactivity: duration({ min: 1000 }).prefault('60s'),
          max_hold: integer(1, 10).default(1),
          max_pause: duration({ min: 1000 }).prefault('120s'),
        }),
      ),
      chat: section(
        z.strictObject({
          enabled: flag().default(true),
          path: urlPath('/chat'),
        }),
      ),
    })
    .superRefine((http, ctx) => {
      if (http.port !== null && http.port !== 0 && http.port === http.tls_port) {
        ctx.addIssue({
          code: 'custom',
          path: ['tls_port'],
          message: `must differ from http.port (both are ${http.port}); set one to null to disable it`,
          input: http.tls_port,
        });
      }
    }),
);

/** `c2s`: client-to-server listeners (RFC 6120; direct TLS, XEP-0368). */
const c2sSchema = section(
  z
    .strictObject({
      port: port().default(5222),
      direct_tls_port: port().nullable().default(5223),
      interfaces: interfaces(['::']),
      require_encryption: flag().default(true),
      auth_timeout: duration({ min: 1000 }).prefault('30s'),
    })
    .superRefine((c2s, ctx) => {
      if (c2s.direct_tls_port !== null && c2s.direct_tls_port !== 0 && c2s.direct_tls_port === c2s.port) {
        ctx.addIssue({
          code: 'custom',
          path: ['direct_tls_port'],
          message: `must differ from c2s.port (both are ${c2s.port}); set it to null to disable direct TLS`,
          input: c2s.direct_tls_port,
        });
      }
    }),
);

/** `tls`: certificate and protocol versions for STARTTLS and direct TLS. */
const tlsSchema = section(
  z
    .strictObject({
      certificate: text('a file path (PEM) or null').nullable().default(null),
      key: text('a file path (PEM) or null').nullable().default(null),
      min_version: z.enum(TLS_VERSIONS).default('TLSv1.2'),
    })
    .superRefine((tls, ctx) => {
      if (tls.certificate !== null && tls.key === null) {
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message: 'must be set when tls.certificate is set (set both, or neither to use a generated self-signed certificate)',
          input: tls.key,
        });
      } else if (tls.certificate === null && tls.key !== null) {
        ctx.addIssue({
          code: 'custom',
          path: ['certificate'],
          message: 'must be set when tls.key is set (set both, or neither to use a generated self-signed certificate)',
          input: tls.certificate,
        });
      }
    }),
);

/** `auth`: SASL authentication (RFC 6120 §6) and brute-force throttling. */
const authSchema = section(
  z
    .strictObject({
      mechanisms: z
        .array(z.enum(SASL_MECHANISMS), { error: expecting('a list of SASL mechanism names') })
        .min(1, { error: 'expected at least one mechanism, got an empty list (nobody could log in)' })
        .default(() => [...DEFAULT_SASL_MECHANISMS]),
      scram_iterations: integer(4096).default(4096),
      allow_plain_without_tls: flag().default(false),
      failure_delay: duration().prefault('1s'),
      max_failure_delay: duration().prefault('30s'),
    })
    .superRefine((auth, ctx) => {
      const seen = new Set<string>();
      auth.mechanisms.forEach((mechanism, index) => {
        if (seen.has(mechanism)) {
          ctx.addIssue({ code: 'custom', path: ['mechanisms', index], message: `${mechanism} is listed twice`, input: mechanism });
        }
        seen.add(mechanism);
      });
      if (auth.max_failure_delay < auth.failure_delay) {
        ctx.addIssue({
          code: 'custom',
          path: ['max_failure_delay'],
          message: `must not be shorter than auth.failure_delay (${formatDuration(auth.failure_delay)}), got ${formatDuration(auth.max_failure_delay)}`,
          input: auth.max_failure_delay,
        });
      }
    }),
);

/** `limits`: per-stream parser limits (RFC 6120 §13.12, XEP-0205 §4.5). */
const limitsSchema = section(
  z.strictObject({
    // RFC 6120 §13.12: a stanza-size limit must not be lower than 10000 bytes.
    max_stanza_size: integer(10_000, undefined, ' (bytes)').default(262_144),
    max_depth: integer(4).default(32),
    max_attributes: integer(8).default(64),
    // Backpressure: output queued for one client that does not read (ARCHITECTURE §7).
    max_output_queue: integer(65_536, undefined, ' (bytes)').default(4_194_304),
  }),
);

/** `ping`: server-initiated liveness checks (XEP-0199 §4.1). */
const pingSchema = section(
  z.strictObject({
    interval: duration({ min: 1000 }).nullable().prefault('5m'),
    timeout: duration({ min: 1000 }).prefault('60s'),
  }),
);

/** `storage` with `driver: sqlite` — the embedded default (ARCHITECTURE.md §4). */
const sqliteStorageSchema = z.strictObject({
  driver: z.literal('sqlite').default('sqlite'),
  path: text('a file path (relative to data_dir) or ":memory:"').default('parley.db'),
});

/** `storage` with `driver: postgres`. */
const postgresStorageSchema = z.strictObject({
  driver: z.literal('postgres'),
  url: z
    .string({ error: expecting('a connection URL such as "postgres://parley@localhost/parley"') })
    .regex(/^postgres(?:ql)?:\/\/./, {
      error: expecting('a connection URL such as "postgres://parley@localhost/parley"'),
    }),
  pool_size: integer(1, 1000).default(10),
  schema: z
    .string({ error: expecting('a PostgreSQL schema name') })
    .regex(PG_SCHEMA_NAME, {
      error: expecting('a PostgreSQL schema name (letters, digits, "_"; at most 63 characters)'),
    })
    .optional(),
});

/** `storage`: where accounts, rosters and other data live (ARCHITECTURE.md §4). */
const storageSchema = section(z.discriminatedUnion('driver', [sqliteStorageSchema, postgresStorageSchema]));

/** `modules.register.policy` values: who may create an account in-band (XEP-0077). */
export const REGISTER_POLICIES = ['open', 'closed', 'invite'] as const;

/**
 * Data form field types an extra registration field may have (XEP-0004 §3.3): those that
 * need no `<option/>` list and gather data (not `fixed`, `hidden`, `list-*`, `jid-multi`).
 */
export const REGISTER_FIELD_TYPES = ['text-single', 'text-private', 'text-multi', 'boolean', 'jid-single'] as const;

/**
 * Field names the registration form itself uses (XEP-0077 §4, §13.4.1: `username`,
 * `password`, the hidden `FORM_TYPE`; `token` for `policy: invite`): an extra field may not
 * take them.
 */
export const REGISTER_RESERVED_FIELDS: readonly string[] = ['username', 'password', 'FORM_TYPE', 'token'];

/**
 * Why `value` is not an IP address or CIDR range (`"127.0.0.0/8"`, `"::1"`,
 * `"2001:db8::/32"`), or `null` if it is one.
 */
function addressRangeProblem(value: string): string | null {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  if (slash < 0) return null;
  const prefix = value.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `the prefix length must be 0–${max}`;
  return null;
}

/** An IP address or a CIDR range, as written (validated only). */
const addressRange = z
  .string({ error: expecting('an IP address or CIDR range such as "127.0.0.0/8" or "::1"') })
  .superRefine((value, ctx) => {
    const problem = addressRangeProblem(value);
    if (problem !== null) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an IP address or CIDR range such as "127.0.0.0/8" or "::1", got ${describeValue(value)}: ${problem}`,
        input: value,
      });
    }
  });

/** One extra field of the registration form (XEP-0077 §4 data form, XEP-0004 §3.2 `<field/>`). */
const registerFieldSchema = z.strictObject({
  var: text('a field name such as "email"'),
  label: text().optional(),
  type: z.enum(REGISTER_FIELD_TYPES).default('text-single'),
  required: flag().default(false),
});

/** `modules.register`: in-band registration, password change and account removal (XEP-0077). */
const registerSchema = section(
  z.strictObject({
    // null = automatic: open when the domain is the embedded default `localhost`, closed otherwise.
    policy: z.enum(REGISTER_POLICIES).nullable().default(null),
    extra_fields: z
      .array(registerFieldSchema, { error: expecting('a list of fields, each a mapping with var, label, type, required') })
      .superRefine((fields, ctx) => {
        const seen = new Set<string>();
        fields.forEach((field, index) => {
          if (REGISTER_RESERVED_FIELDS.includes(field.var)) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'var'],
              message: `"${field.var}" is used by the registration form itself; choose another name`,
              input: field.var,
            });
          } else if (seen.has(field.var)) {
            ctx.addIssue({ code: 'custom', path: [index, 'var'], message: `"${field.var}" is listed twice`, input: field.var });
          }
          seen.add(field.var);
        });
      })
      .default(() => []),
    rate_limit: section(
      z.strictObject({
        max: integer(1).default(5),
        window: duration({ min: 1000 }).prefault('1h'),
      }),
    ),
    exempt: z
      .array(addressRange, { error: expecting('a list of IP addresses or CIDR ranges') })
      .default(() => ['127.0.0.0/8', '::1']),
  }),
);

/**
 * The contact address kinds of `server_info.contact`: each is the XEP-0157 field
 * `<kind>-addresses` of the `http://jabber.org/network/serverinfo` form (XEP-0157 §7.1).
 */
export const CONTACT_KINDS = ['abuse', 'admin', 'feedback', 'sales', 'security', 'status', 'support'] as const;

/** The FORM_TYPE of XEP-0157 §3 (server information, contact addresses). */
export const SERVERINFO_FORM_TYPE = 'http://jabber.org/network/serverinfo';

/** A URI such as `mailto:abuse@example.com`, `xmpp:admin@example.com`, `https://example.com/support`. */
const URI_PATTERN = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/;

/** A contact address (XEP-0157 §3: the values SHOULD — `status-addresses` MUST — be URIs). */
const contactUri = z
  .string({ error: expecting('a URI such as "mailto:abuse@example.com" or "xmpp:admin@example.com"') })
  .regex(URI_PATTERN, {
    error: (issue) =>
      `expected a URI with a scheme, such as "mailto:abuse@example.com", "xmpp:admin@example.com" or "https://example.com/support", got ${describeValue(issue.input)}`,
  });

/** One value of an extended-information field: YAML scalars are turned into their text. */
const formValue = z
  .union([z.string(), z.number(), z.boolean()], { error: expecting('a string or a list of strings') })
  .transform((value) => String(value));

/**
 * One extra extended-information form (XEP-0128): its FORM_TYPE and its fields, field
 * name → value or list of values.
 */
const extraFormSchema = z.strictObject({
  form_type: text('a FORM_TYPE (a URI or URN such as "urn:example:info")'),
  fields: z
    .record(
      z.string().min(1, { error: 'a field name must not be empty' }),
      z.union([formValue.transform((value) => [value]), z.array(formValue)], { error: expecting('a string or a list of strings') }),
      { error: expecting('a mapping of field names to values') },
    )
    .superRefine((fields, ctx) => {
      if ('FORM_TYPE' in fields) {
        ctx.addIssue({ code: 'custom', path: ['FORM_TYPE'], message: 'FORM_TYPE is set by form_type', input: fields.FORM_TYPE });
      }
    })
    .default(() => ({})),
});

/**
 * `server_info`: what the server's service discovery answer says of it besides features —
 * contact addresses (XEP-0157) and further extended-information forms (XEP-0128).
 */
const serverInfoSchema = section(
  z.strictObject({
    contact: section(
      z.strictObject(
        Object.fromEntries(
          CONTACT_KINDS.map((kind) => [
            kind,
            z.array(contactUri, { error: expecting('a list of URIs') }).default(() => []),
          ]),
        ) as Record<(typeof CONTACT_KINDS)[number], z.ZodDefault<z.ZodArray<typeof contactUri>>>,
      ),
    ),
    extra_forms: z
      .array(extraFormSchema, { error: expecting('a list of forms, each a mapping with form_type and fields') })
      .superRefine((forms, ctx) => {
        const seen = new Set<string>();
        forms.forEach((form, index) => {
          // XEP-0115 §5.4 rule 3.5: two forms with one FORM_TYPE make the whole answer unusable for caps.
          if (seen.has(form.form_type)) {
            ctx.addIssue({ code: 'custom', path: [index, 'form_type'], message: `"${form.form_type}" is listed twice; put its fields in one form`, input: form.form_type });
          }
          seen.add(form.form_type);
          if (form.form_type === SERVERINFO_FORM_TYPE) {
            for (const kind of CONTACT_KINDS) {
              if (`${kind}-addresses` in form.fields) {
                ctx.addIssue({
                  code: 'custom',
                  path: [index, 'fields', `${kind}-addresses`],
                  message: `set it with server_info.contact.${kind}`,
                  input: form.fields[`${kind}-addresses`],
                });
              }
            }
          }
        });
      })
      .default(() => []),
  }),
);

/** Who may create rooms on the MUC service (`modules.muc.creation`). */
export const MUC_CREATION = ['anyone', 'local', 'admins'] as const;

/** A bare JID option (`user@domain`), checked for shape; the MUC module prepares it. */
const bareJidSchema = z
  .string({ error: expecting('a bare JID such as "admin@example.com"') })
  .regex(/^[^@/\s]+@[^@/\s]+$/, { error: (issue) => `expected a bare JID such as "admin@example.com", got ${describeValue(issue.input)}` });

/**
 * `modules.muc`: the multi-user chat service (XEP-0045) of the domain: its host, who may
 * create rooms, service administrators, discussion history, and the configuration new
 * rooms start with (muc#roomconfig, XEP-0045 §15.5.3).
 */
const mucSchema = section(
  z.strictObject({
    host: domainSchema.nullable().default(null),
    name: text().default('Chatrooms'),
    creation: z.enum(MUC_CREATION, { error: expecting('one of anyone, local, admins') }).default('local'),
    admins: z.array(bareJidSchema, { error: expecting('a list of bare JIDs') }).default(() => []),
    history_length: integer(0, 1000).default(20),
    max_users: integer(1, 1_000_000).default(1000),
    groupchat_1_0: flag().default(true),
    default_room: section(
      z.strictObject({
        public: flag().default(true),
        persistent: flag().default(false),
        members_only: flag().default(false),
        moderated: flag().default(false),
        whois: z.enum(['moderators', 'anyone'], { error: expecting('moderators or anyone') }).default('moderators'),
        allow_pm: z.enum(['anyone', 'participants', 'moderators', 'none'], { error: expecting('anyone, participants, moderators or none') }).default('anyone'),
        allow_invites: flag().default(false),
        change_subject: flag().default(false),
        logging: flag().default(false),
        max_users: integer(1, 1_000_000).default(200),
      }),
    ),
  }),
);

/** `modules`: which built-in modules run, and which third-party modules load (ARCHITECTURE.md §3). */
const modulesSchema = section(
  z.strictObject({
    disabled: z
      .array(z.enum(BUILTIN_MODULES), { error: expecting('a list of built-in module names') })
      .default(() => []),
    extra: z.array(text('a module path or npm package name'), { error: expecting('a list of module paths or package names') }).default(() => []),
    version: section(
      z.strictObject({
        name: text().default('Parley'),
        show_os: flag().default(false),
      }),
    ),
    // vcard-temp (XEP-0054): the largest vCard stored, in bytes of serialized XML. 128 KiB leaves room for a
    // ~90 KiB avatar (base64 PHOTO) and stays below the default limits.max_stanza_size (256 KiB).
    vcard: section(
      z.strictObject({
        max_size: integer(1024, undefined, ' (bytes)').default(131_072),
      }),
    ),
    register: registerSchema,
    // RFC 6121 §2.3.3: the largest roster an account may have (beyond it: not-allowed).
    roster: section(
      z.strictObject({
        max_items: integer(1).default(1000),
      }),
    ),
    // XEP-0160: offline messages kept per account (beyond it the sender gets service-unavailable).
    offline: section(
      z.strictObject({
        max_messages: integer(1).default(500),
      }),
    ),
    muc: mucSchema,
    // XEP-0078 Non-SASL authentication (jabber:iq:auth): obsolete, off unless asked for.
    legacyauth: section(
      z.strictObject({
        enabled: flag().default(false),
      }),
    ),
  }),
);

// ---------------------------------------------------------------------------------------
// The whole file
// ---------------------------------------------------------------------------------------

/**
 * The schema of `parley.yaml`. Parse with `parseConfig` (load.ts), which turns zod issues
 * into a `ConfigError` naming each option by its dotted path; parsing `{}`, `null` or
 * `undefined` gives the defaults.
 */
export const configSchema = section(
  z.strictObject({
    domain: domainSchema.default('localhost'),
    data_dir: text('a directory path').default('./data'),
    log_level: z.enum(LOG_LEVELS).default('info'),
    c2s: c2sSchema,
    http: httpSchema,
    tls: tlsSchema,
    auth: authSchema,
    limits: limitsSchema,
    ping: pingSchema,
    storage: storageSchema,
    modules: modulesSchema,
    server_info: serverInfoSchema,
  }),
);

/**
 * The validated configuration: every option present, durations in ms, sizes in bytes.
 * `storage` is a union discriminated by `driver`.
 */
export type ParleyConfig = z.output<typeof configSchema>;

/** The `storage` section of a validated configuration. */
export type StorageOptions = ParleyConfig['storage'];

// ---------------------------------------------------------------------------------------
// Schema introspection (for "unknown option" messages)
// ---------------------------------------------------------------------------------------

/** The option names valid in one object of the schema; `variant` names a union branch. */
export interface OptionSet {
  /** Option names accepted here. */
  names: readonly string[];
  /** For a discriminated union (storage): e.g. `driver: postgres`; otherwise `null`. */
  variant: string | null;
}

/**
 * The option names the schema accepts in the mapping at `path` (e.g. `['c2s']`, or `[]` for
 * the top level): one `OptionSet` per possible shape (two for `storage`, one per driver),
 * or an empty list if `path` does not lead to a mapping. Used to suggest the intended
 * option when an unknown one is found.
 */
export function optionSetsAt(path: readonly PropertyKey[]): OptionSet[] {
  let current: z.core.$ZodType[] = [configSchema];
  for (const segment of path) {
    const next: z.core.$ZodType[] = [];
    for (const schema of current) {
      for (const object of objectsIn(schema)) {
        if (typeof segment === 'number') continue;
        const child = (object._zod.def.shape as Record<PropertyKey, z.core.$ZodType | undefined>)[segment];
        if (child !== undefined) next.push(child);
      }
      if (typeof segment === 'number') next.push(...arrayElementsIn(schema));
    }
    current = next;
  }
  const sets: OptionSet[] = [];
  for (const schema of current) {
    for (const object of objectsIn(schema)) {
      sets.push({ names: Object.keys(object._zod.def.shape), variant: variantOf(object) });
    }
  }
  return sets;
}

/** The object schemas reachable from `schema` through wrappers (default, pipe, union …). */
function objectsIn(schema: z.core.$ZodType): z.core.$ZodObject[] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'object':
      return [schema as z.core.$ZodObject];
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'optional':
      return objectsIn((def as z.core.$ZodDefaultDef).innerType);
    case 'pipe': {
      const pipe = def as z.core.$ZodPipeDef;
      return [...objectsIn(pipe.in), ...objectsIn(pipe.out)];
    }
    case 'union':
      return (def as z.core.$ZodUnionDef).options.flatMap((option) => objectsIn(option));
    default:
      return [];
  }
}

/** The element schemas of the array schemas reachable from `schema`. */
function arrayElementsIn(schema: z.core.$ZodType): z.core.$ZodType[] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'array':
      return [(def as z.core.$ZodArrayDef).element];
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'optional':
      return arrayElementsIn((def as z.core.$ZodDefaultDef).innerType);
    case 'pipe': {
      const pipe = def as z.core.$ZodPipeDef;
      return [...arrayElementsIn(pipe.in), ...arrayElementsIn(pipe.out)];
    }
    default:
      return [];
  }
}

/** `driver: <value>` for an object whose `driver` option is a literal, else `null`. */
function variantOf(object: z.core.$ZodObject): string | null {
  const values = object._zod.propValues?.['driver'];
  if (values === undefined) return null;
  const names = [...values].filter((value): value is string => typeof value === 'string');
  return names.length === 1 ? `driver: ${names[0]}` : null;
}
