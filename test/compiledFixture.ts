/**
 * A TypeScript fixture that tests run as a child process, bundled once per test process into one
 * ES module that plain `node` starts: under `node --import tsx` every child compiles the sources
 * again, which on a busy 2-core machine doubles its start time. Packages stay external and resolve
 * from the project's node_modules (the bundle is written under node_modules/.cache).
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { buildSync } from "esbuild"
import { nodeBundleOptions } from "../scripts/nodeBundle.js"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
const OUT_DIR = NodePath.join(ROOT, "node_modules", ".cache", "pipestate-test")
const built = new Map<string, string>()

const removeAtExit = (file: string) => {
  process.once("exit", () => NodeFs.rmSync(file, { force: true }))
}

/** the path of `entry` (a .ts file) bundled for `node`; built on the first call in this process */
export const compiledFixture = (entry: string): string => {
  const known = built.get(entry)
  if (known !== undefined) return known
  NodeFs.mkdirSync(OUT_DIR, { recursive: true })
  // one file per test process: workers bundling at once never read each other's half-written output
  const outfile = NodePath.join(OUT_DIR, `${NodePath.basename(entry, ".ts")}-${process.pid}.mjs`)
  buildSync({
    ...nodeBundleOptions,
    entryPoints: [entry],
    sourcemap: "inline",
    outfile
  })
  removeAtExit(outfile)
  built.set(entry, outfile)
  return outfile
}
