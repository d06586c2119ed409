/**
 * A benchmark's child process as the compiled package runs it: `entry` (a .ts file under bench/)
 * bundled by esbuild into one ES module for plain `node`, its imports of `src/index.js` pointed at
 * the package's compiled `dist/index.js` (built first when missing or older than a source file),
 * every other package external. tsx alone costs ~240 MB of RSS at startup, so a memory figure taken
 * under tsx says little about the package users install.
 */
import { execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { nodeBundleOptions } from "../../scripts/nodeBundle.js"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
const DIST_INDEX = NodePath.join(ROOT, "dist", "index.js")

const newestSource = (dir: string): number => {
  let newest = 0
  for (const entry of NodeFs.readdirSync(dir, { withFileTypes: true })) {
    const path = NodePath.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : NodeFs.statSync(path).mtimeMs)
  }
  return newest
}

/** dist/ as `npm run build` makes it (tsc only: the CLI bundle is not needed here) */
const ensureDist = (log: (line: string) => void): void => {
  const built = NodeFs.existsSync(DIST_INDEX) ? NodeFs.statSync(DIST_INDEX).mtimeMs : 0
  if (built >= newestSource(NodePath.join(ROOT, "src"))) return
  log("  building dist/ (tsc -p tsconfig.build.json) for the compiled child")
  execFileSync(
    process.execPath,
    [NodePath.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: ROOT,
      stdio: "inherit"
    }
  )
}

/** the path of the bundled child (removed when this process exits) */
export const compiledChild = async (entry: string, log: (line: string) => void): Promise<string> => {
  ensureDist(log)
  const outDir = NodePath.join(ROOT, "node_modules", ".cache", "pipestate-bench")
  NodeFs.mkdirSync(outDir, { recursive: true })
  const outfile = NodePath.join(outDir, `${NodePath.basename(entry, ".ts")}-${process.pid}.mjs`)
  await build({
    ...nodeBundleOptions,
    entryPoints: [entry],
    outfile,
    plugins: [
      {
        name: "pipestate-dist",
        setup: (build) => {
          build.onResolve({ filter: /\/src\/index\.js$/ }, () => ({ path: DIST_INDEX, external: true }))
        }
      }
    ]
  })
  process.once("exit", () => NodeFs.rmSync(outfile, { force: true }))
  return outfile
}
