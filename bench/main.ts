/**
 * pipestate's benchmark suite: each benchmark runs pipestate and a baseline in this process on the
 * same data and reports both and their ratio (pipestate's throughput / the baseline's: higher is
 * better, 1.0 = as fast).
 *
 *   npm run bench                       full size (1M rows), the table at the end
 *   npm run bench -- --quick            1/10 of the size, under a minute
 *   npm run bench -- --json             also print every figure as one JSON array, as the last line
 *   npm run bench -- --only "sqlite load"   one benchmark (or one figure) only
 *   npm run bench -- --reps 5           repetitions of the throughput benchmarks (default 3)
 *   npm run bench -- --side pipestate   run one side only (for profiling; the other side shows as —)
 *   npm run bench -- --only "commit overhead" --trace   also a wall-time breakdown of 10 extra runs
 *   npm run bench -- --only "commit overhead" --profile /tmp/pipestate-prof   CPU profile of the measured runs only
 *
 * PostgreSQL: PIPESTATE_BENCH_POSTGRES_URL, else PIPESTATE_TEST_POSTGRES_URL, else
 * postgres://postgres@127.0.0.1:5432/test; without a server the PostgreSQL figures are skipped.
 * Progress goes to stderr; the table (and the JSON line) to stdout.
 */
import * as NodeOs from "node:os"
import { cliStartup } from "./cliStartup.js"
import { checkpoint } from "./checkpoint.js"
import { commitOverhead } from "./commitOverhead.js"
import { distributed } from "./distributed.js"
import { type BenchOptions, type Benchmark, type Figure, POSTGRES_URL, probePostgres } from "./lib/env.js"
import { fmt } from "./lib/stats.js"
import { memory } from "./memory.js"
import { postgresLoad } from "./postgresLoad.js"
import { sourceState } from "./sourceState.js"
import { sqliteLoad } from "./sqliteLoad.js"
import { stateCodec } from "./stateCodec.js"
import { stateSize } from "./stateSize.js"

const BENCHMARKS: ReadonlyArray<Benchmark> = [
  postgresLoad,
  sqliteLoad,
  stateCodec,
  stateSize,
  commitOverhead,
  memory,
  sourceState,
  cliStartup,
  distributed,
  checkpoint
]

interface Args {
  readonly quick: boolean
  readonly json: boolean
  readonly only: string | undefined
  readonly reps: number | undefined
  readonly side: "both" | "pipestate" | "baseline"
  readonly trace: boolean
  readonly profile: string | undefined
}

const usage = (problem: string): never => {
  console.error(
    `${problem}\nusage: npm run bench -- [--quick] [--json] [--only <name>] [--reps <n>] [--side pipestate|baseline] [--trace] [--profile <dir>]`
  )
  console.error(`names: ${BENCHMARKS.flatMap((b) => [b.id, ...b.figures]).join(", ")}`)
  process.exit(2)
}

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  let quick = false
  let json = false
  let only: string | undefined
  let reps: number | undefined
  let side: Args["side"] = "both"
  let trace = false
  let profile: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--quick") quick = true
    else if (arg === "--json") json = true
    else if (arg === "--trace") trace = true
    else if (arg === "--profile") profile = argv[++i] ?? usage("--profile needs a directory")
    else if (arg === "--only") only = argv[++i] ?? usage("--only needs a name")
    else if (arg.startsWith("--only=")) only = arg.slice("--only=".length)
    else if (arg === "--reps" || arg.startsWith("--reps=")) {
      const text = arg === "--reps" ? argv[++i] : arg.slice("--reps=".length)
      reps = Number(text)
      if (!Number.isInteger(reps) || reps < 1) usage(`--reps needs a positive integer, got ${text}`)
    } else if (arg === "--side" || arg.startsWith("--side=")) {
      const text = arg === "--side" ? argv[++i] : arg.slice("--side=".length)
      if (text !== "pipestate" && text !== "baseline") usage(`--side takes pipestate or baseline, got ${text}`)
      side = text as Args["side"]
    } else usage(`unknown argument ${arg}`)
  }
  return { quick, json, only, reps, side, trace, profile }
}

const normalize = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[-_\s]+/g, " ")
    .trim()

/** The figures --only selects: an exact figure name, else every figure of a benchmark id or containing the text. */
const selectFigures = (only: string | undefined): ReadonlySet<string> => {
  const all = BENCHMARKS.flatMap((b) => b.figures)
  if (only === undefined) return new Set(all)
  const query = normalize(only)
  const exact = all.filter((f) => normalize(f) === query)
  if (exact.length > 0) return new Set(exact)
  const byId = BENCHMARKS.filter((b) => normalize(b.id) === query).flatMap((b) => b.figures)
  if (byId.length > 0) return new Set(byId)
  const partial = all.filter((f) => normalize(f).includes(query))
  if (partial.length > 0) return new Set(partial)
  return usage(`--only ${only}: no benchmark or figure has that name`)
}

const targetText = (figure: Figure): string => {
  const target = figure.target
  if (target === undefined) return "—"
  return target.kind === "ratio>=" ? `ratio >= ${target.value}` : `< ${target.value} ${figure.unit}`
}

const targetMet = (figure: Figure): boolean | undefined => {
  const target = figure.target
  if (target === undefined || figure.value === null) return undefined
  return target.kind === "ratio>=" ? (figure.ratio ?? 0) >= target.value : figure.value < target.value
}

const status = (figure: Figure): string => {
  if (figure.error !== undefined) return "FAILED"
  if (figure.value === null) return "skipped"
  const met = targetMet(figure)
  return met === undefined ? "—" : met ? "yes" : "NO"
}

const table = (figures: ReadonlyArray<Figure>): string => {
  const header = ["figure", "pipestate", "baseline", "unit", "ratio", "target", "met"]
  const rows = figures.map((f) => [
    f.name,
    fmt(f.value),
    fmt(f.baseline),
    f.unit,
    f.ratio === null ? "—" : fmt(f.ratio, 2),
    targetText(f),
    status(f)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const right = new Set([1, 2, 4])
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ")} |`
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}

const main = async (): Promise<void> => {
  const args = parseArgs(process.argv.slice(2))
  const selected = selectFigures(args.only)
  const log = (line: string) => process.stderr.write(`${line}\n`)

  const unreachable = await probePostgres(POSTGRES_URL)
  if (unreachable !== undefined) {
    log(
      `PostgreSQL at ${POSTGRES_URL.replace(/:[^:@/]*@/, ":***@")} cannot be reached (${unreachable}): its figures are skipped`
    )
  }
  const options: BenchOptions = {
    quick: args.quick,
    scale: args.quick ? 0.1 : 1,
    reps: args.reps ?? 3,
    postgresUrl: unreachable === undefined ? POSTGRES_URL : undefined,
    side: args.side,
    trace: args.trace,
    profileDir: args.profile,
    wants: (figure) => selected.has(figure),
    log
  }
  log(
    `pipestate bench: ${args.quick ? "quick (1/10 size)" : "full size"}, ${options.reps} repetitions, node ${process.version}, ${NodeOs.cpus().length} cores, load average ${NodeOs.loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`
  )

  const figures: Array<Figure> = []
  const started = Date.now()
  for (const benchmark of BENCHMARKS) {
    const wanted = benchmark.figures.filter((f) => selected.has(f))
    if (wanted.length === 0) continue
    const skipped = (error?: string): Array<Figure> =>
      wanted.map((name) => ({
        name,
        value: null,
        unit: "",
        baseline: null,
        ratio: null,
        ...(error === undefined ? {} : { error })
      }))
    if (benchmark.needsPostgres && options.postgresUrl === undefined) {
      figures.push(...skipped())
      continue
    }
    const t0 = Date.now()
    try {
      const produced = await benchmark.run(options)
      // sub-figures (e.g. "commit overhead sqlite restore") come with the figure they detail
      figures.push(...produced.filter((f) => [...selected].some((name) => f.name.startsWith(name))))
      // a figure the benchmark could not measure (e.g. its PostgreSQL half without a server)
      for (const name of wanted)
        if (!produced.some((f) => f.name === name)) figures.push(...skipped().filter((f) => f.name === name))
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
      log(`${benchmark.id} FAILED: ${message}`)
      figures.push(...skipped(error instanceof Error ? error.message : String(error)))
    }
    log(`  (${benchmark.id}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`)
  }

  const out: Array<string> = []
  out.push("")
  out.push(
    `pipestate benchmarks (${args.quick ? "--quick, 1/10 size" : "full size"}; ratio = pipestate throughput / baseline throughput, higher is better; medians; ${((Date.now() - started) / 1000).toFixed(0)} s)`
  )
  out.push("")
  out.push(table(figures))
  const notes = figures.filter((f) => f.note !== undefined || f.error !== undefined)
  if (notes.length > 0) {
    out.push("")
    for (const f of notes) {
      if (f.note !== undefined) out.push(`- ${f.name}: ${f.note}`)
      if (f.error !== undefined) out.push(`- ${f.name}: FAILED: ${f.error}`)
    }
  }
  const missed = figures.filter((f) => targetMet(f) === false).map((f) => f.name)
  out.push("")
  out.push(missed.length === 0 ? "every measured target is met" : `targets missed: ${missed.join(", ")}`)
  process.stdout.write(`${out.join("\n")}\n`)
  if (args.json) {
    const json = figures.map(({ name, value, unit, baseline, ratio }) => ({ name, value, unit, baseline, ratio }))
    process.stdout.write(`${JSON.stringify(json)}\n`)
  }
  if (figures.some((f) => f.error !== undefined)) process.exitCode = 1
}

await main()
