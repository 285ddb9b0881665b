/**
 * Expectations: what the reconciler wrote and has not yet seen in its
 * informer caches.
 *
 * Problem: the caches lag behind the API. Right after creating a Mountpoint
 * Pod, a new run for the same key would not find it in the cache and would
 * create a second one; right after updating an attachment, it would plan
 * from the old copy.
 * Solution: each write is recorded against its queue key, and the key is
 * not planned again until the cache shows every write: a created object is
 * in the cache, an updated one has moved past the resourceVersion the
 * update was based on (the update was conditional on it, so any later
 * version includes it), a deleted one is gone, terminating (a pod's
 * graceful deletion has begun) or another incarnation.
 * Management: the informer event that satisfies an expectation re-queues
 * the key; an expectation not met within `ttlMs` (a missed event) is
 * dropped so the key is planned again from whatever the cache holds.
 *
 * @module
 */

export interface Expectation {
  /** Which cache: the informer's kind. */
  kind: string;
  namespace?: string;
  name: string;
  op: "create" | "update" | "delete";
  /** update: the resourceVersion the write was based on. */
  fromVersion?: string;
  /** delete: the uid of the incarnation deleted. */
  uid?: string;
}

/** What a cache holds under a name. */
export type CacheLookup = (
  kind: string,
  name: string,
  namespace?: string,
) =>
  | { metadata?: { uid?: string; resourceVersion?: string; deletionTimestamp?: unknown } }
  | undefined;

export function isMet(e: Expectation, lookup: CacheLookup): boolean {
  const o = lookup(e.kind, e.name, e.namespace);
  switch (e.op) {
    case "create":
      return o !== undefined;
    case "update":
      return o === undefined || o.metadata?.resourceVersion !== e.fromVersion;
    case "delete":
      return o === undefined || Boolean(o.metadata?.deletionTimestamp) ||
        (e.uid !== undefined && o.metadata?.uid !== e.uid);
  }
}

export class Expectations {
  readonly #pending = new Map<string, { e: Expectation; deadline: number }[]>();

  constructor(readonly ttlMs: number) {}

  expect(key: string, e: Expectation, now: number): void {
    const list = this.#pending.get(key) ?? [];
    list.push({ e, deadline: now + this.ttlMs });
    this.#pending.set(key, list);
  }

  /**
   * True when every write recorded for `key` is in the caches (or expired);
   * met and expired expectations are forgotten. `onExpired` hears of those
   * given up on.
   */
  satisfied(
    key: string,
    lookup: CacheLookup,
    now: number,
    onExpired?: (e: Expectation) => void,
  ): boolean {
    const list = this.#pending.get(key);
    if (!list) return true;
    const left = list.filter(({ e, deadline }) => {
      if (isMet(e, lookup)) return false;
      if (now >= deadline) {
        onExpired?.(e);
        return false;
      }
      return true;
    });
    if (left.length === 0) this.#pending.delete(key);
    else this.#pending.set(key, left);
    return left.length === 0;
  }
}
