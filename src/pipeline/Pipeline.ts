/**
 * The pipeline: one run is restore → extract → normalize → load + commit (ONE destination
 * transaction with the rows and the new state) → persist the state locally. A run that fails at
 * any step leaves the committed state, local and in the destination, exactly as it was.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Destination, Pipeline } from "pipestate"
 *
 * const summary = await Effect.runPromise(
 *   Pipeline.run(chess).pipe(
 *     Effect.provide(Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" })),
 *     Effect.provide(Destination.sqlite())
 *   )
 * )
 * console.log(summary.tables, summary.stateVersionAfter)
 * ```
 *
 * @since 0.1.0
 */
import type { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Either, Layer, Option, Ref, Schema, Stream } from "effect"
import * as PipelineContext from "../context/PipelineContext.js"
import * as ResourceState from "../context/ResourceState.js"
import { removeResource, sourcePath } from "../context/Slots.js"
import * as SourceState from "../context/SourceState.js"
import { type DatasetTarget, Destination, type DestinationShape } from "../destination/Destination.js"
import { nextLoadId, uniqueId } from "../destination/SqlDestination.js"
import type { TableSchema } from "../destination/TableSchema.js"
import * as PipelineState from "../state/PipelineState.js"
import * as StateBlob from "../state/StateBlob.js"
import * as StateValue from "../state/StateValue.js"
import { normalizeIdentifier, TableNormalizer } from "./Normalize.js"
import * as Progress from "./Progress.js"
import type { Resource, ResourceServices } from "./Resource.js"
import type { Source } from "./Source.js"
import * as StateSync from "./StateSync.js"
import * as WorkingDir from "./WorkingDir.js"

/**
 * How a pipeline runs. Only `name` is required.
 *
 * @since 0.1.0
 */
export interface PipelineConfig {
  readonly name: string
  /** the dataset (PostgreSQL schema, SQLite file) the data goes to; default `<name>_dataset` */
  readonly dataset?: string
  /** default: env `PIPESTATE_PIPELINES_DIR`, else `~/.pipestate/pipelines` */
  readonly pipelinesDir?: string
  /** on a clean working dir, start from the destination's newest state (default true) */
  readonly restoreFromDestination?: boolean
  /** load into a fresh dataset `<dataset>_<yyyymmddhhmmss>`, start from an empty state, never restore */
  readonly devMode?: boolean
  /** how many resources extract at once (default 4) */
  readonly concurrency?: number
  /** records normalized and staged per batch (default 5,000) */
  readonly batchSize?: number
  /** state rows kept per pipeline in the destination (default 100) */
  readonly keepStateVersions?: number
  /** warn when the encoded state passes this many bytes (default 1 MiB) */
  readonly stateSizeWarningBytes?: number
}

/**
 * A pipeline configuration with every default applied.
 *
 * @since 0.1.0
 */
export interface ResolvedConfig {
  readonly name: string
  readonly dataset: string
  readonly pipelinesDir: string
  readonly restoreFromDestination: boolean
  readonly devMode: boolean
  readonly concurrency: number
  readonly batchSize: number
  readonly keepStateVersions: number
  readonly stateSizeWarningBytes: number
}

/**
 * @since 0.1.0
 */
export interface PipelineShape {
  readonly config: ResolvedConfig
  readonly workingDir: WorkingDir.WorkingDir
}

/**
 * The configured pipeline (name, dataset, working dir).
 *
 * @since 0.1.0
 */
export class Pipeline extends Context.Tag("pipestate/Pipeline")<Pipeline, PipelineShape>() {}

/**
 * The source's definition is unusable (duplicate resource names, two resources writing one table
 * with different dispositions).
 *
 * @since 0.1.0
 */
export class InvalidSource extends Schema.TaggedError<InvalidSource>()("InvalidSource", {
  source: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `source ${this.source}: ${this.reason}`
  }
}

/**
 * A dataset name that cannot be used.
 *
 * @since 0.1.0
 */
export class InvalidDatasetName extends Schema.TaggedError<InvalidDatasetName>()("InvalidDatasetName", {
  dataset: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `dataset name ${JSON.stringify(this.dataset)}: ${this.reason}`
  }
}

/**
 * What a run did.
 *
 * @since 0.1.0
 */
export interface LoadSummary {
  readonly pipelineName: string
  readonly dataset: string
  readonly destination: string
  /** `null` when there was nothing to commit (no rows, state unchanged) */
  readonly loadId: string | null
  readonly firstRun: boolean
  /** where the starting state came from */
  readonly origin: StateSync.Origin
  /** rows loaded per table */
  readonly tables: Readonly<Record<string, number>>
  readonly stateVersionBefore: number
  readonly stateVersionAfter: number
  readonly stateHashAfter: string
  readonly stateChanged: boolean
}

const timestampSuffix = (date: Date): string => {
  const pad = (n: number) => String(n).padStart(2, "0")
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`
}

const positive = (value: number | undefined, fallback: number): number =>
  value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback

/**
 * Resolves a configuration and opens the working dir.
 *
 * @since 0.1.0
 */
export const make = (
  config: PipelineConfig
): Effect.Effect<
  PipelineShape,
  WorkingDir.WorkingDirError | WorkingDir.InvalidPipelineName | InvalidDatasetName,
  FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function* () {
    const pipelinesDir = yield* WorkingDir.resolvePipelinesDir(config.pipelinesDir)
    const baseDataset = config.dataset ?? `${config.name}_dataset`
    if (baseDataset.trim() === "" || baseDataset.includes("\u0000") || /[/\\]/.test(baseDataset)) {
      return yield* new InvalidDatasetName({
        dataset: baseDataset,
        reason: "must be non-empty, without path separators or NUL"
      })
    }
    const devMode = config.devMode ?? false
    const dataset = devMode ? `${baseDataset}_${timestampSuffix(new Date())}` : baseDataset
    const workingDir = yield* WorkingDir.make({ pipelinesDir, pipelineName: config.name })
    return {
      config: {
        name: config.name,
        dataset,
        pipelinesDir,
        restoreFromDestination: devMode ? false : (config.restoreFromDestination ?? true),
        devMode,
        concurrency: positive(config.concurrency, 4),
        batchSize: positive(config.batchSize, 5_000),
        keepStateVersions: positive(config.keepStateVersions, 100),
        stateSizeWarningBytes: positive(config.stateSizeWarningBytes, 1024 * 1024)
      },
      workingDir
    }
  })

/**
 * The pipeline as a layer (file system access included).
 *
 * @since 0.1.0
 */
export const layer = (
  config: PipelineConfig
): Layer.Layer<Pipeline, WorkingDir.WorkingDirError | WorkingDir.InvalidPipelineName | InvalidDatasetName> =>
  Layer.effect(Pipeline, make(config)).pipe(Layer.provide(NodeContext.layer))

interface ResourcePlan {
  readonly resource: Resource<unknown, unknown>
  readonly table: string
}

const plan = (
  sourceName: string,
  resources: ReadonlyArray<Resource<unknown, unknown>>
): Either.Either<ReadonlyArray<ResourcePlan>, InvalidSource> => {
  const names = new Set<string>()
  const tables = new Map<string, Resource<unknown, unknown>>()
  const plans: Array<ResourcePlan> = []
  for (const resource of resources) {
    if (resource.name.trim() === "") {
      return Either.left(new InvalidSource({ source: sourceName, reason: "a resource has an empty name" }))
    }
    if (names.has(resource.name)) {
      return Either.left(
        new InvalidSource({ source: sourceName, reason: `two resources are named ${JSON.stringify(resource.name)}` })
      )
    }
    names.add(resource.name)
    const table = normalizeIdentifier(resource.tableName)
    if (table.startsWith("_dlt")) {
      return Either.left(
        new InvalidSource({
          source: sourceName,
          reason: `resource ${resource.name}: table ${table} is reserved (_dlt*)`
        })
      )
    }
    const other = tables.get(table)
    if (other !== undefined && other.writeDisposition !== resource.writeDisposition) {
      return Either.left(
        new InvalidSource({
          source: sourceName,
          reason: `resources ${other.name} and ${resource.name} both write table ${table} with different write dispositions`
        })
      )
    }
    tables.set(table, resource)
    plans.push({ resource, table })
  }
  return Either.right(plans)
}

const largestSlots = (state: PipelineState.PipelineState): ReadonlyArray<readonly [string, number]> => {
  const sizes: Array<readonly [string, number]> = []
  for (const [source, slot] of Object.entries(state.sources)) {
    const { resources, ...own } = slot
    sizes.push([sourcePath(source), Either.getOrElse(StateValue.stringify(own), () => "").length])
    if (typeof resources === "object" && resources !== null && !Array.isArray(resources)) {
      for (const [resource, value] of Object.entries(resources)) {
        sizes.push([
          `${sourcePath(source)}.resources.${resource}`,
          Either.getOrElse(StateValue.stringify(value), () => "").length
        ])
      }
    }
  }
  return sizes.sort((a, b) => b[1] - a[1]).slice(0, 3)
}

/**
 * Runs a source: every resource's stream is extracted (concurrently, up to `concurrency`), its
 * records normalized and staged; then rows and state commit in one transaction, and the new state
 * is written to the working dir.
 *
 * @since 0.1.0
 */
export const run = <E, R>(source: Source<E, R>) =>
  Effect.gen(function* () {
    const pipeline = yield* Pipeline
    const destination = yield* Destination
    const progress = Option.getOrElse(yield* Effect.serviceOption(Progress.Progress), () => Progress.silent)
    return yield* runWith(pipeline, destination, progress, source)
  })

const runWith = <E, R>(
  pipeline: PipelineShape,
  destination: DestinationShape,
  progress: Progress.ProgressShape,
  source: Source<E, R>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, workingDir } = pipeline
      yield* workingDir.lock
      yield* progress.phase(config.name, "restore")
      const target: DatasetTarget = { dataset: config.dataset, pipelineDir: workingDir.dir }
      const opened = yield* StateSync.open(workingDir, destination, {
        pipelineName: config.name,
        target,
        restoreFromDestination: config.restoreFromDestination,
        ignoreLocal: config.devMode
      })
      const start = opened.state
      const firstRun = start._local.first_run
      const draft = yield* Ref.make(start)
      const context = PipelineContext.layer({
        pipelineName: config.name,
        datasetName: config.dataset,
        destinationName: destination.name,
        firstRun,
        workingDir: workingDir.dir,
        dataset: destination.dataset(target)
      })

      const resources = yield* source.setup.pipe(
        Effect.provide(Layer.merge(SourceState.layer(draft, source.name, { readOnly: true }), context))
      )
      const plans = yield* plan(source.name, resources as ReadonlyArray<Resource<unknown, unknown>>)

      // a `replace` resource starts from an empty state slot every run, as its table does
      yield* Ref.update(draft, (state) =>
        plans
          .filter((p) => p.resource.writeDisposition === "replace")
          .reduce((s, p) => removeResource(s, source.name, p.resource.name), state)
      )

      const existing = yield* destination.describeTables(
        target,
        plans.map((p) => p.table)
      )
      const loadId = nextLoadId(opened.newestLoadId)
      const spoolDir = yield* workingDir.makeSpool(loadId)
      const job = yield* destination.openLoad(target, spoolDir)

      const normalizers = new Map<string, TableNormalizer>()
      for (const { resource, table } of plans) {
        if (!normalizers.has(table)) {
          normalizers.set(
            table,
            new TableNormalizer({
              name: table,
              writeDisposition: resource.writeDisposition,
              primaryKey: resource.primaryKey,
              existing: existing.get(table) ?? []
            })
          )
        }
      }

      yield* progress.phase(config.name, "extract")
      const extract = ({ resource, table }: ResourcePlan) => {
        const normalizer = normalizers.get(table)!
        let extracted = 0
        const services = Layer.mergeAll(
          ResourceState.layer(draft, source.name, resource.name),
          SourceState.layer(draft, source.name),
          context
        )
        return (resource.stream as Stream.Stream<unknown, E, R | ResourceServices>).pipe(
          Stream.rechunk(config.batchSize),
          Stream.provideSomeLayer(services),
          Stream.runForEachChunk((chunk) =>
            Effect.flatMap(normalizer.normalize(chunk, loadId, uniqueId), (batch) => {
              extracted += batch.rows.length
              return Effect.zipRight(job.write(normalizer.schema(), batch), progress.rows(resource.name, extracted))
            })
          ),
          Effect.zipRight(Effect.suspend(() => progress.resourceDone(resource.name, extracted)))
        )
      }
      yield* Effect.forEach(plans, extract, { concurrency: config.concurrency, discard: true })

      // the new state: metadata, hash and version (dlt's bump rule)
      const extracted = yield* Ref.get(draft)
      const next = yield* PipelineState.bumpVersion({
        ...extracted,
        pipeline_name: config.name,
        dataset_name: config.dataset,
        default_schema_name: extracted.default_schema_name ?? source.name,
        schema_names: [...new Set([...(extracted.schema_names ?? []), source.name])],
        destination_type: destination.type,
        destination_name: destination.name
      })
      const nextHash = next._version_hash ?? ""
      const committedHash =
        opened.expected._tag === "Newest"
          ? Option.getOrNull(Option.map(opened.expected.newest, (n) => n.hash))
          : firstRun
            ? null
            : (start._version_hash ?? null)
      const stateChanged = nextHash !== committedHash

      const tables = [...normalizers.values()]
      const loaded = tables.filter((t) => t.rows > 0 || t.writeDisposition === "replace")
      const commit = loaded.length > 0 || stateChanged
      if (commit) {
        yield* progress.phase(config.name, "commit")
        const blob = yield* StateBlob.encode(next)
        if (blob.length > config.stateSizeWarningBytes) {
          const slots = largestSlots(next)
            .map(([path, size]) => `${path} (${size} bytes)`)
            .join(", ")
          yield* Effect.logWarning(
            `pipeline ${config.name}: the encoded state is ${blob.length} bytes, past ${config.stateSizeWarningBytes}; largest slots: ${slots}. Keep large per-record data in the destination (PipelineContext.dataset), not in state.`
          )
        }
        yield* job.commit({
          loadId,
          schemaName: source.name,
          pipelineName: config.name,
          tables: loaded.map((t): TableSchema => t.schema()),
          state: stateChanged
            ? Option.some({
                version: next._state_version,
                engineVersion: next._state_engine_version,
                pipelineName: config.name,
                state: blob,
                versionHash: nextHash,
                createdAt: new Date()
              })
            : Option.none(),
          expected: opened.expected,
          dropTables: [],
          keepStateVersions: config.keepStateVersions
        })
      }
      const committedFirstRun = commit ? false : firstRun
      yield* workingDir.writeState({
        ...next,
        _local: { ...next._local, first_run: committedFirstRun, _last_extracted_at: new Date() }
      })
      yield* progress.phase(config.name, "done")
      const summary: LoadSummary = {
        pipelineName: config.name,
        dataset: config.dataset,
        destination: destination.name,
        loadId: commit ? loadId : null,
        firstRun,
        origin: opened.origin,
        tables: Object.fromEntries(tables.map((t) => [t.name, t.rows])),
        stateVersionBefore: start._state_version,
        stateVersionAfter: next._state_version,
        stateHashAfter: nextHash,
        stateChanged
      }
      return summary
    })
  )

/**
 * The state a pipeline would start from now (local, or restored per the sync rules), without running.
 *
 * @since 0.1.0
 */
export const currentState = Effect.gen(function* () {
  const pipeline = yield* Pipeline
  const destination = yield* Destination
  return yield* Effect.scoped(
    Effect.gen(function* () {
      yield* pipeline.workingDir.lock
      const opened = yield* StateSync.open(pipeline.workingDir, destination, {
        pipelineName: pipeline.config.name,
        target: { dataset: pipeline.config.dataset, pipelineDir: pipeline.workingDir.dir },
        restoreFromDestination: pipeline.config.restoreFromDestination,
        ignoreLocal: pipeline.config.devMode
      })
      return opened.state
    })
  )
})

/**
 * Drops the local state and restores it from the destination (`pipestate pipeline <name> sync`).
 *
 * @since 0.1.0
 */
export const sync = Effect.gen(function* () {
  const pipeline = yield* Pipeline
  const destination = yield* Destination
  return yield* Effect.scoped(
    Effect.gen(function* () {
      yield* pipeline.workingDir.lock
      return yield* StateSync.sync(pipeline.workingDir, destination, {
        pipelineName: pipeline.config.name,
        target: { dataset: pipeline.config.dataset, pipelineDir: pipeline.workingDir.dir }
      })
    })
  )
})
