import assert from "node:assert/strict";
import { KubeConfig, type V1Taint } from "@kubernetes/client-node";
import { AbortedError } from "../errors/mod.ts";
import { setSink } from "../log/mod.ts";
import { AGENT_NOT_READY_TAINT } from "../podmount/contract.ts";
import {
  type JsonPatchOp,
  kubeError,
  kubeNodeApi,
  type NodeApi,
  type NodeTaints,
  removeStartupTaint,
  taintRemovalPatch,
} from "./node_taint.ts";

const STARTUP: V1Taint = { key: AGENT_NOT_READY_TAINT, effect: "NoExecute" };
const NOT_READY: V1Taint = { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" };

/**
 * A Node held in memory with the API server's rules for a guarded JSON
 * patch: the resourceVersion test fails with 422 when the Node changed, and
 * every write bumps the version. `before` runs ahead of each call, to change
 * the Node behind the caller's back or to fail the call.
 */
class FakeNodes implements NodeApi {
  rv = 1;
  taints: V1Taint[];
  calls: string[] = [];
  before: (call: "get" | "patch", n: number) => void = () => {};

  constructor(taints: V1Taint[]) {
    this.taints = taints;
  }

  change(taints: V1Taint[]) {
    this.taints = taints;
    this.rv++;
  }

  get(name: string): Promise<NodeTaints> {
    this.calls.push(`get ${name}`);
    this.before("get", this.calls.length);
    return Promise.resolve({
      resourceVersion: String(this.rv),
      taints: structuredClone(this.taints),
    });
  }

  patch(name: string, ops: JsonPatchOp[]): Promise<void> {
    this.calls.push(`patch ${name}`);
    this.before("patch", this.calls.length);
    for (const op of ops) {
      if (
        op.op === "test" && op.path === "/metadata/resourceVersion" && op.value !== String(this.rv)
      ) {
        return Promise.reject(kubeError("the test operation failed", 422));
      }
    }
    for (const op of ops) {
      if (op.op === "replace" && op.path === "/spec/taints") this.change(op.value as V1Taint[]);
    }
    return Promise.resolve();
  }
}

const noSleep = () => Promise.resolve();

function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const prev = setSink({ write: () => {} });
  return fn().finally(() => setSink(prev));
}

Deno.test("node taint: the patch tests the version read and keeps the other taints", () => {
  const patch = taintRemovalPatch(
    { resourceVersion: "42", taints: [NOT_READY, { ...STARTUP, effect: "NoSchedule" }] },
    AGENT_NOT_READY_TAINT,
  );
  assert.deepEqual(patch, [
    { op: "test", path: "/metadata/resourceVersion", value: "42" },
    { op: "replace", path: "/spec/taints", value: [NOT_READY] },
  ]);
  assert.equal(
    taintRemovalPatch({ resourceVersion: "42", taints: [NOT_READY] }, STARTUP.key),
    undefined,
  );
});

Deno.test("node taint: removed once, whatever its effect; other taints stay", async () => {
  const nodes = new FakeNodes([NOT_READY, STARTUP, { ...STARTUP, effect: "NoSchedule" }]);
  assert.equal(await quiet(() => removeStartupTaint(nodes, "n1", { sleep: noSleep })), "removed");
  assert.deepEqual(nodes.taints, [NOT_READY]);
  assert.deepEqual(nodes.calls, ["get n1", "patch n1"]);
});

Deno.test("node taint: an absent taint is not patched", async () => {
  const nodes = new FakeNodes([NOT_READY]);
  assert.equal(await quiet(() => removeStartupTaint(nodes, "n1", { sleep: noSleep })), "absent");
  assert.deepEqual(nodes.calls, ["get n1"]);
  assert.equal(nodes.rv, 1);
});

Deno.test("node taint: a taint added meanwhile is kept: the stale patch fails and is redone", async () => {
  const nodes = new FakeNodes([STARTUP]);
  const added: V1Taint = { key: "example.com/maintenance", effect: "NoSchedule" };
  // Between the first read and its patch, another writer adds a taint.
  nodes.before = (call, n) => {
    if (call === "patch" && n === 2) nodes.change([...nodes.taints, added]);
  };
  assert.equal(await quiet(() => removeStartupTaint(nodes, "n1", { sleep: noSleep })), "removed");
  assert.deepEqual(nodes.taints, [added]);
  assert.deepEqual(nodes.calls, ["get n1", "patch n1", "get n1", "patch n1"]);
});

Deno.test("node taint: conflicts are bounded", async () => {
  const nodes = new FakeNodes([STARTUP]);
  nodes.before = (call) => {
    if (call === "patch") nodes.change([...nodes.taints]);
  };
  const outcome = await quiet(() =>
    removeStartupTaint(nodes, "n1", { maxAttempts: 3, sleep: noSleep })
  );
  assert.equal(outcome, "gave-up");
  assert.equal(nodes.calls.filter((c) => c.startsWith("patch")).length, 3);
  assert.deepEqual(nodes.taints, [STARTUP]);
});

Deno.test("node taint: network failures back off, doubling, then succeed", async () => {
  const nodes = new FakeNodes([STARTUP]);
  nodes.before = (call, n) => {
    if (call === "get" && n <= 3) throw kubeError("connection refused", undefined);
  };
  const delays: number[] = [];
  const outcome = await quiet(() =>
    removeStartupTaint(nodes, "n1", {
      backoffMs: 100,
      sleep: (ms) => (delays.push(ms), Promise.resolve()),
    })
  );
  assert.equal(outcome, "removed");
  assert.deepEqual(delays, [100, 200, 400]);
  assert.deepEqual(nodes.taints, []);
});

Deno.test("node taint: denied access, a missing Node or a refused request give up at once", async () => {
  const kinds: Record<number, string> = {
    400: "invalid_argument",
    401: "permission_denied",
    403: "permission_denied",
    404: "not_found",
  };
  for (const status of [400, 401, 403, 404]) {
    const nodes = new FakeNodes([STARTUP]);
    nodes.before = () => {
      throw kubeError(`HTTP ${status}`, status);
    };
    const lines: string[] = [];
    const prev = setSink({ write: (l) => lines.push(l) });
    try {
      assert.equal(await removeStartupTaint(nodes, "n1", { sleep: noSleep }), "gave-up");
    } finally {
      setSink(prev);
    }
    assert.deepEqual(nodes.calls, ["get n1"], `HTTP ${status}`);
    const warning = lines.map((l) => JSON.parse(l)).find((r) => r.level === "warn");
    assert.equal(warning?.kind, kinds[status]);
  }
});

Deno.test("node taint: server errors and throttling are retried a bounded number of times", async () => {
  const nodes = new FakeNodes([STARTUP]);
  nodes.before = (_call, n) => {
    throw n % 2 ? kubeError("HTTP 503", 503) : kubeError("HTTP 429", 429);
  };
  const outcome = await quiet(() =>
    removeStartupTaint(nodes, "n1", { maxAttempts: 4, sleep: noSleep })
  );
  assert.equal(outcome, "gave-up");
  assert.equal(nodes.calls.length, 4);
});

Deno.test("node taint: shutdown stops the retries", async () => {
  const nodes = new FakeNodes([STARTUP]);
  const stop = new AbortController();
  nodes.before = () => {
    throw kubeError("connection refused", undefined);
  };
  const outcome = await quiet(() =>
    removeStartupTaint(nodes, "n1", {
      signal: stop.signal,
      sleep: () => (stop.abort(), Promise.resolve()),
    })
  );
  assert.equal(outcome, "gave-up");
  assert.equal(nodes.calls.length, 1);
});

Deno.test("node taint: the real client sends a JSON patch and reports the HTTP status", async () => {
  const seen: { method: string; path: string; type: string | null; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.text();
    seen.push({
      method: req.method,
      path: new URL(req.url).pathname,
      type: req.headers.get("content-type"),
      body,
    });
    if (req.method === "GET") {
      const node = {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "n1", resourceVersion: "7" },
        spec: { taints: [STARTUP] },
      };
      return Response.json(node);
    }
    const status = { kind: "Status", status: "Failure", message: "the test failed", code: 422 };
    return Response.json(status, { status: 422 });
  });
  try {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      // Plain HTTP needs skipTLSVerify in this client.
      clusters: [{
        name: "c",
        server: `http://127.0.0.1:${server.addr.port}`,
        skipTLSVerify: true,
      }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const api = kubeNodeApi(kc);
    assert.deepEqual(await api.get("n1"), { resourceVersion: "7", taints: [STARTUP] });
    const ops = taintRemovalPatch(await api.get("n1"), AGENT_NOT_READY_TAINT)!;
    await assert.rejects(api.patch("n1", ops), (err: unknown) => {
      assert.ok(err instanceof AbortedError);
      assert.equal(err.message, 'Cannot patch Node "n1": HTTP 422: the test failed');
      return true;
    });
    const patch = seen.find((s) => s.method === "PATCH")!;
    assert.equal(patch.path, "/api/v1/nodes/n1");
    assert.equal(patch.type, "application/json-patch+json");
    assert.deepEqual(JSON.parse(patch.body), ops);
  } finally {
    await server.shutdown();
  }
});
