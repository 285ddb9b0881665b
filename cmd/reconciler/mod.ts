/** `s3csi reconciler`: wiring only (see internal/). */
import { UsageError } from "../../internal/cli/mod.ts";

export const summary = "Reconciler (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UsageError("the reconciler role is not implemented yet"));
}
