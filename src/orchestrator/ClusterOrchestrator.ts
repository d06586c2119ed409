/**
 * The cluster orchestrator: each group of a run is a durable workflow of @effect/workflow on a
 * cluster of runner processes (@effect/cluster), which share one PostgreSQL for the cluster's
 * message and runner storage (in a schema of its own, beside the datasets). A driver submits a run
 * (a run id + the groups) and awaits the groups' results.
 *
 * - Exactly once per group: the workflow's execution id is `(pipeline, run id, group)`, so a
 *   rerun of a finished run id returns the stored results; and the group's one activity loads
 *   through `Orchestrator.runGroup`, which records the group in the destination in the same
 *   transaction as its rows and state, so an activity re-executed after a crash finds the record
 *   and returns it without loading again.
 * - A runner killed in the middle of a group: its shards (and the group's workflow) move to a
 *   surviving runner once its shard locks expire (`shardLockExpiration`); the group's uncommitted
 *   load left nothing behind, and it loads again there.
 *
 * Every runner and the driver run the same code: the same {@link Orchestrator.Job} (the groups are
 * looked up by name on the runner).
 *
 * @example
 * ```ts
 * // a runner (one per machine or process): serves the groups until stopped
 * const runner = ClusterOrchestrator.layerRunner(job, { runner: "10.0.0.5:34431" }).pipe(
 *   Layer.provide(ClusterOrchestrator.layerCluster({ url, runnerAddress: { host: "10.0.0.5", port: 34431 } })),
 *   Layer.provide(Destination.postgres({ url })),
 *   Layer.provide(NodeContext.layer)
 * )
 * Layer.launch(runner).pipe(NodeRuntime.runMain)
 *
 * // the driver: submits the run and awaits the results
 * const results = yield* Orchestrator.run({ runId: "2026-11-29" }).pipe(
 *   Effect.provide(ClusterOrchestrator.layer(job)),
 *   Effect.provide(ClusterOrchestrator.layerCluster({ url }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Activity from "@effect/workflow/Activity"
import * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import { Context, Duration, Effect, Layer, Option, Redacted, Schedule, Schema } from "effect"
import type { Destination } from "../destination/Destination.js"
import {
  GroupFailed,
  GroupResult,
  groupNames,
  type Job,
  Orchestrator,
  type RunRequest,
  runGroup
} from "./Orchestrator.js"

/**
 * The workflow of one group of a pipeline's runs; its execution id is derived from
 * `(run id, group)`.
 *
 * @since 0.1.0
 */
export const groupWorkflow = (pipelineName: string) =>
  Workflow.make({
    name: `pipestate/${pipelineName}/group`,
    payload: { runId: Schema.String, group: Schema.String },
    success: GroupResult,
    error: GroupFailed,
    idempotencyKey: ({ group, runId }) => JSON.stringify([runId, group])
  })

/**
 * A runner's share of the work: registers the group workflow of `job`, whose one activity runs the
 * group here (`Orchestrator.runGroup`) and is labelled with `runner` in the results. Needs the
 * cluster (see {@link layerCluster} with a `runnerAddress`), the destination, and what the
 * groups' sources need.
 *
 * @since 0.1.0
 */
export const layerRunner = <E, R>(
  job: Job<E, R>,
  options: { readonly runner: string }
): Layer.Layer<never, never, WorkflowEngine | R | Destination | FileSystem.FileSystem | Path.Path> =>
  groupWorkflow(job.pipeline.name).toLayer(({ group, runId }) =>
    Activity.make({
      name: `load ${group}`,
      success: GroupResult,
      error: GroupFailed,
      execute: runGroup(job, runId, group, options.runner)
    })
  )

/**
 * The cluster orchestrator (the driver's side): every group of a run is submitted as a workflow
 * at once, and their results are awaited. Needs a cluster client ({@link layerCluster} without
 * `runnerAddress`, or a runner's own).
 *
 * @since 0.1.0
 */
export const layer = <E, R>(job: Job<E, R>): Layer.Layer<Orchestrator, never, WorkflowEngine> =>
  Layer.effect(
    Orchestrator,
    Effect.map(Effect.context<WorkflowEngine>(), (context) => {
      const workflow = groupWorkflow(job.pipeline.name)
      return {
        run: (request: RunRequest) =>
          Effect.forEach(groupNames(job, request), (group) => workflow.execute({ runId: request.runId, group }), {
            concurrency: "unbounded"
          }).pipe(
            Effect.provide(context),
            Effect.withSpan("pipestate.orchestrate", { attributes: { "pipestate.run_id": request.runId } })
          )
      }
    })
  )

/**
 * @since 0.1.0
 */
export interface ClusterOptions {
  /** the PostgreSQL holding the cluster's storage (every runner and the driver use the same) */
  readonly url: Redacted.Redacted<string> | string
  /**
   * the schema of the cluster's tables, shard locks included (created when missing; default
   * `pipestate_cluster`): one schema per cluster, several clusters can share a database
   */
  readonly schema?: string
  /** this runner's address, as the other runners reach it (it listens there); none: a client (driver) */
  readonly runnerAddress?: { readonly host: string; readonly port: number }
  /**
   * after how long a dead runner's shards go to the others (default 10 s; the cluster's own
   * default is 35 s)
   */
  readonly shardLockExpiration?: Duration.DurationInput
  /** any other setting of @effect/cluster's `ShardingConfig` */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]>
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * The cluster a runner or a driver joins: @effect/cluster over sockets, its storage in PostgreSQL,
 * and the workflow engine on top. Dies at build with a message when the schema name is not a
 * plain lower-case identifier.
 *
 * @since 0.1.0
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<WorkflowEngine> => {
  const schema = options.schema ?? "pipestate_cluster"
  if (!SCHEMA_NAME.test(schema)) {
    return Layer.die(
      new Error(`cluster schema ${JSON.stringify(schema)}: use a lower-case identifier ([a-z_][a-z0-9_]*)`)
    )
  }
  const url = typeof options.url === "string" ? options.url : Redacted.value(options.url)
  const withSchema = `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`
  const sql = PgClient.layer({ url: Redacted.make(withSchema), applicationName: "pipestate-cluster" }).pipe(
    Layer.tap((context) => {
      const client = Context.get(context, PgClient.PgClient)
      // two runners starting at once may race on creating it: the loser sees it on its next try
      return client`CREATE SCHEMA IF NOT EXISTS ${client(schema)}`.pipe(
        Effect.retry({ times: 2, schedule: Schedule.spaced("200 millis") }),
        Effect.asVoid,
        Effect.orDie
      )
    }),
    Layer.orDie
  )
  const runnerAddress = Option.map(Option.fromNullable(options.runnerAddress), (a) =>
    RunnerAddress.make(a.host, a.port)
  )
  const sharding = NodeClusterSocket.layer({
    clientOnly: Option.isNone(runnerAddress),
    storage: "sql",
    shardingConfig: {
      runnerAddress,
      shardLockExpiration: options.shardLockExpiration ?? Duration.seconds(10),
      // shard locks as rows of the cluster's schema, not PostgreSQL advisory locks (numbered per
      // database, so two clusters in one database would take each other's): a schema per cluster
      shardLockDisableAdvisory: true,
      // a message a client stored is picked up by the runner's poll (the cluster's default: every 10 s)
      entityMessagePollInterval: Duration.millis(500),
      ...options.shardingConfig
    }
  })
  return ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(sharding),
    Layer.provide(sql),
    Layer.orDie
  ) as Layer.Layer<WorkflowEngine>
}
