/**
 * A promise-based CSI client over a unix socket for tests, built on the same
 * proto the driver serves. `call()` resolves with the response or rejects
 * with the gRPC ServiceError (its `code` and `details` are what tests assert).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { csiDefinitions } from "../../internal/csi/proto.ts";

export type Service = "Identity" | "Controller" | "Node";

export class CsiClient {
  readonly #clients: Record<Service, grpc.Client>;

  constructor(socket: string) {
    const defs = csiDefinitions();
    const target = `unix://${socket}`;
    const creds = grpc.credentials.createInsecure();
    this.#clients = {
      Identity: new defs.Identity(target, creds),
      Controller: new defs.Controller(target, creds),
      Node: new defs.Node(target, creds),
    };
  }

  // deno-lint-ignore no-explicit-any
  call<T = any>(
    service: Service,
    method: string,
    request: unknown,
    timeoutMs = 60_000,
  ): Promise<T> {
    const client = this.#clients[service] as unknown as Record<
      string,
      (
        req: unknown,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res: T) => void,
      ) => void
    >;
    const fn = client[method];
    if (typeof fn !== "function") throw new Error(`Unknown method ${service}.${method}`);
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res);
      });
    });
  }

  /** Resolves with the gRPC status code of a failing call; throws if the call succeeds. */
  async code(
    service: Service,
    method: string,
    request: unknown,
  ): Promise<{ code: string; details: string }> {
    try {
      await this.call(service, method, request);
    } catch (err) {
      const e = err as grpc.ServiceError;
      return { code: grpc.status[e.code], details: e.details };
    }
    throw new Error(`${service}.${method} succeeded but an error was expected`);
  }

  close(): void {
    for (const c of Object.values(this.#clients)) c.close();
  }
}

/** A mount capability for `mode`. */
export function mountCapability(mode = "MULTI_NODE_MULTI_WRITER", mountFlags: string[] = []) {
  return { mount: { fs_type: "", mount_flags: mountFlags }, access_mode: { mode } };
}
