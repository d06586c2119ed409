/**
 * `npm run soak [-- --runs N] [--seed S] [--no-restart] [--verbose] [--url postgres://...]`
 *
 * 1. the fault soak (soak.ts): N runs (default 200) of the incremental-api pipeline against
 *    PostgreSQL, a fifth of them faulted, then a final clean run and the final checks;
 * 2. the database restart (restart.ts), unless `--no-restart`.
 *
 * Exit code 0 when every check holds, 1 otherwise (the failing checks are printed).
 */
import { Effect } from "effect"
import { DEFAULT_URL, reachable } from "./pg.js"
import { runRestart } from "./restart.js"
import { formatReport, runSoak } from "./soak.js"

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const option = (name: string): string | undefined => {
  const inline = argv.find((arg) => arg.startsWith(`--${name}=`))
  if (inline !== undefined) return inline.slice(name.length + 3)
  const at = argv.indexOf(`--${name}`)
  return at >= 0 ? argv[at + 1] : undefined
}
const integer = (name: string, fallback: number): number => {
  const text = option(name)
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a non-negative integer, not ${JSON.stringify(text)}`)
    process.exit(2)
  }
  return value
}

const runs = integer("runs", 200)
const seed = integer("seed", Math.floor(Math.random() * 2 ** 31))
const url = option("url") ?? DEFAULT_URL
const restart = !flag("no-restart")

const unreachable = await reachable(url)
if (unreachable !== undefined) {
  console.error(`soak: PostgreSQL cannot be reached at ${url.replace(/:[^:@/]*@/, ":***@")}: ${unreachable}`)
  process.exit(1)
}

let ok = true
try {
  const report = await Effect.runPromise(runSoak({ runs, seed, url, verbose: flag("verbose") }))
  console.log("")
  for (const line of formatReport(report)) console.log(line)
  ok = report.problems.length === 0
  if (restart) {
    console.log("")
    const restarted = await Effect.runPromise(runRestart({ seed, url }))
    ok = ok && restarted.problems.length === 0
  }
} catch (error) {
  console.error(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  ok = false
}
console.log("")
console.log(ok ? `soak OK (replay with --seed ${seed})` : `soak FAILED (replay with --seed ${seed})`)
process.exit(ok ? 0 : 1)
