/**
 * The narrow view of the Kubernetes API that the reconciler uses: list,
 * watch, get, create, update and delete of a few kinds. The real client
 * (`client.ts`) implements it on `@kubernetes/client-node`; an in-memory
 * double (`fake_api.ts`) implements it for tests, with resourceVersions,
 * conflicts and a cache that can lag. Keeping the surface this small is what
 * lets the reconciler's runtime (informers, queue, leader election) be
 * tested without a cluster.
 *
 * Failures are the domain errors of `internal/errors`, mapped once from HTTP
 * status codes here (`apiError`): 404 is `NotFoundError`, a 409 on create
 * `AlreadyExistsError`, a 409 on update (stale resourceVersion)
 * `AbortedError`, which callers retry on fresh state.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import {
  AbortedError,
  AlreadyExistsError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  type S3csiError,
  UnavailableError,
} from "../errors/mod.ts";
import { ATTACHMENT } from "../podmount/contract.ts";

/** Where a kind lives in the API. */
export interface Resource {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

/** The kinds the reconciler reads or writes, and those the doctor reads. */
export const RESOURCES = {
  pod: { apiVersion: "v1", kind: "Pod", plural: "pods", namespaced: true },
  persistentVolume: {
    apiVersion: "v1",
    kind: "PersistentVolume",
    plural: "persistentvolumes",
    namespaced: false,
  },
  persistentVolumeClaim: {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
    namespaced: true,
  },
  node: { apiVersion: "v1", kind: "Node", plural: "nodes", namespaced: false },
  attachment: {
    apiVersion: `${ATTACHMENT.group}/${ATTACHMENT.version}`,
    kind: ATTACHMENT.kind,
    plural: ATTACHMENT.plural,
    namespaced: false,
  },
  lease: {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    plural: "leases",
    namespaced: true,
  },
  // What `s3csi doctor` reads (and the access reviews it asks for).
  namespace: { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false },
  csiDriver: {
    apiVersion: "storage.k8s.io/v1",
    kind: "CSIDriver",
    plural: "csidrivers",
    namespaced: false,
  },
  crd: {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    namespaced: false,
  },
  selfSubjectAccessReview: {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
    plural: "selfsubjectaccessreviews",
    namespaced: false,
  },
} as const satisfies Record<string, Resource>;

/** The URL path of a collection (`namespace` only for namespaced kinds; all namespaces when unset). */
export function collectionPath(r: Resource, namespace?: string): string {
  const root = r.apiVersion.includes("/") ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
  const ns = r.namespaced && namespace ? `/namespaces/${namespace}` : "";
  return `${root}${ns}/${r.plural}`;
}

export interface ListOptions {
  namespace?: string;
  /** Equality-based selector, `a=b,c=d`. */
  labelSelector?: string;
}

export interface ObjectList<T> {
  items: T[];
  resourceVersion: string;
}

/** Watch event types, as the API sends them. */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  /** The API server ends the watch after this long (a client re-watches). */
  timeoutSeconds?: number;
}

export type OnWatchEvent = (type: WatchEventType, obj: KubernetesObject) => void;
/** The end of a watch, with what ended it (an expired resourceVersion has `code` 410). */
export type OnWatchDone = (err?: unknown) => void;
/** A running watch. */
export interface WatchHandle {
  abort(): void;
}

export interface KubeApi {
  list<T extends KubernetesObject>(r: Resource, opts?: ListOptions): Promise<ObjectList<T>>;
  /** Streams changes after `opts.resourceVersion`; `onDone` is called once, when it ends. */
  watch(
    r: Resource,
    opts: WatchOptions,
    onEvent: OnWatchEvent,
    onDone: OnWatchDone,
  ): Promise<WatchHandle>;
  /** The object, or undefined when it does not exist. */
  get<T extends KubernetesObject>(
    r: Resource,
    name: string,
    namespace?: string,
  ): Promise<T | undefined>;
  /** Creates `obj`; `AlreadyExistsError` when the name is taken. */
  create<T extends KubernetesObject>(r: Resource, obj: T): Promise<T>;
  /** Replaces `obj`, conditional on its `metadata.resourceVersion`: `AbortedError` when stale. */
  update<T extends KubernetesObject>(r: Resource, obj: T): Promise<T>;
  /**
   * Deletes the object; resolves when it is already gone. With `uid`, only
   * that incarnation of the name is deleted (`AbortedError` otherwise).
   */
  delete(r: Resource, name: string, namespace?: string, uid?: string): Promise<void>;
}

/** The domain error for an API answer with HTTP `status` (`reason` is the Status object's). */
export function apiError(
  status: number,
  message: string,
  reason?: string,
  options?: ErrorOptions,
): S3csiError {
  const text = `Kubernetes API: ${message}`;
  if (status === 404) return new NotFoundError(text, options);
  if (status === 409) {
    return reason === "AlreadyExists"
      ? new AlreadyExistsError(text, options)
      : new AbortedError(text, options);
  }
  if (status === 401 || status === 403) return new PermissionDeniedError(text, options);
  if (status === 400 || status === 422) return new InvalidArgumentError("object", text, options);
  if (status === 410 || status === 429 || status >= 500) {
    return new UnavailableError(text, options);
  }
  return new InternalError(text, options);
}

/** True for the answers that mean "the state moved on: look again" (409 of either kind). */
export function isConflict(err: unknown): boolean {
  return err instanceof AbortedError || err instanceof AlreadyExistsError;
}
