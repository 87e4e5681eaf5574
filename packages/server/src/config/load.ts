/**
 * Reading and validating `parley.yaml` (ARCHITECTURE.md §7).
 *
 * An invalid configuration stops start-up with a `ConfigError` whose message lists every
 * problem, one per line, each naming the option by its dotted path:
 *
 * ```
 * Invalid configuration in /etc/parley/parley.yaml:
 * - c2s.port: expected an integer between 0 and 65535, got "abc" (line 7)
 * - tls.keyfile: unknown option (did you mean "key"?) (line 12)
 * ```
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, describeValue, optionSetsAt, type ParleyConfig, type REGISTER_POLICIES } from './schema.ts';

/** The file name looked for in the working directory when no `--config` path is given. */
export const DEFAULT_CONFIG_FILE = 'parley.yaml';

/** One thing wrong with a configuration. */
export interface ConfigProblem {
  /**
   * The option's dotted path (`c2s.port`, `auth.mechanisms[1]`, `(top level)`); `''` for a
   * problem of the file itself (unreadable, YAML syntax), whose message says where.
   */
  path: string;
  /** What is wrong, e.g. `expected an integer between 0 and 65535, got "abc"`. */
  message: string;
  /** 1-based line in the YAML file, when known. */
  line: number | null;
}

/**
 * An unusable configuration: unreadable file, YAML syntax error, or options that fail the
 * schema. `message` is a header naming the file followed by one line per problem,
 * `- <dotted.path>: <what is wrong>` (with ` (line N)` when the line is known).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The file the configuration came from, or `null` (built-in defaults, in-memory input). */
  readonly source: string | null;
  /** Every problem found, in file order as far as the schema allows. */
  readonly problems: readonly ConfigProblem[];

  /**
   * Takes the source (file path or `null`), the problems (at least one) and optionally a
   * header line to use instead of `Invalid configuration in <source>:`.
   */
  constructor(source: string | null, problems: readonly ConfigProblem[], header?: string) {
    const first = header ?? (source === null ? 'Invalid configuration:' : `Invalid configuration in ${source}:`);
    super([first, ...problems.map(formatProblem)].join('\n'));
    this.source = source;
    this.problems = problems;
  }
}

/** `- path: message (line N)`; a problem of the whole file omits the path (its message places it). */
function formatProblem(problem: ConfigProblem): string {
  if (problem.path === '') return `- ${problem.message}`;
  const where = problem.line === null ? '' : ` (line ${problem.line})`;
  return `- ${problem.path}: ${problem.message}${where}`;
}

/**
 * Validates a configuration object (as read from YAML) and fills in defaults.
 *
 * Takes the parsed YAML (`null`/`undefined` = empty file = all defaults) and optionally the
 * name of its source for the error message. Returns the `ParleyConfig`. Throws `ConfigError`
 * listing every problem (wrong type, out of range, unknown option, …) by dotted path.
 * Relative paths are returned as written (see `loadConfigFile` for resolving them).
 */
export function parseConfig(input: unknown, source?: string): ParleyConfig {
  return validate(input, source ?? null, () => null);
}

/** The configuration with every option at its default (what an empty `parley.yaml` gives). */
export function defaultConfig(): ParleyConfig {
  return parseConfig({});
}

/**
 * Reads, parses and validates a YAML configuration file.
 *
 * - `path` given: reads that file (relative to `options.cwd`, default `process.cwd()`); a
 *   missing or unreadable file is a `ConfigError`.
 * - `path === null`: reads `parley.yaml` in `options.cwd` if it exists, else returns the
 *   defaults with `path: null`.
 *
 * Relative paths in the file (`data_dir`, `tls.certificate`, `tls.key`, and `modules.extra`
 * entries starting with `./` or `../`) are resolved against the directory holding the file
 * (against `options.cwd` when there is no file), so the returned config has absolute paths
 * there and the server works whatever its working directory. `storage.path` stays relative
 * to `data_dir` (see `resolveDataPath`).
 *
 * Returns `{ config, path }`, `path` being the absolute path of the file read, or `null`.
 * Throws `ConfigError` for an unreadable file, a YAML syntax error (naming the line and
 * column) or an invalid option (naming the dotted path and, where known, the line).
 */
export function loadConfigFile(
  path: string | null,
  options: { cwd?: string } = {},
): { config: ParleyConfig; path: string | null } {
  const cwd = resolve(options.cwd ?? process.cwd());
  let file: string;
  if (path === null) {
    file = resolve(cwd, DEFAULT_CONFIG_FILE);
    if (!isFile(file)) {
      return { config: resolveConfigPaths(defaultConfig(), cwd), path: null };
    }
  } else {
    file = resolve(cwd, path);
  }

  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: readFailure(error), line: null }], `Cannot read configuration file ${file}:`);
  }

  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const syntaxProblems = [...document.errors, ...document.warnings].map((error): ConfigProblem => {
    const position = lineCounter.linePos(error.pos[0]);
    return {
      path: '',
      message: `YAML ${error.name === 'YAMLWarning' ? 'warning' : 'syntax error'} at line ${position.line}, column ${position.col}: ${error.message}`,
      line: position.line,
    };
  });
  if (syntaxProblems.length > 0) throw new ConfigError(file, syntaxProblems);

  let input: unknown;
  try {
    input = document.toJS();
  } catch (error) {
    // e.g. too many alias expansions (a "billion laughs" document).
    throw new ConfigError(file, [{ path: '', message: `YAML error: ${(error as Error).message}`, line: null }]);
  }

  const config = validate(input, file, (segments) => lineOf(document, lineCounter, segments));
  return { config: resolveConfigPaths(config, dirname(file)), path: file };
}

/**
 * The registration policy in force (XEP-0077, `modules.register.policy`): the configured one,
 * or — when it is `null` — `open` on the embedded default domain `localhost` and `closed`
 * elsewhere. `closed` too when the `register` module is disabled.
 */
export function registrationPolicy(config: Pick<ParleyConfig, 'domain' | 'modules'>): (typeof REGISTER_POLICIES)[number] {
  if (config.modules.disabled.includes('register')) return 'closed';
  return config.modules.register.policy ?? (config.domain === 'localhost' ? 'open' : 'closed');
}

/**
 * Resolves a path that the configuration gives relative to `data_dir` (the SQLite file,
 * the generated certificate): an absolute `p` is returned as is, a relative one is joined
 * to `data_dir` (itself resolved against the working directory if relative). `':memory:'`
 * (SQLite's in-memory database) is returned unchanged.
 */
export function resolveDataPath(config: Pick<ParleyConfig, 'data_dir'>, p: string): string {
  if (p === ':memory:') return p;
  return isAbsolute(p) ? p : resolve(config.data_dir, p);
}

// ---------------------------------------------------------------------------------------
// Validation and messages
// ---------------------------------------------------------------------------------------

/** Runs the schema; on failure throws a `ConfigError` with one problem per issue / unknown key. */
function validate(
  input: unknown,
  source: string | null,
  locate: (segments: readonly PropertyKey[]) => number | null,
): ParleyConfig {
  const result = configSchema.safeParse(input, { error: genericMessage, reportInput: true });
  if (result.success) return result.data;
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const segments = [...issue.path, key];
        problems.push({ path: dottedPath(segments), message: unknownOptionMessage(issue.path, key), line: locate(segments) });
      }
    } else {
      problems.push({ path: dottedPath(issue.path), message: issue.message, line: locate(issue.path) });
    }
  }
  // In file order where lines are known (zod reports in schema order); stable otherwise.
  problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  throw new ConfigError(source, problems);
}

/** `['c2s', 'port']` → `c2s.port`; `['auth', 'mechanisms', 1]` → `auth.mechanisms[1]`; `[]` → `(top level)`. */
function dottedPath(segments: readonly PropertyKey[]): string {
  if (segments.length === 0) return '(top level)';
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/** Messages for issues the schema did not word itself (per-parse zod error map). */
const genericMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required option is missing';
      return `expected ${typeNoun(issue.expected)}, got ${describeValue(issue.input)}`;
    case 'invalid_value':
      return `expected ${oneOf(issue.values)}, got ${describeValue(issue.input)}`;
    case 'invalid_union': {
      const options = (issue as { options?: readonly unknown[] }).options;
      if (issue.discriminator !== undefined && options !== undefined) {
        const input = issue.input;
        const value =
          typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[issue.discriminator] : undefined;
        return `expected ${oneOf(options.filter((option) => option !== undefined && option !== null))}, got ${describeValue(value)}`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
};

/** The words for a zod type name in "expected …". */
function typeNoun(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a mapping of options (key: value)';
    case 'array':
      return 'a list';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    default:
      return expected;
  }
}

/** `one of "a", "b"` (or just `"a"` for a single value). */
function oneOf(values: readonly unknown[]): string {
  const shown = values.map((value) => (typeof value === 'string' ? JSON.stringify(value) : String(value)));
  return shown.length === 1 ? (shown[0] as string) : `one of ${shown.join(', ')}`;
}

/**
 * The message for an unknown option `key` in the mapping at `parent`: names the intended
 * option when the key is a near miss (`requre_encryption`, `dataDir`), an option of another
 * storage driver, or an option of another section (`port` at the top level → `c2s.port`).
 */
function unknownOptionMessage(parent: readonly PropertyKey[], key: string): string {
  const sets = optionSetsAt(parent);
  const names = [...new Set(sets.flatMap((set) => set.names))];
  const elsewhere = sets.find((set) => set.names.includes(key));
  if (elsewhere !== undefined && elsewhere.variant !== null) {
    return `unknown option for this driver (it is an option of ${elsewhere.variant})`;
  }
  const near = closest(key, names);
  if (near !== null) return `unknown option (did you mean "${near}"?)`;
  if (parent.length === 0) {
    for (const section of names) {
      if (optionSetsAt([section]).some((set) => set.names.includes(key))) {
        return `unknown option (did you mean ${section}.${key}, inside the "${section}" section?)`;
      }
    }
  }
  return names.length > 0 ? `unknown option (options here: ${names.join(', ')})` : 'unknown option';
}

/** The name in `names` closest to `key` (case, `-`/`_` and camelCase ignored), if close enough. */
function closest(key: string, names: readonly string[]): string | null {
  const normal = (name: string) =>
    name
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase()
      .replace(/-/g, '_');
  const wanted = normal(key);
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const name of names) {
    const distance = editDistance(wanted, normal(name));
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  const allowed = wanted.length <= 4 ? 1 : wanted.length <= 8 ? 2 : 3;
  if (bestDistance <= allowed) return best;
  // A longer or shorter spelling of one name: `keyfile` → `key`, `cert` → `certificate`.
  const affixed = names.filter((name) => {
    const other = normal(name);
    return Math.min(other.length, wanted.length) >= 3 && (other.startsWith(wanted) || wanted.startsWith(other));
  });
  return affixed.length === 1 ? (affixed[0] as string) : null;
}

/** Edit distance counting insertions, deletions, substitutions and adjacent swaps as 1. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (rows[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

// ---------------------------------------------------------------------------------------
// Files and lines
// ---------------------------------------------------------------------------------------

/** Whether `path` names an existing regular file (not a directory). */
function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A short reason for a failed read. */
function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file (create one with "parley init", or leave out --config to use ./parley.yaml or the defaults)';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return (error as Error).message;
  }
}

/**
 * The 1-based line of the option at `segments` in the YAML document: the line of its key,
 * or of the deepest enclosing option that exists (for a missing required option).
 */
function lineOf(document: Document, lineCounter: LineCounter, segments: readonly PropertyKey[]): number | null {
  let node: unknown = document.contents;
  let offset: number | null = null;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (isScalar(item.key) ? String(item.key.value) : String(item.key)) === String(segment));
      if (pair === undefined) break;
      offset = isScalar(pair.key) && pair.key.range ? pair.key.range[0] : offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      if (isScalar(item) || isMap(item) || isSeq(item)) offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  if (offset === null) return null;
  return lineCounter.linePos(offset).line;
}

/** The config with relative file paths (not `storage.path`) resolved against `base`. */
function resolveConfigPaths(config: ParleyConfig, base: string): ParleyConfig {
  const absolute = (p: string) => resolve(base, p);
  return {
    ...config,
    data_dir: absolute(config.data_dir),
    tls: {
      ...config.tls,
      certificate: config.tls.certificate === null ? null : absolute(config.tls.certificate),
      key: config.tls.key === null ? null : absolute(config.tls.key),
    },
    modules: {
      ...config.modules,
      extra: config.modules.extra.map((entry) => (/^\.\.?[\\/]/.test(entry) ? absolute(entry) : entry)),
    },
  };
}
