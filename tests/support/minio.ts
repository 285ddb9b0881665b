/**
 * A throwaway MinIO server for integration tests.
 *
 * Every call to `startMinio()` runs its own `minio server` process on
 * 127.0.0.1 with a free port, a fresh data directory on disk and freshly
 * generated root credentials, so tests never share state and never depend on
 * a server someone left running. The binary comes from `MINIO_BIN`, or from
 * the pinned build that `scripts/tools.sh` caches (built on first use).
 *
 * Ports are picked by binding port 0 and closing it, which races with other
 * processes; when MinIO fails to bind, the start is retried with new ports.
 * `stop()` sends SIGTERM, escalates to SIGKILL, waits for the exit and
 * removes the data directory. It is idempotent.
 *
 * Requires `--allow-run`, `--allow-net`, `--allow-read`, `--allow-write` and
 * `--allow-env`.
 *
 * @module
 */

import type { S3ClientConfig } from "../../internal/s3/object_client.ts";
import { freePort, randomHex, tempDir } from "./helpers.ts";

export interface MinioServer {
  /** e.g. "http://127.0.0.1:39123" */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  /** With `tls: true`: the PEM file of the self-signed CA the server's certificate chains to. */
  caCertPath?: string;
  stop(): Promise<void>;
  /** SIGKILLs the server, keeping its data (a crash); `restart()` brings it back. */
  kill(): Promise<void>;
  /** Starts a killed server again on the same data, address and keys, and waits until it answers. */
  restart(): Promise<void>;
}

export interface StartMinioOptions {
  /** Do not echo the server's output on failure (it is always captured). */
  quiet?: boolean;
  /** Serve HTTPS with a freshly generated self-signed certificate for 127.0.0.1. */
  tls?: boolean;
  /** The address to listen on (default 127.0.0.1), e.g. the host's address on a pod network. */
  host?: string;
  /**
   * Keep the data on a tmpfs of its own (root only): a disk pays a sync
   * per object, so a test that creates hundreds of thousands waits minutes.
   */
  inMemory?: boolean;
}

const REGION = "us-east-1";
const START_ATTEMPTS = 5;
/** Per attempt; a start that stalls (seen rarely under heavy load) is retried on new ports. */
const READY_TIMEOUT_MS = 20_000;
/** Test data is disposable: a short grace period, then SIGKILL. */
const STOP_GRACE_MS = 1_000;
/** How much of the server's output is kept for error messages. */
const OUTPUT_TAIL_BYTES = 16 * 1024;

const repoRoot = new URL("../../", import.meta.url).pathname;
let cachedBinary: Promise<string> | undefined;

/** Finds (and on first use builds) the MinIO binary. */
export function minioBinary(): Promise<string> {
  cachedBinary ??= locateBinary();
  return cachedBinary;
}

async function locateBinary(): Promise<string> {
  const fromEnv = Deno.env.get("MINIO_BIN");
  if (fromEnv) return fromEnv;
  const script = `source "${repoRoot}scripts/tools.sh" && need_minio >&2 && echo "$MINIO_BIN"`;
  const out = await new Deno.Command("bash", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const path = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !path) {
    throw new Error(`Cannot locate MinIO: scripts/tools.sh need_minio exited with ${out.code}`);
  }
  return path;
}

/** Starts a MinIO server and resolves once it reports ready. */
export async function startMinio(opts: StartMinioOptions = {}): Promise<MinioServer> {
  const binary = await minioBinary();
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(binary, opts);
    } catch (err) {
      lastError = err;
      if (!(err instanceof RetryableStartError)) throw err;
    }
  }
  throw new Error(`Cannot start MinIO after ${START_ATTEMPTS} attempts`, { cause: lastError });
}

/** The client configuration for talking to `m` as its root user. */
/** The standard AWS environment variables that point a driver process at `m`. */
export function minioEnv(m: MinioServer): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: m.accessKeyId,
    AWS_SECRET_ACCESS_KEY: m.secretAccessKey,
    AWS_REGION: m.region,
  };
}

export function minioClientConfig(m: MinioServer): S3ClientConfig {
  const config: S3ClientConfig = {
    endpointUrl: m.endpoint,
    region: m.region,
    forcePathStyle: true,
    credentials: { accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey },
    maxAttempts: 2,
  };
  if (m.caCertPath) config.caBundlePath = m.caCertPath;
  return config;
}

/**
 * Writes a throwaway CA and a server certificate for 127.0.0.1 signed by it,
 * laid out as MinIO expects (public.crt, private.key); returns the CA's path.
 * (rustls, behind Deno's fetch, refuses a self-signed CA used as the server
 * certificate, so the chain has two links.)
 */
async function makeCertificates(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const ext = `${dir}/server.ext`;
  await Deno.writeTextFile(
    ext,
    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const steps = [
    ["req", "-x509", ...ec, "-days", "2", "-subj", "/CN=s3csi test CA"]
      .concat(["-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.crt`]),
    ["req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", `${dir}/private.key`]
      .concat(["-out", `${dir}/server.csr`]),
    ["x509", "-req", "-in", `${dir}/server.csr`, "-CA", `${dir}/ca.crt`, "-CAkey"]
      .concat([`${dir}/ca.key`, "-CAcreateserial", "-days", "2", "-extfile", ext])
      .concat(["-out", `${dir}/public.crt`]),
  ];
  for (const args of steps) {
    const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) {
      const detail = new TextDecoder().decode(out.stderr).trim();
      throw new Error(`Cannot generate test certificates with openssl: ${detail}`);
    }
  }
  // MinIO would treat ca.crt in the certs dir as trusted; keep it outside.
  const caPath = `${dir}.ca.crt`;
  await Deno.rename(`${dir}/ca.crt`, caPath);
  for (const f of ["ca.key", "server.csr", "server.ext", "ca.srl"]) {
    await Deno.remove(`${dir}/${f}`).catch(() => {});
  }
  return caPath;
}

/** A failed start worth retrying with fresh ports: a bind conflict or a stalled startup. */
class RetryableStartError extends Error {}

/** Keeps the last bytes of a stream, draining it so the child never blocks on a full pipe. */
class OutputTail {
  #chunks: Uint8Array[] = [];
  #size = 0;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#drain(stream);
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream) {
        this.#chunks.push(chunk);
        this.#size += chunk.byteLength;
        while (this.#size > OUTPUT_TAIL_BYTES && this.#chunks.length > 1) {
          this.#size -= this.#chunks.shift()!.byteLength;
        }
      }
    } catch {
      // The stream ends with an error when the process is killed; the tail so far is enough.
    }
  }

  text(): string {
    const dec = new TextDecoder();
    return this.#chunks.map((c) => dec.decode(c, { stream: true })).join("");
  }
}

async function startOnce(binary: string, opts: StartMinioOptions): Promise<MinioServer> {
  const dataDir = await tempDir("s3csi-minio-");
  if (opts.inMemory) {
    const r = await new Deno.Command("mount", { args: ["-t", "tmpfs", "tmpfs", dataDir] }).output();
    if (!r.success) {
      throw new Error(`Cannot mount a tmpfs on ${dataDir}: ${new TextDecoder().decode(r.stderr)}`);
    }
  }
  const dropData = async () => {
    if (opts.inMemory) {
      await new Deno.Command("umount", { args: ["-l", dataDir], stderr: "null" }).output();
    }
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  };
  const port = freePort();
  const consolePort = freePort();
  const accessKeyId = `s3csi${randomHex(6)}`;
  const secretAccessKey = randomHex(20);
  const certsDir = opts.tls ? `${dataDir}.certs` : undefined;
  const caCertPath = certsDir
    ? await makeCertificates(certsDir).catch(async (err) => {
      await dropData();
      await Deno.remove(certsDir, { recursive: true }).catch(() => {});
      await Deno.remove(`${certsDir}.ca.crt`).catch(() => {});
      throw err;
    })
    : undefined;
  const host = opts.host ?? "127.0.0.1";
  const endpoint = `${opts.tls ? "https" : "http"}://${host}:${port}`;

  const launch = () => {
    const child = new Deno.Command(binary, {
      args: [
        "server",
        dataDir,
        "--address",
        `${host}:${port}`,
        "--console-address",
        `${host}:${consolePort}`,
        "--quiet",
        ...(certsDir ? ["--certs-dir", certsDir] : []),
      ],
      env: {
        MINIO_ROOT_USER: accessKeyId,
        MINIO_ROOT_PASSWORD: secretAccessKey,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
        MINIO_CALLHOME_ENABLE: "off",
        // Keep the server from looking at the tester's MinIO client config.
        HOME: dataDir,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new OutputTail(child.stdout);
    const stderr = new OutputTail(child.stderr);
    const run = { child, stdout, stderr, exited: false, status: child.status };
    run.status = child.status.then((st) => {
      run.exited = true;
      return st;
    });
    return run;
  };
  let current = launch();
  // The names the rest of this function reads: always the current run's.
  const proc = {
    get child() {
      return current.child;
    },
    get exited() {
      return current.exited;
    },
    get status() {
      return current.status;
    },
    get stdout() {
      return current.stdout;
    },
    get stderr() {
      return current.stderr;
    },
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      globalThis.removeEventListener("unload", killOnUnload);
      if (!proc.exited) {
        try {
          proc.child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const escalated = await Promise.race([
          proc.status.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
          }),
        ]);
        clearTimeout(timer);
        if (escalated) {
          try {
            proc.child.kill("SIGKILL");
          } catch {
            // Exited between the timeout and the kill.
          }
        }
      }
      await proc.status;
      await Promise.all([proc.stdout.done, proc.stderr.done]);
      await dropData();
      if (certsDir) await Deno.remove(certsDir, { recursive: true }).catch(() => {});
      if (caCertPath) await Deno.remove(caCertPath).catch(() => {});
    })();
    return stopping;
  };
  // A test that crashes before stop() must not leave a server behind.
  const killOnUnload = () => {
    if (!proc.exited) {
      try {
        proc.child.kill("SIGKILL");
      } catch {
        // Nothing to do.
      }
    }
    if (opts.inMemory) {
      new Deno.Command("umount", { args: ["-l", dataDir], stderr: "null" }).outputSync();
    }
  };
  globalThis.addEventListener("unload", killOnUnload);

  try {
    await waitReady(endpoint, caCertPath, () => proc.exited);
  } catch (err) {
    const exitedEarly = proc.exited;
    await stop();
    const output = `${proc.stdout.text()}\n${proc.stderr.text()}`.trim();
    if (exitedEarly && /address already in use|bind/i.test(output)) {
      throw new RetryableStartError(`MinIO could not bind port ${port} or ${consolePort}`);
    }
    if (err instanceof StalledError) {
      throw new RetryableStartError(`MinIO stalled during startup: ${output.slice(-2000)}`);
    }
    if (!opts.quiet && output) console.error(output);
    throw new Error(`MinIO did not become ready at "${endpoint}"`, { cause: err });
  }

  const server: MinioServer = {
    endpoint,
    region: REGION,
    accessKeyId,
    secretAccessKey,
    dataDir,
    stop,
    async kill() {
      try {
        proc.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await proc.status;
    },
    async restart() {
      if (!proc.exited) throw new Error("MinIO is running: kill() it first");
      current = launch();
      await waitReady(endpoint, caCertPath, () => proc.exited);
    },
  };
  if (caCertPath) server.caCertPath = caCertPath;
  return server;
}

class StalledError extends Error {}

/**
 * MinIO reports ready before its IAM subsystem is: until then a request
 * signed with any key but the root one (a wrong secret, an STS key) is
 * answered 503 `XMinioServerNotInitialized`, which clients take for
 * throttling. A request naming an unknown access key tells the two apart:
 * 403 once IAM answers, 503 before.
 */
async function iamReady(endpoint: string, client: Deno.HttpClient): Promise<boolean> {
  // The date must be current, or MinIO refuses the clock skew before it looks up the key.
  const date = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = date.slice(0, 8);
  const res = await fetch(`${endpoint}/`, {
    client,
    headers: {
      "x-amz-date": date,
      "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
      authorization: `AWS4-HMAC-SHA256 Credential=s3csi-readiness-probe/${day}/${REGION}/s3/` +
        `aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`,
    },
  });
  const body = await res.text();
  return res.status !== 503 && !body.includes("XMinioServerNotInitialized");
}

async function waitReady(
  endpoint: string,
  caCertPath: string | undefined,
  hasExited: () => boolean,
): Promise<void> {
  const client = Deno.createHttpClient(
    caCertPath ? { caCerts: [await Deno.readTextFile(caCertPath)] } : {},
  );
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (hasExited()) throw new Error("MinIO exited during startup");
      try {
        const res = await fetch(`${endpoint}/minio/health/ready`, { client });
        await res.body?.cancel();
        if (res.ok && await iamReady(endpoint, client)) return;
        lastError = new Error(`Health check answered ${res.status}`);
      } catch (err) {
        lastError = err;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new StalledError(`MinIO was not ready within ${READY_TIMEOUT_MS} ms`, {
      cause: lastError,
    });
  } finally {
    client.close();
  }
}

/**
 * A plain SDK client for `m` with its root keys, for the requests the
 * driver's own client does not make; the caller destroys it.
 */
export async function sdkClient(m: MinioServer): Promise<import("@aws-sdk/client-s3").S3Client> {
  const { S3Client } = await import("@aws-sdk/client-s3");
  return new S3Client({
    endpoint: m.endpoint,
    region: m.region,
    forcePathStyle: true,
    credentials: { accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey },
  });
}

/** The names of every bucket in `m`, straight from the SDK (ListBuckets). */
export async function listBucketNames(m: MinioServer): Promise<string[]> {
  const { ListBucketsCommand } = await import("@aws-sdk/client-s3");
  const client = await sdkClient(m);
  try {
    const out = await client.send(new ListBucketsCommand({}));
    return (out.Buckets ?? []).map((b) => b.Name ?? "");
  } finally {
    client.destroy();
  }
}

/**
 * Multipart uploads in progress in `bucket` (key and upload ID): what a
 * test checks is never left behind. Straight from the SDK, as the driver
 * itself has no use for the listing.
 */
export async function listUploads(
  m: MinioServer,
  bucket: string,
): Promise<{ key: string; uploadId: string }[]> {
  const { ListMultipartUploadsCommand } = await import("@aws-sdk/client-s3");
  const client = await sdkClient(m);
  try {
    const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return (out.Uploads ?? []).map((u) => ({ key: u.Key ?? "", uploadId: u.UploadId ?? "" }));
  } finally {
    client.destroy();
  }
}
