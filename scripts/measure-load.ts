/**
 * How fast Pipeline.run loads into PostgreSQL, against the raw floor of this process:
 * `npx tsx scripts/measure-load.ts [rows]` (default 100,000).
 *
 * - pipestate: N deterministic records x 10 columns (bigint id, 3 text, 2 double, 2 timestamp,
 *   boolean, a small nested json) through `Pipeline.run` (append) into a fresh dataset; best of 3,
 *   each run in a dataset of its own, dropped after. The destination layer is built once, outside the timing.
 * - baseline: the same rows through raw `COPY ... FROM STDIN WITH (FORMAT csv)` with pg-copy-streams,
 *   the CSV built in JS as the rows are generated, in one transaction; best of 3.
 *
 * The server is PIPESTATE_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/test.
 */
import { randomBytes } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Effect, Layer, Redacted, Stream } from "effect"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import * as Postgres from "../src/destination/postgres.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Progress from "../src/pipeline/Progress.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"

const URL = process.env.PIPESTATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const ROWS = Number(process.argv[2] ?? 100_000)
const REPEAT = 3
const BASE_TIME = Date.UTC(2024, 0, 1)
const CITIES = ["Berlin", "Lisbon", "Zürich", "São Paulo", "Kraków", "Osaka", "Nairobi"] as const

if (!Number.isInteger(ROWS) || ROWS < 1) {
  console.error(`usage: npx tsx scripts/measure-load.ts [rows]; got ${process.argv[2]}`)
  process.exit(2)
}

interface Row {
  readonly id: number
  readonly name: string
  readonly city: string
  readonly note: string
  readonly price: number
  readonly score: number
  readonly created_at: Date
  readonly updated_at: Date
  readonly active: boolean
  readonly meta: { readonly tags: ReadonlyArray<string>; readonly n: number }
}

/** row i; both doubles are never integral, so the first row already infers them as double */
const record = (i: number): Row => ({
  id: i,
  name: `user ${i}`,
  city: CITIES[i % CITIES.length]!,
  note: i % 7 === 0 ? `note ${i}, with "quotes"\nand a newline` : `note ${i}`,
  price: i * 0.25 + 0.125,
  score: (i % 1000) / 7 + 0.5,
  created_at: new Date(BASE_TIME + i * 1000),
  updated_at: new Date(BASE_TIME + i * 1000 + 500),
  active: i % 3 === 0,
  meta: { tags: ["a", `t${i % 10}`], n: i % 100 }
})

const datasetName = (what: string) => `measure_${what}_${randomBytes(4).toString("hex")}`

const admin = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: URL })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

const dropSchema = (schema: string) => admin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))

const count = (schema: string, table: string) =>
  admin(async (c) => Number((await c.query(`SELECT count(*) AS c FROM "${schema}"."${table}"`)).rows[0].c))

// ---------------------------------------------------------------------------------------------
// pipestate
// ---------------------------------------------------------------------------------------------

interface Timing {
  readonly seconds: number
  readonly extract: number
  readonly commit: number
}

const source = Source.make({
  name: "measure",
  resources: [
    Resource.make({ name: "rows", writeDisposition: "append" }, Stream.range(1, ROWS).pipe(Stream.map(record)))
  ]
})

const measurePipestate = Effect.gen(function* () {
  const context = yield* Layer.build(Postgres.layer({ url: Redacted.make(URL) }))
  const timings: Array<Timing> = []
  for (let i = 0; i < REPEAT; i++) {
    const dataset = datasetName("pipestate")
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pipestate-measure-"))
    const marks = new Map<string, number>()
    const progress: Progress.ProgressShape = {
      ...Progress.silent,
      phase: (_name, phase) => Effect.sync(() => marks.set(phase, performance.now()))
    }
    const started = performance.now()
    const summary = yield* Pipeline.run(source).pipe(
      Effect.provide(Layer.succeed(Progress.Progress, progress)),
      Effect.provide(Pipeline.layerNode({ name: "measure_pipeline", dataset, pipelinesDir: dir })),
      Effect.provide(context)
    )
    const seconds = (performance.now() - started) / 1000
    const loaded = yield* Effect.promise(() => count(dataset, "rows"))
    yield* Effect.promise(() => dropSchema(dataset))
    NodeFs.rmSync(dir, { recursive: true, force: true })
    if (summary.tables.rows !== ROWS || loaded !== ROWS) {
      return yield* Effect.dieMessage(
        `expected ${ROWS} rows, the run reported ${summary.tables.rows}, the table has ${loaded}`
      )
    }
    const at = (phase: string) => marks.get(phase) ?? Number.NaN
    timings.push({
      seconds,
      extract: (at("commit") - at("extract")) / 1000,
      commit: (at("done") - at("commit")) / 1000
    })
  }
  return timings
}).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------
// raw COPY baseline
// ---------------------------------------------------------------------------------------------

const csvText = (text: string): string => (/[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text)

const csvLine = (row: Row): string =>
  `${row.id},${csvText(row.name)},${csvText(row.city)},${csvText(row.note)},${row.price},${row.score},${row.created_at.toISOString()},${row.updated_at.toISOString()},${row.active ? "t" : "f"},${csvText(JSON.stringify(row.meta))}\n`

function* csvChunks(): Generator<string> {
  const perChunk = 5_000
  for (let start = 1; start <= ROWS; start += perChunk) {
    let chunk = ""
    const end = Math.min(ROWS, start + perChunk - 1)
    for (let i = start; i <= end; i++) chunk += csvLine(record(i))
    yield chunk
  }
}

const measureCopy = async (): Promise<Array<number>> => {
  const seconds: Array<number> = []
  for (let i = 0; i < REPEAT; i++) {
    const schema = datasetName("copy")
    await admin(async (client) => {
      await client.query(`CREATE SCHEMA "${schema}"`)
      await client.query(
        `CREATE TABLE "${schema}".rows (id bigint, name text, city text, note text, price double precision, score double precision, created_at timestamptz, updated_at timestamptz, active boolean, meta jsonb)`
      )
      const started = performance.now()
      await client.query("BEGIN")
      await pipeline(
        Readable.from(csvChunks()),
        client.query(copyFrom(`COPY "${schema}".rows FROM STDIN WITH (FORMAT csv)`))
      )
      await client.query("COMMIT")
      seconds.push((performance.now() - started) / 1000)
    })
    const loaded = await count(schema, "rows")
    await dropSchema(schema)
    if (loaded !== ROWS) throw new Error(`baseline: expected ${ROWS} rows, the table has ${loaded}`)
  }
  return seconds
}

// ---------------------------------------------------------------------------------------------

const rate = (seconds: number) => Math.round(ROWS / seconds).toLocaleString("en-US")
const fixed = (n: number) => n.toFixed(2)

const main = async () => {
  console.log(
    `measure-load: ${ROWS.toLocaleString("en-US")} rows x 10 columns, best of ${REPEAT}, ${URL.replace(/:[^:@/]*@/, ":***@")}`
  )
  const pipestate = await Effect.runPromise(measurePipestate)
  const copy = await measureCopy()
  const best = pipestate.reduce((a, b) => (b.seconds < a.seconds ? b : a))
  const bestCopy = Math.min(...copy)
  console.log(
    `Pipeline.run (append):    ${rate(best.seconds)} rows/s  (best ${fixed(best.seconds)} s: extract+normalize+spool ${fixed(best.extract)} s, commit/COPY ${fixed(best.commit)} s; all runs ${pipestate.map((t) => fixed(t.seconds)).join(", ")} s)`
  )
  console.log(
    `raw COPY FROM STDIN (CSV): ${rate(bestCopy)} rows/s  (best ${fixed(bestCopy)} s; all runs ${copy.map(fixed).join(", ")} s)`
  )
  console.log(`ratio pipestate / raw COPY: ${(bestCopy / best.seconds).toFixed(2)}`)
}

await main()
