/**
 * Leader election on a `coordination.k8s.io/v1` Lease, so that several
 * reconciler replicas can run and one acts.
 *
 * A candidate reads the Lease; it takes it when there is none, when it
 * holds it already (a renewal), or when the holder's record has not changed
 * for a whole lease duration. Expiry is judged on this candidate's own clock
 * from when it last saw the record change, never from the times written in
 * it, so clock skew between machines does not matter. Every write is
 * conditional on the resourceVersion read, so of two candidates racing for
 * an expired lease one wins and the other gets a conflict.
 *
 * The leader renews every `retryPeriodMs`. When it cannot renew for
 * `renewDeadlineMs` (shorter than the lease duration, so it stops before
 * anyone else may start), or finds another holder, it stops leading: the
 * work it runs is aborted and it becomes a candidate again. On shutdown it
 * releases the lease (no holder), so a successor takes over at once instead
 * of after the lease duration.
 *
 * An identity names one process, not one pod (`leaderIdentity`): a
 * container restarted in the same pod after a SIGKILL must wait out its
 * dead predecessor's lease like any candidate, not "renew" it at once as if
 * it had been leading all along.
 *
 * @module
 */
import { type V1Lease, type V1LeaseSpec, V1MicroTime } from "@kubernetes/client-node";
import { isConflict, type KubeApi, RESOURCES } from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import { type Clock, sleep } from "./clock.ts";

export interface LeaderConfig {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  clock: Clock;
  log: Logger;
}

/**
 * This process's candidate identity: the pod (else host) name for people
 * reading the Lease, and a random suffix so no two processes share one
 * (client-go's `<hostname>_<uuid>` convention).
 */
export function leaderIdentity(
  podName: string | undefined,
  hostname: () => string = Deno.hostname,
): string {
  return `${podName ?? hostname()}_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
}

/** A MicroTime serialises with the six fraction digits the API insists on. */
function microTime(ms: number): V1MicroTime {
  return new V1MicroTime(ms);
}

type Attempt = "leader" | "other" | "error";

export class LeaderElector {
  #observed?: { record: string; at: number };
  #lease?: V1Lease;
  #leading = false;

  constructor(readonly config: LeaderConfig) {}

  get isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Campaigns until `signal` aborts; while leader, runs `lead` with a signal
   * that aborts when leadership ends. Releases the lease on the way out.
   */
  async run(signal: AbortSignal, lead: (leading: AbortSignal) => Promise<void>): Promise<void> {
    const { clock, log, retryPeriodMs, renewDeadlineMs } = this.config;
    while (!signal.aborted) {
      if ((await this.#attempt()) !== "leader") {
        await sleep(clock, retryPeriodMs, signal);
        continue;
      }
      this.#leading = true;
      log.info("became leader", { lease: this.config.name, identity: this.config.identity });
      const leading = new AbortController();
      const stop = () => leading.abort();
      signal.addEventListener("abort", stop, { once: true });
      const work = lead(leading.signal).catch((err) => {
        log.error("leader work failed", { error: err });
        leading.abort();
      });
      let renewed = clock.now();
      while (!leading.signal.aborted) {
        await sleep(clock, retryPeriodMs, leading.signal);
        if (leading.signal.aborted) break;
        const r = await this.#attempt();
        if (r === "leader") renewed = clock.now();
        else if (r === "other" || clock.now() - renewed >= renewDeadlineMs) {
          log.warn("lost leadership", { lease: this.config.name, reason: r });
          leading.abort();
        }
      }
      signal.removeEventListener("abort", stop);
      await work;
      if (signal.aborted) await this.#release();
      this.#leading = false;
    }
  }

  /** One try to acquire or renew. */
  async #attempt(): Promise<Attempt> {
    const { api, namespace, name, identity, leaseDurationMs, clock, log } = this.config;
    const now = clock.now();
    const spec: V1LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      const lease = await api.get<V1Lease>(RESOURCES.lease, name, namespace);
      if (!lease) {
        this.#lease = await api.create<V1Lease>(RESOURCES.lease, {
          apiVersion: RESOURCES.lease.apiVersion,
          kind: RESOURCES.lease.kind,
          metadata: { name, namespace },
          spec,
        });
        this.#observe(this.#lease, now);
        return "leader";
      }
      const cur = lease.spec ?? {};
      this.#observe(lease, now);
      const holder = cur.holderIdentity ?? "";
      const durationMs = (cur.leaseDurationSeconds ?? 0) * 1000;
      if (holder !== "" && holder !== identity && now < this.#observed!.at + durationMs) {
        return "other";
      }
      if (holder === identity && cur.acquireTime) {
        spec.acquireTime = microTime(new Date(cur.acquireTime).getTime());
      }
      spec.leaseTransitions = (cur.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
      this.#lease = await api.update<V1Lease>(RESOURCES.lease, { ...lease, spec });
      this.#observe(this.#lease, now);
      return "leader";
    } catch (err) {
      if (isConflict(err)) return "other";
      log.warn("cannot reach the leader lease", { lease: name, error: err });
      return "error";
    }
  }

  #observe(lease: V1Lease, now: number): void {
    const s = lease.spec ?? {};
    const record = JSON.stringify([
      s.holderIdentity ?? "",
      s.renewTime ? new Date(s.renewTime).getTime() : 0,
      s.leaseTransitions ?? 0,
    ]);
    if (this.#observed?.record !== record) this.#observed = { record, at: now };
  }

  /** Gives the lease up so that a successor need not wait for it to expire. */
  async #release(): Promise<void> {
    const lease = this.#lease;
    if (!lease || lease.spec?.holderIdentity !== this.config.identity) return;
    const now = this.config.clock.now();
    try {
      await this.config.api.update<V1Lease>(RESOURCES.lease, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: microTime(now),
          acquireTime: microTime(now),
        },
      });
      this.config.log.info("released the leader lease", { lease: this.config.name });
    } catch (err) {
      this.config.log.warn("cannot release the leader lease", { error: err });
    }
  }
}
