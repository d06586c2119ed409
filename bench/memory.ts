/**
 * memory: the peak RSS of a child process loading n rows into PostgreSQL through `Pipeline.run`
 * (the rows must stream: nothing may buffer a whole table). The figure of reference is the same
 * child's RSS right after startup with the same imports (ratio = startup / peak, informational).
 */
import { spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { compiledChild } from "./lib/compiled.js"
import type { Benchmark, Figure } from "./lib/env.js"
import { MB } from "./lib/stats.js"

interface ChildReport {
  readonly rows: number
  readonly ms: number
  readonly startupRss: number
  readonly peakRss: number
  readonly vmHwm: number | null
  readonly maxHeapUsed: number
  readonly maxExternal: number
  readonly maxHeapTotal: number
  readonly heapUsedAfterGc: number
  readonly peakAtExtractEnd: number | null
}

const here = NodePath.dirname(fileURLToPath(import.meta.url))

const runChild = (
  childPath: string,
  n: number,
  url: string,
  mode: "pipestate" | "copy",
  nodeFlags: ReadonlyArray<string> = []
): Promise<ChildReport> =>
  new Promise((resolve, reject) => {
    const args = [...nodeFlags, childPath, String(n), url, mode]
    const child = spawn(process.execPath, args, {
      cwd: NodePath.resolve(here, ".."),
      stdio: ["ignore", "pipe", "pipe"],
      // a parent started with --cpu-prof must not make the child profile (it would change the RSS)
      env: { ...process.env, NODE_OPTIONS: "" }
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (data: Buffer) => {
      out += data.toString("utf8")
    })
    child.stderr.on("data", (data: Buffer) => {
      err += data.toString("utf8")
    })
    child.on("error", reject)
    child.on("close", (code) => {
      const last = out.trim().split("\n").pop() ?? ""
      if (code !== 0 || !last.startsWith("{")) {
        reject(new Error(`the memory child exited with ${code}: ${err.trim() || out.trim()}`))
        return
      }
      resolve(JSON.parse(last) as ChildReport)
    })
  })

export const memory: Benchmark = {
  id: "memory",
  figures: ["peak rss postgres load", "peak rss postgres load (old space 192 MB)", "peak rss postgres copy baseline"],
  needsPostgres: true,
  run: async (options) => {
    const n = Math.round(1_000_000 * options.scale)
    const url = options.postgresUrl!
    const describe = (report: ChildReport): string => {
      const peak = Math.max(report.peakRss, report.vmHwm ?? 0) / MB
      const atExtractEnd =
        report.peakAtExtractEnd === null
          ? ""
          : `, ${(report.peakAtExtractEnd / MB).toFixed(1)} MB when extraction ended`
      return (
        `startup RSS ${(report.startupRss / MB).toFixed(1)} MB, peak RSS ${peak.toFixed(1)} MB${atExtractEnd}; ` +
        `JS heap used max ${(report.maxHeapUsed / MB).toFixed(1)} MB, heap total max ${(report.maxHeapTotal / MB).toFixed(1)} MB, external max ${(report.maxExternal / MB).toFixed(1)} MB (sampled), ${(report.heapUsedAfterGc / MB).toFixed(1)} MB after a full GC at the end; ` +
        `load ${(report.ms / 1000).toFixed(1)} s`
      )
    }
    const peakOf = (report: ChildReport): number => Math.max(report.peakRss, report.vmHwm ?? 0) / MB

    options.log(
      `memory: a child process (plain node on the compiled package) loads ${n.toLocaleString("en-US")} rows into PostgreSQL`
    )
    const child = await compiledChild(NodePath.join(here, "memoryChild.ts"), options.log)
    const report = await runChild(child, n, url, "pipestate")
    if (report.rows !== n) throw new Error(`memory child loaded ${report.rows} rows, expected ${n}`)
    options.log(`  pipestate: ${describe(report)}`)
    const peak = peakOf(report)
    const startup = report.startupRss / MB
    const figures: Array<Figure> = [
      {
        name: "peak rss postgres load",
        value: peak,
        unit: "MB",
        baseline: startup,
        ratio: startup / peak,
        target: { kind: "value<", value: 250 },
        note: "baseline: the child's RSS right after startup with the same imports (ratio = startup / peak, informational)"
      }
    ]

    // Streaming check: the same load with V8's old space capped. Buffering the table (about 0.5 KB
    // a row in JS) would run out of heap; a streaming load only keeps a batch or two alive.
    // at 1/10 size the whole table would fit under the cap anyway: the check proves nothing there
    if (options.quick) options.log("  (--quick: the heap-capped streaming check and the COPY child are skipped)")
    const capped =
      options.quick || !options.wants(CAPPED_FIGURE)
        ? undefined
        : await runChild(child, n, url, "pipestate", [`--max-old-space-size=${CAPPED_OLD_SPACE_MB}`]).catch(
            (error: unknown) => error as Error
          )
    if (capped === undefined) {
      // not selected by --only
    } else if (capped instanceof Error || capped.rows !== n) {
      const why = capped instanceof Error ? capped.message : `it loaded ${capped.rows} rows, expected ${n}`
      figures.push({
        name: CAPPED_FIGURE,
        value: null,
        unit: "MB",
        baseline: null,
        ratio: null,
        error: `the load failed with the old space capped at ${CAPPED_OLD_SPACE_MB} MB: it does not stream (${why.slice(0, 300)})`
      })
    } else {
      options.log(`  pipestate, --max-old-space-size=${CAPPED_OLD_SPACE_MB}: ${describe(capped)}`)
      figures.push({
        name: CAPPED_FIGURE,
        value: peakOf(capped),
        unit: "MB",
        baseline: startup,
        ratio: startup / peakOf(capped),
        note: `the same load in a child run with --max-old-space-size=${CAPPED_OLD_SPACE_MB}: completing proves the load streams (its live data stays under the cap); compare its peak with the uncapped one to see how much of that is uncollected garbage`
      })
    }

    if (!options.quick && options.side !== "pipestate" && options.wants("peak rss postgres copy baseline")) {
      const copy = await runChild(child, n, url, "copy")
      if (copy.rows !== n) throw new Error(`memory child (COPY) loaded ${copy.rows} rows, expected ${n}`)
      options.log(`  COPY baseline: ${describe(copy)}`)
      figures.push({
        name: "peak rss postgres copy baseline",
        value: peakOf(copy),
        unit: "MB",
        baseline: copy.startupRss / MB,
        ratio: copy.startupRss / MB / peakOf(copy),
        note: "the postgres load baseline (COPY, CSV built in JS) in the same kind of child, for comparison"
      })
    }
    return figures
  }
}

const CAPPED_OLD_SPACE_MB = 192
const CAPPED_FIGURE = `peak rss postgres load (old space ${CAPPED_OLD_SPACE_MB} MB)`
