/**
 * S3 clients per credential set.
 *
 * CSI calls carry their own secrets; building an SDK client per call would
 * waste connections, so clients are cached by region and credentials (the
 * key holds the secrets in memory only), with a bounded size and an idle
 * expiry. `undefined` credentials mean the driver-level ones.
 *
 * `s3Readiness()` builds the controller's Probe check on such a client.
 *
 * @module
 */
import { AwsObjectClient } from "./aws_object_client.ts";
import type { Credentials, ObjectClient, S3ClientConfig } from "./object_client.ts";
import { isS3Error } from "./object_client.ts";

export interface ClientCacheOptions {
  endpointUrl?: string;
  forcePathStyle: boolean;
  caBundlePath?: string;
  maxAttempts?: number;
  userAgentPrefix?: string;
  driverCredentials?: Credentials;
  /** Most clients kept at once. */
  maxEntries?: number;
  /** Idle time after which a client is dropped. */
  idleMs?: number;
}

interface Entry {
  client: AwsObjectClient;
  lastUsed: number;
}

export class ClientCache {
  readonly #opts: ClientCacheOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: ClientCacheOptions) {
    this.#opts = opts;
  }

  get(creds: Credentials | undefined, region: string): ObjectClient {
    const effective = creds ?? this.#opts.driverCredentials;
    // The key holds secrets only in memory; it is never logged.
    const key = `${region}\0${effective?.accessKeyId ?? ""}\0${effective?.secretAccessKey ?? ""}\0${
      effective?.sessionToken ?? ""
    }`;
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit) {
      hit.lastUsed = now;
      return hit.client;
    }
    this.#evict(now);
    const config: S3ClientConfig = {
      region,
      forcePathStyle: this.#opts.forcePathStyle,
    };
    if (this.#opts.endpointUrl) config.endpointUrl = this.#opts.endpointUrl;
    if (effective) config.credentials = effective;
    if (this.#opts.caBundlePath) config.caBundlePath = this.#opts.caBundlePath;
    if (this.#opts.maxAttempts) config.maxAttempts = this.#opts.maxAttempts;
    if (this.#opts.userAgentPrefix) config.userAgentPrefix = this.#opts.userAgentPrefix;
    const client = new AwsObjectClient(config);
    this.#entries.set(key, { client, lastUsed: now });
    return client;
  }

  factory(): (creds: Credentials | undefined, region: string) => ObjectClient {
    return (creds, region) => this.get(creds, region);
  }

  #evict(now: number): void {
    const idle = this.#opts.idleMs ?? 10 * 60_000;
    for (const [k, e] of this.#entries) {
      if (now - e.lastUsed > idle) this.#drop(k, e);
    }
    const max = this.#opts.maxEntries ?? 256;
    while (this.#entries.size >= max) {
      const oldest = this.#entries.entries().next().value;
      if (oldest === undefined) break;
      this.#drop(oldest[0], oldest[1]);
    }
  }

  /** Forgets a client and releases its connection pool. */
  #drop(key: string, entry: Entry): void {
    this.#entries.delete(key);
    entry.client.close();
  }

  /** Releases every client (shutdown). */
  close(): void {
    for (const [k, e] of this.#entries) this.#drop(k, e);
  }
}

/**
 * A readiness check for Probe: S3 answers at all. Any HTTP answer, even
 * NoSuchBucket or AccessDenied, proves the endpoint is reachable; only
 * network failures make the driver not ready. Results are cached briefly so
 * frequent probes do not hammer S3.
 */
export function s3Readiness(client: () => ObjectClient, cacheMs = 5000): () => Promise<boolean> {
  let last = 0;
  let lastResult = false;
  return async () => {
    const now = Date.now();
    if (now - last < cacheMs) return lastResult;
    try {
      await client().headBucket("s3csi-readiness-probe");
      lastResult = true;
    } catch (err) {
      lastResult = !(isS3Error(err) && (err.code === "NetworkError" || err.code === "ServerError"));
    }
    last = now;
    return lastResult;
  };
}
