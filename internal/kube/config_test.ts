import assert from "node:assert/strict";
import { StartupError } from "../errors/mod.ts";
import { loadKubeConfig } from "./config.ts";

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
  - name: c
    cluster: { server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true }
users:
  - name: u
    user: { token: "t0ken" }
contexts:
  - name: ctx
    context: { cluster: c, user: u }
current-context: ctx
`;

Deno.test("loadKubeConfig: a kubeconfig file names the server", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config`, KUBECONFIG);
    assert.equal(
      loadKubeConfig(`${dir}/config`).getCurrentCluster()?.server,
      "https://127.0.0.1:6443",
    );
    assert.throws(() => loadKubeConfig(`${dir}/missing`), StartupError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadKubeConfig: outside a cluster without a kubeconfig is a startup error", () => {
  const saved = ["KUBECONFIG", "KUBERNETES_SERVICE_HOST"].map((k) => [k, Deno.env.get(k)] as const);
  try {
    saved.forEach(([k]) => Deno.env.delete(k));
    assert.throws(() => loadKubeConfig(), /Not in a cluster .*give --kubeconfig/);
  } finally {
    for (const [k, v] of saved) if (v !== undefined) Deno.env.set(k, v);
  }
});
