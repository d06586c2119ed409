/**
 * A small "shop" source for the drop, history and CLI tests: three resources that keep state (one
 * with a name that normalizes to another table name) and a source state with several keys.
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Effect, Layer, Stream } from "effect"
import * as ResourceState from "../../src/context/ResourceState.js"
import * as SourceState from "../../src/context/SourceState.js"
import { Destination as DestinationTag } from "../../src/destination/Destination.js"
import type * as Destination from "../../src/destination/index.js"
import * as Sqlite from "../../src/destination/sqlite.js"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import * as Resource from "../../src/pipeline/Resource.js"
import * as Source from "../../src/pipeline/Source.js"

/** rows `from..to` of a resource that remembers the highest id it loaded */
const counted = (name: string, from: number, to: number) =>
  Resource.make(
    { name, writeDisposition: "append" },
    Stream.unwrap(
      Effect.gen(function* () {
        yield* ResourceState.set("last_id", to)
        yield* ResourceState.set(
          "seen",
          Array.from({ length: to - from + 1 }, (_, i) => `${name}-${from + i}`)
        )
        return Stream.fromIterable(Array.from({ length: to - from + 1 }, (_, i) => ({ id: from + i, name })))
      })
    )
  )

/**
 * The shop source: `orders`, `customers` and `OrderItems` (table `order_items`), plus source state
 * `last_sync` (a datetime), `pages` (a list) and `meta.cursor`. `run` selects the id range, so a
 * later run changes the state.
 */
export const shop = (run = 1) =>
  Source.make({
    name: "shop",
    resources: [
      Resource.make(
        { name: "orders", writeDisposition: "append" },
        Stream.unwrap(
          Effect.gen(function* () {
            yield* ResourceState.set("last_id", run * 10)
            // a long value, for `info -v` cutting
            yield* ResourceState.set(
              "archive",
              Array.from({ length: 300 }, (_, i) => `https://shop.example/orders/archive/${run}/${i}`)
            )
            yield* SourceState.set("last_sync", new Date(Date.UTC(2024, 0, run)))
            yield* SourceState.set("pages", [1, 2, run + 2])
            yield* SourceState.set("meta", { cursor: `c${run}`, keep: true })
            return Stream.fromIterable(Array.from({ length: 10 }, (_, i) => ({ id: (run - 1) * 10 + i + 1, total: i })))
          })
        )
      ),
      counted("customers", (run - 1) * 3 + 1, run * 3),
      counted("OrderItems", (run - 1) * 5 + 1, run * 5)
    ]
  })

/** runs `shop(run)` as pipeline `name` */
export const runShop = (
  options: { readonly pipelinesDir: string; readonly dataset: string; readonly name?: string; readonly run?: number },
  destination: Layer.Layer<Destination.Destination, Destination.DestinationError>
) =>
  Pipeline.run(shop(options.run ?? 1)).pipe(
    Effect.provide(
      Layer.merge(
        Pipeline.layerNode({
          name: options.name ?? "shop_pipeline",
          dataset: options.dataset,
          pipelinesDir: options.pipelinesDir
        }),
        destination
      )
    )
  )

const root = NodePath.resolve(import.meta.dirname, "..", "..")
const bin = NodePath.join(root, "dist", "bin", "pipestate.js")

const newestMtime = (dir: string): number =>
  NodeFs.readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const path = NodePath.join(dir, entry.name)
    return Math.max(newest, entry.isDirectory() ? newestMtime(path) : NodeFs.statSync(path).mtimeMs)
  }, 0)

/**
 * Builds dist/ unless it is newer than every source file (CI builds before testing).
 */
export const ensureBuilt = (): Promise<void> => {
  const built = NodeFs.existsSync(bin) ? NodeFs.statSync(bin).mtimeMs : 0
  if (built >= newestMtime(NodePath.join(root, "src"))) return Promise.resolve()
  return new Promise((resolve, reject) =>
    execFile("npm", ["run", "build"], { cwd: root, encoding: "utf8" }, (error, stdout, stderr) =>
      error === null ? resolve() : reject(new Error(`npm run build failed:\n${stdout}\n${stderr}`))
    )
  )
}

/** what a CLI run printed */
export interface CliResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

// env variables of the developer's shell that would steer the CLI away from the test's setup
export const SCRUBBED: ReadonlyArray<string> = [
  "PIPESTATE_PIPELINES_DIR",
  "PIPESTATE_DESTINATION",
  "PIPESTATE_POSTGRES_URL",
  "PIPESTATE_SQLITE_DIRECTORY",
  "PIPESTATE_SQLITE_PATH",
  "PIPESTATE_DEV_MODE",
  "PIPESTATE_DEBUG"
]

/**
 * Runs the built CLI with `args`, stdin a pipe (no TTY), in `cwd` (default: a directory without a
 * config file), with `env` added to a scrubbed environment. Asynchronous: a blocked event loop
 * would starve vitest's worker.
 */
export const cli = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}
): Promise<CliResult> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !SCRUBBED.includes(key)) env[key] = value
  }
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      {
        cwd: options.cwd ?? NodePath.dirname(bin),
        env: { ...env, NO_COLOR: "1", ...options.env },
        encoding: "utf8",
        timeout: 60_000
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resolve({ status: code, stdout, stderr })
      }
    )
    // stdin is a pipe that ends at once: not a terminal, and no answer to any prompt
    child.stdin?.end()
  })
}

/** true when `text` shows a JavaScript stack trace */
export const hasStackTrace = (text: string): boolean => /\n\s+at .+[(:]/.test(text)

/** the local state file of a pipeline, parsed as plain JSON */
export const readStateFile = (pipelinesDir: string, name = "shop_pipeline"): Record<string, unknown> =>
  JSON.parse(NodeFs.readFileSync(NodePath.join(pipelinesDir, name, "state.json"), "utf8")) as Record<string, unknown>

/** the tables of a SQLite dataset file, sorted */
export const sqliteTables = (file: string) =>
  Effect.gen(function* () {
    const destination = yield* DestinationTag
    // the file as `<directory>/<dataset>.sqlite`: a file given by `path` holds one dataset, not known here
    const access = yield* destination.dataset({
      dataset: NodePath.basename(file, ".sqlite"),
      pipelineDir: NodePath.dirname(file)
    })
    const rows = yield* access.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' ORDER BY name")
    return rows.map((row) => String(row.name))
  }).pipe(Effect.provide(Sqlite.layer({ directory: NodePath.dirname(file) })))
