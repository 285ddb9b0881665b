/**
 * The reconciler's runtime: informers feed a keyed work queue, each key is
 * planned by the pure core (`plan.ts`) from the informer caches, and the
 * planned writes are made through the `KubeApi`.
 *
 * A queue key is one node and one volume (the volume label's digest): every
 * workload, attachment and Mountpoint Pod maps to exactly one, so events of
 * any kind lead to the same key and one key's writes are serial. A key is
 * planned only once the caches show the writes of its previous run
 * (`expectations.ts`), which is what keeps a lagging cache from making
 * duplicates. Failed writes are retried with backoff (a 409 means the state
 * moved on: the retry plans from fresh state), and a periodic sweep queues
 * every key the caches know, for events that were missed. Nothing is
 * planned before every cache has listed once: an empty cache would read as
 * "every workload is gone".
 *
 * @module
 */
import type {
  KubernetesObject,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
} from "@kubernetes/client-node";
import { type Attachment, isConflict, type KubeApi, RESOURCES } from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import { reconciles, watch } from "../metrics/mod.ts";
import {
  COMPONENT_MOUNTPOINT,
  LABEL_COMPONENT,
  LABEL_NODE,
  LABEL_VERSION,
  LABEL_VOLUME,
  MOUNTPOINT_NAMESPACE,
  nodeLabel,
  volumeLabel,
} from "../podmount/contract.ts";
import { sha256Hex } from "../util/hash.ts";
import { type Clock, sleep } from "./clock.ts";
import { type Expectation, Expectations } from "./expectations.ts";
import { Informer } from "./informer.ts";
import { mountpointPod, type ResourceDefaults } from "./mountpoint_pod.ts";
import {
  type Action,
  isServing,
  type KeyState,
  plan,
  type PlanContext,
  type Workload,
} from "./plan.ts";
import {
  claimNames,
  isActive,
  keyOfAttachment,
  keyText,
  type SharingKey,
  workloadVolumes,
} from "./sharing_key.ts";
import { type Backoff, WorkQueue } from "./work_queue.ts";

export interface ReconcilerConfig {
  api: KubeApi;
  clock: Clock;
  log: Logger;
  /** Driver version: Mountpoint Pods are reused only by the version that made them. */
  version: string;
  image: string;
  priorityClassName: string;
  resources: ResourceDefaults;
  resyncMs: number;
  sweepMs: number;
  expectationsTtlMs: number;
  backoff: Backoff;
  workers: number;
  /**
   * Replace Mountpoint Pods of other driver versions, one per node at a time
   * (`--upgrade-mountpoint-pods`; the upgrade rule of plan.ts).
   */
  upgradeMountpointPods?: boolean;
  /** How long after an upgrade's deletion the node's next one waits at least. */
  upgradeSettleMs?: number;
  /** Random part of new Mountpoint Pod names (tests make it predictable). */
  randomSuffix?: () => string;
}

/** The default of `upgradeSettleMs`: time for the node to hand the mounts to the new pod. */
const UPGRADE_SETTLE_MS = 10_000;

function sameVersion(p: V1Pod, version: string): boolean {
  return p.metadata?.labels?.[LABEL_VERSION] === version;
}

const queueKey = (nodeName: string, volume: string) => JSON.stringify([nodeName, volume]);

function randomSuffix(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

export class Reconciler {
  readonly #c: ReconcilerConfig;
  readonly #queue: WorkQueue;
  readonly #expectations: Expectations;
  readonly #pods: Informer<V1Pod>;
  readonly #mountpointPods: Informer<V1Pod>;
  readonly #claims: Informer<V1PersistentVolumeClaim>;
  readonly #volumes: Informer<V1PersistentVolume>;
  readonly #nodes: Informer<V1Node>;
  readonly #attachments: Informer<Attachment>;
  /** Per node, when its last upgrade deletion was made. */
  readonly #upgrades = new Map<string, number>();

  constructor(config: ReconcilerConfig) {
    this.#c = config;
    const { api, clock, log, resyncMs } = config;
    this.#queue = new WorkQueue(clock, config.backoff);
    this.#expectations = new Expectations(config.expectationsTtlMs);
    const informer = <T extends KubernetesObject>(
      r: (typeof RESOURCES)[keyof typeof RESOURCES],
      on: (o: T, change: string) => void,
      opts: { namespace?: string; labelSelector?: string } = {},
    ) => new Informer<T>(r, api, { ...opts, resyncMs }, on, clock, log);
    this.#pods = informer(RESOURCES.pod, (p: V1Pod) => this.#onWorkload(p));
    this.#mountpointPods = informer(RESOURCES.pod, (p: V1Pod) => this.#onOwned(p), {
      namespace: MOUNTPOINT_NAMESPACE,
      labelSelector: `${LABEL_COMPONENT}=${COMPONENT_MOUNTPOINT}`,
    });
    this.#claims = informer(
      RESOURCES.persistentVolumeClaim,
      (c: V1PersistentVolumeClaim) => this.#onClaim(c),
    );
    this.#volumes = informer(
      RESOURCES.persistentVolume,
      (v: V1PersistentVolume) =>
        this.#claims.list().filter((c) => c.spec?.volumeName === v.metadata?.name)
          .forEach((c) => this.#onClaim(c)),
    );
    // A node's arrival matters too: a workload seen before its node was planned as "node gone".
    this.#nodes = informer(RESOURCES.node, (n: V1Node, change) => {
      if (change === "add" || change === "delete") this.#queueNode(n.metadata?.name ?? "");
    });
    this.#attachments = informer(RESOURCES.attachment, (a: Attachment) => this.#onOwned(a));
  }

  get #informers() {
    return [
      this.#pods,
      this.#mountpointPods,
      this.#claims,
      this.#volumes,
      this.#nodes,
      this.#attachments,
    ];
  }

  /** Runs until `signal` aborts: informers, workers and the sweep. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, log } = this.#c;
    await Promise.all(this.#informers.map((i) => i.start()));
    await Promise.race([
      Promise.all(this.#informers.map((i) => i.waitSynced())),
      new Promise((r) => signal.addEventListener("abort", r, { once: true })),
    ]);
    const unwatch = [
      watch("queueDepth", () => this.#queue.length),
      watch("mountpointPods", () => this.#mountpointPods.list().length),
      watch("attachments", () => this.#attachments.list().length),
    ];
    const workers = this.#queue.run(
      (key) =>
        this.#process(key).catch((err) => {
          reconciles.inc({ result: "error" });
          log.error("reconcile failed: retrying", { key, error: err });
          this.#queue.retry(key);
        }),
      this.#c.workers,
    );
    log.info("reconciler started", { version: this.#c.version });
    while (!signal.aborted) {
      await this.sweep();
      await sleep(clock, this.#c.sweepMs, signal);
    }
    this.#queue.close();
    await workers;
    unwatch.forEach((f) => f());
    await Promise.all(this.#informers.map((i) => i.stop()));
    log.info("reconciler stopped");
  }

  /** Queues every key the caches know of. */
  async sweep(): Promise<void> {
    for (const p of this.#pods.list()) await this.#onWorkload(p);
    this.#attachments.list().forEach((a) => this.#onOwned(a));
    this.#mountpointPods.list().forEach((p) => this.#onOwned(p));
  }

  readonly #volumeLabels = new Map<string, string>();

  /** `volumeLabel`, remembered: every plan hashes the volume IDs of every pod on the node. */
  async #volumeLabel(volumeId: string): Promise<string> {
    let label = this.#volumeLabels.get(volumeId);
    if (label === undefined) this.#volumeLabels.set(volumeId, label = await volumeLabel(volumeId));
    return label;
  }

  #lookup = {
    claim: (ns: string, name: string) => this.#claims.get(name, ns),
    volume: (name: string) => this.#volumes.get(name),
  };

  async #onWorkload(p: V1Pod): Promise<void> {
    for (const { key } of workloadVolumes(p, this.#lookup)) {
      this.#queue.add(queueKey(key.nodeName, await this.#volumeLabel(key.volumeID)));
    }
  }

  #onClaim(c: V1PersistentVolumeClaim): void {
    const ns = c.metadata?.namespace;
    for (const p of this.#pods.list(ns)) {
      if (claimNames(p).includes(c.metadata?.name ?? "")) this.#onWorkload(p);
    }
  }

  /** An attachment or a Mountpoint Pod: its node and volume label name its key. */
  #onOwned(o: Attachment | V1Pod): void {
    const nodeName = o.spec?.nodeName;
    const volume = o.metadata?.labels?.[LABEL_VOLUME];
    if (nodeName && volume) this.#queue.add(queueKey(nodeName, volume));
  }

  /** Queues every key of a node: its workloads', attachments' and Mountpoint Pods'. */
  #queueNode(nodeName: string): void {
    for (const p of this.#pods.list()) if (p.spec?.nodeName === nodeName) this.#onWorkload(p);
    for (const o of [...this.#attachments.list(), ...this.#mountpointPods.list()]) {
      if (o.spec?.nodeName === nodeName) this.#onOwned(o);
    }
  }

  #cached = (kind: string, name: string, namespace?: string) =>
    kind === RESOURCES.pod.kind
      ? this.#mountpointPods.get(name, namespace)
      : this.#attachments.get(name);

  async #process(key: string): Promise<void> {
    const { clock, log } = this.#c;
    const [nodeName, volume] = JSON.parse(key) as [string, string];
    const klog = log.with({ node: nodeName, volume });
    const met = this.#expectations.satisfied(
      key,
      this.#cached,
      clock.now(),
      (e) => klog.warn("gave up waiting to see a write in the cache", { ...e }),
    );
    if (!met) {
      // The informer event that meets the expectation queues the key; this is the fallback.
      this.#queue.addAfter(key, 1000);
      return;
    }
    const state = await this.#state(nodeName, volume);
    const ctx = await this.#context(state);
    // No await from here to the claim: two keys of a node never both take the slot.
    state.mayUpgrade = this.#upgradeSlotFree(nodeName);
    const actions = plan(state, ctx);
    if (actions.some((a) => a.type === "deletePod" && a.upgrade)) {
      this.#upgrades.set(nodeName, clock.now());
    } else if (
      this.#c.upgradeMountpointPods &&
      state.mountpointPods.some((p) => !sameVersion(p, state.version))
    ) {
      // Old pods wait for the slot: look again once it may be free.
      this.#queue.addAfter(key, this.#c.upgradeSettleMs ?? UPGRADE_SETTLE_MS);
    }
    for (const action of actions) {
      try {
        const e = await this.#execute(action);
        this.#expectations.expect(key, e, clock.now());
        klog.info("reconciled", describe(action));
      } catch (err) {
        reconciles.inc({ result: "error" });
        const delay = this.#queue.retry(key);
        const fields = { ...describe(action), error: err, retryInMs: delay };
        if (isConflict(err)) klog.debug("conflict: retrying on fresh state", fields);
        else klog.warn("write failed: retrying", fields);
        return;
      }
    }
    reconciles.inc({ result: "ok" });
    this.#queue.forget(key);
  }

  /**
   * Whether a Mountpoint Pod of `nodeName` may be replaced by an upgrade now:
   * upgrades are on, the node's last one is older than the settle time, and
   * each of its active Mountpoint Pods is serving (none is starting or
   * terminating: a replacement under way).
   */
  #upgradeSlotFree(nodeName: string): boolean {
    if (!this.#c.upgradeMountpointPods) return false;
    const last = this.#upgrades.get(nodeName);
    const settle = this.#c.upgradeSettleMs ?? UPGRADE_SETTLE_MS;
    if (last !== undefined && this.#c.clock.now() - last < settle) return false;
    return this.#mountpointPods.list().every((p) =>
      p.spec?.nodeName !== nodeName || !isActive(p) ||
      (!p.metadata?.deletionTimestamp && isServing(p))
    );
  }

  async #state(nodeName: string, volume: string): Promise<KeyState> {
    const workloads: Workload[] = [];
    for (const p of this.#pods.list()) {
      if (p.spec?.nodeName !== nodeName || !isActive(p) || !p.metadata?.uid) continue;
      for (const { key, pv } of workloadVolumes(p, this.#lookup)) {
        if (await this.#volumeLabel(key.volumeID) === volume) {
          workloads.push({ uid: p.metadata.uid, key, pv });
        }
      }
    }
    const label = await nodeLabel(nodeName);
    const mine = (o: { metadata?: { labels?: Record<string, string> } }) =>
      o.metadata?.labels?.[LABEL_NODE] === label && o.metadata?.labels?.[LABEL_VOLUME] === volume;
    return {
      nodeName,
      nodeExists: this.#nodes.get(nodeName) !== undefined,
      nodeLabel: label,
      volumeLabel: volume,
      workloads,
      attachments: this.#attachments.list().filter(mine),
      mountpointPods: this.#mountpointPods.list().filter((p) =>
        mine(p) && p.spec?.nodeName === nodeName
      ),
      version: this.#c.version,
      now: new Date(this.#c.clock.now()),
    };
  }

  async #context(s: KeyState): Promise<PlanContext> {
    const digests = new Map<string, string>();
    const keys: SharingKey[] = [
      ...s.workloads.map((w) => w.key),
      ...s.attachments.map((a) => keyOfAttachment(a.spec)),
    ];
    for (const k of keys) digests.set(keyText(k), await sha256Hex(keyText(k)));
    const digest = (k: SharingKey) => digests.get(keyText(k))!;
    const { image, priorityClassName, version, resources, log } = this.#c;
    const suffix = this.#c.randomSuffix ?? randomSuffix;
    return {
      attachmentName: (k) => `s3pa-${digest(k).slice(0, 40)}`,
      newPodName: (k) => `mp-${digest(k).slice(0, 16)}-${suffix()}`,
      podFor: (name, w) =>
        mountpointPod(
          { name, nodeName: s.nodeName, nodeLabel: s.nodeLabel, volumeLabel: s.volumeLabel },
          w.pv,
          { image, priorityClassName, version, resources, warn: (m, f) => log.warn(m, f) },
        ),
    };
  }

  /** Makes one write; returns what the caches must show before the key is planned again. */
  async #execute(a: Action): Promise<Expectation> {
    const { api } = this.#c;
    const att = RESOURCES.attachment;
    switch (a.type) {
      case "createAttachment": {
        await api.create(att, a.attachment);
        return { kind: att.kind, name: a.attachment.metadata.name, op: "create" };
      }
      case "updateAttachment": {
        await api.update(att, a.attachment);
        const { name, resourceVersion } = a.attachment.metadata;
        return { kind: att.kind, name, op: "update", fromVersion: resourceVersion };
      }
      case "deleteAttachment":
        await api.delete(att, a.name, undefined, a.uid || undefined);
        return { kind: att.kind, name: a.name, op: "delete", uid: a.uid };
      case "createPod": {
        await api.create(RESOURCES.pod, a.pod);
        const { name, namespace } = a.pod.metadata!;
        return { kind: RESOURCES.pod.kind, name: name!, namespace, op: "create" };
      }
      case "deletePod":
        await api.delete(RESOURCES.pod, a.name, MOUNTPOINT_NAMESPACE, a.uid || undefined);
        return {
          kind: RESOURCES.pod.kind,
          name: a.name,
          namespace: MOUNTPOINT_NAMESPACE,
          op: "delete",
          uid: a.uid,
        };
    }
  }
}

function describe(a: Action): Record<string, unknown> {
  switch (a.type) {
    case "createAttachment":
    case "updateAttachment": {
      const pods = a.attachment.spec.mountpointS3PodAttachments;
      const workloads = Object.fromEntries(
        Object.entries(pods).map(([p, ws]) => [p, ws.map((w) => w.workloadPodUID)]),
      );
      return { action: a.type, attachment: a.attachment.metadata.name, workloads };
    }
    case "createPod":
      return { action: a.type, pod: a.pod.metadata?.name };
    case "deletePod":
      return { action: a.type, pod: a.name, ...(a.upgrade ? { upgrade: true } : {}) };
    case "deleteAttachment":
      return { action: a.type, attachment: a.name };
  }
}
