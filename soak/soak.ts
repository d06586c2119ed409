/**
 * The fault soak of pipestate: many consecutive runs of the incremental-api example pipeline against
 * PostgreSQL while the API changes between runs, a seeded fifth of them faulted (a stream error, a
 * defect in the resource, the destination connection terminated mid-commit, the process SIGKILLed),
 * every run checked (a failed run leaves data and state exactly as they were, a committed one adds
 * exactly one complete load), then a final clean run and the final checks: the destination holds
 * exactly the API's items, the cursor equals the newest `updated_at`, the state versions count the
 * commits.
 */
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import {
  type Catalog,
  expectedItems,
  IncrementalApi,
  initialCatalog,
  mutateCatalog
} from "../examples/incremental-api/api.js"
import { config as exampleConfig } from "../examples/incremental-api/demo.js"
import { incrementalSource, loadedItems } from "../examples/incremental-api/pipeline.js"
import { Destination, Pipeline, Progress, type Source } from "../src/index.js"
import { diffItems, invariants, stepOf, transition } from "./check.js"
import {
  between,
  FAULT_KINDS,
  type FaultKind,
  faultSchedule,
  InjectedDefect,
  KILL_POINTS,
  type KillPoint,
  makeConnectionKiller,
  pick,
  prng,
  RESOURCE_NAME,
  type ResourceFaultSite,
  SOURCE_NAME,
  shortStatement,
  faultySource
} from "./faults.js"
import {
  advisoryLockBackends,
  close,
  connect,
  DEFAULT_URL,
  datasetFacts,
  type Facts,
  localState,
  pipelineLockKey
} from "./pg.js"
import { outcomeOf, spawnChild } from "./spawn.js"

export interface SoakOptions {
  readonly runs: number
  readonly seed: number
  readonly url?: string
  /** share of faulted runs (default 0.2) */
  readonly faultRate?: number
  /** items the API serves a page (default 4: most runs walk more than one page) */
  readonly pageSize?: number
  /** records a batch (default 2: a failing run has staged rows already) */
  readonly batchSize?: number
  /** where the connection faults strike (default: every KILL_POINTS, "random" included, which may come too late) */
  readonly killPoints?: ReadonlyArray<KillPoint>
  /** one line per run instead of one per faulted run */
  readonly verbose?: boolean
  readonly log?: (line: string) => void
}

export interface SoakReport {
  readonly seed: number
  readonly dataset: string
  readonly runs: number
  readonly faults: Readonly<Record<FaultKind, number>>
  /** `<kind>: <where>` → count */
  readonly faultDetails: Readonly<Record<string, number>>
  readonly committed: number
  readonly nothingToCommit: number
  /** runs that failed or were killed, with nothing committed */
  readonly failed: number
  /** faulted runs whose load committed all the same (a kill after the commit, a kill that came too late) */
  readonly faultedButCommitted: number
  readonly staleLocksTakenOver: number
  readonly restoredFromDestination: number
  readonly mutations: number
  readonly apiItems: number
  readonly rows: number
  readonly stateVersion: number
  readonly stateRows: number
  readonly distinctHashes: number
  readonly loads: number
  readonly leakedSpoolDirs: number
  /** in-process runs that found the load spool of a killed run (and removed it) */
  readonly spoolsOfKilledRuns: number
  readonly seconds: number
  readonly problems: ReadonlyArray<string>
  readonly notes: ReadonlyArray<string>
}

type Outcome =
  | { readonly _tag: "Committed"; readonly origin: string; readonly rows: number }
  | { readonly _tag: "Nothing"; readonly origin: string }
  | { readonly _tag: "Failed"; readonly error: string; readonly cause: Cause.Cause<unknown> | undefined }
  | { readonly _tag: "Killed"; readonly where: string }

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    const tag =
      typeof error === "object" && error !== null && "_tag" in error ? String((error as { _tag: unknown })._tag) : "?"
    return `${tag}: ${error instanceof Error ? error.message : String(error)}`
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    return `defect: ${defect.value instanceof Error ? defect.value.message : String(defect.value)}`
  }
  return Cause.isInterruptedOnly(cause) ? "interrupted" : Cause.pretty(cause)
}

const failureTag = (cause: Cause.Cause<unknown>): string | undefined =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => undefined,
    onSome: (error) =>
      typeof error === "object" && error !== null && "_tag" in error
        ? String((error as { _tag: unknown })._tag)
        : undefined
  })

const isPostgresDestinationError = (cause: Cause.Cause<unknown>): boolean =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => false,
    onSome: (error) => error instanceof Destination.DestinationError && error.destination === "postgres"
  })

const count = (record: Record<string, number>, key: string) => {
  record[key] = (record[key] ?? 0) + 1
}

const spoolDirs = (pipelineDir: string): ReadonlyArray<string> => {
  const dir = NodePath.join(pipelineDir, "load")
  return NodeFs.existsSync(dir) ? NodeFs.readdirSync(dir) : []
}

/** phases of a run and their running mean durations (ms), measured on the clean in-process runs */
const PHASES = ["restore", "extract", "commit"] as const
type TimedPhase = (typeof PHASES)[number]

/** where a SIGKILL is aimed */
const KILL_TARGETS = ["restore", "extract", "transaction", "after-commit"] as const
type KillTarget = (typeof KILL_TARGETS)[number]

export const runSoak = (options: SoakOptions): Effect.Effect<SoakReport> =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = performance.now()
      const log = options.log ?? ((line: string) => console.log(line))
      const url = options.url ?? DEFAULT_URL
      const seed = options.seed >>> 0
      const runs = Math.max(1, Math.floor(options.runs))
      const pageSize = options.pageSize ?? 4
      const batchSize = options.batchSize ?? 2
      const schedule = faultSchedule(runs, seed, options.faultRate ?? 0.2)
      const random = prng(seed ^ 0x5eed5eed)

      const base = yield* Effect.acquireRelease(
        Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pipestate-soak-"))),
        (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
      )
      const dataset = `soak_${seed}_${Math.floor(Math.random() * 36 ** 6).toString(36)}`
      const name = exampleConfig.name
      const pipelineDir = NodePath.join(base, name)
      const lockKey = pipelineLockKey(dataset, name)
      const admin = Effect.acquireRelease(
        Effect.promise(() => connect(url)),
        (client) => Effect.promise(() => close(client))
      )
      const checker = yield* admin
      const blocker = yield* admin
      const killer = yield* admin
      yield* Effect.addFinalizer(() =>
        Effect.promise(() =>
          connect(url).then(async (client) => {
            await client.query(`DROP SCHEMA IF EXISTS "${dataset}" CASCADE`).catch(() => undefined)
            await close(client)
          })
        ).pipe(Effect.ignore)
      )

      const problems: Array<string> = []
      const notes: Array<string> = []
      const faults: Record<FaultKind, number> = { stream: 0, defect: 0, connection: 0, sigkill: 0 }
      const faultDetails: Record<string, number> = {}
      let committed = 0
      let nothingToCommit = 0
      let failed = 0
      let faultedButCommitted = 0
      let staleLocksTakenOver = 0
      let restoredFromDestination = 0
      let spoolsOfKilledRuns = 0
      const durations: Record<TimedPhase, number> = { restore: 20, extract: 40, commit: 30 }

      // the API's data, mirrored: history[step] = the items after `step` mutations
      let catalog: Catalog = initialCatalog(seed)
      const initialClock = catalog.clock
      const history: Array<ReadonlyArray<Catalog["items"][number]>> = [catalog.items]

      const facts = Effect.promise(() =>
        datasetFacts(checker, { dataset, pipelineName: name, sourceName: SOURCE_NAME, resourceName: RESOURCE_NAME })
      )
      // a transaction of a killed run may still be rolling back (or committing): wait until none holds the pipeline's lock
      const settle = Effect.promise(async () => {
        for (let i = 0; i < 5000; i++) {
          if ((await advisoryLockBackends(checker, lockKey)).length === 0) return
          await sleep(2)
        }
        notes.push("a transaction held the pipeline's advisory lock for 10 s after a run")
      })

      const program = Effect.gen(function* () {
        const api = yield* IncrementalApi
        const source = incrementalSource(api.baseUrl)
        const same = diffItems("the API at start against initialCatalog", yield* api.items, history[0]!)
        problems.push(...same)

        const mutate = Effect.gen(function* () {
          const mutation = yield* api.mutate
          catalog = mutateCatalog(catalog)[0]
          history.push(catalog.items)
          if (mutation.step !== catalog.step)
            problems.push(`the API is at step ${mutation.step}, the mirror at ${catalog.step}`)
        })

        /** one run in this process, with a Progress hook; the exit, classified */
        const inProcess = <E, R>(runSource: Source.Source<E, R>, onCommit: Effect.Effect<void> = Effect.void) =>
          Effect.gen(function* () {
            const marks = new Map<string, number>()
            const progress: Progress.ProgressShape = {
              ...Progress.silent,
              phase: (_name, phase) =>
                Effect.suspend(() => {
                  marks.set(phase, performance.now())
                  return phase === "commit" ? onCommit : Effect.void
                })
            }
            const exit = yield* Effect.exit(
              Pipeline.run(runSource).pipe(Effect.provideService(Progress.Progress, progress))
            )
            const outcome: Outcome = Exit.match(exit, {
              onFailure: (cause): Outcome => ({ _tag: "Failed", error: describeCause(cause), cause }),
              onSuccess: (summary): Outcome =>
                summary.loadId === null
                  ? { _tag: "Nothing", origin: summary.origin }
                  : {
                      _tag: "Committed",
                      origin: summary.origin,
                      rows: Object.values(summary.tables).reduce((a, b) => a + b, 0)
                    }
            })
            return { outcome, marks }
          })

        const learnDurations = (marks: Map<string, number>) => {
          const order = ["restore", "extract", "commit", "done"]
          PHASES.forEach((phase) => {
            const from = marks.get(phase)
            const to = marks.get(order[order.indexOf(phase) + 1]!)
            if (from !== undefined && to !== undefined) durations[phase] = 0.7 * durations[phase] + 0.3 * (to - from)
          })
        }

        // the child's own phase durations (ms), from its PHASE lines
        const childDurations: Record<"restore" | "extract", number> = { restore: 80, extract: 80 }
        const holderOf = async () => (await advisoryLockBackends(checker, lockKey)).find((b) => b.granted)

        /** one run in a child process, SIGKILLed at a seeded moment: during a phase, in its commit transaction, or right after it */
        const childRun = (run: number, target: KillTarget, fraction: number) =>
          Effect.promise(async (): Promise<Outcome> => {
            const startFile = NodePath.join(base, `start-${run}`)
            const child = spawnChild({
              url,
              "base-url": api.baseUrl,
              dataset,
              dir: base,
              name,
              "batch-size": batchSize,
              keep: runs + 100,
              "start-file": startFile
            })
            /** polls `condition` until it holds (true) or the child exits (false) */
            const until = async (condition: () => Promise<boolean>): Promise<boolean> => {
              while (!child.hasExited()) {
                if (await condition()) return true
                await sleep(1)
              }
              return false
            }
            try {
              await child.waitFor("WAITING", 180_000)
              NodeFs.writeFileSync(startFile, "")
              let fire = false
              switch (target) {
                case "restore":
                case "extract": {
                  await child.waitFor(`PHASE ${target}`, 60_000).catch(() => "exited")
                  const delay = Math.round(childDurations[target] * 1.2 * fraction)
                  fire =
                    (await Promise.race([
                      sleep(delay).then(() => "timer" as const),
                      child.exited.then(() => "exited" as const)
                    ])) === "timer"
                  break
                }
                case "transaction": {
                  fire = await until(async () => (await holderOf()) !== undefined)
                  if (fire) await sleep(Math.round(fraction * 4))
                  break
                }
                case "after-commit": {
                  // the transaction seen open, then over: the commit is in, the local state is being written
                  const seen = await until(async () => (await holderOf()) !== undefined)
                  fire = seen && (await until(async () => (await holderOf()) === undefined))
                  break
                }
              }
              if (fire && !child.hasExited()) {
                // freeze it, see where it is, then kill it
                child.child.kill("SIGSTOP")
                await sleep(20)
                const phase =
                  child.lines
                    .filter((line) => line.startsWith("PHASE "))
                    .at(-1)
                    ?.split(" ")[1] ?? "start-up"
                const holder = await holderOf()
                child.child.kill("SIGKILL")
                const exit = await child.exited
                if (exit.signal === "SIGKILL") {
                  const where =
                    holder !== undefined
                      ? `in the commit transaction (${holder.state === "active" ? "" : `${holder.state} after `}${shortStatement(holder.query, dataset)})`
                      : `after PHASE ${phase}${phase === "commit" ? ", no transaction open" : ""}`
                  return { _tag: "Killed", where }
                }
              }
              await child.exited
              const phases = new Map(
                child.lines
                  .filter((line) => line.startsWith("PHASE "))
                  .map((line) => [line.split(" ")[1]!, Number(line.split(" ")[2])] as const)
              )
              const span = (from: string, to: string) =>
                (phases.get(to) ?? Number.NaN) - (phases.get(from) ?? Number.NaN)
              if (span("restore", "extract") > 0) childDurations.restore = span("restore", "extract")
              if (span("extract", "commit") > 0) childDurations.extract = span("extract", "commit")
              const outcome = outcomeOf(child)
              if (outcome.tag === "COMMITTED" || outcome.tag === "NOTHING") {
                const detail = JSON.parse(outcome.detail) as { origin?: string; tables?: Record<string, number> }
                return outcome.tag === "COMMITTED"
                  ? {
                      _tag: "Committed",
                      origin: detail.origin ?? "?",
                      rows: Object.values(detail.tables ?? {}).reduce((a, b) => a + b, 0)
                    }
                  : { _tag: "Nothing", origin: detail.origin ?? "?" }
              }
              return { _tag: "Failed", error: `child: ${outcome.tag} ${outcome.detail}`, cause: undefined }
            } finally {
              if (!child.hasExited()) {
                child.child.kill("SIGKILL")
                await child.exited
              }
              NodeFs.rmSync(startFile, { force: true })
            }
          })

        let before: Facts = yield* facts
        for (let run = 0; run <= runs; run++) {
          const final = run === runs
          const kind = final ? null : schedule[run]!
          // the API changes between runs: 0 to 2 mutations (at least one before a fault, so it has rows to hit)
          const roll = random()
          const mutations = final ? 0 : kind !== null ? (roll < 0.5 ? 1 : 2) : roll < 0.1 ? 0 : roll < 0.6 ? 1 : 2
          for (let i = 0; i < mutations; i++) yield* mutate
          const step = catalog.step
          const localBefore = localState(pipelineDir)
          const lockBefore = NodeFs.existsSync(NodePath.join(pipelineDir, ".lock"))
          const spoolsBefore = spoolDirs(pipelineDir).length
          if (spoolsBefore > 0) spoolsOfKilledRuns++
          const committedCursor = before.newest?.lastValue ?? null
          // records the faulted stream will see: past the cursor (records), or from it on (pages)
          const pending = (site: ResourceFaultSite) =>
            catalog.items.filter(
              (item) =>
                committedCursor === null ||
                (site === "records"
                  ? Date.parse(item.updated_at) > committedCursor.getTime()
                  : Date.parse(item.updated_at) >= committedCursor.getTime())
            ).length

          let outcome: Outcome
          let detail = ""
          let allowAdvance = kind === null || kind === "sigkill"
          let expectFailure = kind !== null && kind !== "sigkill"
          let inProcessRun = true
          switch (kind) {
            case null: {
              const result = yield* inProcess(source)
              outcome = result.outcome
              if (outcome._tag === "Committed") learnDurations(result.marks)
              break
            }
            case "stream":
            case "defect": {
              const site = pick(random, ["records", "pages"] as const)
              const at = between(random, 0, pending(site))
              detail = `${site}, after ${at} of ${pending(site)}`
              outcome = (yield* inProcess(faultySource(api.baseUrl, { kind, site, at }))).outcome
              count(faultDetails, `${kind}: in the ${site === "records" ? "resource's records" : "API pages"}`)
              break
            }
            case "connection": {
              const point = pick(random, options.killPoints ?? KILL_POINTS)
              const delayMs = Math.round(random() * durations.commit * 0.6)
              const connectionKiller = makeConnectionKiller({ blocker, killer, dataset, lockKey, point, delayMs })
              outcome = (yield* inProcess(source, connectionKiller.onCommit)).outcome
              const result = yield* connectionKiller.finish
              detail = `${point}${point === "random" ? ` ${delayMs} ms` : ""}: ${result.killed ? "terminated" : "missed"} ${result.where}`
              count(faultDetails, `connection: ${result.killed ? result.where : `missed (${point})`}`)
              // a kill that came too late lets the commit through; terminated during COMMIT itself, the
              // outcome is unknown to the run: either way all or nothing
              allowAdvance = !result.killed || point === "random"
              expectFailure = result.killed && point !== "random"
              if (!result.killed && point !== "random") notes.push(`run ${run}: connection fault ${detail}`)
              break
            }
            case "sigkill": {
              inProcessRun = false
              const target = pick(random, KILL_TARGETS)
              const fraction = random()
              outcome = yield* childRun(run, target, fraction)
              detail = `aimed at ${target}`
              break
            }
          }
          if (kind !== null) faults[kind]++
          yield* settle
          const after = yield* facts
          const localAfter = localState(pipelineDir)
          const runProblems: Array<string> = []
          if (kind === "sigkill") {
            const advanced = after.versions.length > before.versions.length
            const written =
              JSON.stringify(localAfter) ===
              JSON.stringify({ version: after.newest?.version, hash: after.newest?.hash ?? null })
            const where =
              outcome._tag !== "Killed"
                ? `finished before the kill (${outcome._tag})`
                : !advanced
                  ? `${outcome.where}: nothing committed`
                  : `${outcome.where}: committed, local state ${written ? "written" : "NOT written (the next run restores)"}`
            detail = `${detail}: ${where}`
            count(faultDetails, `sigkill: ${where}`)
          }

          // what the run reports, against what it had to do
          const tag = outcome._tag
          if (kind === null && tag === "Failed") runProblems.push(`a clean run failed: ${outcome.error}`)
          if (expectFailure && tag !== "Failed") runProblems.push(`a ${kind} fault, but the run ended ${tag}`)
          if (kind === "sigkill" && tag === "Failed") runProblems.push(`the child run failed: ${outcome.error}`)
          if (tag === "Failed" && outcome.cause !== undefined) {
            const cause = outcome.cause
            if (failureTag(cause) === "PipelineLocked")
              runProblems.push(`the run found the pipeline locked: ${outcome.error}`)
            if (kind === "stream" && failureTag(cause) !== "InjectedStreamFault") {
              runProblems.push(`a stream fault should fail the run with InjectedStreamFault, not ${outcome.error}`)
            }
            if (
              kind === "defect" &&
              !Option.exists(Cause.dieOption(cause), (defect) => defect instanceof InjectedDefect)
            ) {
              runProblems.push(`a defect in the resource should die with it, not ${outcome.error}`)
            }
            if (kind === "connection" && !isPostgresDestinationError(cause)) {
              runProblems.push(
                `a terminated connection should fail the run with DestinationError (postgres), not ${outcome.error}`
              )
            }
          }
          if (tag === "Committed" || tag === "Nothing") {
            const stale =
              localBefore !== null && localBefore !== "unreadable" && localBefore.hash !== before.newest?.hash
            if (stale && before.newest !== null) {
              if (outcome.origin === "destination") restoredFromDestination++
              else
                runProblems.push(
                  `the local state was behind the destination, but the run started from ${outcome.origin}`
                )
            }
          }

          // what the destination holds now
          const moved = transition(before, after, { step, initialClock })
          runProblems.push(...moved.problems, ...invariants(after, { history, initialClock }))
          if (moved.advanced && tag === "Failed") {
            if (allowAdvance) notes.push(`run ${run}: the run failed (${outcome.error}), yet its load committed`)
            else runProblems.push(`the run failed (${outcome.error}), yet its load committed`)
          }
          if (tag === "Committed" && !moved.advanced)
            runProblems.push("the run reported a commit the destination does not hold")
          if ((tag === "Committed" || tag === "Nothing") && after.newest?.lastValue != null) {
            const cursorStep = stepOf(after.newest.lastValue, initialClock)
            if (cursorStep !== step) {
              runProblems.push(`a successful run left changes behind: cursor at step ${cursorStep}, the API at ${step}`)
            }
          }
          if (tag === "Nothing" && moved.advanced) runProblems.push("the run reported nothing to commit, yet committed")
          if (moved.advanced) {
            committed++
            if (kind !== null) faultedButCommitted++
          } else if (tag === "Nothing") nothingToCommit++
          else failed++

          // the local state: a failed run leaves it alone (but for restoring the destination's newest
          // state when it was behind); it is never ahead of the destination
          const asLocal = (state: Facts["newest"]) =>
            state === null ? null : { version: state.version, hash: state.hash }
          const newest = asLocal(after.newest)
          const restored = asLocal(before.newest)
          const same = (a: typeof localAfter, b: typeof localAfter) => JSON.stringify(a) === JSON.stringify(b)
          const changedTo = (allowed: ReadonlyArray<typeof localAfter>) =>
            !same(localAfter, localBefore) && !allowed.some((state) => same(localAfter, state))
          if (localAfter === "unreadable") runProblems.push("the local state file does not parse")
          else if (tag === "Committed" || tag === "Nothing") {
            if (newest !== null && !same(localAfter, newest)) {
              runProblems.push(
                `local state ${JSON.stringify(localAfter)} is not the destination's newest ${JSON.stringify(newest)}`
              )
            }
          } else if (tag === "Failed" && inProcessRun) {
            if (changedTo([restored])) {
              runProblems.push(
                `the failed run changed the local state: ${JSON.stringify(localBefore)} → ${JSON.stringify(localAfter)} (the destination's newest before the run: ${JSON.stringify(restored)})`
              )
            } else if (!same(localAfter, localBefore)) restoredFromDestination++
          } else if (changedTo([restored, newest])) {
            runProblems.push(
              `after the kill the local state ${JSON.stringify(localAfter)} is neither the one before ${JSON.stringify(localBefore)}, nor the destination's before the run ${JSON.stringify(restored)}, nor its newest ${JSON.stringify(newest)}`
            )
          }

          // the working dir: an in-process run releases its lock, removes its spool and those a killed run left
          const lockAfter = NodeFs.existsSync(NodePath.join(pipelineDir, ".lock"))
          if (inProcessRun) {
            if (lockAfter) runProblems.push("the lock file is left after an in-process run")
            if (lockBefore) staleLocksTakenOver++
            const spools = spoolDirs(pipelineDir).length
            if (spools > 0) {
              runProblems.push(
                `${spools} load spool dirs are left after the run (${spoolsBefore} before it): ${spoolDirs(pipelineDir).join(", ")}`
              )
            }
          }

          const line = `run ${String(run).padStart(3)}${final ? " (final)" : ""}: ${kind ?? "clean"}${detail === "" ? "" : ` [${detail}]`} → ${
            tag === "Failed"
              ? `failed (${outcome.error.slice(0, 140)})`
              : tag === "Killed"
                ? "killed"
                : tag.toLowerCase()
          }${moved.advanced ? ", committed" : ""} | ${mutations} mutations, step ${step} | version ${after.newest?.version ?? "-"}, ${after.rows} rows`
          if (options.verbose || kind !== null || final || runProblems.length > 0 || run % 25 === 0) log(line)
          for (const problem of runProblems) {
            log(`  PROBLEM: ${problem}`)
            problems.push(`run ${run}: ${problem}`)
          }
          before = after
        }

        // the final checks
        const final = before
        const apiItems = yield* api.items
        const mutationsDone = yield* api.mutations
        const loaded = yield* loadedItems.pipe(
          Effect.catchAll((error) => {
            problems.push(`final: loadedItems failed: ${error.message}`)
            return Effect.succeed([])
          })
        )
        problems.push(
          ...diffItems("final: loadedItems against the API's items", loaded, apiItems).map(String),
          ...diffItems(
            "final: the API's items against expectedItems",
            apiItems,
            expectedItems({ seed, mutations: mutationsDone })
          ),
          ...diffItems("final: items (SQL) against the API's items", final.items, apiItems)
        )
        if (final.rows !== final.distinctIds) problems.push(`final: ${final.rows} rows for ${final.distinctIds} ids`)
        const lastValue = final.newest?.lastValue ?? null
        const maxUpdatedAt =
          apiItems.length === 0
            ? null
            : new Date(Math.max(...apiItems.map((item) => Date.parse(item.updated_at)))).toISOString()
        if (
          lastValue === null ||
          lastValue.toISOString() !== final.maxUpdatedAt ||
          final.maxUpdatedAt !== maxUpdatedAt
        ) {
          problems.push(
            `final: the cursor's last_value ${lastValue?.toISOString()} is not the max updated_at in the data (${final.maxUpdatedAt}; the API's ${maxUpdatedAt})`
          )
        }
        const stateVersion = final.newest?.version ?? -1
        const distinctHashes = new Set(final.versions.map((v) => v.hash)).size
        if (stateVersion + 1 !== final.versions.length || distinctHashes !== final.versions.length) {
          problems.push(
            `final: state version ${stateVersion}, but ${final.versions.length} state rows with ${distinctHashes} distinct hashes (expected version = rows - 1: version 0 is the first commit)`
          )
        }
        if (final.versions.length !== committed) {
          problems.push(`final: ${final.versions.length} state rows, but the soak saw ${committed} runs commit`)
        }
        const local = localState(pipelineDir)
        if (JSON.stringify(local) !== JSON.stringify({ version: stateVersion, hash: final.newest?.hash ?? null })) {
          problems.push(`final: the local state ${JSON.stringify(local)} is not the newest committed one`)
        }
        const leaked = spoolDirs(pipelineDir).length
        if (leaked > 0)
          problems.push(`final: ${leaked} load spool dirs are left in ${NodePath.join(pipelineDir, "load")}`)
        return {
          seed,
          dataset,
          runs,
          faults,
          faultDetails,
          committed,
          nothingToCommit,
          failed,
          faultedButCommitted,
          staleLocksTakenOver,
          restoredFromDestination,
          mutations: mutationsDone,
          apiItems: apiItems.length,
          rows: final.rows,
          stateVersion,
          stateRows: final.versions.length,
          distinctHashes,
          loads: final.loads,
          leakedSpoolDirs: leaked,
          spoolsOfKilledRuns,
          seconds: Math.round((performance.now() - started) / 100) / 10,
          problems,
          notes
        } satisfies SoakReport
      })

      log(
        `soak: seed ${seed}, ${runs} runs (+ a final clean run), ${schedule.filter((k) => k !== null).length} faulted, dataset ${dataset}, API page size ${pageSize}, batch size ${batchSize}`
      )
      return yield* program.pipe(
        Effect.provide(
          Layer.mergeAll(
            IncrementalApi.layer({ seed, pageSize }),
            FetchHttpClient.layer,
            Pipeline.layerNode({
              name,
              dataset,
              pipelinesDir: base,
              batchSize,
              // every state version kept, so the versions can be counted
              keepStateVersions: runs + 100
            }),
            Destination.postgres({ url: Redacted.make(url) })
          )
        ),
        Effect.orDie
      )
    })
  )

/** the report as the lines `npm run soak` prints */
export const formatReport = (report: SoakReport): ReadonlyArray<string> => {
  const faulted = FAULT_KINDS.reduce((sum, kind) => sum + report.faults[kind], 0)
  return [
    `runs: ${report.runs} (+ 1 final clean run), seed ${report.seed}, ${report.seconds} s`,
    `faults: ${faulted} (${FAULT_KINDS.map((kind) => `${kind} ${report.faults[kind]}`).join(", ")})`,
    ...Object.entries(report.faultDetails)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([where, n]) => `  ${where}: ${n}`),
    `runs committed: ${report.committed} (faulted runs among them, whose load committed before the fault struck: ${report.faultedButCommitted}), runs failed: ${report.failed} (nothing committed), runs with nothing to commit: ${report.nothingToCommit}`,
    `stale locks taken over: ${report.staleLocksTakenOver}, load spools of killed runs removed: ${report.spoolsOfKilledRuns}, runs restored from the destination: ${report.restoredFromDestination}`,
    `rows in destination: ${report.rows} (the API: ${report.apiItems} items after ${report.mutations} mutations)`,
    `state version: ${report.stateVersion} (${report.stateRows} state rows, ${report.distinctHashes} distinct hashes, ${report.loads} loads; version 0 is the first commit)`,
    ...report.notes.map((note) => `note: ${note}`),
    report.problems.length === 0
      ? "fault soak: every check holds"
      : `fault soak: ${report.problems.length} checks FAILED:\n${report.problems.map((p) => `  - ${p}`).join("\n")}`
  ]
}
