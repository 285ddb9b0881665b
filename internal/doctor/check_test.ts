import assert from "node:assert/strict";
import { type Check, failed, nothingFailed, ok, runChecks } from "./check.ts";
import { renderJson, renderTable } from "./report.ts";
import { registerSecret } from "../log/mod.ts";
import { PermissionDeniedError } from "../errors/mod.ts";

const check = (id: string, run: Check["run"], more: Partial<Check> = {}): Check => ({
  id,
  group: "s3",
  title: id,
  run,
  ...more,
});

Deno.test("runChecks() skips a check whose dependency failed, as a warning naming it", async () => {
  const results = await runChecks([
    check("s3.tcp", () => Promise.resolve(failed("Connection refused", "Start it"))),
    check("s3.tls", () => Promise.resolve(ok("fine")), { needs: ["s3.tcp"] }),
    check("s3.auth", () => Promise.resolve(ok("fine")), { needs: ["s3.tls"] }),
    check("s3.dns", () => Promise.resolve(ok("resolves"))),
  ]);
  assert.deepEqual(results.map((r) => [r.id, r.verdict, r.skipped ?? false]), [
    ["s3.tcp", "failed", false],
    ["s3.tls", "warning", true],
    ["s3.auth", "warning", true],
    ["s3.dns", "ok", false],
  ]);
  assert.equal(results[1]!.reason, "Skipped: s3.tcp failed");
  assert.equal(results[2]!.reason, "Skipped: s3.tls was skipped");
  assert.equal(nothingFailed(results), false);
  assert.equal(nothingFailed(results.slice(1)), true);
});

Deno.test("runChecks() fails a check past its deadline and aborts its signal", async () => {
  let aborted = false;
  const [r] = await runChecks([
    check("s3.hang", ({ signal }) =>
      new Promise((resolve) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          resolve(ok("too late"));
        });
      }), { timeoutMs: 50 }),
  ]);
  assert.equal(r!.verdict, "failed");
  assert.match(r!.reason, /Timed out after 0.05 s/);
  assert.equal(aborted, true);
});

Deno.test("runChecks() reports a check that throws as failed with its message", async () => {
  const [r] = await runChecks([check("s3.boom", () => Promise.reject(new Error("kaput")))]);
  assert.equal(r!.verdict, "failed");
  assert.match(r!.reason, /kaput/);
});

Deno.test("runChecks() reports a check its identity may not run as a warning naming the refusal", async () => {
  const refused = new PermissionDeniedError(
    'Kubernetes API: csidrivers "s3.csi.scality.com" is forbidden: User "system:serviceaccount:s3csi:s3csi-node" cannot get resource "csidrivers"',
  );
  const [r] = await runChecks([check("cluster.csidriver", () => Promise.reject(refused))]);
  assert.equal(r!.verdict, "warning");
  assert.match(r!.reason, /^Not allowed to check: .*cannot get resource "csidrivers"/);
  assert.match(r!.action!, /--kubeconfig/);
});

Deno.test("renderTable() shows the action under non-ok checks and masks registered secrets", async () => {
  const secret = "s3cr3t-Value-123";
  registerSecret(secret);
  const results = await runChecks([
    check("s3.auth", () => Promise.resolve(failed(`Refused key ${secret}`, "Fix the key"))),
    check("s3.dns", () => Promise.resolve(ok("resolves"))),
  ]);
  const table = renderTable(results);
  assert.match(table, /^CHECK +VERDICT +REASON$/m);
  assert.match(table, /^s3\.auth +FAILED +Refused key \[redacted\]$/m);
  assert.match(table, /^ +→ Fix the key$/m);
  assert.match(table, /^1 ok, 0 warnings, 1 failed$/m);
  assert.doesNotMatch(table, new RegExp(secret));
  const json = JSON.parse(renderJson(results));
  assert.deepEqual(json.summary, { ok: 1, warning: 0, failed: 1, skipped: 0 });
  assert.equal(json.checks[0].action, "Fix the key");
  assert.doesNotMatch(JSON.stringify(json), new RegExp(secret));
});
