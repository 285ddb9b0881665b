/**
 * A throwaway Prometheus for integration tests: Debian's server (unpacked by
 * `scripts/tools.sh`, found through `PROMETHEUS_BIN`) on 127.0.0.1 with a
 * fresh data directory, scraping the given targets every second. `query()`
 * asks its HTTP API; `stop()` ends it and removes its data.
 *
 * @module
 */
import { collectOutput } from "./driver.ts";
import { freePort, tempDir } from "./helpers.ts";

export interface PrometheusServer {
  url: string;
  /** The instant vector of `expr`: one entry per series, its labels and value. */
  query(expr: string): Promise<{ labels: Record<string, string>; value: number }[]>;
  /** Every target's scrape health, by job. */
  targets(): Promise<{ job: string; health: string; lastError: string }[]>;
  output(): string;
  stop(): Promise<void>;
}

export function prometheusBin(): string {
  const bin = Deno.env.get("PROMETHEUS_BIN");
  if (!bin) throw new Error("PROMETHEUS_BIN is not set: run through scripts/test");
  return bin;
}

/** Starts Prometheus scraping `targets` (job name → host:port) every second. */
export async function startPrometheus(targets: Record<string, string>): Promise<PrometheusServer> {
  const dir = await tempDir("s3csi-prometheus-");
  const jobs = Object.entries(targets).map(([job, addr]) =>
    `  - job_name: ${job}\n    static_configs:\n      - targets: ["${addr}"]\n`
  ).join("");
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n${jobs}`,
  );
  const port = freePort();
  const child = new Deno.Command(prometheusBin(), {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { output, status } = collectOutput(child);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const api = async (path: string) => {
    const res = await fetch(`${url}${path}`);
    const body = await res.json();
    if (body.status !== "success") throw new Error(`Prometheus ${path}: ${JSON.stringify(body)}`);
    return body.data;
  };
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      const res = await fetch(`${url}/-/ready`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Prometheus did not become ready:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    output,
    stop,
    async query(expr) {
      const data = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(
        (r) => ({ labels: r.metric, value: Number(r.value[1]) }),
      );
    },
    async targets() {
      const data = await api("/api/v1/targets");
      return (data.activeTargets as {
        labels: { job: string };
        health: string;
        lastError: string;
      }[])
        .map((t) => ({ job: t.labels.job, health: t.health, lastError: t.lastError }));
    },
  };
}
