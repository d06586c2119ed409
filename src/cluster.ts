/**
 * `pipestate/cluster`: the cluster orchestrator — the groups of a decomposed source as durable
 * workflows on runner processes (@effect/cluster + @effect/workflow), storage in PostgreSQL. Kept
 * out of the root module so that a program without a cluster does not load it.
 *
 * @since 0.1.0
 */
export {
  type ClusterOptions,
  groupWorkflow,
  layer,
  layerCluster,
  layerRunner
} from "./orchestrator/ClusterOrchestrator.js"
