/**
 * Kubernetes resource quantities (`500m`, `256Mi`, `1G`, `1.5Gi`), checked
 * before they reach a pod spec: a PV's volume attribute with a malformed
 * quantity would otherwise make every create of its Mountpoint Pod fail
 * with 422. Only what the reconciler needs: validity, and a memory
 * quantity's size in bytes (for `--max-memory`).
 *
 * @module
 */

const SUFFIX: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^(\d+(?:\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The value of a quantity (bytes for memory, cores for CPU); undefined when malformed. */
export function quantityValue(text: string): number | undefined {
  const m = QUANTITY.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * SUFFIX[m[2] ?? ""];
}
