/**
 * The faults the soak injects, and the seeded choices behind them.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Data, Effect, Stream } from "effect"
import type pg from "pg"
import { itemsSince, items as itemsResource, updatedAt } from "../examples/incremental-api/pipeline.js"
import { Incremental, Resource, Source } from "../src/index.js"
import { advisoryLockBackends, PIPESTATE_APPLICATION } from "./pg.js"

export const FAULT_KINDS = ["stream", "defect", "connection", "sigkill"] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** mulberry32: a small deterministic PRNG, so that a soak replays from its seed */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const pick = <A>(random: () => number, values: ReadonlyArray<A>): A =>
  values[Math.floor(random() * values.length)]!

/** an integer in [from, to] */
export const between = (random: () => number, from: number, to: number): number =>
  from + Math.floor(random() * (to - from + 1))

const shuffle = <A>(values: Array<A>, random: () => number): Array<A> => {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[values[i], values[j]] = [values[j]!, values[i]!]
  }
  return values
}

/**
 * Which runs get which fault: `round(runs × rate)` faulted runs at seeded positions (never the first
 * run, which creates the tables), the kinds dealt evenly in a seeded order, so every kind occurs as
 * soon as there are four faults.
 */
export const faultSchedule = (runs: number, seed: number, rate: number): ReadonlyArray<FaultKind | null> => {
  const random = prng(seed)
  const faults = Math.max(0, Math.min(runs - 1, Math.round(runs * rate)))
  const kinds = shuffle(
    Array.from({ length: faults }, (_, i) => FAULT_KINDS[i % FAULT_KINDS.length]!),
    random
  )
  const positions = shuffle(
    Array.from({ length: Math.max(0, runs - 1) }, (_, i) => i + 1),
    random
  )
    .slice(0, faults)
    .sort((a, b) => a - b)
  const out: Array<FaultKind | null> = Array.from({ length: runs }, () => null)
  positions.forEach((position, i) => {
    out[position] = kinds[i]!
  })
  return out
}

// ---------------------------------------------------------------------------------------------
// Faults inside the resource
// ---------------------------------------------------------------------------------------------

/** the typed error a faulted stream fails with */
export class InjectedStreamFault extends Data.TaggedError("InjectedStreamFault")<{
  readonly where: string
  readonly after: number
}> {
  override get message(): string {
    return `injected stream failure ${this.where} after ${this.after} records`
  }
}

/** what a faulted resource throws (a defect: a `throw` inside `Effect.sync`) */
export class InjectedDefect extends Error {
  readonly _tag = "InjectedDefect"
}

/**
 * Where in the resource the fault sits: `records` on the resource's output (after the incremental
 * filter has advanced the cursor in the draft state for what it passed), `pages` on the raw API
 * pages (before the filter: the records of the boundary `updated_at` come back and count).
 */
export type ResourceFaultSite = "records" | "pages"

/** the stream fails after `after` elements instead of going on or ending */
const failAfter =
  (where: string, after: number) =>
  <A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | InjectedStreamFault, R> =>
    Stream.concat(Stream.take(self, after), Stream.fail(new InjectedStreamFault({ where, after })))

/** element `at` (0-based) throws while it is processed; with fewer elements, the end of the stream throws */
const throwAt =
  (where: string, at: number) =>
  <A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
    Stream.suspend(() => {
      let seen = 0
      const boom = () => new InjectedDefect(`injected defect ${where} at record ${at}`)
      return Stream.concat(
        Stream.mapEffect(self, (a) =>
          Effect.sync(() => {
            if (seen++ === at) throw boom()
            return a
          })
        ),
        Stream.execute(
          Effect.sync(() => {
            throw boom()
          })
        )
      )
    })

/** the name of the example's source, which the state slots are keyed by */
export const SOURCE_NAME = "items_api"
export const RESOURCE_NAME = "items"

/**
 * The incremental-api example's source with a fault inside its one resource: the same source and
 * resource names, disposition and key as `incrementalSource`, so the run reads and writes the same
 * state slot and table.
 */
export const faultySource = (
  baseUrl: string,
  fault: { readonly kind: "stream" | "defect"; readonly site: ResourceFaultSite; readonly at: number }
) => {
  const example = itemsResource(baseUrl)
  const where = fault.site === "records" ? "in the resource's records" : "in the API pages"
  const inject =
    fault.kind === "stream"
      ? <A, E, R>(s: Stream.Stream<A, E, R>) => failAfter(where, fault.at)(s)
      : <A, E, R>(s: Stream.Stream<A, E, R>) => throwAt(where, fault.at)(s)
  const options = {
    name: example.name,
    tableName: example.tableName,
    writeDisposition: example.writeDisposition,
    primaryKey: example.primaryKey
  }
  const resource =
    fault.site === "records"
      ? Resource.make(options, inject(example.stream))
      : Resource.make(
          options,
          Incremental.stream(updatedAt, (run) => inject(itemsSince(baseUrl, run.startValue)))
        )
  return Source.make({ name: SOURCE_NAME, resources: [resource] })
}

// ---------------------------------------------------------------------------------------------
// The destination connection terminated mid-load
// ---------------------------------------------------------------------------------------------

/**
 * Where the commit transaction is when its connection is terminated. The lock variants hold a lock
 * of our own (a third connection) so that the commit waits at a known statement, active, with the
 * dataset in its text; `random` holds the pipeline's advisory lock until the commit waits for it,
 * then lets it go and terminates the transaction's connection after a random delay (the COPY, the
 * merge, the inserts, or between them).
 */
export const KILL_POINTS = ["random", "before-copy", "merge", "loads-row", "state-row"] as const
export type KillPoint = (typeof KILL_POINTS)[number]

const LOCKS: Record<Exclude<KillPoint, "random">, { readonly table: string; readonly mode: string }> = {
  // CREATE TEMP TABLE <stage> (LIKE items) waits: before the COPY into the stage
  "before-copy": { table: "items", mode: "ACCESS EXCLUSIVE" },
  // the COPY into the stage goes through; DELETE FROM items (the merge) waits
  merge: { table: "items", mode: "EXCLUSIVE" },
  // rows merged; INSERT INTO _dlt_loads waits
  "loads-row": { table: "_dlt_loads", mode: "EXCLUSIVE" },
  // rows and load row in; INSERT INTO _dlt_pipeline_state waits
  "state-row": { table: "_dlt_pipeline_state", mode: "EXCLUSIVE" }
}

export interface KillResult {
  readonly killed: boolean
  /** what the terminated backend was doing, or why nothing was terminated */
  readonly where: string
}

/** a statement, short and without the dataset name, to count kill points by */
export const shortStatement = (query: string, dataset: string): string => {
  const words: Array<string> = []
  for (const word of query.replaceAll(`"${dataset}".`, "").trim().split(/\s+/)) {
    if (word.startsWith("(") || words.length === 4) break
    words.push(word)
  }
  return words.join(" ")
}

/**
 * Terminates the run's destination connection during its commit. `onCommit` goes in the run's
 * Progress hook for the `commit` phase: it returns once our lock is held, so the commit cannot pass
 * the point before we watch it. `finish` is called when the run has ended and says what was
 * terminated (the lock is released by then).
 */
export const makeConnectionKiller = (options: {
  readonly blocker: pg.Client
  readonly killer: pg.Client
  readonly dataset: string
  readonly lockKey: string
  readonly point: KillPoint
  readonly delayMs: number
  readonly timeoutMs?: number
}) => {
  const { blocker, killer, dataset, point, lockKey } = options
  const timeoutMs = options.timeoutMs ?? 20_000
  let done = false
  let poller: Promise<KillResult> | undefined
  const message = (error: unknown) => (error instanceof Error ? error.message : String(error))

  const waitGone = async (pid: number) => {
    for (let i = 0; i < 2500; i++) {
      const left = await killer.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])
      if (left.rows.length === 0) return
      await sleep(2)
    }
  }

  /** BEGIN + LOCK TABLE; then terminate the commit's connection once it waits for the lock */
  const lockVariant = async (
    lock: { readonly table: string; readonly mode: string },
    held: () => void
  ): Promise<KillResult> => {
    const release = () => blocker.query("ROLLBACK").catch(() => undefined)
    try {
      await blocker.query("BEGIN")
      await blocker.query(`LOCK TABLE "${dataset}"."${lock.table}" IN ${lock.mode} MODE`)
    } catch (error) {
      await release()
      return { killed: false, where: `could not lock ${lock.table}: ${message(error)}` }
    } finally {
      held()
    }
    try {
      const started = Date.now()
      while (!done && Date.now() - started < timeoutMs) {
        const found = await killer.query<{ pid: number; query: string; killed: boolean }>(
          "SELECT pid, left(query, 300) AS query, pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND wait_event_type = 'Lock' AND position($2 in query) > 0",
          [PIPESTATE_APPLICATION, `"${dataset}"."${lock.table}"`]
        )
        const hit = found.rows.find((row) => row.killed)
        if (hit !== undefined) {
          await waitGone(hit.pid)
          return { killed: true, where: shortStatement(hit.query, dataset) }
        }
        await sleep(1)
      }
      return { killed: false, where: done ? "the commit never waited for our lock" : "timed out" }
    } finally {
      await release()
    }
  }

  /** the advisory lock until the commit waits for it; then a random delay, then terminate */
  const randomVariant = async (held: () => void): Promise<KillResult> => {
    try {
      await blocker.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [lockKey])
    } catch (error) {
      return { killed: false, where: `could not take the advisory lock: ${message(error)}` }
    } finally {
      held()
    }
    let pid: number | undefined
    try {
      const started = Date.now()
      while (!done && pid === undefined && Date.now() - started < timeoutMs) {
        pid = (await advisoryLockBackends(killer, lockKey)).find((b) => !b.granted)?.pid
        if (pid === undefined) await sleep(1)
      }
    } finally {
      await blocker.query("SELECT pg_advisory_unlock_all()").catch(() => undefined)
    }
    if (pid === undefined) return { killed: false, where: "the commit never waited for the advisory lock" }
    await sleep(options.delayMs)
    const found = await killer.query<{ state: string; query: string; killed: boolean }>(
      "SELECT state, left(query, 300) AS query, pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE pid = $1 AND xact_start IS NOT NULL",
      [pid]
    )
    const hit = found.rows.find((row) => row.killed)
    if (hit === undefined) return { killed: false, where: `the transaction was over after ${options.delayMs} ms` }
    await waitGone(pid)
    const statement = shortStatement(hit.query, dataset)
    return { killed: true, where: hit.state === "active" ? statement : `${hit.state} after ${statement}` }
  }

  return {
    onCommit: Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          poller = point === "random" ? randomVariant(resolve) : lockVariant(LOCKS[point], resolve)
        })
    ),
    finish: Effect.promise(async (): Promise<KillResult> => {
      done = true
      return poller === undefined ? { killed: false, where: "the run never reached its commit" } : await poller
    })
  }
}
