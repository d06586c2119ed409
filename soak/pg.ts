/**
 * The soak's own view of PostgreSQL: admin connections outside the destination's pool (application
 * name `pipestate_soak`, so that the fault injectors never match them), and the facts of a dataset
 * of the incremental-api pipeline read with plain SQL, independent of the code under test.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Either } from "effect"
import pg from "pg"
import type { Item } from "../examples/incremental-api/api.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import * as StateValue from "../src/state/StateValue.js"

export const DEFAULT_URL = process.env.PIPESTATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** the application name of every connection the soak opens itself */
export const ADMIN_APPLICATION = "pipestate_soak"

/** the application name the PostgreSQL destination gives its connections */
export const PIPESTATE_APPLICATION = "pipestate"

/**
 * An admin connection. A connection the server drops (a restart) emits `error`: it is swallowed
 * here, the next query on the client fails instead of the process crashing.
 */
export const connect = async (url: string): Promise<pg.Client> => {
  const client = new pg.Client({
    connectionString: url,
    application_name: ADMIN_APPLICATION,
    connectionTimeoutMillis: 10_000
  })
  client.on("error", () => undefined)
  await client.connect()
  return client
}

export const close = async (client: pg.Client): Promise<void> => {
  await client.end().catch(() => undefined)
}

/** one query on a connection of its own */
export const queryOnce = async <Row extends Record<string, unknown>>(
  url: string,
  text: string,
  params: ReadonlyArray<unknown> = []
): Promise<Array<Row>> => {
  const client = await connect(url)
  try {
    return (await client.query<Row>(text, [...params])).rows
  } finally {
    await close(client)
  }
}

/** true when the server answers */
export const reachable = async (url: string): Promise<string | undefined> => {
  try {
    await queryOnce(url, "SELECT 1")
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

/** the key of the destination's per-pipeline advisory lock (postgres.ts `lockPipeline`) */
export const pipelineLockKey = (dataset: string, pipelineName: string): string => `${dataset}\u0001${pipelineName}`

/** `pg_locks` rows of that advisory lock (a bigint key: classid = high 32 bits, objid = low 32 bits) */
export const ADVISORY_LOCK_MATCH =
  "l.locktype = 'advisory' AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)"

/** the backends holding (granted) or waiting for the pipeline's advisory lock */
export const advisoryLockBackends = async (
  client: pg.Client,
  key: string
): Promise<ReadonlyArray<{ pid: number; granted: boolean; state: string | null; query: string }>> =>
  (
    await client.query<{ pid: number; granted: boolean; state: string | null; query: string }>(
      `SELECT l.pid, l.granted, a.state, left(a.query, 300) AS query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE ${ADVISORY_LOCK_MATCH}`,
      [key]
    )
  ).rows

export interface StateRow {
  readonly version: number
  readonly hash: string | null
  readonly loadId: string
  readonly complete: boolean
  readonly state: string
}

export interface NewestState {
  readonly version: number
  readonly hash: string | null
  readonly loadId: string
  /** `sources.<source>.resources.<resource>.incremental.updated_at.last_value` */
  readonly lastValue: Date | null
  /** why the blob or the cursor could not be read */
  readonly problem: string | null
}

/** what a dataset of the incremental-api pipeline holds */
export interface Facts {
  /** every row of `items` in the API's shape, by id (duplicates included) */
  readonly items: ReadonlyArray<Item>
  readonly rows: number
  readonly distinctIds: number
  readonly maxUpdatedAt: string | null
  readonly loads: number
  readonly incompleteLoads: number
  /** `items` rows whose `_dlt_load_id` has no completed `_dlt_loads` row */
  readonly orphanRows: number
  /** the pipeline's `_dlt_pipeline_state` rows in load id order */
  readonly versions: ReadonlyArray<StateRow>
  /** the newest state row of a completed load, decoded */
  readonly newest: NewestState | null
}

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const at = (value: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((current, key) => (isObject(current) ? current[key] : undefined), value)

/** the incremental cursor's last value in a decoded state, or why there is none */
export const cursorLastValue = (
  blob: string,
  pipelineName: string,
  sourceName: string,
  resourceName: string
): Either.Either<Date, string> => {
  const decoded = StateBlob.decode(blob, { pipelineName })
  if (Either.isLeft(decoded)) return Either.left(`the state blob does not decode: ${decoded.left.message}`)
  const path = ["sources", sourceName, "resources", resourceName, "incremental", "updated_at", "last_value"]
  const value = at(decoded.right, path)
  // a Date cursor's value is stored as a datetime, read back as a Timestamp
  return value instanceof Date
    ? Either.right(value)
    : value instanceof StateValue.Timestamp
      ? Either.right(value.toDate())
    : Either.left(`${path.join(".")} is ${value === undefined ? "absent" : JSON.stringify(value)}, not a datetime`)
}

const tableExists = async (client: pg.Client, dataset: string, table: string): Promise<boolean> =>
  (
    await client.query("SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2", [
      dataset,
      table
    ])
  ).rows.length > 0

export const datasetFacts = async (
  client: pg.Client,
  options: {
    readonly dataset: string
    readonly pipelineName: string
    readonly sourceName: string
    readonly resourceName: string
  }
): Promise<Facts> => {
  const { dataset, pipelineName } = options
  const q = (table: string) => `"${dataset}"."${table}"`
  const hasItems = await tableExists(client, dataset, "items")
  const hasLoads = await tableExists(client, dataset, "_dlt_loads")
  const hasState = await tableExists(client, dataset, "_dlt_pipeline_state")
  const items = hasItems
    ? (
        await client.query<{
          id: string
          name: string
          status: string
          amount: string
          version: string
          updated_at: string
        }>(
          `SELECT id::text AS id, name, status, amount::text AS amount, version::text AS version, updated_at::text AS updated_at FROM ${q("items")} ORDER BY id, _dlt_load_id`
        )
      ).rows.map(
        (r): Item => ({
          id: Number(r.id),
          name: r.name,
          status: r.status as Item["status"],
          amount: Number(r.amount),
          version: Number(r.version),
          updated_at: r.updated_at
        })
      )
    : []
  const loads = hasLoads
    ? (
        await client.query<{ c: string; bad: string }>(
          `SELECT count(*) AS c, count(*) FILTER (WHERE status <> 0) AS bad FROM ${q("_dlt_loads")}`
        )
      ).rows[0]!
    : { c: "0", bad: "0" }
  const orphanRows =
    hasItems && hasLoads
      ? Number(
          (
            await client.query<{ c: string }>(
              `SELECT count(*) AS c FROM ${q("items")} i WHERE NOT EXISTS (SELECT 1 FROM ${q("_dlt_loads")} l WHERE l.load_id = i._dlt_load_id AND l.status = 0)`
            )
          ).rows[0]!.c
        )
      : hasItems
        ? items.length
        : 0
  const versions =
    hasState && hasLoads
      ? (
          await client.query<{
            version: string
            version_hash: string | null
            load_id: string
            complete: boolean
            state: string
          }>(
            `SELECT s.version::text AS version, s.version_hash, s._dlt_load_id AS load_id, s.state, EXISTS (SELECT 1 FROM ${q("_dlt_loads")} l WHERE l.load_id = s._dlt_load_id AND l.status = 0) AS complete FROM ${q("_dlt_pipeline_state")} s WHERE s.pipeline_name = $1 ORDER BY s._dlt_load_id`,
            [pipelineName]
          )
        ).rows.map(
          (r): StateRow => ({
            version: Number(r.version),
            hash: r.version_hash,
            loadId: r.load_id,
            complete: r.complete,
            state: r.state
          })
        )
      : []
  const newestRow = [...versions].reverse().find((v) => v.complete)
  let newest: NewestState | null = null
  if (newestRow !== undefined) {
    const cursor = cursorLastValue(newestRow.state, pipelineName, options.sourceName, options.resourceName)
    newest = {
      version: newestRow.version,
      hash: newestRow.hash,
      loadId: newestRow.loadId,
      lastValue: Either.getOrNull(cursor),
      problem: Either.isLeft(cursor) ? cursor.left : null
    }
  }
  const maxUpdatedAt = items.reduce<string | null>(
    (max, item) => (max === null || Date.parse(item.updated_at) > Date.parse(max) ? item.updated_at : max),
    null
  )
  return {
    items,
    rows: items.length,
    distinctIds: new Set(items.map((i) => i.id)).size,
    maxUpdatedAt,
    loads: Number(loads.c),
    incompleteLoads: Number(loads.bad),
    orphanRows,
    versions,
    newest
  }
}

/** the local state file's version and hash (`null` without a file; `"unreadable"` when it does not parse) */
export const localState = (
  pipelineDir: string
): { readonly version: number; readonly hash: string | null } | null | "unreadable" => {
  const file = NodePath.join(pipelineDir, "state.json")
  if (!NodeFs.existsSync(file)) return null
  try {
    const doc: unknown = JSON.parse(NodeFs.readFileSync(file, "utf8"))
    if (!isObject(doc) || typeof doc._state_version !== "number") return "unreadable"
    return { version: doc._state_version, hash: typeof doc._version_hash === "string" ? doc._version_hash : null }
  } catch {
    return "unreadable"
  }
}
