/**
 * Finds where an existing pipeline's state lives, for the verbs that inspect or change it from the
 * outside (`pipestate pipeline <name> info|sync|drop|history|restore`): the pipelines dir, the local
 * state, and the target — destination, dataset, SQLite file — each with where it was learned.
 *
 * Precedence, highest first: **flags** (the overrides given here) → **the local state** (the
 * target it was committed to: `destination_name`, `dataset_name`, `_local.location`; salvaged from a
 * damaged file when it is still JSON) → **the working dir** (a SQLite dataset file holding this
 * pipeline's state) → **the configuration** (env, `.pipestate/config.toml`; `PipestateConfig`) →
 * **defaults** (`sqlite`, `<name>_dataset`).
 *
 * Nothing here creates a file or a directory: a command on a pipeline that does not exist must not
 * leave a working dir behind.
 *
 * @example
 * ```ts
 * const located = yield* Locate.locate("chess_pipeline", {})
 * yield* Locate.requireKnown(located)
 * const versions = yield* History.list().pipe(Effect.provide(Locate.layers(located)))
 * ```
 *
 * @since 0.1.0
 */
import * as NodePath from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import * as PipestateConfig from "../../config/PipestateConfig.js"
import { type Destination, type DestinationError, STATE_TABLE } from "../../destination/Destination.js"
import type * as PipelineState from "../state/PipelineState.js"
import * as PipelineConfig from "../../pipeline/PipelineConfig.js"
import * as StateSync from "./StateSync.js"
import * as WorkingDir from "./WorkingDir.js"
import { shellQuote } from "../Shell.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * The pipeline has no working dir with a state file under the pipelines dir, and nothing says
 * where its destination is.
 *
 * @since 0.1.0
 */
export class UnknownPipeline extends Schema.TaggedError<UnknownPipeline>()("UnknownPipeline", {
  name: Schema.String,
  pipelinesDir: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const known =
      this.known.length === 0 ? "there are no pipelines there yet" : `known pipelines: ${this.known.join(", ")}`
    return (
      `pipeline ${JSON.stringify(this.name)} not found in ${this.pipelinesDir}; ${known}. ` +
      "Pass --pipelines-dir (or set PIPESTATE_PIPELINES_DIR) if it lives elsewhere, or restore it on this machine " +
      `with \`pipestate pipeline ${shellQuote(this.name)} sync --destination postgres --url <url> --dataset <dataset> --yes\` ` +
      "(or --destination sqlite --sqlite-path <file>)."
    )
  }
}

/**
 * PostgreSQL was chosen but no server was given.
 *
 * @since 0.1.0
 */
export class MissingPostgresUrl extends Schema.TaggedError<MissingPostgresUrl>()("MissingPostgresUrl", {
  destinationFrom: Schema.String
}) {
  override get message(): string {
    return (
      `the destination is postgres (from ${this.destinationFrom}) but no server is given: pass ` +
      "--url postgres://user@host:5432/database, set PIPESTATE_POSTGRES_URL, or set destination.postgres.url in .pipestate/config.toml"
    )
  }
}

/**
 * The pipeline's state names a destination that cannot be opened from outside the program that
 * ran it (a custom destination, or the in-memory one).
 *
 * @since 0.1.0
 */
export class UnsupportedDestination extends Schema.TaggedError<UnsupportedDestination>()("UnsupportedDestination", {
  destination: Schema.String
}) {
  override get message(): string {
    return `the pipeline's state names the destination ${JSON.stringify(this.destination)}, which cannot be opened from here; pass --destination sqlite (with --sqlite-path) or --destination postgres (with --url)`
  }
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/**
 * The destinations that can be opened from outside a program.
 *
 * @since 0.1.0
 */
export type DestinationName = PipestateConfig.DestinationName

/**
 * What the caller names explicitly (command-line flags); each wins over everything else.
 *
 * @since 0.1.0
 */
export interface Overrides {
  readonly pipelinesDir?: string | undefined
  readonly destination?: DestinationName | undefined
  readonly url?: Redacted.Redacted<string> | undefined
  readonly sqlitePath?: string | undefined
  readonly dataset?: string | undefined
  readonly cwd?: string | undefined
  readonly configFile?: string | undefined
}

/**
 * A value and, for humans, where it came from.
 *
 * @since 0.1.0
 */
export interface Chosen<A> {
  readonly value: A
  readonly from: string
  /** true when nothing named the value and a default was taken */
  readonly isDefault: boolean
}

/**
 * Everything known about a pipeline before touching its destination.
 *
 * @since 0.1.0
 */
export interface Located {
  readonly name: string
  readonly settings: PipestateConfig.EffectiveConfig
  readonly pipelinesDir: string
  readonly workingDir: string
  /** whether the working dir existed before */
  readonly workingDirExisted: boolean
  readonly local: Option.Option<PipelineState.PipelineState>
  /** the local state file exists but cannot be read */
  readonly corrupt: Option.Option<WorkingDir.CorruptStateFile>
  readonly destination: Chosen<DestinationName>
  readonly dataset: Chosen<string>
  /** the SQLite file of the dataset, when the destination is SQLite */
  readonly sqliteFile: Option.Option<Chosen<string>>
  readonly postgresUrl: Option.Option<Redacted.Redacted<string>>
  /** true when something besides defaults tells where the pipeline's state is */
  readonly known: boolean
}

interface Recorded {
  readonly destination?: string
  readonly dataset?: string
  readonly location?: string
}

const recordedOf = (state: PipelineState.PipelineState): Recorded => {
  const location = state._local.location
  const destination = StateSync.destinationKind(state)
  return {
    ...(destination === undefined ? {} : { destination }),
    ...(typeof state.dataset_name === "string" ? { dataset: state.dataset_name } : {}),
    ...(typeof location === "string" ? { location } : {})
  }
}

/** the target a damaged state file still names, when it is still JSON */
const salvage = (text: string): Recorded => {
  const doc = Either.getOrUndefined(Either.try((): unknown => JSON.parse(text)))
  if (typeof doc !== "object" || doc === null) return {}
  const fields = doc as Record<string, unknown>
  const { dataset_name: dataset, _local: local } = fields
  const location = typeof local === "object" && local !== null ? (local as Record<string, unknown>).location : undefined
  const destination = StateSync.destinationKind(fields)
  return {
    ...(typeof dataset === "string" && dataset !== "" ? { dataset } : {}),
    ...(destination === undefined ? {} : { destination }),
    ...(typeof location === "string" && location !== "" ? { location } : {})
  }
}

const isDestinationName = (name: string): name is DestinationName => name === "sqlite" || name === "postgres"

/**
 * The SQLite dataset files in a working dir holding a state of `pipelineName`, the newest load first.
 */
const scanSqlite = (workingDir: string, pipelineName: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const entries = yield* fs.readDirectory(workingDir).pipe(Effect.orElseSucceed(() => [] as Array<string>))
    const files = entries.filter((entry) => entry.endsWith(".sqlite")).map((entry) => path.join(workingDir, entry))
    if (files.length === 0) return []
    const Sqlite = (yield* Effect.promise(() => import("better-sqlite3"))).default
    const found: Array<{ readonly file: string; readonly dataset: string; readonly loadId: string }> = []
    for (const file of files) {
      const newest = Either.getOrUndefined(
        Either.try(() => {
          const db = new Sqlite(file, { readonly: true, fileMustExist: true })
          try {
            const row = db
              .prepare(`SELECT max(_dlt_load_id) AS load_id FROM "${STATE_TABLE}" WHERE pipeline_name = ?`)
              .get(pipelineName) as { load_id: string | null } | undefined
            return row?.load_id ?? undefined
          } finally {
            db.close()
          }
        })
      )
      if (newest !== undefined) found.push({ file, dataset: path.basename(file, ".sqlite"), loadId: newest })
    }
    return found.sort((a, b) => (a.loadId < b.loadId ? 1 : a.loadId > b.loadId ? -1 : 0))
  })

const flag = (name: string) => `command line (${name})`

/**
 * Locates a pipeline: its options, local state and target.
 *
 * @since 0.1.0
 */
export const locate = (
  name: string,
  overrides: Overrides
): Effect.Effect<
  Located,
  | WorkingDir.InvalidPipelineName
  | WorkingDir.WorkingDirError
  | PipestateConfig.InvalidConfigFile
  | PipestateConfig.InvalidConfigValue
  | UnsupportedDestination,
  FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function* () {
    yield* WorkingDir.validatePipelineName(name)
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const settings = yield* PipestateConfig.load({
      pipelineName: name,
      cwd: overrides.cwd,
      file: overrides.configFile,
      overrides: {
        pipelinesDir: overrides.pipelinesDir,
        destination: overrides.destination,
        postgresUrl: overrides.url,
        dataset: overrides.dataset,
        sqlitePath: overrides.sqlitePath
      }
    })
    const pipelinesDir = yield* WorkingDir.resolvePipelinesDir(Option.getOrUndefined(settings.pipelinesDir.value))
    const workingDir = path.join(pipelinesDir, name)
    const workingDirExisted = yield* fs.exists(workingDir).pipe(Effect.orElseSucceed(() => false))
    const statePath = path.join(workingDir, "state.json")
    const hasState = yield* fs.exists(statePath).pipe(Effect.orElseSucceed(() => false))
    // WorkingDir.make creates the directory, so only open it when it is there already; a corrupt
    // state file must not stop `sync`, which is how it gets repaired
    const [local, corrupt] = hasState
      ? yield* Effect.flatMap(WorkingDir.make({ pipelinesDir, pipelineName: name }), (wd) => wd.readState).pipe(
          Effect.map((state) => [state, Option.none<WorkingDir.CorruptStateFile>()] as const),
          Effect.catchTag("CorruptStateFile", (error) =>
            Effect.succeed([Option.none<PipelineState.PipelineState>(), Option.some(error)] as const)
          )
        )
      : ([Option.none<PipelineState.PipelineState>(), Option.none<WorkingDir.CorruptStateFile>()] as const)
    const recorded: Recorded = Option.isSome(local)
      ? recordedOf(local.value)
      : Option.isSome(corrupt)
        ? salvage(yield* fs.readFileString(statePath).pipe(Effect.orElseSucceed(() => "")))
        : {}
    const recordedFrom = Option.isSome(local) ? "local state" : "damaged local state"

    const explicitDestination = overrides.destination !== undefined
    const needScan =
      recorded.destination === undefined &&
      overrides.dataset === undefined &&
      (overrides.destination === undefined || overrides.destination === "sqlite") &&
      overrides.sqlitePath === undefined
    const scanned = needScan ? yield* scanSqlite(workingDir, name) : []
    const found = scanned[0]

    // the destination
    let destination: Chosen<DestinationName>
    if (explicitDestination) {
      destination = { value: settings.destination.value, from: flag("--destination"), isDefault: false }
    } else if (recorded.destination !== undefined) {
      if (!isDestinationName(recorded.destination)) {
        return yield* new UnsupportedDestination({ destination: recorded.destination })
      }
      destination = { value: recorded.destination, from: `${recordedFrom} (destination)`, isDefault: false }
    } else if (overrides.sqlitePath !== undefined) {
      destination = { value: "sqlite", from: flag("--sqlite-path"), isDefault: false }
    } else if (found !== undefined) {
      destination = { value: "sqlite", from: `the working dir (${path.basename(found.file)})`, isDefault: false }
    } else if (settings.destination.origin._tag !== "Default") {
      destination = {
        value: settings.destination.value,
        from: PipestateConfig.formatOrigin(settings.destination.origin),
        isDefault: false
      }
    } else {
      destination = { value: "sqlite", from: "default", isDefault: true }
    }

    // the dataset: the local state's is the one actually loaded (dev mode suffixes it)
    let dataset: Chosen<string>
    if (overrides.dataset !== undefined) {
      dataset = { value: overrides.dataset, from: flag("--dataset"), isDefault: false }
    } else if (recorded.dataset !== undefined) {
      dataset = { value: recorded.dataset, from: `${recordedFrom} (dataset_name)`, isDefault: false }
    } else if (found !== undefined && destination.value === "sqlite") {
      dataset = { value: found.dataset, from: `the working dir (${path.basename(found.file)})`, isDefault: false }
    } else if (Option.isSome(settings.dataset.value)) {
      dataset = {
        value: settings.dataset.value.value,
        from: PipestateConfig.formatOrigin(settings.dataset.origin),
        isDefault: false
      }
    } else {
      dataset = { value: `${name}_dataset`, from: "default (<name>_dataset)", isDefault: true }
    }

    // the SQLite file
    let sqliteFile = Option.none<Chosen<string>>()
    if (destination.value === "sqlite") {
      const { sqlitePath, sqliteDirectory } = settings
      if (overrides.sqlitePath !== undefined) {
        sqliteFile = Option.some({
          value: path.resolve(overrides.sqlitePath),
          from: flag("--sqlite-path"),
          isDefault: false
        })
      } else if (
        recorded.location !== undefined &&
        recorded.destination === "sqlite" &&
        recorded.dataset === dataset.value
      ) {
        sqliteFile = Option.some({ value: recorded.location, from: `${recordedFrom} (location)`, isDefault: false })
      } else if (found !== undefined && found.dataset === dataset.value) {
        sqliteFile = Option.some({ value: found.file, from: "the working dir", isDefault: false })
      } else if (Option.isSome(sqlitePath.value)) {
        sqliteFile = Option.some({
          value: path.resolve(sqlitePath.value.value),
          from: PipestateConfig.formatOrigin(sqlitePath.origin),
          isDefault: false
        })
      } else {
        const directory = Option.getOrElse(sqliteDirectory.value, () => workingDir)
        sqliteFile = Option.some({
          value: path.resolve(directory, `${dataset.value}.sqlite`),
          from: Option.isSome(sqliteDirectory.value)
            ? PipestateConfig.formatOrigin(sqliteDirectory.origin)
            : "default (<working dir>/<dataset>.sqlite)",
          isDefault: Option.isNone(sqliteDirectory.value)
        })
      }
    }

    const known =
      Option.isSome(local) ||
      recorded.dataset !== undefined ||
      found !== undefined ||
      overrides.destination !== undefined ||
      overrides.dataset !== undefined ||
      overrides.url !== undefined ||
      overrides.sqlitePath !== undefined

    return {
      name,
      settings,
      pipelinesDir,
      workingDir,
      workingDirExisted,
      local,
      corrupt,
      destination,
      dataset,
      sqliteFile,
      postgresUrl: settings.postgresUrl.value,
      known
    } satisfies Located
  })

/**
 * Fails when nothing tells where the pipeline's state is: with the `CorruptStateFile` when its
 * working dir has a state file that says nothing readable (it names the command that repairs it),
 * else with `UnknownPipeline` (listing the known ones).
 *
 * @since 0.1.0
 */
export const requireKnown = (
  located: Located
): Effect.Effect<
  void,
  UnknownPipeline | WorkingDir.CorruptStateFile | WorkingDir.WorkingDirError,
  FileSystem.FileSystem | Path.Path
> =>
  located.known
    ? Effect.void
    : Option.isSome(located.corrupt)
      ? Effect.fail(located.corrupt.value)
      : Effect.flatMap(WorkingDir.listPipelines(located.pipelinesDir), (known) =>
          Effect.fail(new UnknownPipeline({ name: located.name, pipelinesDir: located.pipelinesDir, known }))
        )

/**
 * The local state, or `UnknownPipeline` (or the `CorruptStateFile`).
 *
 * @since 0.1.0
 */
export const requireLocal = (
  located: Located
): Effect.Effect<
  PipelineState.PipelineState,
  UnknownPipeline | WorkingDir.CorruptStateFile | WorkingDir.WorkingDirError,
  FileSystem.FileSystem | Path.Path
> =>
  Option.match(located.local, {
    onSome: Effect.succeed,
    onNone: () =>
      Option.isSome(located.corrupt)
        ? Effect.fail(located.corrupt.value)
        : Effect.flatMap(WorkingDir.listPipelines(located.pipelinesDir), (known) =>
            Effect.fail(new UnknownPipeline({ name: located.name, pipelinesDir: located.pipelinesDir, known }))
          )
  })

/**
 * Where the dataset lives, for messages; never holds a password.
 *
 * @since 0.1.0
 */
export const location = (located: Located): string =>
  Option.match(located.sqliteFile, {
    onSome: (file) => file.value,
    onNone: () =>
      Option.match(located.postgresUrl, {
        onNone: () => `postgres (no URL given)#${located.dataset.value}`,
        onSome: (url) => `${describePostgresUrl(url)}#${located.dataset.value}`
      })
  })

/**
 * A PostgreSQL URL without its password: `postgres://user@host:port/database`.
 *
 * @since 0.1.0
 */
export const describePostgresUrl = (url: Redacted.Redacted<string>): string => {
  try {
    const parsed = new URL(Redacted.value(url))
    const user = decodeURIComponent(parsed.username) || "postgres"
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "postgres"
    return `postgres://${user}@${parsed.hostname || "localhost"}:${parsed.port || "5432"}/${database}`
  } catch {
    return "postgres (unparsable URL)"
  }
}

/**
 * Whether the destination can hold state at all without creating anything: a SQLite file that does
 * not exist holds none (opening it would create it).
 *
 * @since 0.1.0
 */
export const mayHoldState = (located: Located): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Option.match(located.sqliteFile, {
    onNone: () => Effect.succeed(true),
    onSome: (file) =>
      Effect.flatMap(FileSystem.FileSystem, (fs) => fs.exists(file.value).pipe(Effect.orElseSucceed(() => false)))
  })

/**
 * The destination and pipeline layers of a located pipeline (dev mode off: the dataset is already
 * the one to use; restore on).
 *
 * @since 0.1.0
 */
export const layers = (
  located: Located
): Layer.Layer<
  PipelineConfig.Pipeline | Destination,
  MissingPostgresUrl | DestinationError | PipelineConfig.ConfigError,
  FileSystem.FileSystem | Path.Path
> => {
  const pipeline = PipelineConfig.layer({
    name: located.name,
    dataset: located.dataset.value,
    pipelinesDir: located.pipelinesDir,
    devMode: false,
    restoreFromDestination: true
  })
  const destination: Layer.Layer<Destination, MissingPostgresUrl | DestinationError> = Option.match(
    located.sqliteFile,
    {
      onSome: (file) =>
        Layer.unwrapEffect(
          Effect.map(
            Effect.promise(() => import("../../destination/sqlite.js")),
            // a file named after its dataset is opened as `<directory>/<dataset>.sqlite` (the same file,
            // left as a run with `directory` or the default made it); any other file by `path`, where
            // it holds one dataset
            (sqlite) =>
              sqlite.layer(
                NodePath.basename(file.value) === `${located.dataset.value}.sqlite`
                  ? { directory: NodePath.dirname(file.value) }
                  : { path: file.value }
              )
          )
        ),
      onNone: () =>
        Option.match(located.postgresUrl, {
          onNone: () => Layer.fail(new MissingPostgresUrl({ destinationFrom: located.destination.from })),
          onSome: (url) =>
            Layer.unwrapEffect(
              Effect.map(
                Effect.promise(() => import("../../destination/postgres.js")),
                (postgres) => postgres.layer({ url })
              )
            )
        })
    }
  )
  return Layer.merge(pipeline, destination)
}

/**
 * Removes the working dir when it did not exist before and is empty now (a clean machine stays
 * clean).
 *
 * @since 0.1.0
 */
export const cleanUp = (located: Located): Effect.Effect<void, never, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    if (located.workingDirExisted) return
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(located.workingDir).pipe(Effect.orElseSucceed(() => ["?"]))
    // checked empty just above, so `recursive` removes the directory itself and nothing else
    if (entries.length === 0) yield* fs.remove(located.workingDir, { recursive: true }).pipe(Effect.ignore)
  })
