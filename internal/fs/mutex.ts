/**
 * A keyed async mutex: operations that change the same directory's
 * namespace (create, mkdir, unlink, rmdir) run one at a time, while lookups
 * and operations on other directories run freely. Keys with no waiter are
 * removed, so the map holds only busy keys.
 *
 * @module
 */

export class KeyedMutex<K> {
  readonly #tails = new Map<K, Promise<void>>();

  /** Runs `fn` after every earlier holder of `key` has finished. */
  async run<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => release = r);
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Keys currently held or waited on (for tests). */
  get size(): number {
    return this.#tails.size;
  }
}
