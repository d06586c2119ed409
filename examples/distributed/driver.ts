/**
 * The driver: submits a run (a run id, every group of the job) to the cluster and prints each
 * group's result as it comes back, then `DONE`.
 *
 *   node --import tsx examples/distributed/driver.ts --run-id=run-1 [--url=...] [--schema=...] [--dataset=...]
 *     [--resources=8] [--rows=10000] [--timeout-s=300]
 *
 * Prints `RESULT <json>` per group (in group order) and `DONE <ms of the run> <ms since the process started>`; on a failed group, `FAILED <message>`
 * and exit code 1.
 */
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Cause, Duration, Effect, Exit } from "effect"
import * as ClusterOrchestrator from "../../src/orchestrator/ClusterOrchestrator.js"
import * as Orchestrator from "../../src/orchestrator/Orchestrator.js"
import { DEFAULT_URL, parseArgs, say } from "./args.js"
import { makeJob } from "./job.js"

const args = parseArgs(process.argv.slice(2))
const job = makeJob({
  dataset: args.get("dataset") ?? "shop_distributed",
  pipelinesDir: NodePath.join(NodeOs.tmpdir(), "pipestate-driver"),
  resources: Number(args.get("resources") ?? "8"),
  rows: Number(args.get("rows") ?? "10000")
})
const started = Date.now()
const timeout = Duration.seconds(Number(args.get("timeout-s") ?? "300"))

// timed from the submission of the run to the last result (the cluster client is up before)
const program = Effect.timed(Orchestrator.run({ runId: args.get("run-id") ?? "run-1" })).pipe(
  // guards against upstream stalls (Effect-TS/effect#8312): a run that takes longer fails
  Effect.timeoutFail({
    duration: timeout,
    onTimeout: () => new Error(`the run did not finish within ${Duration.format(timeout)}`)
  }),
  Effect.provide(ClusterOrchestrator.layer(job)),
  Effect.provide(
    ClusterOrchestrator.layerCluster({
      url: args.get("url") ?? DEFAULT_URL,
      schema: args.get("schema") ?? "pipestate_cluster"
    })
  )
)

const exit = await Effect.runPromiseExit(program)
if (Exit.isSuccess(exit)) {
  const [elapsed, results] = exit.value
  for (const result of results) say(`RESULT ${JSON.stringify(result)}`)
  say(`DONE ${Math.round(Duration.toMillis(elapsed))} ${Date.now() - started}`)
  process.exit(0)
}
say(`FAILED ${Cause.pretty(exit.cause).split("\n")[0]}`)
process.exit(1)
