/**
 * The CSI gRPC server: grpc-js over a unix socket.
 *
 * Every handler is wrapped once here: the wrapper logs the call (method,
 * duration, status; the request at debug level with secrets redacted by the
 * logger), maps thrown domain errors to gRPC status codes through
 * `toGrpcError`, logs each error exactly once, and counts the call in the
 * CSI metrics (method, code, duration). Probe is logged at debug level
 * because kubelet and liveness probes call it constantly.
 *
 * `stop()` drains in-flight calls (bounded), then removes the socket file.
 * The socket handling (`listenUnix`, `stopGrpc`) is shared with the kubelet
 * registration socket (`registration.ts`).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { dirname, removeIfPresent } from "../util/path.ts";
import { log as rootLog } from "../log/mod.ts";
import { csiRequestDuration, csiRequests } from "../metrics/mod.ts";
import { toGrpcError } from "./grpc_status.ts";
import { csiDefinitions } from "./proto.ts";

const log = rootLog.with({ component: "grpc" });

// deno-lint-ignore no-explicit-any
export type Handler = (request: any) => Promise<any>;
export type ServiceImpl = Record<string, Handler>;

export interface CsiServices {
  identity: ServiceImpl;
  controller?: ServiceImpl;
  node?: ServiceImpl;
}

const QUIET_METHODS = new Set([
  "Probe",
  "GetPluginInfo",
  "GetPluginCapabilities",
  "NodeGetCapabilities",
]);

let nextCallId = 1;

function wrap(method: string, handler: Handler): grpc.handleUnaryCall<unknown, unknown> {
  const quiet = QUIET_METHODS.has(method);
  return (call, callback) => {
    const id = nextCallId++;
    const started = performance.now();
    const clog = log.with({ method, call: id });
    if (clog.enabled("debug")) clog.debug("request", { request: call.request });
    handler(call.request).then(
      (response) => {
        const elapsed = performance.now() - started;
        const ms = Math.round(elapsed);
        csiRequests.inc({ method, code: "OK" });
        csiRequestDuration.observe({ method }, elapsed / 1000);
        if (quiet) clog.debug("ok", { ms });
        else clog.info("ok", { ms });
        if (clog.enabled("debug")) clog.debug("response", { response });
        callback(null, response);
      },
      (err) => {
        const elapsed = performance.now() - started;
        const ms = Math.round(elapsed);
        const { code, details } = toGrpcError(err);
        csiRequests.inc({ method, code: grpc.status[code] });
        csiRequestDuration.observe({ method }, elapsed / 1000);
        const level = code === grpc.status.INTERNAL || code === grpc.status.UNAVAILABLE
          ? "error"
          : "warn";
        clog[level]("failed", { ms, code: grpc.status[code], message: details });
        callback({ code, details });
      },
    );
  };
}

function wrapAll(impl: ServiceImpl): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) out[method] = wrap(method, handler);
  return out;
}

/** Parses `unix:///path` or `/path` into a socket path; throws on other schemes. */
export function socketPath(endpoint: string): string {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length);
  if (endpoint.startsWith("/")) return endpoint;
  throw new Error(`Cannot listen on "${endpoint}": only unix:// endpoints are supported`);
}

export class CsiServer {
  readonly #server = new grpc.Server({
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
  });
  #path = "";

  constructor(services: CsiServices) {
    const defs = csiDefinitions();
    this.#server.addService(defs.Identity.service, wrapAll(services.identity));
    if (services.controller) {
      this.#server.addService(defs.Controller.service, wrapAll(services.controller));
    }
    if (services.node) this.#server.addService(defs.Node.service, wrapAll(services.node));
  }

  /** Binds the unix socket (replacing a stale socket file) and starts serving. */
  async listen(endpoint: string): Promise<void> {
    this.#path = await listenUnix(this.#server, endpoint);
    log.info("listening", { endpoint: `unix://${this.#path}` });
  }

  /** Graceful stop: waits up to `graceMs` for in-flight calls, then forces. Removes the socket. */
  async stop(graceMs = 5000): Promise<void> {
    await stopGrpc(this.#server, this.#path, graceMs);
    log.info("stopped", { endpoint: `unix://${this.#path}` });
  }
}

/**
 * Binds `server` on the unix socket of `endpoint` and returns its path. A
 * stale socket file left by a previous run is replaced; `mode`, when given,
 * narrows who may connect (the socket is created with the process umask).
 */
export async function listenUnix(
  server: grpc.Server,
  endpoint: string,
  mode?: number,
): Promise<string> {
  const path = socketPath(endpoint);
  await Deno.mkdir(dirname(path), { recursive: true });
  await removeIfPresent(path);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new Error(`Cannot listen on "${path}": ${err.message}`, { cause: err }));
      else resolve();
    });
  });
  if (mode !== undefined) await Deno.chmod(path, mode);
  return path;
}

/** Waits up to `graceMs` for in-flight calls, then forces; removes the socket at `path`. */
export async function stopGrpc(server: grpc.Server, path: string, graceMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (path) await removeIfPresent(path).catch(() => {});
}
