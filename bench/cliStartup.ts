/**
 * cli start: wall time of `node dist/bin/pipestate.js --help` (the compiled `pipestate` command, a new
 * process each time, output discarded) against `node -e 0` (the cost of starting Node at all),
 * alternating, median of 15 runs each (7 with --quick). The ratio is node's start / the CLI's (1.0
 * would be a CLI that costs nothing beyond Node); the target is the absolute one: < 1000 ms.
 * dist/ is built first when it is missing or older than src/.
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import type { BenchOptions, Benchmark, Figure } from "./lib/env.js"
import { alternate, median, now } from "./lib/stats.js"

const ROOT = NodePath.resolve(import.meta.dirname, "..")
const BIN = NodePath.join(ROOT, "dist", "bin", "pipestate.js")

const newestMtime = (dir: string): number =>
  NodeFs.readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const path = NodePath.join(dir, entry.name)
    return Math.max(newest, entry.isDirectory() ? newestMtime(path) : NodeFs.statSync(path).mtimeMs)
  }, 0)

const exec = (command: string, args: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    execFile(command, args, { cwd: ROOT, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 }, (error, _out, stderr) =>
      error === null ? resolve() : reject(new Error(`${command} ${args.join(" ")} failed: ${stderr}`))
    )
  )

/** wall time in ms of one process, from spawn to exit */
const timeProcess = async (args: ReadonlyArray<string>): Promise<number> => {
  const start = now()
  await exec(process.execPath, args)
  return now() - start
}

export const cliStartup: Benchmark = {
  id: "cli start",
  figures: ["cli start"],
  run: async (options: BenchOptions): Promise<ReadonlyArray<Figure>> => {
    const built = NodeFs.existsSync(BIN) ? NodeFs.statSync(BIN).mtimeMs : 0
    if (built < newestMtime(NodePath.join(ROOT, "src"))) {
      options.log("cli start: dist/ is missing or older than src/, building it (npm run build)")
      await exec("npm", ["run", "build"])
    }
    const reps = options.quick ? 7 : 15
    options.log(`cli start: node dist/bin/pipestate.js --help against node -e 0, ${reps} runs each`)
    // one untimed run each, so both start with the files in the page cache
    await timeProcess(["-e", "0"])
    await timeProcess([BIN, "--help"])
    const { baseline, pipestate } = await alternate(
      { ...options, reps },
      () => timeProcess(["-e", "0"]),
      () => timeProcess([BIN, "--help"])
    )
    const value = median(pipestate)
    const base = median(baseline)
    return [
      {
        name: "cli start",
        value,
        unit: "ms",
        baseline: base,
        ratio: base / value,
        target: { kind: "value<", value: 1000 },
        note: "baseline: node -e 0 (pipestate: node dist/bin/pipestate.js --help), wall time of a new process"
      }
    ]
  }
}
