/**
 * The database restart section of the soak: PostgreSQL is restarted (pg_ctlcluster) while a run of
 * the incremental-api pipeline has its COPY in flight. The run must fail with a DestinationError
 * naming the destination, nothing of it may be committed, and once the server is back the next runs
 * (on the SAME destination layer, whose pooled connections all died) load exactly the API's items.
 *
 * It disturbs every other client of the server: `npm run soak` runs it, `npm test` never does.
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { promisify } from "node:util"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import { type Catalog, IncrementalApi, initialCatalog, mutateCatalog } from "../examples/incremental-api/api.js"
import { config as exampleConfig } from "../examples/incremental-api/demo.js"
import { incrementalSource } from "../examples/incremental-api/pipeline.js"
import { Destination, Pipeline } from "../src/index.js"
import { diffItems, invariants } from "./check.js"
import { RESOURCE_NAME, SOURCE_NAME } from "./faults.js"
import { ADVISORY_LOCK_MATCH, close, connect, DEFAULT_URL, datasetFacts, pipelineLockKey } from "./pg.js"

const execFileAsync = promisify(execFile)

export interface RestartOptions {
  readonly seed: number
  readonly url?: string
  /** items of the API's first page walk: enough for a COPY that lasts (default 40,000) */
  readonly items?: number
  readonly log?: (line: string) => void
}

export interface RestartReport {
  readonly problems: ReadonlyArray<string>
  readonly seconds: number
}

/** waits until `pg_isready` says the server accepts connections; the ms it took */
const waitReady = async (url: string, timeoutMs = 120_000): Promise<number> => {
  const parsed = new URL(url)
  const started = performance.now()
  while (performance.now() - started < timeoutMs) {
    try {
      await execFileAsync("pg_isready", ["-h", parsed.hostname, "-p", parsed.port === "" ? "5432" : parsed.port])
      return Math.round(performance.now() - started)
    } catch {
      await sleep(100)
    }
  }
  throw new Error(`PostgreSQL did not accept connections within ${timeoutMs} ms after the restart`)
}

interface Restarted {
  readonly restarted: boolean
  readonly statement: string
  readonly restartMs: number
  readonly readyMs: number
  readonly error: string | null
}

/** once the pipeline's commit has its COPY active, restarts the cluster and waits for pg_isready */
const restartDuringCopy = async (url: string, lockKey: string, stop: { done: boolean }): Promise<Restarted> => {
  const versions = NodeFs.existsSync("/etc/postgresql") ? NodeFs.readdirSync("/etc/postgresql") : []
  const version = versions[0]
  if (version === undefined) {
    return { restarted: false, statement: "", restartMs: 0, readyMs: 0, error: "no cluster in /etc/postgresql" }
  }
  const client = await connect(url)
  let copy: string | undefined
  try {
    while (!stop.done && copy === undefined) {
      const rows = (
        await client.query<{ query: string }>(
          `SELECT left(a.query, 80) AS query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE ${ADVISORY_LOCK_MATCH} AND l.granted AND a.state = 'active' AND a.query LIKE 'COPY %'`,
          [lockKey]
        )
      ).rows
      copy = rows[0]?.query
      if (copy === undefined) await sleep(1)
    }
  } finally {
    await close(client)
  }
  if (copy === undefined) return { restarted: false, statement: "", restartMs: 0, readyMs: 0, error: null }
  const started = performance.now()
  try {
    await execFileAsync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"])
  } catch (error) {
    return {
      restarted: false,
      statement: copy,
      restartMs: 0,
      readyMs: 0,
      error: `pg_ctlcluster failed: ${error instanceof Error ? error.message : String(error)}`
    }
  }
  const restartMs = Math.round(performance.now() - started)
  const readyMs = await waitReady(url)
  return { restarted: true, statement: copy, restartMs, readyMs, error: null }
}

export const runRestart = (options: RestartOptions): Effect.Effect<RestartReport> =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = performance.now()
      const log = options.log ?? ((line: string) => console.log(line))
      const url = options.url ?? DEFAULT_URL
      const seed = (options.seed + 1) >>> 0
      const count = options.items ?? 40_000
      const base = yield* Effect.acquireRelease(
        Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pipestate-soak-restart-"))),
        (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
      )
      const dataset = `soak_restart_${seed}_${Math.floor(Math.random() * 36 ** 6).toString(36)}`
      const name = exampleConfig.name
      const lockKey = pipelineLockKey(dataset, name)
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          await waitReady(url).catch(() => 0)
          const client = await connect(url)
          await client.query(`DROP SCHEMA IF EXISTS "${dataset}" CASCADE`).catch(() => undefined)
          await close(client)
        }).pipe(Effect.ignore)
      )
      const problems: Array<string> = []
      let catalog: Catalog = initialCatalog(seed, count)
      const initialClock = catalog.clock
      const history: Array<Catalog["items"]> = [catalog.items]
      const facts = Effect.promise(async () => {
        const client = await connect(url)
        try {
          return await datasetFacts(client, {
            dataset,
            pipelineName: name,
            sourceName: SOURCE_NAME,
            resourceName: RESOURCE_NAME
          })
        } finally {
          await close(client)
        }
      })

      const program = Effect.gen(function* () {
        const api = yield* IncrementalApi
        const source = incrementalSource(api.baseUrl)
        log(`restart: dataset ${dataset}, the API starts with ${count} items (one COPY of ${count} rows)`)

        // 1. the restart while the COPY runs
        const stop = { done: false }
        const watcher = yield* Effect.fork(Effect.promise(() => restartDuringCopy(url, lockKey, stop)))
        const exit = yield* Effect.exit(Pipeline.run(source))
        stop.done = true
        const restarted = yield* Fiber.join(watcher)
        if (restarted.error !== null) problems.push(`restart: ${restarted.error}`)
        if (!restarted.restarted) {
          problems.push("restart: the run ended before its COPY was seen active; PostgreSQL was not restarted")
        } else {
          log(
            `restart: restarted PostgreSQL while "${restarted.statement.slice(0, 40)}..." was active (pg_ctlcluster ${restarted.restartMs} ms, then pg_isready after ${restarted.readyMs} ms)`
          )
        }
        if (Exit.isSuccess(exit)) {
          problems.push(`restart: the run committed (load ${exit.value.loadId}) although PostgreSQL restarted under it`)
        } else {
          const error = Cause.failureOption(exit.cause)
          const typed = Option.filter(
            error,
            (e): e is Destination.DestinationError => e instanceof Destination.DestinationError
          )
          if (Option.isSome(typed) && typed.value.destination === "postgres") {
            log(`restart: the run failed with ${typed.value._tag}: ${typed.value.message.slice(0, 200)}`)
          } else {
            problems.push(
              `restart: the run should fail with a DestinationError naming "postgres"; it ended with ${Cause.pretty(exit.cause).slice(0, 600)}`
            )
          }
        }
        const afterFailure = yield* facts
        if (afterFailure.versions.length > 0 || afterFailure.rows > 0 || afterFailure.loads > 0) {
          problems.push(
            `restart: the failed run left ${afterFailure.rows} rows, ${afterFailure.loads} loads, ${afterFailure.versions.length} state rows`
          )
        }

        // 2. the next runs, on the same destination layer: exact counts
        const expectRun = (label: string, expectedRows: number) =>
          Effect.gen(function* () {
            const next = yield* Effect.exit(Pipeline.run(source))
            if (Exit.isFailure(next)) {
              problems.push(`restart: ${label} failed: ${Cause.pretty(next.cause).slice(0, 600)}`)
              return
            }
            const summary = next.value
            if (summary.tables.items !== expectedRows) {
              problems.push(`restart: ${label} loaded ${summary.tables.items} rows, expected ${expectedRows}`)
            }
            const now = yield* facts
            problems.push(
              ...invariants(now, { history, initialClock }).map((p) => `restart: ${label}: ${p}`),
              ...diffItems(`restart: ${label}: items against the API`, now.items, yield* api.items)
            )
            log(
              `restart: ${label}: ${summary.tables.items} rows loaded, ${now.rows} rows in the table, the API has ${(yield* api.items).length} items, state version ${now.newest?.version}`
            )
          })
        yield* expectRun("the run after the restart", count)
        const changed = new Set<number>()
        for (let i = 0; i < 2; i++) {
          const mutation = yield* api.mutate
          catalog = mutateCatalog(catalog)[0]
          history.push(catalog.items)
          for (const id of [...mutation.created, ...mutation.updated]) changed.add(id)
        }
        yield* expectRun("the run after two mutations", changed.size)
        const end = yield* facts
        if (end.versions.map((v) => v.version).join(",") !== "0,1") {
          problems.push(`restart: state versions ${end.versions.map((v) => v.version).join(",")}, expected 0,1`)
        }
      })

      yield* program.pipe(
        Effect.provide(
          Layer.mergeAll(
            IncrementalApi.layer({ seed, initialItems: count, pageSize: 5_000 }),
            FetchHttpClient.layer,
            Pipeline.layerNode({ name, dataset, pipelinesDir: base }),
            Destination.postgres({ url: Redacted.make(url) })
          )
        ),
        Effect.orDie
      )
      const seconds = Math.round((performance.now() - started) / 100) / 10
      log(
        problems.length === 0
          ? `database restart: every check holds (${seconds} s)`
          : `database restart: ${problems.length} checks FAILED:\n${problems.map((p) => `  - ${p}`).join("\n")}`
      )
      return { problems, seconds }
    })
  )
