/** Returned by a hook handler to stop propagation to lower-priority handlers. */
export const HANDLED = true as const;

/** A hook handler: return {@link HANDLED} (or a promise of it) to stop propagation. */
export type HookHandler<P> = (payload: P) => boolean | void | Promise<boolean | void>;

interface Entry<P> {
  handler: HookHandler<P>;
  priority: number;
  seq: number;
}

/**
 * A typed event bus with priorities, after ejabberd's hooks and Prosody's module
 * events (ARCHITECTURE §3). Handlers run from the highest priority down (equal
 * priorities in registration order); one that returns `HANDLED` stops the rest.
 * Synchronous handlers run synchronously; the first handler that returns a
 * promise makes the rest of the run asynchronous.
 *
 * Event names follow the addressing: `iq/host/<ns>`, `iq/bare/<ns>`,
 * `iq/full`, `message/bare`, `message/full`, `presence/bare`, … and lifecycle
 * events (`session/started`, `session/ended`, `user/registered`, `user/deleted`, and
 * `server/stopping`, fired before the streams close at shutdown).
 */
export class Hooks {
  private handlers = new Map<string, Entry<never>[]>();
  private seq = 0;

  /** Registers a handler; returns a function that removes it. */
  on<P>(event: string, handler: HookHandler<P>, priority = 0): () => void {
    // Lists are copied on write, never mutated: fire() iterates them without a copy per stanza.
    const entry: Entry<P> = { handler, priority, seq: this.seq++ };
    const list = [...((this.handlers.get(event) ?? []) as Entry<P>[]), entry];
    list.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.handlers.set(event, list as Entry<never>[]);
    return () => {
      const cur = this.handlers.get(event) as Entry<P>[] | undefined;
      if (!cur || !cur.includes(entry)) return;
      const next = cur.filter((e) => e !== entry);
      if (next.length === 0) this.handlers.delete(event);
      else this.handlers.set(event, next as Entry<never>[]);
    };
  }

  /** `true` when some handler listens to `event`. */
  has(event: string): boolean {
    return this.handlers.has(event);
  }

  /**
   * Runs the handlers of `event`. Returns whether one handled it — synchronously
   * when every handler that ran was synchronous, otherwise as a promise. A
   * handler that throws (or rejects) propagates the error to the caller.
   */
  fire<P>(event: string, payload: P): boolean | Promise<boolean> {
    const list = this.handlers.get(event) as Entry<P>[] | undefined;
    if (!list) return false;
    // `list` is never mutated (copy on write), so handlers may (un)register while it runs.
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!.handler(payload);
      if (r === true) return true;
      if (r !== undefined && r !== false && typeof (r as Promise<unknown>).then === 'function') {
        return this.continueAsync(list, i, r as Promise<boolean | void>, payload);
      }
    }
    return false;
  }

  private async continueAsync<P>(list: Entry<P>[], i: number, first: Promise<boolean | void>, payload: P): Promise<boolean> {
    if ((await first) === true) return true;
    for (let j = i + 1; j < list.length; j++) {
      if ((await list[j]!.handler(payload)) === true) return true;
    }
    return false;
  }

  /** Runs every handler of `event`, ignoring `HANDLED`, awaiting each (for lifecycle events). */
  async emit<P>(event: string, payload: P): Promise<void> {
    const list = this.handlers.get(event) as Entry<P>[] | undefined;
    if (!list) return;
    for (const e of list) await e.handler(payload);
  }
}
