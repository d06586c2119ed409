/**
 * Fault (c): a process running the pipeline against PostgreSQL is SIGKILLed at a random moment
 * (restoring, extracting or committing), ten times in a row. After each kill the dataset holds the
 * load completely or not at all, and the next normal run (in this process, taking over the stale
 * lock file of the killed one) loads exactly what is missing: exact row counts, no duplicate ids,
 * and the committed state's list of loaded batches equal to the batches in the tables.
 *
 * Set PIPESTATE_KILL_SEED to replay a sequence of kill delays.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import * as Progress from "../../src/pipeline/Progress.js"
import { allBatchKeys, makeSource } from "../fixtures/batchSource.js"
import { tempDir } from "../helpers.js"
import { freshDataset, postgresAvailable, testDestination } from "../postgres.js"
import {
  backendsOf,
  type ChildRun,
  datasetFacts,
  localState,
  outcomeOf,
  prng,
  problems,
  spawnScoped,
  urlWithApplicationName
} from "./support.js"

const NAME = "kill_pipeline"
const BATCHES = 30
const ROWS = 1000
const BATCH_DELAY_MS = 5
const KILLS = 10
// generous: a child loads its modules through tsx while another runs, on a busy 2-core machine
const LOAD_TIMEOUT = 120_000
const MAX_ATTEMPTS = KILLS + 6

/** where a kill aims: after the child printed `PHASE <after>`, at a random fraction [from, to) of that phase's measured length */
const PLANS: ReadonlyArray<{ readonly after: "extract" | "commit"; readonly from: number; readonly to: number }> = [
  { after: "extract", from: 0, to: 1 },
  { after: "commit", from: 0, to: 0.6 },
  { after: "commit", from: 0.3, to: 0.95 }
]

const keysUpTo = (upto: number) => allBatchKeys({ upto, batchesPerEpoch: BATCHES })

const sleep = (ms: number) => new Promise<"timer">((resolve) => setTimeout(() => resolve("timer"), ms))

/** the child's PHASE lines: phase name and the child's clock in ms */
const phasesOf = (run: ChildRun): ReadonlyArray<{ readonly phase: string; readonly at: number }> =>
  run.lines
    .filter((line) => line.startsWith("PHASE "))
    .map((line) => {
      const [, phase, at] = line.split(" ")
      return { phase: phase!, at: Number(at) }
    })

describe.skipIf(!postgresAvailable)("fault (c): SIGKILL of the loading process", () => {
  it.scopedLive(
    "ten kills at random moments: each load is all or nothing, the next run takes over the lock and loads exactly what is missing",
    () =>
      Effect.gen(function* () {
        const base = yield* tempDir("pipestate-kill-")
        const dataset = yield* freshDataset("fc")
        const applicationName = `pipestate_kill_${dataset}`
        const url = urlWithApplicationName(applicationName)
        const pipelineDir = NodePath.join(base, NAME)
        const seed = Number(process.env.PIPESTATE_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31))
        const random = prng(seed)

        // a child is spawned one iteration ahead, so its start-up (module loading) overlaps the previous one
        const spawnEpoch = (epoch: number) =>
          spawnScoped({
            url,
            dataset,
            dir: base,
            name: NAME,
            upto: epoch,
            batches: BATCHES,
            rows: ROWS,
            delay: BATCH_DELAY_MS,
            writer: `child-${epoch}`,
            "start-file": NodePath.join(base, `start-${epoch}`)
          })
        const start = (run: ChildRun, epoch: number) =>
          Effect.promise(async () => {
            await run.waitFor("WAITING", LOAD_TIMEOUT)
            NodeFs.writeFileSync(NodePath.join(base, `start-${epoch}`), "")
          })
        const recover = (upto: number, progress: Progress.ProgressShape = Progress.silent) =>
          Pipeline.run(
            makeSource({
              upto,
              batchesPerEpoch: BATCHES,
              rowsPerBatch: ROWS,
              batchDelayMs: BATCH_DELAY_MS,
              writer: "recovery"
            })
          ).pipe(
            Effect.provide(
              Layer.mergeAll(
                Pipeline.layerNode({ name: NAME, dataset, pipelinesDir: base }),
                testDestination(),
                Layer.succeed(Progress.Progress, progress)
              )
            )
          )
        const facts = Effect.promise(() => datasetFacts(dataset, NAME))
        const expectConsistent = (upto: number) =>
          Effect.gen(function* () {
            const found = yield* facts
            expect(problems(found, upto < 0 ? [] : keysUpTo(upto), ROWS)).toEqual([])
            return found
          })

        // each child is spawned one iteration ahead, so its start-up (module loading) overlaps the run before
        let pending = yield* spawnEpoch(1)
        const nextChild = (epoch: number) =>
          Effect.gen(function* () {
            const run = pending
            pending = yield* spawnEpoch(epoch + 1)
            return run
          })

        // epoch 0 runs in this process to the end: it creates the tables and times the phases
        const phaseStarts = new Map<string, number>()
        yield* recover(0, {
          ...Progress.silent,
          phase: (_name, phase) => Effect.sync(() => phaseStarts.set(phase, performance.now()))
        })
        const at = (phase: string) => phaseStarts.get(phase) ?? Number.NaN
        const durations: Record<"extract" | "commit", number> = {
          extract: Math.round(at("commit") - at("extract")),
          commit: Math.round(at("done") - at("commit"))
        }
        expect(durations.extract).toBeGreaterThan(0)
        expect(durations.commit).toBeGreaterThan(0)
        yield* expectConsistent(0)

        const landed = new Map<string, { kills: number; committed: number }>()
        let kills = 0
        let finishedFirst = 0
        let lockTakeOvers = 0
        let rowsChecked = 0
        let fromDestination = 0
        let epoch = 1
        for (; kills < KILLS && epoch <= MAX_ATTEMPTS; epoch++) {
          const run = yield* nextChild(epoch)
          yield* start(run, epoch)
          // a random moment while it extracts, while it commits, or late in the commit
          const plan = PLANS[(epoch - 1) % PLANS.length]!
          const target = plan.after
          yield* Effect.promise(() => run.waitFor(`PHASE ${target}`, LOAD_TIMEOUT).catch(() => "exited"))
          const delay = durations[target] * (plan.from + random() * (plan.to - plan.from))
          const raced = yield* Effect.promise(() =>
            Promise.race([sleep(delay), run.exited.then(() => "exited" as const)])
          )
          let where = "finished before the kill"
          if (raced === "timer" && !run.hasExited()) {
            // freeze the process, look at what its connections are doing, then kill it
            run.child.kill("SIGSTOP")
            const backends = yield* Effect.promise(() => backendsOf(applicationName))
            const lastPhase = phasesOf(run).at(-1)?.phase ?? "start-up"
            run.child.kill("SIGKILL")
            const exit = yield* Effect.promise(() => run.exited)
            if (exit.signal === "SIGKILL") {
              kills++
              const copying = backends.some((b) => b.state === "active" && /^\s*COPY\b/i.test(b.query))
              const inTransaction = backends.some((b) => b.in_xact && b.state !== "idle")
              where =
                lastPhase !== "commit"
                  ? lastPhase
                  : copying
                    ? "commit: COPY in flight"
                    : inTransaction
                      ? "commit: in the transaction, no COPY running"
                      : "commit: no transaction open"
            }
          }
          if (where === "finished before the kill") {
            finishedFirst++
            expect(outcomeOf(run).tag).toBe("COMMITTED")
          }

          // right after the kill: the load is in completely or not at all, and the state agrees with the data
          const after = yield* facts
          const committed = after.rows === keysUpTo(epoch).length * ROWS
          expect(problems(after, keysUpTo(committed ? epoch : epoch - 1), ROWS)).toEqual([])
          const entry = landed.get(where) ?? { kills: 0, committed: 0 }
          landed.set(where, { kills: entry.kills + 1, committed: entry.committed + (committed ? 1 : 0) })
          const lockLeft = NodeFs.existsSync(NodePath.join(pipelineDir, ".lock"))
          if (lockLeft) lockTakeOvers++

          // the next normal run: takes over the lock, loads what is missing, nothing twice
          const summary = yield* recover(epoch)
          if (summary.origin === "destination") fromDestination++
          expect(summary.tables.events).toBe(committed ? 0 : BATCHES * ROWS)
          const recovered = yield* expectConsistent(epoch)
          rowsChecked += recovered.rows
          expect(localState(pipelineDir)).toEqual({ version: recovered.newest?.version, hash: recovered.newest?.hash })
          expect(NodeFs.existsSync(NodePath.join(pipelineDir, ".lock"))).toBe(false)
          expect(NodeFs.readdirSync(pipelineDir).filter((f) => f.endsWith(".tmp"))).toEqual([])
        }

        const final = yield* expectConsistent(epoch - 1)
        const spoolLeft = NodeFs.existsSync(NodePath.join(pipelineDir, "load"))
          ? NodeFs.readdirSync(NodePath.join(pipelineDir, "load"))
          : []
        console.log(
          [
            `fault (c): seed ${seed}, ${kills} SIGKILLs in ${epoch - 1} attempts (${finishedFirst} runs finished before their kill), a kill lands within ${durations.extract} ms after "extract" or ${durations.commit} ms after "commit" (measured on the first run)`,
            ...[...landed.entries()].map(
              ([phase, n]) => `  ${phase}: ${n.kills} (load committed before the kill: ${n.committed})`
            ),
            `  stale lock files taken over: ${lockTakeOvers}; recoveries that restored the state from the destination: ${fromDestination}`,
            `  rows checked after the recoveries: ${rowsChecked}; final table ${final.rows} rows = ${final.distinctIds} distinct ids, ${final.versions.length} state versions`,
            `  spool directories left by killed runs: ${spoolLeft.length}`
          ].join("\n")
        )
        expect(kills).toBe(KILLS)
        expect(lockTakeOvers).toBeGreaterThan(0)
        expect(final.rows).toBe(keysUpTo(epoch - 1).length * ROWS)
      }),
    180_000
  )
})
