/**
 * Shared by the fault tests: the batch pipeline as a child process, and the facts of a dataset it
 * loaded (row counts, duplicates, the newest state against the data).
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { Either } from "effect"
import * as StateBlob from "../../src/internal/state/StateBlob.js"
import { EVENTS, SOURCE_NAME, STATUS, TOTAL_KEY } from "../fixtures/batchSource.js"
import { compiledFixture } from "../compiledFixture.js"
import { type Child, spawnScoped as spawnScopedScript, spawnScript } from "../processes.js"
import { query, TEST_POSTGRES_URL } from "../postgres.js"

export const REPO_ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const FIXTURE = NodePath.join(REPO_ROOT, "test", "fixtures", "batch-pipeline.ts")

/** the test server's URL with an application name of its own, so a test finds its connections in pg_stat_activity */
export const urlWithApplicationName = (applicationName: string, url = TEST_POSTGRES_URL): string =>
  `${url}${url.includes("?") ? "&" : "?"}application_name=${encodeURIComponent(applicationName)}`

/** a child process of the batch pipeline (see test/processes.ts) */
export type ChildRun = Child

const argsOf = (args: Readonly<Record<string, string | number>>) =>
  Object.entries(args).map(([key, value]) => `--${key}=${value}`)

/** `node <test/fixtures/batch-pipeline.ts bundled> ...args` */
export const spawnFixture = (args: Readonly<Record<string, string | number>>): ChildRun =>
  spawnScript(compiledFixture(FIXTURE), argsOf(args))

/** spawns children that are SIGKILLed, if still running, when the scope closes */
export const spawnScoped = (args: Readonly<Record<string, string | number>>) =>
  spawnScopedScript(compiledFixture(FIXTURE), argsOf(args))

/** the `OUTCOME <tag> <json>` line of a finished child */
export const outcomeOf = (run: ChildRun): { readonly tag: string; readonly detail: Record<string, unknown> } => {
  const line = run.lines.find((l) => l.startsWith("OUTCOME "))
  if (line === undefined) return { tag: "NONE", detail: { stdout: run.lines, stderr: run.stderr() } }
  const rest = line.slice("OUTCOME ".length)
  const space = rest.indexOf(" ")
  return {
    tag: rest.slice(0, space),
    detail: JSON.parse(rest.slice(space + 1)) as Record<string, unknown>
  }
}

/** a small deterministic PRNG (mulberry32), so a failing sequence of kill delays can be replayed by its seed */
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

export interface StateVersionRow {
  readonly version: number
  readonly hash: string | null
  readonly loadId: string
  readonly complete: boolean
}

/** what a dataset of the batch pipeline holds */
export interface DatasetFacts {
  readonly rows: number
  readonly distinctIds: number
  /** distinct `events.batch`, sorted */
  readonly tableBatches: ReadonlyArray<string>
  /** `batch_status` rows other than `total`, sorted */
  readonly statusBatches: ReadonlyArray<string>
  readonly statusDuplicates: number
  readonly statusTotal: number | null
  /** the newest committed state's `loaded_batches` of `events`, sorted; null without a state */
  readonly stateLoaded: ReadonlyArray<string> | null
  /** the newest committed state's `seen_batches` of `batch_status`, sorted */
  readonly stateSeen: ReadonlyArray<string> | null
  readonly newest: StateVersionRow | null
  /** every `_dlt_pipeline_state` row of the pipeline in load id order, with whether its load completed */
  readonly versions: ReadonlyArray<StateVersionRow>
  readonly loads: number
  readonly incompleteLoads: number
  /** data rows whose `_dlt_load_id` has no completed `_dlt_loads` row */
  readonly orphanRows: number
}

const tableExists = async (dataset: string, table: string): Promise<boolean> =>
  (await query("SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2", [dataset, table]))
    .length > 0

const sortedStrings = (value: unknown): ReadonlyArray<string> | null =>
  Array.isArray(value) ? value.map(String).sort() : null

export const datasetFacts = async (dataset: string, pipelineName: string): Promise<DatasetFacts> => {
  const q = (table: string) => `"${dataset}"."${table}"`
  const hasEvents = await tableExists(dataset, EVENTS)
  const hasStatus = await tableExists(dataset, STATUS)
  const hasLoads = await tableExists(dataset, "_dlt_loads")
  const hasState = await tableExists(dataset, "_dlt_pipeline_state")
  const counts = hasEvents
    ? (await query<{ c: string; d: string }>(`SELECT count(*) AS c, count(DISTINCT id) AS d FROM ${q(EVENTS)}`))[0]!
    : { c: "0", d: "0" }
  const tableBatches = hasEvents
    ? (await query<{ batch: string }>(`SELECT DISTINCT batch FROM ${q(EVENTS)} ORDER BY batch`)).map((r) => r.batch)
    : []
  const status = hasStatus
    ? await query<{ batch: string; rows: string }>(`SELECT batch, rows::text AS rows FROM ${q(STATUS)}`)
    : []
  const statusBatches = status
    .filter((r) => r.batch !== TOTAL_KEY)
    .map((r) => r.batch)
    .sort()
  const totals = status.filter((r) => r.batch === TOTAL_KEY)
  const loads = hasLoads
    ? (
        await query<{ c: string; bad: string }>(
          `SELECT count(*) AS c, count(*) FILTER (WHERE status <> 0) AS bad FROM ${q("_dlt_loads")}`
        )
      )[0]!
    : { c: "0", bad: "0" }
  const orphans =
    hasEvents && hasLoads
      ? Number(
          (
            await query<{ c: string }>(
              `SELECT count(*) AS c FROM ${q(EVENTS)} e WHERE NOT EXISTS (SELECT 1 FROM ${q("_dlt_loads")} l WHERE l.load_id = e._dlt_load_id AND l.status = 0)`
            )
          )[0]!.c
        )
      : 0
  const versionRows =
    hasState && hasLoads
      ? await query<{
          version: string
          version_hash: string | null
          load_id: string
          complete: boolean
          state: string
        }>(
          `SELECT s.version::text AS version, s.version_hash, s._dlt_load_id AS load_id, s.state, EXISTS (SELECT 1 FROM ${q("_dlt_loads")} l WHERE l.load_id = s._dlt_load_id AND l.status = 0) AS complete FROM ${q("_dlt_pipeline_state")} s WHERE s.pipeline_name = $1 ORDER BY s._dlt_load_id`,
          [pipelineName]
        )
      : []
  const versions = versionRows.map(
    (r): StateVersionRow => ({
      version: Number(r.version),
      hash: r.version_hash,
      loadId: r.load_id,
      complete: r.complete
    })
  )
  const newestRow = [...versionRows].reverse().find((r) => r.complete)
  let stateLoaded: ReadonlyArray<string> | null = null
  let stateSeen: ReadonlyArray<string> | null = null
  if (newestRow !== undefined) {
    const decoded = StateBlob.decode(newestRow.state)
    if (Either.isLeft(decoded)) throw new Error(`the newest state blob does not decode: ${decoded.left.message}`)
    const resources = decoded.right.sources[SOURCE_NAME]?.resources as
      | Record<string, Record<string, unknown> | undefined>
      | undefined
    stateLoaded = sortedStrings(resources?.[EVENTS]?.loaded_batches)
    stateSeen = sortedStrings(resources?.[STATUS]?.seen_batches)
  }
  return {
    rows: Number(counts.c),
    distinctIds: Number(counts.d),
    tableBatches,
    statusBatches,
    statusDuplicates: status.length - new Set(status.map((r) => r.batch)).size,
    statusTotal: totals[0] === undefined ? null : Number(totals[0].rows),
    stateLoaded,
    stateSeen,
    newest:
      newestRow === undefined
        ? null
        : {
            version: Number(newestRow.version),
            hash: newestRow.version_hash,
            loadId: newestRow.load_id,
            complete: true
          },
    versions,
    loads: Number(loads.c),
    incompleteLoads: Number(loads.bad),
    orphanRows: orphans
  }
}

/**
 * The problems with a dataset of the batch pipeline that holds exactly `expectedBatches`
 * (`rowsPerBatch` rows each): an empty list when data and state agree.
 */
export const problems = (
  facts: DatasetFacts,
  expectedBatches: ReadonlyArray<string>,
  rowsPerBatch: number
): Array<string> => {
  const out: Array<string> = []
  const expect = (what: string, actual: unknown, expected: unknown) => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      out.push(
        `${what}: ${JSON.stringify(actual)?.slice(0, 300)} instead of ${JSON.stringify(expected)?.slice(0, 300)}`
      )
    }
  }
  const keys = [...expectedBatches].sort()
  const rows = keys.length * rowsPerBatch
  expect("count(*) of events", facts.rows, rows)
  expect("count(DISTINCT id) of events", facts.distinctIds, rows)
  expect("batches in events", facts.tableBatches, keys)
  expect("batches in batch_status", facts.statusBatches, keys)
  expect("duplicate keys in batch_status", facts.statusDuplicates, 0)
  expect("batch_status total", facts.statusTotal, keys.length === 0 ? null : rows)
  expect("state loaded_batches", facts.stateLoaded, keys.length === 0 ? null : keys)
  expect("state seen_batches", facts.stateSeen, keys.length === 0 ? null : keys)
  expect("incomplete loads", facts.incompleteLoads, 0)
  expect("rows of no completed load", facts.orphanRows, 0)
  facts.versions.forEach((v, i) => {
    const before = facts.versions[i - 1]
    if (before !== undefined && !(v.version > before.version)) {
      out.push(
        `state version ${v.version} (load ${v.loadId}) does not increase on ${before.version} (load ${before.loadId})`
      )
    }
    if (!v.complete) out.push(`state row of load ${v.loadId} has no completed load`)
  })
  return out
}

/** the local state file's version and hash */
export const localState = (pipelineDir: string): { readonly version: number; readonly hash: string } | null => {
  const file = NodePath.join(pipelineDir, "state.json")
  if (!NodeFs.existsSync(file)) return null
  const doc = JSON.parse(NodeFs.readFileSync(file, "utf8")) as { _state_version: number; _version_hash: string }
  return { version: doc._state_version, hash: doc._version_hash }
}

/** the application's backends: what each is doing */
export const backendsOf = (applicationName: string) =>
  query<{ pid: number; state: string | null; query: string; in_xact: boolean; wait_event_type: string | null }>(
    "SELECT pid, state, query, xact_start IS NOT NULL AS in_xact, wait_event_type FROM pg_stat_activity WHERE application_name = $1",
    [applicationName]
  )
