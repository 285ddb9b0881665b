/** `s3csi controller`: wiring only (see internal/). */
import { UsageError } from "../../internal/cli/mod.ts";

export const summary = "Controller (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UsageError("the controller role is not implemented yet"));
}
