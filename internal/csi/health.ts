/**
 * The node's health endpoint, for a liveness probe where no livenessprobe
 * sidecar runs: HTTP `GET /healthz` answers 200 `ok` while the node's
 * readiness check passes and 500 with the reason when it does not. The
 * check is the one Identity's Probe answers from, so the kubelet's probe and
 * a CSI client agree on what "ready" means.
 *
 * The check runs in this process instead of calling Probe over the CSI
 * socket as the sidecar does: a wedged event loop fails both alike, and the
 * endpoint then works before and without the socket's clients.
 *
 * Where it listens is the caller's choice: loopback by default (nothing is
 * exposed when the node runs outside Kubernetes); in a pod, the pod IP,
 * which is where the kubelet sends an `httpGet` probe, with or without
 * hostNetwork.
 *
 * @module
 */
import { errorMessage, StartupError } from "../errors/mod.ts";
import { log as rootLog } from "../log/mod.ts";

const log = rootLog.with({ component: "health" });

export type Readiness = { ready: true } | { ready: false; reason: string };
/** Never rejects in practice; a rejection is answered as not ready with its message. */
export type ReadinessCheck = () => Promise<Readiness>;

/** The node can serve mounts while `path` (/dev/fuse) is a character device. */
export function fuseDeviceReadiness(path = "/dev/fuse"): ReadinessCheck {
  return async () => {
    try {
      const st = await Deno.stat(path);
      // isCharDevice is null where Deno cannot tell: trust the file's presence then.
      if (st.isCharDevice ?? true) return { ready: true };
      return { ready: false, reason: `${path} is not a character device` };
    } catch (err) {
      return { ready: false, reason: `Cannot use ${path}: ${errorMessage(err)}` };
    }
  };
}

export interface HealthConfig {
  /** Address to bind: an IP or host name. */
  hostname: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  check: ReadinessCheck;
}

/** Answers one request: only `/healthz`, with GET or HEAD. */
async function answer(request: Request, check: ReadinessCheck): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname !== "/healthz") return new Response("not found\n", { status: 404 });
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  let result: Readiness;
  try {
    result = await check();
  } catch (err) {
    result = { ready: false, reason: errorMessage(err) };
  }
  if (result.ready) return new Response("ok\n", { status: 200 });
  log.warn("not healthy", { reason: result.reason });
  return new Response(`${result.reason}\n`, { status: 500 });
}

export class HealthServer {
  readonly #config: HealthConfig;
  #server?: Deno.HttpServer<Deno.NetAddr>;

  constructor(config: HealthConfig) {
    this.#config = config;
  }

  /** Starts listening; returns the port. A taken port or a bad address is a StartupError. */
  start(): number {
    const { hostname, port, check } = this.#config;
    try {
      this.#server = Deno.serve(
        { hostname, port, onListen: () => {} },
        (request) => answer(request, check),
      );
    } catch (err) {
      throw new StartupError(
        `Cannot serve /healthz on ${hostname}:${port}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    const bound = this.#server.addr.port;
    log.info("serving /healthz", { address: `${hostname}:${bound}` });
    return bound;
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }
}
