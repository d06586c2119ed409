/**
 * Eight OS processes, each loading one resource of one source into one PostgreSQL dataset at once
 * (every one opened its session before any committed): all eight commit (disjoint changes merge),
 * the newest state holds all eight resource slots, and no row is lost or duplicated. Two
 * processes writing one source-state key: one commits, the other fails naming the key.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { resourceNames } from "../examples/distributed/shop.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, TEST_POSTGRES_URL } from "./postgres.js"
import { bundle, spawnScoped } from "./processes.js"

// bundled once: eight processes start as plain JavaScript
const FIXTURE = await bundle("test/fixtures/shop-group.ts")
const ROWS = 2_000

const newestState = async (dataset: string) => {
  const rows = await query<{ state: string; version: string }>(
    `SELECT s.state, s.version FROM "${dataset}"._dlt_pipeline_state s JOIN "${dataset}"._dlt_loads l ON l.load_id = s._dlt_load_id WHERE l.status = 0 ORDER BY l.load_id DESC LIMIT 1`
  )
  return Either.getOrThrow(StateBlob.decode(rows[0]!.state))
}

describe.skipIf(!postgresAvailable)("one source on many processes (PostgreSQL)", () => {
  it.scopedLive(
    "8 processes, one resource each, at once: all commit, the state holds 8 slots, no row lost or duplicated",
    () =>
      Effect.gen(function* () {
        const dataset = yield* freshDataset("par")
        const dir = yield* tempDir()
        const barrier = NodePath.join(dir, "go")
        const names = resourceNames(8)
        const children = yield* Effect.forEach(names, (name) =>
          spawnScoped(FIXTURE, [
            `--url=${TEST_POSTGRES_URL}`,
            `--dataset=${dataset}`,
            `--dir=${NodePath.join(dir, name)}`,
            `--resources=${name}`,
            "--total=8",
            `--rows=${ROWS}`,
            `--barrier=${barrier}`
          ])
        )
        // every process has read the state (version none) before any of them commits
        yield* Effect.promise(() => Promise.all(children.map((c) => c.waitFor("READY", 100_000))))
        NodeFs.writeFileSync(barrier, "")
        const outcomes = yield* Effect.promise(() => Promise.all(children.map((c) => c.waitFor("OUTCOME", 100_000))))
        const exits = yield* Effect.promise(() => Promise.all(children.map((c) => c.exited)))
        expect(outcomes.filter((o) => o.startsWith("OUTCOME COMMITTED"))).toHaveLength(8)
        expect(exits.map((e) => e.code)).toEqual(names.map(() => 0))

        const state = yield* Effect.promise(() => newestState(dataset))
        const slots = PipelineState.getResourceSlots(state, "shop")
        expect(Object.keys(slots).sort()).toEqual([...names].sort())
        for (const name of names) expect(slots[name]).toEqual({ last_id: ROWS })
        const versions = yield* Effect.promise(() =>
          query<{ version: string }>(`SELECT version FROM "${dataset}"._dlt_pipeline_state ORDER BY version`)
        )
        expect(versions.map((v) => Number(v.version))).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
        for (const name of names) {
          const [facts] = yield* Effect.promise(() =>
            query<{ n: number; distinct_ids: number; max_id: number }>(
              `SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct_ids, max(id)::int AS max_id FROM "${dataset}"."${name}"`
            )
          )
          expect(facts).toEqual({ n: ROWS, distinct_ids: ROWS, max_id: ROWS })
        }
      }),
    150_000
  )

  it.scopedLive(
    "two processes writing one source-state key: one commits, the other conflicts naming the path",
    () =>
      Effect.gen(function* () {
        const dataset = yield* freshDataset("par")
        const dir = yield* tempDir()
        const barrier = NodePath.join(dir, "go")
        const children = yield* Effect.forEach(["r1", "r2"], (name) =>
          spawnScoped(FIXTURE, [
            `--url=${TEST_POSTGRES_URL}`,
            `--dataset=${dataset}`,
            `--dir=${NodePath.join(dir, name)}`,
            `--resources=${name}`,
            "--total=2",
            "--rows=100",
            "--source-key=last_writer",
            `--barrier=${barrier}`
          ])
        )
        yield* Effect.promise(() => Promise.all(children.map((c) => c.waitFor("READY", 100_000))))
        NodeFs.writeFileSync(barrier, "")
        const outcomes = yield* Effect.promise(() => Promise.all(children.map((c) => c.waitFor("OUTCOME", 100_000))))
        expect(outcomes.filter((o) => o.startsWith("OUTCOME COMMITTED"))).toHaveLength(1)
        const conflict = outcomes.find((o) => o.startsWith("OUTCOME CONFLICT"))
        expect(conflict).toBeDefined()
        const detail = JSON.parse(conflict!.slice("OUTCOME CONFLICT ".length)) as {
          paths: ReadonlyArray<string>
          message: string
        }
        expect(detail.paths).toEqual(["sources.shop.last_writer"])
        expect(detail.message).toContain("sources.shop.last_writer")
        // the loser wrote nothing: one table, one state version
        const tables = yield* Effect.promise(() =>
          query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('r1', 'r2')",
            [dataset]
          )
        )
        expect(tables).toHaveLength(1)
      }),
    150_000
  )
})
