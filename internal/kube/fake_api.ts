/**
 * An in-memory `KubeApi` for tests: objects with uids and a cluster-wide
 * resourceVersion counter, conditional updates (409 on a stale
 * resourceVersion), equality label selectors, and watches that replay from
 * a resourceVersion. Tests can make the informers' view lag behind the store
 * (`hold`/`release` a kind's watch events), break every watch of a kind, and
 * make the next call of a verb fail, which is what the reconciler's runtime
 * must survive.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { AbortedError, AlreadyExistsError, NotFoundError } from "../errors/mod.ts";
import type {
  KubeApi,
  ListOptions,
  ObjectList,
  OnWatchDone,
  OnWatchEvent,
  Resource,
  WatchEventType,
  WatchOptions,
} from "./api.ts";

type Verb = "list" | "get" | "create" | "update" | "delete";

interface Watcher {
  kind: string;
  opts: WatchOptions;
  onEvent: OnWatchEvent;
  onDone: OnWatchDone;
  pending: [WatchEventType, KubernetesObject][];
  /** Delivers nothing more (`stallWatches`). */
  stalled?: boolean;
}

interface Event {
  rv: number;
  kind: string;
  type: WatchEventType;
  obj: KubernetesObject;
}

const copy = <T>(o: T): T => structuredClone(o);

function keyOf(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}

/** True when `labels` satisfy an equality selector: `a=b`, `a==b`, `a!=b`, `a`, comma-separated. */
export function matchesSelector(
  labels: Record<string, string> | undefined,
  selector: string | undefined,
): boolean {
  if (!selector) return true;
  return selector.split(",").map((t) => t.trim()).filter(Boolean).every((term) => {
    const ne = term.indexOf("!=");
    if (ne >= 0) return labels?.[term.slice(0, ne)] !== term.slice(ne + 2);
    const eq = term.indexOf("=");
    if (eq < 0) return labels?.[term] !== undefined;
    const value = term.slice(term[eq + 1] === "=" ? eq + 2 : eq + 1);
    return labels?.[term.slice(0, eq)] === value;
  });
}

export class FakeKubeApi implements KubeApi {
  #rv = 1;
  readonly #objects = new Map<string, Map<string, KubernetesObject>>();
  readonly #log: Event[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #held = new Set<string>();
  readonly #failures: { verb: Verb; kind: string; err: unknown }[] = [];
  readonly #answers = new Map<string, (obj: KubernetesObject) => KubernetesObject>();
  /** Every successful write, in order: `create Pod mount-s3/mp-1`. */
  readonly writes: string[] = [];
  /** Every write asked for, refused ones included. */
  readonly attempts: string[] = [];

  #store(kind: string): Map<string, KubernetesObject> {
    let m = this.#objects.get(kind);
    if (!m) this.#objects.set(kind, m = new Map());
    return m;
  }

  #maybeFail(verb: Verb, r: Resource): void {
    const i = this.#failures.findIndex((f) => f.verb === verb && f.kind === r.kind);
    if (i >= 0) throw this.#failures.splice(i, 1)[0].err;
  }

  #emit(kind: string, type: WatchEventType, obj: KubernetesObject): void {
    this.#log.push({ rv: this.#rv, kind, type, obj: copy(obj) });
    for (const w of this.#watchers) {
      if (w.kind === kind && this.#selects(w.opts, obj)) w.pending.push([type, copy(obj)]);
    }
    this.#flushSoon();
  }

  #selects(opts: ListOptions, obj: KubernetesObject): boolean {
    if (opts.namespace && obj.metadata?.namespace !== opts.namespace) return false;
    return matchesSelector(obj.metadata?.labels, opts.labelSelector);
  }

  #flushSoon(): void {
    queueMicrotask(() => {
      for (const w of this.#watchers) {
        if (w.stalled) continue;
        const held = w.pending.filter(([, o]) => this.#isHeld(w.kind, o));
        const due = w.pending.filter(([, o]) => !this.#isHeld(w.kind, o));
        w.pending = held;
        for (const [type, obj] of due) w.onEvent(type, obj);
      }
    });
  }

  /**
   * Answers every create of `kind` with `fn(obj)` instead of storing it: the
   * API's reviews (SelfSubjectAccessReview) are computed, not kept.
   */
  answer(kind: string, fn: (obj: KubernetesObject) => KubernetesObject): void {
    this.#answers.set(kind, fn);
  }

  /** Makes the next `verb` on `kind` throw `err`. */
  failNext(verb: Verb, kind: string, err: unknown): void {
    this.#failures.push({ verb, kind, err });
  }

  #isHeld(kind: string, o: KubernetesObject): boolean {
    return this.#held.has(kind) || this.#held.has(`${kind}/${o.metadata?.namespace ?? ""}`);
  }

  /** Holds back watch events of `kind` (in `namespace` only, if given): informers lag until `release`. */
  hold(kind: string, namespace?: string): void {
    this.#held.add(namespace === undefined ? kind : `${kind}/${namespace}`);
  }

  release(kind: string, namespace?: string): void {
    this.#held.delete(namespace === undefined ? kind : `${kind}/${namespace}`);
    this.#flushSoon();
  }

  /**
   * Makes every open watch of `kind` go silent for good: it delivers nothing
   * more and never ends, as a stream whose connection was lost without a
   * reset. Watches opened later work.
   */
  stallWatches(kind: string): void {
    for (const w of this.#watchers) if (w.kind === kind) w.stalled = true;
  }

  /** Ends every watch of `kind` with `err` (as a dropped connection would). */
  breakWatches(kind: string, err: unknown): void {
    for (const w of [...this.#watchers]) {
      if (w.kind !== kind) continue;
      this.#watchers.delete(w);
      w.onDone(err);
    }
  }

  /** Open watches of `kind`. */
  watchCount(kind: string): number {
    return [...this.#watchers].filter((w) => w.kind === kind).length;
  }

  /** The stored objects of `kind` (copies). */
  objects<T extends KubernetesObject>(kind: string): T[] {
    return [...this.#store(kind).values()].map((o) => copy(o) as T);
  }

  list<T extends KubernetesObject>(r: Resource, opts: ListOptions = {}): Promise<ObjectList<T>> {
    this.#maybeFail("list", r);
    const items = [...this.#store(r.kind).values()].filter((o) => this.#selects(opts, o));
    return Promise.resolve({
      items: items.map((o) => copy(o) as T),
      resourceVersion: `${this.#rv}`,
    });
  }

  watch: KubeApi["watch"] = (r, opts, onEvent, onDone) => {
    const w: Watcher = { kind: r.kind, opts, onEvent, onDone, pending: [] };
    const from = Number(opts.resourceVersion ?? this.#rv);
    for (const e of this.#log) {
      if (e.kind === r.kind && e.rv > from && this.#selects(opts, e.obj)) {
        w.pending.push([e.type, copy(e.obj)]);
      }
    }
    this.#watchers.add(w);
    this.#flushSoon();
    return Promise.resolve({ abort: () => this.#watchers.delete(w) });
  };

  get<T extends KubernetesObject>(r: Resource, name: string, namespace?: string) {
    this.#maybeFail("get", r);
    const o = this.#store(r.kind).get(`${r.namespaced ? namespace ?? "" : ""}/${name}`);
    return Promise.resolve(o ? copy(o) as T : undefined);
  }

  create<T extends KubernetesObject>(r: Resource, obj: T): Promise<T> {
    this.attempts.push(`create ${r.kind} ${keyOf(obj)}`);
    this.#maybeFail("create", r);
    const answer = this.#answers.get(r.kind);
    if (answer) return Promise.resolve(copy(answer(copy(obj))) as T);
    const o = copy(obj);
    const store = this.#store(r.kind);
    if (store.has(keyOf(o))) {
      return Promise.reject(new AlreadyExistsError(`${r.kind} "${keyOf(o)}" already exists`));
    }
    this.#rv++;
    o.metadata = {
      ...o.metadata,
      uid: crypto.randomUUID(),
      resourceVersion: `${this.#rv}`,
      creationTimestamp: new Date(),
    };
    store.set(keyOf(o), o);
    this.writes.push(`create ${r.kind} ${keyOf(o)}`);
    this.#emit(r.kind, "ADDED", o);
    return Promise.resolve(copy(o));
  }

  update<T extends KubernetesObject>(r: Resource, obj: T): Promise<T> {
    this.attempts.push(`update ${r.kind} ${keyOf(obj)}`);
    this.#maybeFail("update", r);
    const store = this.#store(r.kind);
    const cur = store.get(keyOf(obj));
    if (!cur) return Promise.reject(new NotFoundError(`${r.kind} "${keyOf(obj)}" not found`));
    if (obj.metadata?.resourceVersion !== cur.metadata?.resourceVersion) {
      return Promise.reject(
        new AbortedError(`${r.kind} "${keyOf(obj)}": the object has been modified`),
      );
    }
    this.#rv++;
    const o = copy(obj);
    o.metadata = { ...o.metadata, uid: cur.metadata?.uid, resourceVersion: `${this.#rv}` };
    store.set(keyOf(o), o);
    this.writes.push(`update ${r.kind} ${keyOf(o)}`);
    this.#emit(r.kind, "MODIFIED", o);
    return Promise.resolve(copy(o));
  }

  delete(r: Resource, name: string, namespace?: string, uid?: string): Promise<void> {
    const key = `${r.namespaced ? namespace ?? "" : ""}/${name}`;
    this.attempts.push(`delete ${r.kind} ${key}`);
    this.#maybeFail("delete", r);
    const store = this.#store(r.kind);
    const cur = store.get(key);
    if (!cur) return Promise.resolve();
    if (uid && cur.metadata?.uid !== uid) {
      return Promise.reject(new AbortedError(`${r.kind} "${key}": uid precondition failed`));
    }
    this.#rv++;
    store.delete(key);
    this.writes.push(`delete ${r.kind} ${key}`);
    this.#emit(r.kind, "DELETED", {
      ...cur,
      metadata: { ...cur.metadata, resourceVersion: `${this.#rv}` },
    });
    return Promise.resolve();
  }
}
