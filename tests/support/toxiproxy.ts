/**
 * Toxiproxy (`scripts/tools.sh` `need_toxiproxy`, pinned) for the fault
 * tier: a TCP proxy in front of MinIO whose faults a test sets and clears
 * over Toxiproxy's HTTP API. It forwards bytes untouched, so requests keep
 * their Host header and SigV4 signature and MinIO verifies them as if the
 * client had talked to it directly.
 *
 * Everything listens on 127.0.0.1; `stop()` ends the server.
 *
 * @module
 */
import { freePort } from "./helpers.ts";
import { collectOutput } from "./driver.ts";

/** A toxic as Toxiproxy's API takes it (types: latency, limit_data, timeout, reset_peer, …). */
export interface Toxic {
  type: string;
  /** Which way it acts: "downstream" (to the client, the default) or "upstream" (to MinIO). */
  stream?: "upstream" | "downstream";
  /** The share of connections it applies to, 0 to 1 (default 1). */
  toxicity?: number;
  attributes: Record<string, number>;
}

export interface Proxy {
  /** `http://127.0.0.1:<port>`: the S3 endpoint to give the client under test. */
  endpoint: string;
  /** Adds a toxic; returns its name. */
  add(toxic: Toxic): Promise<string>;
  remove(name: string): Promise<void>;
  /** Removes every toxic. */
  clear(): Promise<void>;
  /** Disabled: connections are refused and open ones closed (the endpoint is down). */
  setEnabled(enabled: boolean): Promise<void>;
}

export interface Toxiproxy {
  /** A proxy in front of `upstream` (`host:port`). */
  proxy(name: string, upstream: string): Promise<Proxy>;
  stop(): Promise<void>;
}

function binary(): string {
  const bin = Deno.env.get("TOXIPROXY_BIN");
  if (!bin) throw new Error("TOXIPROXY_BIN is not set: run through scripts/test (need_toxiproxy)");
  return bin;
}

export async function startToxiproxy(): Promise<Toxiproxy> {
  const port = freePort();
  const api = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(binary(), {
    args: ["-host", "127.0.0.1", "-port", String(port)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { output, status } = collectOutput(child);
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await fetch(`${api}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`toxiproxy ${method} ${path}: ${r.status} ${text}`);
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return text; // /version answers plain text
    }
  };
  const deadline = Date.now() + 15_000;
  while (true) {
    try {
      await call("GET", "/version");
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`toxiproxy did not start: ${err}\n${output()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let seq = 0;
  return {
    async proxy(name, upstream) {
      const listen = `127.0.0.1:${freePort()}`;
      await call("POST", "/proxies", { name, listen, upstream, enabled: true });
      const names = new Set<string>();
      const p: Proxy = {
        endpoint: `http://${listen}`,
        async add(t) {
          const toxic = `${t.type}-${seq++}`;
          await call("POST", `/proxies/${name}/toxics`, {
            name: toxic,
            type: t.type,
            stream: t.stream ?? "downstream",
            toxicity: t.toxicity ?? 1,
            attributes: t.attributes,
          });
          names.add(toxic);
          return toxic;
        },
        async remove(toxic) {
          await call("DELETE", `/proxies/${name}/toxics/${toxic}`);
          names.delete(toxic);
        },
        async clear() {
          for (const toxic of [...names]) await p.remove(toxic);
        },
        async setEnabled(enabled) {
          await call("POST", `/proxies/${name}`, { enabled });
        },
      };
      return p;
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await status;
    },
  };
}
