/**
 * Five processes run the same pipeline (same name, same dataset, each with its own pipelines dir
 * so the local lock does not serialize them) at once, three rounds. All five have read the same
 * starting state before any of them commits (they meet at a barrier after restoring), so in every
 * round exactly one commits and the four others fail with StateConflict (exit code 3) and write
 * nothing: no duplicate rows, and the state versions in `_dlt_pipeline_state` strictly increase in
 * load id order. Round 0 is also every process's first run into an empty dataset.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { allBatchKeys, TOTAL_KEY } from "../fixtures/batchSource.js"
import { tempDir } from "../helpers.js"
import { freshDataset, postgresAvailable, query } from "../postgres.js"
import { type ChildRun, datasetFacts, outcomeOf, problems, spawnScoped, urlWithApplicationName } from "./support.js"

const NAME = "concurrent_pipeline"
const PROCESSES = 5
const ROUNDS = 3
const BATCHES = 10
const ROWS = 1000

// generous: five processes loading their modules at once on a busy 2-core machine
const LOAD_TIMEOUT = 120_000

const keysUpTo = (upto: number) => allBatchKeys({ upto, batchesPerEpoch: BATCHES })

describe.skipIf(!postgresAvailable)("fault: five processes run one pipeline at once", () => {
  it.scopedLive(
    `${ROUNDS} rounds of ${PROCESSES} concurrent runs: each commits or fails with StateConflict, exactly one wins a round`,
    () =>
      Effect.gen(function* () {
        const base = yield* tempDir("pipestate-concurrent-")
        const dataset = yield* freshDataset("fconc")
        const url = urlWithApplicationName(`pipestate_conc_${dataset}`)
        const spawnRound = (round: number) =>
          Effect.forEach(
            Array.from({ length: PROCESSES }, (_, i) => i),
            (i) =>
              spawnScoped({
                url,
                dataset,
                dir: NodePath.join(base, `process-${i}`),
                name: NAME,
                upto: round,
                batches: BATCHES,
                rows: ROWS,
                writer: `r${round}p${i}`,
                "start-file": NodePath.join(base, `start-${round}`),
                barrier: NodePath.join(base, `barrier-${round}`)
              })
          )

        const tally = { COMMITTED: 0, CONFLICT: 0 }
        let previousVersion: number | null = null
        for (let round = 0; round < ROUNDS; round++) {
          const runs: ReadonlyArray<ChildRun> = yield* spawnRound(round)
          // all five start together once all have loaded their modules
          yield* Effect.promise(() => Promise.all(runs.map((run) => run.waitFor("WAITING", LOAD_TIMEOUT))))
          NodeFs.writeFileSync(NodePath.join(base, `start-${round}`), "")
          // every process has read the newest state and extracted its first batch's state; none has committed
          yield* Effect.promise(() => Promise.all(runs.map((run) => run.waitFor("READY", LOAD_TIMEOUT))))
          NodeFs.writeFileSync(NodePath.join(base, `barrier-${round}`), "")
          const exits = yield* Effect.promise(() => Promise.all(runs.map((run) => run.exited)))

          const results = runs.map((run, i) => ({ ...outcomeOf(run), exit: exits[i]!.code }))
          for (const result of results) {
            // the printed tag and the exit code agree, and they are one of the two allowed outcomes
            expect([result.tag, result.exit], JSON.stringify(result.detail)).toSatisfy(
              ([tag, exit]: [string, number]) =>
                (tag === "COMMITTED" && exit === 0) || (tag === "CONFLICT" && exit === 3)
            )
          }
          const winners = results.filter((r) => r.tag === "COMMITTED")
          const losers = results.filter((r) => r.tag === "CONFLICT")
          expect(winners.length).toBe(1)
          expect(losers.length).toBe(PROCESSES - 1)
          tally.COMMITTED += winners.length
          tally.CONFLICT += losers.length
          const winner = winners[0]!.detail as { loadId: string; versionAfter: number }

          const facts = yield* Effect.promise(() => datasetFacts(dataset, NAME))
          expect(problems(facts, keysUpTo(round), ROWS)).toEqual([])
          expect(facts.loads).toBe(round + 1)
          expect(facts.versions.map((v) => v.loadId)).toHaveLength(round + 1)
          expect(facts.newest).toMatchObject({ loadId: winner.loadId, version: winner.versionAfter })
          // each loser was told what it expected and what it found
          for (const loser of losers) {
            expect((loser.detail as { fields: Record<string, unknown> }).fields).toMatchObject({
              _tag: "StateConflict",
              expectedVersion: previousVersion,
              foundVersion: winner.versionAfter
            })
          }
          const total = yield* Effect.promise(() =>
            query<{ writer: string }>(`SELECT writer FROM "${dataset}".batch_status WHERE batch = $1`, [TOTAL_KEY])
          )
          const winnerIndex = results.findIndex((r) => r.tag === "COMMITTED")
          expect(total.map((t) => t.writer)).toEqual([`r${round}p${winnerIndex}`])
          previousVersion = winner.versionAfter
        }

        const facts = yield* Effect.promise(() => datasetFacts(dataset, NAME))
        console.log(
          `concurrency: ${ROUNDS} rounds x ${PROCESSES} processes: ${tally.COMMITTED} committed, ${tally.CONFLICT} StateConflict; ` +
            `${facts.rows} rows = ${facts.distinctIds} distinct ids; state versions in load id order: ${facts.versions.map((v) => v.version).join(", ")}`
        )
      }),
    180_000
  )
})
