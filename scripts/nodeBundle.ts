/**
 * How the repository bundles a TypeScript entry for plain `node` (the test fixtures run as child
 * processes, the benchmarks' children): one ES module for Node 20, packages left external (they
 * resolve from the project's node_modules). The callers add the entry, the output file and, where
 * needed, plugins or an inline source map.
 */
import type { BuildOptions } from "esbuild"

export const nodeBundleOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  logLevel: "error"
} as const satisfies BuildOptions
