/**
 * Queries built once with Kysely and run many times with new values.
 *
 * Building a Kysely query (immutable builder nodes, frozen at each step) and compiling it to
 * SQL costs several times what SQLite then spends answering it: about 12 µs against 3 µs
 * for a keyed `kv_store` read on the benchmark machine (docs/performance.md). The server
 * runs the same few queries on every login and every stanza it stores, so each store
 * builds its frequent queries once, with a marker in place of every value, compiles them
 * on first use for its own database (the SQL differs between SQLite and PostgreSQL), and
 * then only swaps the values in.
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Schema } from './schema.ts';

/** What runs a compiled query: the database, or a transaction of it. */
export type QueryRunner = Pick<Kysely<Schema>, 'executeQuery'>;

/** Where a compiled parameter comes from: an argument (by position) or a constant of the query. */
type Slot = { arg: number } | { value: unknown };

const MARKER = '\u0000parley:prepared:';

/**
 * A query with `A` as its arguments and `R` as its row type.
 *
 * `build` receives the database and one marker per argument (strings, whatever the
 * argument's type: Kysely only carries them into the parameter list) and returns the query.
 * Every marker must end up as a bound parameter, not in the SQL text (no `sql.raw`, no
 * `sql.lit`, no identifiers, no `in` lists of variable length); constants of the query may
 * be literals or parameters. A marker that does not appear among the parameters is an
 * `Error` at first use.
 */
export class PreparedQuery<A extends readonly unknown[], R> {
  readonly #db: Kysely<Schema>;
  readonly #build: (db: Kysely<Schema>, ...args: A) => Compilable<R>;
  #sql: string | undefined;
  #slots: Slot[] = [];

  constructor(db: Kysely<Schema>, build: (db: Kysely<Schema>, ...args: A) => Compilable<R>) {
    this.#db = db;
    this.#build = build;
  }

  /** Runs the query on the database; the rows (empty for a statement without `returning`). */
  async rows(...args: A): Promise<R[]> {
    return (await this.run(this.#db, ...args)).rows;
  }

  /** Runs the query on the database; the first row, or `undefined`. */
  async first(...args: A): Promise<R | undefined> {
    return (await this.run(this.#db, ...args)).rows[0];
  }

  /** Runs the query on `runner` (the database or a transaction); the whole result, with `numAffectedRows` for a write. */
  run(runner: QueryRunner, ...args: A): Promise<QueryResult<R>> {
    const sqlText = this.#sql ?? this.#compile();
    const slots = this.#slots;
    const parameters = new Array<unknown>(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      parameters[i] = 'arg' in slot ? args[slot.arg] : slot.value;
    }
    return runner.executeQuery<R>(CompiledQuery.raw(sqlText, parameters));
  }

  #compile(): string {
    const arity = this.#build.length - 1;
    const markers = Array.from({ length: arity }, (_, i) => `${MARKER}${i}`);
    const compiled = this.#build(this.#db, ...(markers as unknown as A)).compile();
    const used = new Set<number>();
    this.#slots = compiled.parameters.map((value) => {
      if (typeof value === 'string' && value.startsWith(MARKER)) {
        const arg = Number(value.slice(MARKER.length));
        used.add(arg);
        return { arg };
      }
      return { value };
    });
    if (compiled.sql.includes(MARKER) || used.size !== arity) {
      throw new Error(`storage: a prepared query must bind each of its ${arity} arguments as a parameter: ${compiled.sql}`);
    }
    this.#sql = compiled.sql;
    return compiled.sql;
  }
}
