/**
 * Checkpoints under SIGKILL: a child process runs a resource of 20 pages × 5,000 rows that records
 * its next page in its state before each page, with a checkpoint every 12,000 rows (pages and
 * checkpoints do not line up; records arrive in chunks of 1,700). The child is killed at a random
 * row count it reported (not a wall-clock time, so a loaded machine moves the kill, not its
 * meaning), at least ten times on PostgreSQL and on SQLite. After every kill and after the following
 * run: every row exactly once, the committed state names exactly the pages the table holds, the
 * next run starts from the page of its last checkpoint, and a completed resumed run loads only what
 * the checkpoints had not (fewer rows than a full restart). A `replace` resource of 4 pages runs
 * alongside (its rows wait in a hold table of the dataset): after a kill the table is the old one,
 * after a completed run it holds exactly that run's rows, and no hold table is left.
 *
 * Set PIPESTATE_KILL_SEED to replay a sequence of kills.
 */
import { spawn } from "node:child_process"
import * as NodePath from "node:path"
import { createInterface } from "node:readline"
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Layer, Option } from "effect"
import * as Destination from "../../src/destination/index.js"
import * as StateBlob from "../../src/internal/state/StateBlob.js"
import { makeTempDir } from "../helpers.js"
import { postgresAvailable, query, TEST_POSTGRES_URL } from "../postgres.js"
import { prng, REPO_ROOT } from "./support.js"

const FIXTURE = NodePath.join(REPO_ROOT, "test", "fixtures", "checkpoint-pipeline.ts")
const PAGES = 20
const PAGE_SIZE = 5_000
const TOTAL = PAGES * PAGE_SIZE
const SNAPSHOT_PAGES = 4
const KILLS = 10
const CHILD_TIMEOUT = 120_000

interface Child {
  readonly lines: Array<string>
  readonly kill: () => void
  /** resolves once a `ROWS n` line with n >= rows was printed (true) or the child exited first (false) */
  readonly reached: (rows: number) => Promise<boolean>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly stderr: () => string
}

const spawnChild = (args: Readonly<Record<string, string>>): Child => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", FIXTURE, ...Object.entries(args).map(([k, v]) => `--${k}=${v}`)],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } }
  )
  const lines: Array<string> = []
  const waiters: Array<{ rows: number; resolve: (reached: boolean) => void }> = []
  let stderr = ""
  child.stderr!.on("data", (data: Buffer) => {
    stderr += data.toString("utf8")
  })
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line)
    if (!line.startsWith("ROWS ")) return
    const rows = Number(line.slice(5))
    for (const waiter of waiters.filter((w) => rows >= w.rows)) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(true)
    }
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      for (const waiter of waiters.splice(0)) waiter.resolve(false)
      resolve({ code, signal })
    })
  })
  return {
    lines,
    kill: () => child.kill("SIGKILL"),
    reached: (rows) => new Promise((resolve) => waiters.push({ rows, resolve })),
    exited,
    stderr: () => stderr
  }
}

interface Facts {
  readonly rows: number
  readonly distinct: number
  readonly maxId: number
  /** the committed state's next page (0 without state) */
  readonly next: number
  /** the replace table: rows, distinct ids, and the runs (`gen`) its rows came from */
  readonly snapshot: { readonly rows: number; readonly distinct: number; readonly gens: ReadonlyArray<number> }
  /** hold tables left in the dataset */
  readonly holdTables: number
}

const factsOf = (layer: Layer.Layer<Destination.Destination, unknown>, name: string, dataset: string, dir: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const d = yield* Destination.Destination
      const target = { dataset, pipelineDir: NodePath.join(dir, name) }
      const access = yield* d.dataset(target)
      const counts = (yield* access.tableExists("pages"))
        ? (yield* access.execute(
            `SELECT count(*) AS n, count(DISTINCT id) AS d, max(id) AS m FROM ${access.table("pages")}`
          ))[0]!
        : { n: 0, d: 0, m: -1 }
      const newest = (yield* d.stateRows(target, name, 1))[0]
      let next = 0
      if (newest !== undefined) {
        const stored = yield* d.readState(target, name, newest.loadId)
        if (Option.isSome(stored)) {
          const state = yield* StateBlob.decode(stored.value.state)
          const resources = state.sources.src?.resources as Record<string, { next?: number }> | undefined
          next = resources?.pages?.next ?? 0
        }
      }
      const snapshot = (yield* access.tableExists("snapshot"))
        ? {
            ...(yield* access.execute(
              `SELECT count(*) AS rows, count(DISTINCT id) AS "distinct" FROM ${access.table("snapshot")}`
            )).map((r) => ({ rows: Number(r.rows), distinct: Number(r.distinct) }))[0]!,
            gens: (yield* access.execute(`SELECT DISTINCT gen FROM ${access.table("snapshot")} ORDER BY gen`)).map(
              (r) => Number(r.gen)
            )
          }
        : { rows: 0, distinct: 0, gens: [] }
      const holds =
        d.name === "postgres"
          ? yield* access.execute(
              `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE '\\_pipestate\\_hold\\_%'`,
              [dataset]
            )
          : yield* access.execute(
              `SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name LIKE '\\_pipestate\\_hold\\_%' ESCAPE '\\'`
            )
      return {
        rows: Number(counts.n),
        distinct: Number(counts.d),
        maxId: Number(counts.m ?? -1),
        next,
        snapshot,
        holdTables: Number(holds[0]?.n ?? 0)
      } as Facts
    }).pipe(Effect.provide(layer), Effect.scoped)
  )

const expectConsistent = (facts: Facts, context: string) => {
  expect(facts.distinct, `${context}: duplicates`).toBe(facts.rows)
  expect(facts.rows, `${context}: rows against the state's next page ${facts.next}`).toBe(facts.next * PAGE_SIZE)
  expect(facts.maxId, context).toBe(facts.rows - 1)
}

const killLoop = async (
  destinationArgs: Readonly<Record<string, string>>,
  layer: Layer.Layer<Destination.Destination, unknown>,
  datasetOf: (round: number) => string,
  dir: string
) => {
  const seed = Number(process.env.PIPESTATE_KILL_SEED ?? Date.now() % 1_000_000)
  const random = prng(seed)
  let kills = 0
  let round = 0
  let resumedShorter = 0
  for (let attempt = 0; kills < KILLS && attempt < KILLS * 3; attempt++) {
    const name = `ckpt_${round}`
    const dataset = datasetOf(round)
    const before = await factsOf(layer, name, dataset, dir)
    expectConsistent(before, `seed ${seed}, before attempt ${attempt}`)
    const left = TOTAL - before.rows
    // a random row count this run reports before it dies
    const target = 1 + Math.floor(random() * (left - 1))
    const child = spawnChild({ ...destinationArgs, name, dataset, dir, gen: String(attempt) })
    const reached = await Promise.race([
      child.reached(target),
      new Promise<boolean>((_, reject) =>
        setTimeout(() => reject(new Error(`no progress within ${CHILD_TIMEOUT} ms: ${child.stderr()}`)), CHILD_TIMEOUT)
      )
    ])
    if (reached) {
      child.kill()
      kills++
    }
    const { code } = await child.exited
    // every run starts from the page of the last checkpoint
    expect(
      child.lines.find((l) => l.startsWith("START ")),
      child.stderr()
    ).toBe(`START ${before.next}`)
    const after = await factsOf(layer, name, dataset, dir)
    expectConsistent(after, `seed ${seed}, after attempt ${attempt} (${reached ? `killed at ${target}` : "completed"})`)
    expect(after.rows).toBeGreaterThanOrEqual(before.rows)
    // the replace table: the old one after a kill (none yet: a completed run ends a round), the
    // run's rows, each once, after it completed
    expect(after.snapshot, `seed ${seed}, attempt ${attempt}`).toEqual(
      reached
        ? before.snapshot
        : { rows: SNAPSHOT_PAGES * PAGE_SIZE, distinct: SNAPSHOT_PAGES * PAGE_SIZE, gens: [attempt] }
    )
    if (!reached) expect(after.holdTables, `seed ${seed}, attempt ${attempt}: hold tables left`).toBe(0)
    if (!reached) {
      expect(code, child.stderr()).toBe(0)
      const outcome = child.lines.find((l) => l.startsWith("OUTCOME COMMITTED "))!
      const loaded = (JSON.parse(outcome.slice("OUTCOME COMMITTED ".length)) as { rows: number }).rows
      expect(after.rows).toBe(TOTAL)
      // it loaded only what the checkpoints before it had not
      expect(loaded).toBe(left)
      if (before.rows > 0) resumedShorter++
      round++
    }
  }
  // finish the last dataset: a run to the end after the last kill
  const name = `ckpt_${round}`
  const dataset = datasetOf(round)
  const before = await factsOf(layer, name, dataset, dir)
  const child = spawnChild({ ...destinationArgs, name, dataset, dir, gen: "999" })
  const { code } = await child.exited
  expect(code, child.stderr()).toBe(0)
  expect(child.lines.find((l) => l.startsWith("START "))).toBe(`START ${before.next}`)
  const after = await factsOf(layer, name, dataset, dir)
  expectConsistent(after, `seed ${seed}, last run`)
  expect(after.rows).toBe(TOTAL)
  expect(after.snapshot).toEqual({
    rows: SNAPSHOT_PAGES * PAGE_SIZE,
    distinct: SNAPSHOT_PAGES * PAGE_SIZE,
    gens: [999]
  })
  expect(after.holdTables).toBe(0)
  if (before.rows > 0) resumedShorter++
  expect(kills, `seed ${seed}`).toBe(KILLS)
  expect(resumedShorter, `seed ${seed}: completed runs that resumed from a checkpoint`).toBeGreaterThan(0)
  return round + 1
}

describe("fault: SIGKILL during a run with checkpoints", () => {
  it.live(
    "SQLite: every row once, state consistent with the rows, each run resumes from its last checkpoint",
    () =>
      Effect.promise(async () => {
        const dir = makeTempDir("pipestate-ckpt-")
        // one file per round's dataset (a file given by `path` holds one dataset)
        const directory = NodePath.join(dir, "data")
        await killLoop(
          { destination: "sqlite", "sqlite-dir": directory },
          Destination.sqlite({ directory }),
          (round) => `ckpt_ds_${round}`,
          dir
        )
      }),
    600_000
  )

  it.live.skipIf(!postgresAvailable)(
    "PostgreSQL: every row once, state consistent with the rows, each run resumes from its last checkpoint",
    () =>
      Effect.promise(async () => {
        const dir = makeTempDir("pipestate-ckpt-")
        const prefix = `ckpt_${process.pid}_${Date.now() % 100_000}`
        let rounds = 0
        try {
          rounds = await killLoop(
            { destination: "postgres", url: TEST_POSTGRES_URL },
            Destination.postgres({ url: TEST_POSTGRES_URL }),
            (round) => `${prefix}_${round}`,
            dir
          )
        } finally {
          for (let round = 0; round <= Math.max(rounds, KILLS * 3); round++) {
            await query(`DROP SCHEMA IF EXISTS "${prefix}_${round}" CASCADE`)
          }
        }
      }),
    600_000
  )
})
