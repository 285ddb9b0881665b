/**
 * `KubeApi` on `@kubernetes/client-node`: the generic object API for reads
 * and writes (one code path for every kind, the custom resource included)
 * and the library's `Watch` for change streams. HTTP failures become the
 * domain errors of `apiError`, so callers never see client-node's types.
 *
 * @module
 */
import {
  ApiException,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  Watch,
} from "@kubernetes/client-node";
import { UnavailableError } from "../errors/mod.ts";
import {
  apiError,
  collectionPath,
  type KubeApi,
  type ListOptions,
  type ObjectList,
  type OnWatchDone,
  type OnWatchEvent,
  type Resource,
  type WatchEventType,
  type WatchHandle,
  type WatchOptions,
} from "./api.ts";
import { NotFoundError } from "../errors/mod.ts";

/** The domain error for what client-node threw. */
function translate(err: unknown): unknown {
  if (err instanceof ApiException) {
    const body = typeof err.body === "string" ? safeJson(err.body) : err.body;
    const status = body as { reason?: string; message?: string } | undefined;
    return apiError(err.code, status?.message ?? err.message, status?.reason);
  }
  if (err instanceof TypeError) return new UnavailableError(`Kubernetes API: ${err.message}`);
  return err;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translate(err);
  }
}

export class KubeClient implements KubeApi {
  readonly #objects: KubernetesObjectApi;
  readonly #watch: Watch;

  constructor(kc: KubeConfig) {
    this.#objects = KubernetesObjectApi.makeApiClient(kc);
    this.#watch = new Watch(kc);
  }

  list<T extends KubernetesObject>(r: Resource, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return call(async () => {
      const list = await this.#objects.list<T>(
        r.apiVersion,
        r.kind,
        r.namespaced ? opts.namespace : undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        opts.labelSelector,
      );
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
    });
  }

  watch(
    r: Resource,
    opts: WatchOptions,
    onEvent: OnWatchEvent,
    onDone: OnWatchDone,
  ): Promise<WatchHandle> {
    const query: Record<string, string | boolean> = { allowWatchBookmarks: true };
    if (opts.resourceVersion) query.resourceVersion = opts.resourceVersion;
    if (opts.labelSelector) query.labelSelector = opts.labelSelector;
    if (opts.timeoutSeconds) query.timeoutSeconds = String(opts.timeoutSeconds);
    return this.#watch.watch(
      collectionPath(r, opts.namespace),
      query,
      (type, obj) => onEvent(type as WatchEventType, obj),
      onDone,
    );
  }

  async get<T extends KubernetesObject>(
    r: Resource,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await call(() =>
        this.#objects.read<T>({
          apiVersion: r.apiVersion,
          kind: r.kind,
          metadata: r.namespaced ? { name, namespace } : { name },
        })
      );
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  create<T extends KubernetesObject>(_r: Resource, obj: T): Promise<T> {
    return call(() => this.#objects.create<T>(obj));
  }

  update<T extends KubernetesObject>(_r: Resource, obj: T): Promise<T> {
    return call(() => this.#objects.replace<T>(obj));
  }

  async delete(r: Resource, name: string, namespace?: string, uid?: string): Promise<void> {
    const spec = {
      apiVersion: r.apiVersion,
      kind: r.kind,
      metadata: r.namespaced ? { name, namespace } : { name },
    };
    try {
      await call(() =>
        this.#objects.delete(
          spec,
          undefined,
          undefined,
          undefined,
          undefined,
          "Background",
          uid ? { preconditions: { uid } } : undefined,
        )
      );
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
  }
}
