/**
 * The HTTP endpoint Prometheus scrapes: `GET /metrics` on `--metrics-address`.
 *
 * Off unless an address is given: a role run by hand or by the tests binds
 * no TCP port. A role that gathers per-volume figures (the node) passes the
 * function that lists its live mounts; it is called at every scrape, so a
 * mount made or released between scrapes is seen at the next one.
 *
 * @module
 */
import { StartupError } from "../errors/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { CONTENT_TYPE, gather, type VolumeSource } from "./gather.ts";

const log = rootLog.with({ component: "metrics" });

export interface MetricsAddress {
  hostname: string;
  port: number;
}

/** Parses `host:port` or `[v6]:port` (port 0 picks a free one, for tests). */
export function parseMetricsAddress(raw: string): MetricsAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new RangeError(`"${raw}" is not host:port, e.g. 127.0.0.1:9810`);
  }
  return { hostname: m[1] ?? m[2]!, port };
}

export class MetricsServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(
    address: MetricsAddress,
    sources: () => Promise<readonly VolumeSource[]> = () => Promise.resolve([]),
  ) {
    try {
      this.#server = Deno.serve({
        hostname: address.hostname,
        port: address.port,
        onListen: () => {},
      }, async (req) => {
        const path = new URL(req.url).pathname;
        if (path !== "/metrics") return new Response("not found\n", { status: 404 });
        if (req.method !== "GET" && req.method !== "HEAD") {
          return new Response("method not allowed\n", { status: 405 });
        }
        return new Response(await gather(await sources()), {
          headers: { "content-type": CONTENT_TYPE },
        });
      });
    } catch (err) {
      throw new StartupError(
        `Cannot serve metrics on ${address.hostname}:${address.port}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    log.info("serving metrics", { address: `${this.addr.hostname}:${this.addr.port}` });
  }

  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  async stop(): Promise<void> {
    await this.#server.shutdown();
  }
}
