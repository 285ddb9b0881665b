/**
 * An informer: a cache of one kind kept current by list + watch, with
 * change callbacks. It is client-node's `ListWatch` (relists on 410,
 * reconnects after a watch ends) over the `KubeApi`, so the fake API drives
 * the same code as the cluster. Two things `ListWatch` leaves to its user
 * are done here: a failed list or a watch that ends with an error stops it,
 * so it is restarted after a backoff; and every `resyncMs` all cached
 * objects are handed to the callback again, so a change missed by a
 * handler is reconciled anyway.
 *
 * Watches that go silent: a long-lived watch stream can stop delivering
 * without ever ending (a connection lost without a reset), and then the
 * cache is stale for good. So each watch asks the API server to end it
 * after `watchSeconds` (jittered up to twice that), which it does cleanly and
 * `ListWatch` re-watches; one that has not ended `WATCH_GRACE_MS` later is
 * aborted here and counts as failed, so the informer relists.
 *
 * @module
 */
import {
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  type Watch,
} from "@kubernetes/client-node";
import type { KubeApi, ListOptions, Resource } from "../kube/mod.ts";
import { collectionPath } from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Clock } from "./clock.ts";

export interface InformerOptions extends ListOptions {
  resyncMs: number;
  /** Shortest server-side watch timeout (default 30 s; each watch takes 1–2×). */
  watchSeconds?: number;
  /** First restart delay after an error; doubles up to `maxRestartMs`. */
  restartMs?: number;
  maxRestartMs?: number;
}

/** How long past its server-side timeout a watch may run before it is taken for dead. */
export const WATCH_GRACE_MS = 15_000;

export type ChangeHandler<T> = (obj: T, change: "add" | "update" | "delete" | "resync") => void;

export class Informer<T extends KubernetesObject> {
  readonly #lw: ListWatch<T>;
  #cancelRestart = () => {};
  #cancelResync = () => {};
  #restartMs: number;
  #synced = false;
  #stopped = false;
  #syncWaiters: (() => void)[] = [];

  constructor(
    readonly resource: Resource,
    api: KubeApi,
    readonly opts: InformerOptions,
    readonly onChange: ChangeHandler<T>,
    readonly clock: Clock,
    readonly log: Logger,
  ) {
    this.#restartMs = opts.restartMs ?? 500;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const l = await api.list<T>(resource, opts);
      return {
        apiVersion: "v1",
        kind: "List",
        items: l.items,
        metadata: { resourceVersion: l.resourceVersion },
      };
    };
    // ListWatch only calls watch(); the rest of client-node's Watch is not needed.
    const base = opts.watchSeconds ?? 30;
    const watch = {
      watch: async (
        _path: string,
        query: Record<string, unknown>,
        cb: (phase: string, obj: unknown) => void,
        done: (err: unknown) => void,
      ) => {
        const timeoutSeconds = Math.round(base * (1 + Math.random()));
        let ended = false;
        let cancelWatchdog = () => {};
        const finish = (err: unknown) => {
          if (ended) return;
          ended = true;
          cancelWatchdog();
          done(err ?? null);
        };
        const handle = await api.watch(
          resource,
          { ...opts, resourceVersion: query.resourceVersion as string | undefined, timeoutSeconds },
          (type, obj) => cb(type, obj),
          finish,
        );
        if (!ended) {
          cancelWatchdog = clock.setTimer(timeoutSeconds * 1000 + WATCH_GRACE_MS, () => {
            handle.abort();
            finish(new Error(`watch of ${resource.kind} went silent past its ${timeoutSeconds} s`));
          });
        }
        return handle;
      },
    } as unknown as Watch;
    this.#lw = new ListWatch<T>(
      collectionPath(resource, opts.namespace),
      watch,
      list,
      false,
      opts.labelSelector,
      undefined,
      { delayFn: (ms) => new Promise((r) => clock.setTimer(ms, r)) },
    );
    this.#lw.on("add", (o) => this.onChange(o, "add"));
    this.#lw.on("update", (o) => this.onChange(o, "update"));
    this.#lw.on("delete", (o) => this.onChange(o, "delete"));
    this.#lw.on("error", (err) => this.#restart(err));
  }

  /** Lists and starts watching; the cache counts as synced once a list succeeded. */
  async start(): Promise<void> {
    await this.#lw.start();
    this.#markSynced();
    this.#scheduleResync();
  }

  #markSynced(): void {
    if (this.#synced || this.#lw.latestResourceVersion() === "") return;
    this.#synced = true;
    this.#restartMs = this.opts.restartMs ?? 500;
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  #restart(err: unknown): void {
    if (this.#stopped) return;
    const delay = this.#restartMs;
    this.#restartMs = Math.min(this.opts.maxRestartMs ?? 30_000, delay * 2);
    this.log.warn("watch failed: restarting", {
      kind: this.resource.kind,
      error: err,
      retryInMs: delay,
    });
    this.#cancelRestart();
    this.#cancelRestart = this.clock.setTimer(delay, () => {
      if (this.#stopped) return;
      this.#lw.start().then(() => {
        this.#restartMs = this.opts.restartMs ?? 500;
        this.#markSynced();
      });
    });
  }

  #scheduleResync(): void {
    if (this.#stopped || this.opts.resyncMs <= 0) return;
    this.#cancelResync = this.clock.setTimer(this.opts.resyncMs, () => {
      for (const o of this.#lw.list()) this.onChange(o, "resync");
      this.#scheduleResync();
    });
  }

  /** Resolves once the first list succeeded. */
  waitSynced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((r) => this.#syncWaiters.push(r));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.#lw.list(namespace);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelRestart();
    this.#cancelResync();
    await this.#lw.stop();
    for (const w of this.#syncWaiters.splice(0)) w();
  }
}
