/**
 * Every metric s3csi exports, defined once: its name, help, labels and
 * buckets. Code that counts something imports the family from here and
 * records at the one place where the event happens (the CSI server's
 * wrapper, the S3 client's send, the FUSE dispatcher's reply, …), so "where
 * is metric X decided" has one answer per metric.
 *
 * One registry per process. A family appears in every role's exposition,
 * with samples only where the role records it: the controller shows no FUSE
 * samples, a mount no CSI samples.
 *
 * Names follow Prometheus conventions: the `s3csi_` prefix, base units
 * (seconds, bytes), `_total` on counters. Label values come from closed sets
 * (CSI methods, gRPC code names, S3 operations and error codes, FUSE opcode
 * and errno names), so no label can grow without bound; per-volume series
 * get their `volume_id` label only where the node gathers its mounts
 * (`gather.ts`).
 *
 * Where a value is only known on demand (a memory budget, the reconciler's
 * caches), a gauge reads it at scrape time through a function its owner
 * registers with `watch()`.
 *
 * @module
 */
import process from "node:process";
import client from "prom-client";

export const registry = new client.Registry();

/** Request latencies: from a cached FUSE reply (~50 µs) to a slow S3 call (tens of seconds). */
const LATENCY_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

const registers = [registry];

// ---- CSI -------------------------------------------------------------------------------------

export const csiRequests = new client.Counter({
  name: "s3csi_csi_requests_total",
  help: "CSI calls answered, by method and gRPC status code",
  labelNames: ["method", "code"] as const,
  registers,
});

export const csiRequestDuration = new client.Histogram({
  name: "s3csi_csi_request_duration_seconds",
  help: "Time to answer a CSI call, by method",
  labelNames: ["method"] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

// ---- S3 --------------------------------------------------------------------------------------

export const s3Requests = new client.Counter({
  name: "s3csi_s3_requests_total",
  help: "S3 requests made (retries included in one request), by operation and outcome " +
    '("ok" or the error code)',
  labelNames: ["operation", "outcome"] as const,
  registers,
});

export const s3RequestDuration = new client.Histogram({
  name: "s3csi_s3_request_duration_seconds",
  help: "Time of an S3 request including its retries, until its response headers arrive",
  labelNames: ["operation"] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

export const s3Retries = new client.Counter({
  name: "s3csi_s3_retries_total",
  help: "Attempts beyond the first that S3 requests needed, by operation",
  labelNames: ["operation"] as const,
  registers,
});

export const s3ReceivedBytes = new client.Counter({
  name: "s3csi_s3_received_bytes_total",
  help: "Object bytes downloaded from S3 (GetObject bodies)",
  registers,
});

export const s3SentBytes = new client.Counter({
  name: "s3csi_s3_sent_bytes_total",
  help: "Object bytes uploaded to S3 (PutObject and UploadPart bodies)",
  registers,
});

// ---- FUSE ------------------------------------------------------------------------------------

export const fuseRequests = new client.Counter({
  name: "s3csi_fuse_requests_total",
  help: 'FUSE requests answered, by opcode and errno ("0" for success, else the errno name)',
  labelNames: ["opcode", "errno"] as const,
  registers,
});

export const fuseRequestDuration = new client.Histogram({
  name: "s3csi_fuse_request_duration_seconds",
  help: "Time from a FUSE request's arrival to its reply, by opcode",
  labelNames: ["opcode"] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

export const fuseReadBytes = new client.Counter({
  name: "s3csi_fuse_read_bytes_total",
  help: "Bytes returned to applications by FUSE READ",
  registers,
});

export const fuseWrittenBytes = new client.Counter({
  name: "s3csi_fuse_written_bytes_total",
  help: "Bytes applications wrote through FUSE WRITE",
  registers,
});

// ---- Reads: prefetch, local cache, memory ------------------------------------------------------

export const prefetchReads = new client.Counter({
  name: "s3csi_prefetch_reads_total",
  help: 'Reads of open files: "hit" when served from data already fetched, "wait" when it ' +
    "had to wait for S3",
  labelNames: ["result"] as const,
  registers,
});

export const cacheLookups = new client.Counter({
  name: "s3csi_cache_lookups_total",
  help: 'Local disk cache block lookups, "hit" or "miss"',
  labelNames: ["result"] as const,
  registers,
});

type Probe = () => number | Promise<number>;
const watched = {
  memoryUsed: new Set<Probe>(),
  memoryLimit: new Set<Probe>(),
  mounts: new Set<Probe>(),
  queueDepth: new Set<Probe>(),
  mountpointPods: new Set<Probe>(),
  attachments: new Set<Probe>(),
};

/** Gauge whose value is the sum of the watched probes at scrape time. */
function probedGauge(name: string, help: string, probes: Set<Probe>) {
  return new client.Gauge({
    name,
    help,
    registers,
    async collect() {
      let sum = 0;
      for (const p of probes) sum += await p();
      this.set(sum);
    },
  });
}

export const memoryBudgetUsed = probedGauge(
  "s3csi_memory_budget_used_bytes",
  "Bytes of the read memory budget reserved by prefetch right now",
  watched.memoryUsed,
);
export const memoryBudgetLimit = probedGauge(
  "s3csi_memory_budget_limit_bytes",
  "The read memory budget (--max-memory, or what the Mountpoint Pod's limit allows)",
  watched.memoryLimit,
);

// ---- Node and reconciler -------------------------------------------------------------------------

export const activeMounts = probedGauge(
  "s3csi_mounts_active",
  "FUSE file systems this process serves (a mount) or holds mounted (the node)",
  watched.mounts,
);

export const volumeScrapeErrors = new client.Counter({
  name: "s3csi_volume_scrape_errors_total",
  help: "Mounts whose metrics the node could not read while answering a scrape",
  registers,
});

export const reconcileQueueDepth = probedGauge(
  "s3csi_reconciler_queue_depth",
  "Keys (node and volume) waiting in the reconciler's work queue",
  watched.queueDepth,
);

export const reconciles = new client.Counter({
  name: "s3csi_reconciles_total",
  help: 'Reconciler runs of one key, "ok" or "error" (an error is retried with backoff)',
  labelNames: ["result"] as const,
  registers,
});

export const mountpointPods = probedGauge(
  "s3csi_mountpoint_pods",
  "Mountpoint Pods the reconciler's cache holds",
  watched.mountpointPods,
);

export const attachments = probedGauge(
  "s3csi_attachments",
  "MountpointS3PodAttachments the reconciler's cache holds",
  watched.attachments,
);

export type Watched = keyof typeof watched;

/** Makes gauge `what` count `probe` at every scrape; the returned function stops that. */
export function watch(what: Watched, probe: Probe): () => void {
  watched[what].add(probe);
  return () => watched[what].delete(probe);
}

// ---- The process ----------------------------------------------------------------------------
// Read at scrape time only. prom-client's default metrics are not used: their event-loop-lag
// monitor wakes an idle process every few milliseconds (a mount would never sleep).

new client.Gauge({
  name: "s3csi_process_resident_memory_bytes",
  help: "Resident set size of this process",
  registers,
  collect() {
    this.set(Deno.memoryUsage().rss);
  },
});

new client.Gauge({
  name: "s3csi_process_heap_used_bytes",
  help: "JavaScript heap in use",
  registers,
  collect() {
    this.set(Deno.memoryUsage().heapUsed);
  },
});

new client.Gauge({
  name: "s3csi_process_external_memory_bytes",
  help: "Memory of buffers held outside the JavaScript heap (part buffers, FUSE slots)",
  registers,
  collect() {
    this.set(Deno.memoryUsage().external);
  },
});

new client.Counter({
  name: "s3csi_process_cpu_seconds_total",
  help: "User and system CPU time this process spent",
  registers,
  collect() {
    const { user, system } = process.cpuUsage();
    this.reset();
    this.inc((user + system) / 1e6);
  },
});

new client.Gauge({
  name: "s3csi_process_open_fds",
  help: "Open file descriptors of this process",
  registers,
  collect() {
    let n = 0;
    try {
      for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    } catch { /* no procfs */ }
    this.set(n);
  },
});

const startedAt = Date.now() / 1000 - performance.now() / 1000;
new client.Gauge({
  name: "s3csi_process_start_time_seconds",
  help: "Start time of this process since the Unix epoch",
  registers,
  collect() {
    this.set(startedAt);
  },
});
