/**
 * The pipeline: one run is restore → extract → normalize → load + commit (ONE destination
 * transaction with the rows and the new state) → persist the state locally, all through one
 * `Session` (the door every state change goes through). A run that fails at any step leaves the
 * committed state, local and in the destination, exactly as it was. With the `checkpoint` option a
 * run commits as it goes, each checkpoint through the same door; a run that fails then leaves the
 * state of its last checkpoint (see `Checkpoint`).
 *
 * @example
 * ```ts
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Destination, Pipeline } from "effect-pipestate"
 *
 * const summary = await Effect.runPromise(
 *   Pipeline.run(chess).pipe(
 *     Effect.provide(Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" })),
 *     Effect.provide(Destination.sqlite()),
 *     Effect.provide(NodeContext.layer)
 *   )
 * )
 * console.log(summary.tables, summary.stateVersionAfter)
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Effect, Either, Layer, Option, Ref, Schema, Stream } from "effect"
import * as PipelineContext from "../context/PipelineContext.js"
import * as ResourceState from "../context/ResourceState.js"
import { removeResource } from "../internal/context/Slots.js"
import * as SourceState from "../context/SourceState.js"
import * as Dataset from "../dataset/Dataset.js"
import { Destination } from "../destination/Destination.js"
import * as Checkpoint from "../internal/pipeline/Checkpoint.js"
import type * as PipelineState from "../internal/state/PipelineState.js"
import { normalizeIdentifier, TableNormalizer, validateResource } from "../internal/pipeline/Normalize.js"
import { Pipeline } from "./PipelineConfig.js"
import { GroupRun } from "../internal/pipeline/GroupRun.js"
import * as Progress from "./Progress.js"
import type { Resource, ResourceServices } from "./Resource.js"
import * as StoredSchema from "../internal/schema/StoredSchema.js"
import * as Schemas from "../internal/pipeline/Schemas.js"
import * as Session from "../internal/pipeline/Session.js"
import type { Source } from "./Source.js"
import * as StateSync from "../internal/pipeline/StateSync.js"

export {
  type ConfigError,
  defaults,
  InvalidDatasetName,
  layer,
  layerNode,
  make,
  Pipeline,
  type PipelineConfig,
  type PipelineShape,
  type ResolvedConfig
} from "./PipelineConfig.js"

/**
 * The source's definition is unusable (duplicate resource names, two resources writing one table
 * with different dispositions or different primary keys).
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
  /** runs with checkpoints: the run's id (the load id of its first load), shared by its loads */
  readonly runId?: string
  /** runs with checkpoints: the checkpoints committed before the final commit */
  readonly checkpoints?: ReadonlyArray<Checkpoint.CheckpointSummary>
}

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
    // dlt's tables, and pipestate's own (_pipestate_loads, _pipestate_holds, hold tables, ...)
    if (table.startsWith("_dlt") || table.startsWith("_pipestate")) {
      return Either.left(
        new InvalidSource({
          source: sourceName,
          reason: `resource ${resource.name}: table ${table} is reserved (_dlt* belongs to dlt, _pipestate* to pipestate); give the resource another tableName`
        })
      )
    }
    const keys = validateResource(sourceName, resource)
    if (Either.isLeft(keys)) {
      return Either.left(new InvalidSource({ source: sourceName, reason: keys.left.message }))
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
    if (other !== undefined && JSON.stringify(other.primaryKey) !== JSON.stringify(resource.primaryKey)) {
      const keyText = (key: ReadonlyArray<string>) => (key.length === 0 ? "none" : JSON.stringify(key))
      return Either.left(
        new InvalidSource({
          source: sourceName,
          reason: `resources ${other.name} (primary key ${keyText(other.primaryKey)}) and ${resource.name} (primary key ${keyText(resource.primaryKey)}) both write table ${table} with different primary keys; a table has one key: give both resources the same primaryKey, or write separate tables (tableName)`
        })
      )
    }
    tables.set(table, resource)
    plans.push({ resource, table })
  }
  return Either.right(plans)
}

/**
 * A resource that has not written a table before may join its writers only when it agrees with the
 * table's stored write disposition and (for `merge`) primary key: a `replace` by it would drop the
 * other writers' rows, a `merge` on another key would delete or overwrite them. The rule of one run
 * (plan) across runs, through the stored schema's record of the table's writers.
 */
const joinsTable = (
  sourceName: string,
  dropCommand: (resources: ReadonlyArray<string>) => string,
  schema: StoredSchema.StoredSchema,
  table: StoredSchema.Table,
  resources: ReadonlyArray<Resource<unknown, unknown>>
): InvalidSource | undefined => {
  const writers = StoredSchema.writersOf(schema, table).filter((w) => w !== "")
  if (writers.length === 0) return undefined
  const disposition = table.write_disposition ?? "append"
  const key = Object.values(table.columns)
    .filter((c) => c.primary_key === true)
    .map((c) => c.name)
    .sort()
  for (const resource of resources) {
    if (writers.includes(resource.name)) continue
    const ownKey = resource.primaryKey.map(normalizeIdentifier).sort()
    const keyDiffers =
      (disposition === "merge" || resource.writeDisposition === "merge") &&
      (ownKey.length !== key.length || ownKey.some((k, i) => k !== key[i]))
    if (resource.writeDisposition === disposition && !keyDiffers) continue
    const show = (k: ReadonlyArray<string>) => (k.length === 0 ? "none" : JSON.stringify(k))
    return new InvalidSource({
      source: sourceName,
      reason: `resource ${resource.name} would write table ${table.name} (${resource.writeDisposition}, primary key ${show(ownKey)}), which ${writers.join(", ")} loaded before (${disposition}, primary key ${show(key)}); a table's writers agree on both, or one would drop or overwrite the other's rows: give resource ${resource.name} its own tableName, or drop the table with its writers first (${dropCommand(writers)})`
    })
  }
  return undefined
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
    const progress = Option.getOrElse(yield* Effect.serviceOption(Progress.Progress), () => Progress.silent)
    const { config } = yield* Pipeline
    const destination = yield* Destination
    return yield* Effect.scoped(runIn(progress, source)).pipe(
      Effect.tap((summary) =>
        Effect.annotateCurrentSpan({
          "pipestate.load_id": summary.loadId,
          "pipestate.rows": Object.values(summary.tables).reduce((a, b) => a + b, 0),
          "pipestate.state_version": summary.stateVersionAfter,
          "pipestate.origin": summary.origin
        })
      ),
      Effect.withSpan("pipestate.run", {
        attributes: {
          "pipestate.pipeline": config.name,
          "pipestate.dataset": config.dataset,
          "pipestate.destination": destination.name,
          "pipestate.source": source.name
        }
      })
    )
  })

const runIn = <E, R>(progress: Progress.ProgressShape, source: Source<E, R>) =>
  Effect.gen(function* () {
    yield* progress.phase((yield* Pipeline).config.name, "restore")
    const session = yield* Session.open()
    const { config, destination, datasetTarget } = session
    if (Option.isSome(session.decision.foreignTarget)) {
      yield* Effect.logWarning(
        `pipeline ${config.name}: the local state belongs to ${session.decision.foreignTarget.value}, not to ${StateSync.describeTarget(session.target)}; ${
          session.decision.origin === "target-changed-destination"
            ? "this run starts from the state in its own destination"
            : "this run starts from an empty state"
        }`
      )
    }
    const start = session.state
    const firstRun = start._local.first_run
    const draft = yield* Ref.make(start)
    const context = PipelineContext.layer({
      pipelineName: config.name,
      datasetName: config.dataset,
      destinationName: destination.name,
      firstRun,
      workingDir: session.workingDir.dir,
      dataset: Dataset.open(destination, datasetTarget)
    })

    // errors of typed state keys name the command that resets the key, as a shell reads it
    // with the flags that find this pipeline's working dir, destination and dataset from a shell
    const repair = (...args: ReadonlyArray<string>) =>
      [
        ...["pipestate", "pipeline", config.name, "drop", ...args].map(Session.shellQuote),
        ...session.locationFlags,
        "--yes"
      ].join(" ")
    const sourceKeyReset = (key: string) =>
      repair(
        "--state-paths",
        /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `['${key.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}']`
      )
    const resources = yield* source.setup.pipe(
      Effect.provide(
        Layer.merge(SourceState.layer(draft, source.name, { readOnly: true, resetCommand: sourceKeyReset }), context)
      )
    )
    const plans = yield* plan(source.name, resources as ReadonlyArray<Resource<unknown, unknown>>)

    // a `replace` resource starts from an empty state slot every run, as its table does
    yield* Ref.update(draft, (state) =>
      plans
        .filter((p) => p.resource.writeDisposition === "replace")
        .reduce((s, p) => removeResource(s, source.name, p.resource.name), state)
    )

    // what the destination knows of the tables (their columns, and the source's stored schema: the
    // field → column map, types and keys of the tables loaded before), read once, when a table
    // first needs its normalizer: a run that loads no rows reads neither
    const tableInfo = yield* Effect.cached(
      Effect.all({
        existing: destination.describeTables(
          datasetTarget,
          plans.map((p) => p.table)
        ),
        stored: Schemas.newest(destination, datasetTarget, source.name)
      })
    )
    // a state restored from the destination brings its schema along into the working dir
    if (session.decision.from === "remote") {
      const { stored } = yield* tableInfo
      if (Option.isSome(stored)) {
        yield* session.workingDir.writeSchema(stored.value.name, StoredSchema.toText(stored.value))
      }
    }
    const loadId = yield* session.newLoadId

    // one normalizer per table, made as the first plan that writes the table says
    const normalizers = new Map<string, TableNormalizer>()
    const normalizerOf = (table: string) =>
      Effect.suspend(() => {
        const known = normalizers.get(table)
        if (known !== undefined) return Effect.succeed(known)
        return Effect.flatMap(tableInfo, ({ existing, stored }) => {
          // another resource of the table may have made it meanwhile
          const made = normalizers.get(table)
          if (made !== undefined) return Effect.succeed(made)
          const { resource } = plans.find((p) => p.table === table)!
          const storedTable = Option.flatMap(stored, (schema) =>
            Option.map(Option.fromNullable(schema.tables[table]), (t) => ({ schema, table: t }))
          )
          if (Option.isSome(storedTable)) {
            const refused = joinsTable(
              source.name,
              (writers) => repair(...writers),
              storedTable.value.schema,
              storedTable.value.table,
              plans.filter((p) => p.table === table).map((p) => p.resource)
            )
            if (refused !== undefined) return Effect.fail(refused)
          }
          const normalizer = new TableNormalizer({
            name: table,
            writeDisposition: resource.writeDisposition,
            primaryKey: resource.primaryKey,
            existing: existing.get(table) ?? [],
            resource: resource.name,
            resources: plans.filter((p) => p.table === table).map((p) => p.resource.name),
            ...Option.match(
              Option.flatMap(stored, (schema) => Option.fromNullable(schema.tables[table])),
              {
                onNone: () => ({}),
                onSome: (table) => ({ stored: table })
              }
            )
          })
          normalizers.set(table, normalizer)
          return Effect.succeed(normalizer)
        })
      })
    const allNormalizers = (which: ReadonlyArray<ResourcePlan>) =>
      Effect.forEach(which, (p) => normalizerOf(p.table), { discard: true })

    yield* progress.phase(config.name, "extract")
    const servicesOf = (resource: Resource<unknown, unknown>) =>
      Layer.mergeAll(
        ResourceState.layer(draft, source.name, resource.name, {
          resetCommand: () => repair(resource.name, "--state-only")
        }),
        SourceState.layer(draft, source.name, { resetCommand: sourceKeyReset }),
        context
      )
    const summaryOf = (
      committed: Pick<Session.Committed, "state" | "stateChanged">,
      loadId: string | null,
      run: Partial<LoadSummary>
    ) =>
      ({
        pipelineName: config.name,
        dataset: config.dataset,
        destination: destination.name,
        loadId,
        firstRun,
        origin: session.decision.origin,
        tables: Object.fromEntries(plans.map((p) => [p.table, normalizers.get(p.table)?.rows ?? 0])),
        stateVersionBefore: start._state_version,
        stateVersionAfter: committed.state._state_version,
        stateHashAfter: committed.state._version_hash ?? "",
        stateChanged: committed.stateChanged,
        ...run
      }) satisfies LoadSummary

    // an orchestrated group commits once, with its group-run record (its checkpoints would commit
    // loads the record does not cover, so a group runs without them)
    const groupRun = yield* Effect.serviceOption(GroupRun)
    // with checkpoints, the run commits as it goes (see Checkpoint for the invariant)
    if (
      Option.isNone(groupRun) &&
      (Checkpoint.isEnabled(config.checkpoint) || plans.some((p) => Checkpoint.isEnabled(p.resource.checkpoint)))
    ) {
      yield* allNormalizers(plans)
      const outcome = yield* Checkpoint.run({
        session,
        progress,
        sourceName: source.name,
        plans,
        normalizers,
        draft,
        services: servicesOf,
        checkpoint: config.checkpoint,
        firstLoadId: loadId,
        concurrency: config.concurrency,
        batchSize: config.batchSize,
        stream: (resource) => resource.stream as Stream.Stream<unknown, E, R | ResourceServices>
      })
      yield* progress.phase(config.name, "done")
      return summaryOf(outcome.committed, outcome.lastLoadId, {
        runId: outcome.runId,
        checkpoints: outcome.checkpoints,
        // a run whose final commit had nothing left still changed the state with its checkpoints
        stateChanged: outcome.committed.stateChanged || outcome.checkpoints.length > 0
      })
    }

    const spoolDir = yield* session.workingDir.makeSpool(loadId)
    const stage = yield* destination.stage(datasetTarget, spoolDir)
    const extract = ({ resource, table }: ResourcePlan) => {
      let extracted = 0
      const services = servicesOf(resource)
      return (resource.stream as Stream.Stream<unknown, E, R | ResourceServices>).pipe(
        Stream.rechunk(config.batchSize),
        Stream.provideSomeLayer(services),
        Stream.runForEachChunk((chunk) =>
          Effect.flatMap(normalizerOf(table), (normalizer) =>
            Effect.flatMap(
              normalizer.normalize(chunk, loadId, session.rowId, { resource: resource.name, offset: extracted }),
              (batch) => {
                extracted += batch.rows.length
                return Effect.zipRight(stage.write(normalizer.schema(), batch), progress.rows(resource.name, extracted))
              }
            )
          ).pipe(
            Effect.withSpan("pipestate.normalize", {
              attributes: { "pipestate.resource": resource.name, "pipestate.rows": chunk.length }
            })
          )
        ),
        Effect.zipRight(Effect.suspend(() => progress.resourceDone(resource.name, extracted))),
        Effect.tap(() => Effect.annotateCurrentSpan("pipestate.rows", extracted)),
        Effect.withSpan("pipestate.extract", {
          attributes: { "pipestate.resource": resource.name, "pipestate.table": table }
        })
      )
    }
    yield* Effect.forEach(plans, extract, { concurrency: config.concurrency, discard: true })
    // `replace` tables are emptied even when their resource yielded nothing
    yield* allNormalizers(plans.filter((p) => p.resource.writeDisposition === "replace"))

    // in the plans' order (the stored schema lists new tables in it), whichever chunk came first
    const tables = [...new Set(plans.map((p) => p.table))].flatMap((table) => {
      const normalizer = normalizers.get(table)
      return normalizer === undefined ? [] : [normalizer]
    })
    const loaded = tables.filter((t) => t.rows > 0 || t.writeDisposition === "replace")
    yield* progress.phase(config.name, "commit")
    const committed = yield* session.commit({
      draft: yield* Ref.get(draft),
      schemaName: source.name,
      loadId,
      stage,
      tables: loaded.map((t) => t.schema()),
      extractedAt: new Date(yield* Clock.currentTimeMillis),
      resets: plans
        .filter((p) => p.resource.writeDisposition === "replace")
        .map((p) => ({ source: source.name, resource: p.resource.name })),
      schemas: [{ name: source.name, tables: loaded.map((t) => t.storedTable()), dropTables: [] }],
      ...Option.match(groupRun, {
        onNone: () => ({}),
        onSome: (g) => ({
          groupRun: {
            runId: g.runId,
            group: g.group,
            summary: (c: { readonly loadId: string; readonly state: PipelineState.PipelineState; readonly stateChanged: boolean }) =>
              g.encode(summaryOf(c, c.loadId, {}))
          }
        })
      })
    })
    yield* progress.phase(config.name, "done")
    return summaryOf(committed, committed.loadId, {})
  })

/**
 * The state a pipeline would start from now (local, or restored per the sync rules), without
 * running and without writing anything.
 *
 * @since 0.1.0
 */
export const currentState: Effect.Effect<PipelineState.PipelineState, Session.OpenError, Pipeline | Destination> =
  Effect.scoped(Effect.map(Session.open(), (session) => session.state))

/**
 * The pipeline's dataset, to read the loaded data back (dlt's `pipeline.dataset()`): the configured
 * dataset in the destination, typed by the stored schemas it holds now. See `Dataset`.
 *
 * @example
 * ```ts
 * const rows = yield* Effect.flatMap(Pipeline.dataset, (dataset) =>
 *   dataset.query`SELECT * FROM ${dataset.table("players")} WHERE rating > ${2000}`
 * )
 * ```
 *
 * @since 0.2.0
 */
export const dataset: Effect.Effect<Dataset.Dataset, Dataset.OpenError, Pipeline | Destination> = Effect.gen(
  function* () {
    const { config, workingDir } = yield* Pipeline
    const destination = yield* Destination
    return yield* Dataset.open(destination, { dataset: config.dataset, pipelineDir: workingDir.datasetDir })
  }
)

/**
 * The destination holds no state for the pipeline, so there is nothing to restore from.
 *
 * @since 0.1.0
 */
export const NoStateInDestination = Session.NoStateInDestination

/**
 * @since 0.1.0
 */
export type NoStateInDestination = Session.NoStateInDestination

/**
 * What `sync` restored.
 *
 * @since 0.1.0
 */
export interface Synced {
  readonly version: number
  readonly versionHash: string | null
  readonly loadId: string
}

/**
 * Replaces the local state with the destination's newest (dlt's `pipeline sync`). When the
 * destination holds no state of the pipeline it fails with {@link NoStateInDestination} and leaves
 * the local state as it was.
 *
 * @since 0.1.0
 */
export const sync: Effect.Effect<
  Synced,
  Session.OpenError | NoStateInDestination | StoredSchema.InvalidStoredSchema,
  Pipeline | Destination
> = Effect.scoped(
  Effect.gen(function* () {
    const session = yield* Session.open({ restore: true, ignoreCorruptLocal: true })
    const remote = yield* session.remoteState
    if (Option.isNone(remote) || Option.isNone(session.remote)) {
      return yield* new Session.NoStateInDestination({
        pipelineName: session.config.name,
        dataset: session.config.dataset,
        location: session.destination.location(session.datasetTarget)
      })
    }
    yield* session.persist(remote.value)
    // the stored schemas come back with the state
    const names = [...new Set([...(remote.value.schema_names ?? []), ...Object.keys(remote.value.sources)])]
    for (const name of names) {
      const schema = yield* Schemas.newest(session.destination, session.datasetTarget, name)
      if (Option.isSome(schema)) {
        yield* session.workingDir.writeSchema(name, StoredSchema.toText(schema.value))
      }
    }
    return {
      version: session.remote.value.version,
      versionHash: session.remote.value.versionHash,
      loadId: session.remote.value.loadId
    }
  })
)
