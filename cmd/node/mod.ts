/** `s3csi node`: wiring only (see internal/). */
import { UsageError } from "../../internal/cli/mod.ts";

export const summary = "Node (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UsageError("the node role is not implemented yet"));
}
