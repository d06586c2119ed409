/**
 * `pipestate/sql`: the SQL driver of the destination port, over any @effect/sql `SqlClient` — the
 * extension point for SQL databases pipestate does not ship. Give it a `SqlDialect` (type names,
 * table qualification, locks) and a `Stager` (where a load's rows wait until the commit); the
 * commit path (optimistic check, version rule, retention) comes with it.
 *
 * @since 0.1.0
 */
export {
  columnList,
  make,
  quoteIdentifier,
  type SqlDestinationOptions,
  type SqlDialect,
  type Stager,
  typed
} from "./destination/SqlDestination.js"
