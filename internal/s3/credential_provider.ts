/**
 * The credentials an `AwsObjectClient` signs with: the config's static keys,
 * its `credentialsProvider` callback, or, when it gives neither, the SDK's
 * standard AWS chain (environment, profile files, …).
 *
 * Callback results are cached for a few seconds only, and dropped as soon as
 * S3 rejects them, so a rotated secret takes effect on the next request
 * without a call to the provider per request. Every secret is registered with
 * the logger, so it is masked in any log line.
 *
 * @module
 */

import type { S3ClientConfig as SdkClientConfig } from "@aws-sdk/client-s3";
import { registerSecret } from "../log/mod.ts";
import type { Credentials, S3ClientConfig } from "./object_client.ts";

/** How long credentials from `credentialsProvider` are reused. */
const DEFAULT_CREDENTIALS_CACHE_MS = 3_000;

export interface ClientCredentials {
  /** The SDK's `credentials` setting; undefined leaves it the standard AWS chain. */
  readonly sdk?: SdkClientConfig["credentials"];
  /** Forgets cached provider results: S3 rejected them, they may have been rotated. */
  invalidate(): void;
}

/**
 * The credentials for `config`. `cacheMs` is the reuse window of
 * `credentialsProvider` results; 0 calls the provider for every request.
 */
export function clientCredentials(
  config: S3ClientConfig,
  cacheMs = DEFAULT_CREDENTIALS_CACHE_MS,
): ClientCredentials {
  if (config.credentialsProvider) {
    const cache = new RotatingCredentials(config.credentialsProvider, cacheMs);
    return { sdk: () => cache.get(), invalidate: () => cache.invalidate() };
  }
  if (config.credentials) {
    registerCredentialSecrets(config.credentials);
    return { sdk: { ...config.credentials }, invalidate: () => {} };
  }
  return { invalidate: () => {} };
}

/** Caches `credentialsProvider` results briefly and lets a rejection drop them. */
class RotatingCredentials {
  readonly #provider: () => Promise<Credentials>;
  readonly #ttlMs: number;
  #current?: { value: Credentials; fetchedAt: number };
  #pending?: Promise<Credentials>;
  #generation = 0;

  constructor(provider: () => Promise<Credentials>, ttlMs: number) {
    this.#provider = provider;
    this.#ttlMs = ttlMs;
  }

  async get(): Promise<Credentials & { expiration: Date }> {
    const now = Date.now();
    let value: Credentials;
    if (this.#current && now - this.#current.fetchedAt < this.#ttlMs) {
      value = this.#current.value;
    } else {
      value = await this.#fetch();
    }
    // An expiration inside the SDK's refresh window makes it ask us again on every request,
    // leaving the caching decision here.
    return { ...value, expiration: new Date(Date.now() + 1_000) };
  }

  invalidate(): void {
    this.#current = undefined;
    this.#generation++;
  }

  #fetch(): Promise<Credentials> {
    if (!this.#pending) {
      const generation = this.#generation;
      this.#pending = (async () => {
        try {
          const value = await this.#provider();
          registerCredentialSecrets(value);
          if (generation === this.#generation) {
            this.#current = { value, fetchedAt: Date.now() };
          }
          return value;
        } finally {
          this.#pending = undefined;
        }
      })();
    }
    return this.#pending;
  }
}

function registerCredentialSecrets(c: Credentials): void {
  registerSecret(c.secretAccessKey);
  registerSecret(c.sessionToken);
}
