/**
 * A runner process: joins the cluster (storage in PostgreSQL, schema `--schema`), listens on
 * `--host`:`--port` for the other runners, and runs the groups the cluster assigns to it.
 *
 *   node --import tsx examples/distributed/runner.ts --port=34431 [--host=127.0.0.1] [--url=postgres://...]
 *     [--schema=pipestate_cluster] [--dataset=shop_distributed] [--dir=<pipelines dir>] [--resources=8] [--rows=10000]
 *
 * Prints `RUNNER READY <host:port>` once it joined, and `EXTRACT <group> <host:port>` when it starts a group.
 */
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Redacted } from "effect"
import * as Postgres from "../../src/destination/postgres.js"
import * as ClusterOrchestrator from "../../src/orchestrator/ClusterOrchestrator.js"
import { DEFAULT_URL, parseArgs, say } from "./args.js"
import { makeJob } from "./job.js"

const args = parseArgs(process.argv.slice(2))
const host = args.get("host") ?? "127.0.0.1"
const port = Number(args.get("port") ?? "34431")
const url = args.get("url") ?? DEFAULT_URL
const runner = `${host}:${port}`

const job = makeJob({
  dataset: args.get("dataset") ?? "shop_distributed",
  pipelinesDir: args.get("dir") ?? NodePath.join(NodeOs.tmpdir(), `pipestate-runner-${port}`),
  resources: Number(args.get("resources") ?? "8"),
  rows: Number(args.get("rows") ?? "10000"),
  chunkSize: Number(args.get("chunk-size") ?? "5000"),
  chunkDelayMs: Number(args.get("chunk-delay-ms") ?? "0"),
  onExtract: (group) => say(`EXTRACT ${group} ${runner}`)
})

const shardLockExpirationMs = Number(args.get("lock-expiration-ms") ?? "10000")

const layer = ClusterOrchestrator.layerRunner(job, { runner }).pipe(
  Layer.provide(
    ClusterOrchestrator.layerCluster({
      url,
      schema: args.get("schema") ?? "pipestate_cluster",
      runnerAddress: { host, port },
      shardLockExpiration: shardLockExpirationMs
    })
  ),
  Layer.provide(Postgres.layer({ url: Redacted.make(url) })),
  Layer.provide(NodeContext.layer)
)

await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      yield* Layer.build(layer)
      say(`RUNNER READY ${runner}`)
      return yield* Effect.never
    })
  )
)
