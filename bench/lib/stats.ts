/**
 * Timing, statistics and formatting helpers shared by the benchmarks.
 */
import { performance } from "node:perf_hooks"
import * as v8 from "node:v8"
import * as vm from "node:vm"

v8.setFlagsFromString("--expose-gc")
const collect = vm.runInNewContext("gc") as (() => void) | undefined

/** A full garbage collection, so a run does not pay for the previous run's garbage. */
export const gc = (): void => {
  collect?.()
}

/**
 * A young-generation collection (a scavenge): it copies out of the nursery whatever the work just
 * timed left alive there, a cost the next allocation would otherwise pay, outside the timing.
 */
export const minorGc = (): void => {
  ;(collect as ((options: { readonly type: "minor" }) => void) | undefined)?.({ type: "minor" })
}

export const now = (): number => performance.now()

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Runs `f` with a clean heap and returns its wall time in ms and its result. */
export const timed = async <A>(f: () => Promise<A> | A): Promise<{ readonly ms: number; readonly value: A }> => {
  gc()
  const start = now()
  const value = await f()
  return { ms: now() - start, value }
}

/**
 * {@link timed}, with the young-generation collection of what `f` left behind inside the timing:
 * for work that allocates a large live result (a parsed document), whose promotion out of the
 * nursery one side may pay inside `f` (it allocates after the parse) and the other after it.
 */
export const timedSettled = async <A>(f: () => Promise<A> | A): Promise<{ readonly ms: number; readonly value: A }> => {
  gc()
  const start = now()
  const value = await f()
  minorGc()
  return { ms: now() - start, value }
}

/**
 * Alternates baseline and pipestate runs (baseline first on even repetitions, pipestate first on
 * odd ones), so that slow phases of a noisy machine hit both about equally.
 */
export const alternate = async <A>(
  options: {
    readonly reps: number
    readonly side: "both" | "pipestate" | "baseline"
    readonly log: (line: string) => void
  },
  baseline: (rep: number) => Promise<A>,
  pipestate: (rep: number) => Promise<A>,
  show: (a: A) => string = (a) => `${Number(a).toFixed(1)} ms`
): Promise<{ readonly baseline: Array<A>; readonly pipestate: Array<A> }> => {
  const b: Array<A> = []
  const p: Array<A> = []
  for (let rep = 0; rep < options.reps; rep++) {
    const order = rep % 2 === 0 ? (["baseline", "pipestate"] as const) : (["pipestate", "baseline"] as const)
    for (const which of order) {
      if (options.side !== "both" && options.side !== which) continue
      const ms = which === "baseline" ? await baseline(rep) : await pipestate(rep)
      ;(which === "baseline" ? b : p).push(ms)
      options.log(`  rep ${rep + 1}/${options.reps} ${which.padEnd(9)} ${show(ms)}`)
    }
  }
  return { baseline: b, pipestate: p }
}

export const fmt = (value: number | null | undefined, digits?: number): string => {
  if (value === null || value === undefined || Number.isNaN(value)) return "—"
  const d = digits ?? (Math.abs(value) >= 1000 ? 0 : Math.abs(value) >= 100 ? 1 : 2)
  return value.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })
}

export const MB = 1024 * 1024
