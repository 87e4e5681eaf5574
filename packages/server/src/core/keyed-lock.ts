/**
 * Runs async tasks one at a time per key (e.g. per account), in call order,
 * so read-modify-write sequences on one account's data (roster, offline
 * queue) cannot interleave. Tasks for different keys run concurrently.
 */
export class KeyedLock {
  private tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` after every earlier task for `key` has settled; resolves or rejects with its result. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
