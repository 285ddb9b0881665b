/**
 * The `@aws-sdk/client-s3` clients an `AwsObjectClient` sends through, and
 * the transports under them.
 *
 * - **Transport.** Requests go through `FetchHttpHandler`, on Deno's native
 *   `fetch` (faster and cheaper in CPU than `node:http`, see that module).
 *   A second client on the SDK's Node handler over `node:http` keep-alive
 *   agents takes what `fetch` cannot address: keys with "." or ".." path
 *   segments, which its URL parser would resolve, and endpoints on ports it
 *   refuses. It is created on first need, or used for everything when the
 *   caller asks for `transport: "node"`.
 * - **Pool and trust.** Both transports keep a connection pool sized for the
 *   FUSE read path (8–32 concurrent ranged GETs), and add a custom CA bundle
 *   to the system roots rather than replacing them.
 * - **Checksums.** Request checksums and response validation run only when
 *   the operation requires them. The SDK computes CRC32 in JavaScript, which
 *   on the read path would cost more CPU than the transfer itself; TCP/TLS
 *   and the SigV4 payload hash already protect the bytes in flight.
 * - `Expect: 100-continue` is off: with a known body length it only costs a
 *   round trip.
 *
 * Requires `--allow-read` for the CA bundle.
 *
 * @module
 */

import { S3Client, type S3ClientConfig as SdkClientConfig } from "@aws-sdk/client-s3";
import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import { FetchHttpHandler, hasDotSegment, isFetchBlockedPort } from "./fetch_http_handler.ts";
import type { S3ClientConfig } from "./object_client.ts";

/** Socket pool size when the config does not say: above the FUSE read path's peak concurrency. */
const DEFAULT_MAX_CONNECTIONS = 64;
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * A request whose socket sees no traffic this long is failed as a network
 * error (`S3ClientConfig.idleTimeoutMs` overrides it); on the fetch
 * transport, response headers get twice as long (it includes sending the
 * body).
 */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;

/**
 * HTTP transport: Deno's `fetch` (the default: faster and cheaper in CPU) or
 * `node:http`. Endpoints on ports `fetch` refuses always use `node`.
 */
export type Transport = "fetch" | "node";

export class SdkClients {
  readonly #config: S3ClientConfig;
  readonly #credentials: SdkClientConfig["credentials"];
  readonly #maxConnections: number;
  readonly #idleTimeoutMs: number;
  readonly #caPem?: string;
  /** The client for ordinary requests (fetch transport unless configured otherwise). */
  readonly #client: S3Client;
  /** The node:http client, created on first need (keys fetch cannot address, or by choice). */
  #nodeClient?: S3Client;
  #nodeAgents?: { http: http.Agent; https: https.Agent };
  #closed = false;

  constructor(
    config: S3ClientConfig,
    credentials: SdkClientConfig["credentials"],
    transport?: Transport,
  ) {
    this.#config = config;
    this.#credentials = credentials;
    this.#maxConnections = config.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#idleTimeoutMs = config.idleTimeoutMs ?? SOCKET_IDLE_TIMEOUT_MS;
    if (!Number.isInteger(this.#maxConnections) || this.#maxConnections < 1) {
      throw new RangeError(`Invalid maxConnections "${config.maxConnections}": expected >= 1`);
    }
    if (config.caBundlePath) this.#caPem = readCaBundle(config.caBundlePath);

    transport ??= isFetchBlockedPort(endpointPort(config.endpointUrl)) ? "node" : "fetch";
    if (transport === "fetch") {
      const handler = new FetchHttpHandler({
        maxConnections: this.#maxConnections,
        responseTimeoutMs: 2 * this.#idleTimeoutMs,
        bodyIdleTimeoutMs: this.#idleTimeoutMs,
        ...(this.#caPem ? { caCerts: [this.#caPem] } : {}),
      });
      // The SDK types its signal with its own AbortSignal interface; the runtime object is the same.
      this.#client = this.#makeClient(handler as unknown as SdkClientConfig["requestHandler"]);
    } else {
      this.#client = this.#node();
    }
  }

  /** The client for a request on `key` (none for bucket requests). */
  for(key: string | undefined): S3Client {
    // fetch's URL parser would resolve "." and ".." in the key's path.
    return key !== undefined && hasDotSegment(key) ? this.#node() : this.#client;
  }

  /** Closes pooled connections. The clients must not be used afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
    if (this.#nodeClient && this.#nodeClient !== this.#client) this.#nodeClient.destroy();
    this.#nodeAgents?.http.destroy();
    this.#nodeAgents?.https.destroy();
  }

  #makeClient(requestHandler: SdkClientConfig["requestHandler"]): S3Client {
    const config = this.#config;
    const sdkConfig: SdkClientConfig & { expectContinueHeader: boolean } = {
      region: config.region,
      forcePathStyle: config.forcePathStyle ?? true,
      requestHandler,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // With a known body length, 100-continue only costs a round trip.
      expectContinueHeader: false,
    };
    if (config.endpointUrl) sdkConfig.endpoint = config.endpointUrl;
    if (this.#credentials) sdkConfig.credentials = this.#credentials;
    // Undefined lets the SDK read AWS_MAX_ATTEMPTS / the profile, as the AWS CLI does.
    if (config.maxAttempts !== undefined) sdkConfig.maxAttempts = config.maxAttempts;
    const client = new S3Client(sdkConfig);

    if (config.userAgentPrefix) {
      const prefix = config.userAgentPrefix;
      // User-Agent is not signed, so it can be rewritten after the SDK sets it.
      client.middlewareStack.add(
        (next) => (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) {
            const current = request.headers["user-agent"];
            request.headers["user-agent"] = current ? `${prefix} ${current}` : prefix;
          }
          return next(args);
        },
        { step: "finalizeRequest", name: "s3csiUserAgentPrefix", priority: "low" },
      );
    }
    return client;
  }

  /** The SDK client on node:http keep-alive agents. */
  #node(): S3Client {
    if (!this.#nodeClient) {
      const agentOptions = {
        keepAlive: true,
        keepAliveMsecs: 1_000,
        maxSockets: this.#maxConnections,
        maxFreeSockets: this.#maxConnections,
      };
      this.#nodeAgents = {
        http: new http.Agent(agentOptions),
        https: new https.Agent({
          ...agentOptions,
          // Node replaces the system roots when `ca` is given; keep them.
          ...(this.#caPem ? { ca: [...tls.rootCertificates, this.#caPem] } : {}),
        }),
      };
      this.#nodeClient = this.#makeClient({
        httpAgent: this.#nodeAgents.http,
        httpsAgent: this.#nodeAgents.https,
        connectionTimeout: CONNECT_TIMEOUT_MS,
        socketTimeout: this.#idleTimeoutMs,
      });
    }
    return this.#nodeClient;
  }
}

function readCaBundle(path: string): string {
  let pem: string;
  try {
    pem = Deno.readTextFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read CA bundle "${path}": ${(err as Error).message}`, { cause: err });
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`Cannot use CA bundle "${path}": no PEM certificate found`);
  }
  return pem;
}

function endpointPort(endpointUrl: string | undefined): number {
  if (!endpointUrl) return 443;
  try {
    const url = new URL(endpointUrl);
    return url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  } catch {
    throw new Error(`Invalid S3 endpoint URL "${endpointUrl}"`);
  }
}
