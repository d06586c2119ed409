import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as Destination from "../src/destination/index.js"
import type { CheckpointOptions } from "../src/internal/pipeline/Checkpoint.js"
import * as History from "../src/pipeline/History.js"
import * as Incremental from "../src/pipeline/Incremental.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import { newestStored, tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, testDestination } from "./postgres.js"

const Next = ResourceState.key("next", Schema.Number, () => 0)

interface Paged {
  readonly name: string
  readonly pages: number
  readonly pageSize: number
  /** the resource hands its records over in chunks of this size (not a divisor of the page) */
  readonly chunk: number
  /** the run dies when it reaches this page (before its state changes) */
  readonly failAt?: number
  readonly writeDisposition?: "append" | "replace"
  readonly checkpoint?: CheckpointOptions
  /** a state change after the last record */
  readonly after?: boolean
}

interface Row {
  readonly id: number
  readonly page: number
}

/** pages of records; the next page is recorded in the resource state before a page's records */
const paged = (p: Paged) =>
  Resource.make(
    {
      name: p.name,
      writeDisposition: p.writeDisposition ?? "append",
      ...(p.checkpoint === undefined ? {} : { checkpoint: p.checkpoint })
    },
    Stream.unwrap(
      Effect.map(Next.get, (start) =>
        Stream.range(start, p.pages - 1).pipe(
          Stream.flatMap(
            (page): Stream.Stream<Row, unknown, ResourceState.ResourceState> =>
              page === p.failAt
                ? Stream.fail(`killed at page ${page}`)
                : Stream.fromEffect(Next.set(page + 1)).pipe(
                    Stream.drain,
                    Stream.concat(
                      Stream.fromIterable(
                        Array.from({ length: p.pageSize }, (_, i) => ({ id: page * p.pageSize + i, page }))
                      ).pipe(Stream.rechunk(p.chunk))
                    )
                  )
          ),
          p.after === true
            ? Stream.concat(Stream.fromEffect(ResourceState.set("finished", true)).pipe(Stream.drain))
            : (s) => s
        )
      )
    )
  )

const run = <E, R>(
  dir: string,
  destination: Layer.Layer<Destination.Destination>,
  source: Source.Source<E, R>,
  config: Partial<Pipeline.PipelineConfig> = {}
) =>
  Pipeline.run(source).pipe(
    Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir, batchSize: 300, ...config })),
    Effect.provide(destination)
  )

const ids = (destination: Layer.Layer<Destination.Destination>, dir: string, table: string) =>
  Effect.gen(function* () {
    const d = yield* Destination.Destination
    const access = yield* d.dataset({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") })
    if (!(yield* access.tableExists(table))) return []
    const rows = yield* access.execute(`SELECT id FROM ${access.table(table)}`)
    return rows.map((r) => Number(r.id))
  }).pipe(Effect.provide(destination))

/** the destination's newest state and the local state.json */
const states = (destination: Layer.Layer<Destination.Destination>, dir: string) =>
  Effect.gen(function* () {
    const stored = yield* newestStored({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") }, "p")
    const remote = Option.isSome(stored) ? yield* StateBlob.decode(stored.value.state) : undefined
    const local = PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8"))
    return { remote, local: Exit.getOrElse(Effect.runSyncExit(local), () => undefined) }
  }).pipe(Effect.provide(destination))

const slot = (state: PipelineState.PipelineState | undefined, resource: string): Record<string, unknown> => {
  const resources = state?.sources.src?.resources as Record<string, Record<string, unknown>> | undefined
  return resources?.[resource] ?? {}
}

/** every id of `pages × pageSize` exactly once up to the page the state names */
const expectConsistent = (found: ReadonlyArray<number>, next: number, pageSize: number) => {
  expect(found.length).toBe(next * pageSize)
  expect(new Set(found).size).toBe(found.length)
  expect(Math.max(-1, ...found)).toBe(next * pageSize - 1)
}

/**
 * Resource `a`: 6 pages of 100 records, checkpoints every 150; the next page is recorded before a
 * page's records, and `before(page)` runs first (another run, a state change); `after` once the last
 * page is out.
 */
const pagesOfA = <E, R>(
  before: (page: number) => Effect.Effect<unknown, E, R> | undefined,
  after?: Effect.Effect<unknown, E, R>
) =>
  Resource.make(
    { name: "a", checkpoint: { rows: 150 } },
    Stream.unwrap(
      Effect.map(Next.get, (start) => {
        const pages = Stream.range(start, 5).pipe(
          Stream.flatMap((page) => {
            const hook = before(page)
            return (hook === undefined ? Stream.empty : Stream.fromEffect(hook).pipe(Stream.drain)).pipe(
              Stream.concat(Stream.fromEffect(Next.set(page + 1)).pipe(Stream.drain)),
              Stream.concat(Stream.fromIterable(Array.from({ length: 100 }, (_, i) => ({ id: page * 100 + i }))))
            )
          })
        )
        return after === undefined ? pages : Stream.concat(pages, Stream.fromEffect(after).pipe(Stream.drain))
      })
    )
  )

describe("Checkpoint", () => {
  it.scoped(
    "a run's final commit keeps what other runs committed meanwhile (another working dir, another resource)",
    () =>
      Effect.gen(function* () {
        const dirA = yield* tempDir()
        const dirB = yield* tempDir()
        const destination = yield* Layer.memoize(Destination.memory())
        const Done = ResourceState.key("done", Schema.Boolean, () => false)
        // B: 50 rows once; its state says they are loaded
        const b = Resource.make(
          { name: "b" },
          Stream.unwrap(
            Effect.map(Done.get, (done) =>
              done
                ? Stream.empty
                : Stream.fromEffect(Done.set(true)).pipe(
                    Stream.drain,
                    Stream.concat(Stream.fromIterable(Array.from({ length: 50 }, (_, i) => ({ id: i }))))
                  )
            )
          )
        )
        const runB = run(dirB, destination, Source.make({ name: "src", resources: [b] }))
        // A: 6 pages of 100 with checkpoints; B runs to completion from its own working dir before page 4
        const a = pagesOfA((page) => (page === 4 ? runB : undefined))
        const summaryA = yield* run(dirA, destination, Source.make({ name: "src", resources: [a] }))
        expect(summaryA.checkpoints?.length ?? 0).toBeGreaterThan(1)
        const { remote } = yield* states(destination, dirA)
        expect(slot(remote, "a").next).toBe(6)
        expect(slot(remote, "b").done).toBe(true)
        // B's next run starts from its own state: nothing to load again
        const again = yield* runB
        expect(again.tables.b).toBe(0)
        expect((yield* ids(destination, dirB, "b")).length).toBe(50)
        expect((yield* ids(destination, dirA, "a")).length).toBe(600)
      })
  )

  it.scoped("a source-level key both runs changed fails the final commit, saying the checkpoints stay committed", () =>
    Effect.gen(function* () {
      const dirA = yield* tempDir()
      const dirB = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const Mark = SourceState.key("mark", Schema.String, () => "")
      const b = Resource.make(
        { name: "b" },
        Stream.fromEffect(Mark.set("B")).pipe(Stream.drain, Stream.concat(Stream.make({ id: 1 })))
      )
      const runB = run(dirB, destination, Source.make({ name: "src", resources: [b] }))
      const a = pagesOfA((page) => (page === 3 ? Effect.zipRight(runB, Mark.set("A")) : undefined))
      const error = yield* Effect.flip(run(dirA, destination, Source.make({ name: "src", resources: [a] })))
      expect(error).toMatchObject({ _tag: "StateConflict", paths: ["sources.src.mark"] })
      const checkpoints = (error as { readonly checkpoints?: number }).checkpoints ?? 0
      expect(checkpoints).toBeGreaterThan(0)
      expect((error as { readonly message: string }).message).toContain("stay committed")
      // the checkpoints' rows are there, once each
      const committed = yield* ids(destination, dirA, "a")
      expect(new Set(committed).size).toBe(committed.length)
      expect(committed.length).toBeGreaterThanOrEqual(300)
    })
  )

  it.scoped("a run's final commit merges a slot another run changed before and after its last checkpoint", () =>
    Effect.gen(function* () {
      const dirA = yield* tempDir()
      const dirB = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const Runs = ResourceState.key("runs", Schema.Number, () => 0)
      // B: one row per run, its run count in its state
      const b = Resource.make(
        { name: "b" },
        Stream.unwrap(
          Effect.map(Runs.get, (n) =>
            Stream.fromEffect(Runs.set(n + 1)).pipe(Stream.drain, Stream.concat(Stream.make({ id: n })))
          )
        )
      )
      const runB = run(dirB, destination, Source.make({ name: "src", resources: [b] }))
      // A: B runs before A's page 2 (A's next checkpoints merge it in) and after A's last record
      const a = pagesOfA((page) => (page === 2 ? runB : undefined), runB)
      const summaryA = yield* run(dirA, destination, Source.make({ name: "src", resources: [a] }))
      expect(summaryA.checkpoints?.length ?? 0).toBeGreaterThan(1)
      const { remote } = yield* states(destination, dirA)
      expect(slot(remote, "a").next).toBe(6)
      expect(slot(remote, "b").runs).toBe(2)
      expect((yield* ids(destination, dirB, "b")).sort()).toEqual([0, 1])
    })
  )

  it.scoped("a run that dies after checkpoint k resumes from k: every row once, state as of its rows", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const base = { name: "pages", pages: 20, pageSize: 500, chunk: 170 }
      const failed = yield* Effect.exit(
        run(dir, destination, Source.make({ name: "src", resources: [paged({ ...base, failAt: 13 })] }), {
          checkpoint: { rows: 1_200 }
        })
      )
      expect(Exit.isFailure(failed)).toBe(true)
      // checkpoints fall on the first cut past 1,200 rows: after pages 2, 5, 8, 11
      const afterKill = yield* ids(destination, dir, "pages")
      const killed = yield* states(destination, dir)
      expect(slot(killed.remote, "pages").next).toBe(12)
      expect(slot(killed.local, "pages").next).toBe(12)
      expectConsistent(afterKill, 12, 500)

      const resumed = yield* run(dir, destination, Source.make({ name: "src", resources: [paged(base)] }), {
        checkpoint: { rows: 1_200 }
      })
      expect(resumed.tables.pages).toBe(8 * 500)
      expectConsistent(yield* ids(destination, dir, "pages"), 20, 500)
      expect(slot((yield* states(destination, dir)).remote, "pages").next).toBe(20)
      // checkpoints after pages 13, 16 (cut at 17, 18 … 1,500 rows each); the final commit loads the rest
      expect(resumed.checkpoints?.map((c) => c.rows)).toEqual([1_500, 1_500])
      expect(resumed.runId).toBeDefined()
    })
  )

  it.scoped("concurrent resources: each slot is committed as of its own last committed record", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const a = { name: "a", pages: 30, pageSize: 333, chunk: 97 }
      const b = { name: "b", pages: 12, pageSize: 1_000, chunk: 410, checkpoint: { rows: 2_500 } }
      const failed = yield* Effect.exit(
        run(dir, destination, Source.make({ name: "src", resources: [paged({ ...a, failAt: 25 }), paged(b)] }), {
          checkpoint: { rows: 700 },
          concurrency: 2
        })
      )
      expect(Exit.isFailure(failed)).toBe(true)
      const killed = yield* states(destination, dir)
      const nextA = slot(killed.remote, "a").next as number
      const nextB = Number(slot(killed.remote, "b").next ?? 0)
      expect(nextA).toBeGreaterThan(0)
      expectConsistent(yield* ids(destination, dir, "a"), nextA, 333)
      expectConsistent(yield* ids(destination, dir, "b"), nextB, 1_000)

      yield* run(dir, destination, Source.make({ name: "src", resources: [paged(a), paged(b)] }), {
        checkpoint: { rows: 700 },
        concurrency: 2
      })
      expectConsistent(yield* ids(destination, dir, "a"), 30, 333)
      expectConsistent(yield* ids(destination, dir, "b"), 12, 1_000)
    })
  )

  it.scoped("a state change after the last record and source state wait for the final commit", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const withSourceState = Resource.make(
        { name: "marker", writeDisposition: "append" },
        Stream.fromEffect(SourceState.set("seen_marker", true)).pipe(
          Stream.drain,
          Stream.concat(Stream.make({ id: 1 }))
        )
      )
      const summary = yield* run(
        dir,
        destination,
        Source.make({
          name: "src",
          resources: [paged({ name: "pages", pages: 10, pageSize: 500, chunk: 230, after: true }), withSourceState]
        }),
        { checkpoint: { rows: 1_000 } }
      )
      expect(summary.checkpoints!.length).toBeGreaterThan(0)
      const versions = yield* History.list({ limit: 50 }).pipe(
        Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
        Effect.provide(destination)
      )
      const target = { dataset: "ds", pipelineDir: NodePath.join(dir, "p") }
      const d = yield* Effect.provide(Destination.Destination, destination)
      const blobs = yield* Effect.forEach(versions, (v) =>
        Effect.flatMap(d.readState(target, "p", v.loadId), (s) =>
          Option.isSome(s) ? StateBlob.decode(s.value.state) : Effect.die("no state")
        )
      )
      const [newest, ...older] = blobs
      expect(slot(newest, "pages").finished).toBe(true)
      expect(newest?.sources.src?.seen_marker).toBe(true)
      for (const state of older) {
        expect(slot(state, "pages").finished).toBeUndefined()
        expect(state.sources.src?.seen_marker).toBeUndefined()
      }
      // every load of the run carries its run id; checkpoints are numbered, the last is final
      expect(versions.every((v) => v.run?.runId === summary.runId)).toBe(true)
      expect(versions[0]?.run?.final).toBe(true)
      expect(versions.map((v) => v.run?.checkpoint)).toEqual(versions.map((_, i) => versions.length - i))
    })
  )

  it.scoped("replace resources: rows and state wait for the final commit, the old table stays until then", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const snapshot = (failAt?: number) =>
        paged({
          name: "snapshot",
          pages: 6,
          pageSize: 400,
          chunk: 150,
          writeDisposition: "replace",
          ...(failAt === undefined ? {} : { failAt })
        })
      const pages = (failAt?: number) =>
        paged({ name: "pages", pages: 10, pageSize: 500, chunk: 230, ...(failAt === undefined ? {} : { failAt }) })
      yield* run(dir, destination, Source.make({ name: "src", resources: [snapshot(), pages()] }), {
        checkpoint: { rows: 1_000 }
      })
      expect((yield* ids(destination, dir, "snapshot")).length).toBe(2_400)

      // the next run: `pages` has all its pages; the replace resource dies on page 4
      const failed = yield* Effect.exit(
        run(dir, destination, Source.make({ name: "src", resources: [snapshot(4), pages()] }), {
          checkpoint: { rows: 1_000 }
        })
      )
      expect(Exit.isFailure(failed)).toBe(true)
      expect((yield* ids(destination, dir, "snapshot")).length).toBe(2_400)
      expect(slot((yield* states(destination, dir)).remote, "snapshot").next).toBe(6)

      yield* run(dir, destination, Source.make({ name: "src", resources: [snapshot(), pages()] }), {
        checkpoint: { rows: 1_000 }
      })
      expectConsistent(yield* ids(destination, dir, "snapshot"), 6, 400)
      expectConsistent(yield* ids(destination, dir, "pages"), 10, 500)
    })
  )
  it.scoped("an incremental cursor resumes from the checkpoint: every row once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      // the rows come sorted by the cursor, and the cursor says so: checkpoints commit it as it goes
      const updatedAt = Incremental.cursor({ path: "updated", initialValue: -1, rowOrder: "asc" })
      // the API returns the rows past the cursor in pages of 400, handed over in chunks of 130
      const events = (failAfter?: number) =>
        Resource.make(
          { name: "events", writeDisposition: "append" },
          Incremental.stream(updatedAt, (run) =>
            Stream.range(run.startValue + 1, 5_999).pipe(
              Stream.map((id) => ({ id, updated: id })),
              Stream.rechunk(130),
              Stream.tap((row) => (row.id === failAfter ? Effect.fail("killed") : Effect.void))
            )
          )
        )
      const failed = yield* Effect.exit(
        run(dir, destination, Source.make({ name: "src", resources: [events(4_321)] }), {
          checkpoint: { rows: 1_000 }
        })
      )
      expect(Exit.isFailure(failed)).toBe(true)
      const committed = yield* ids(destination, dir, "events")
      expect(committed.length).toBeGreaterThan(3_000)
      const incremental = slot((yield* states(destination, dir)).remote, "events").incremental as Record<
        string,
        { readonly last_value: number }
      >
      // the cursor names exactly the last committed row
      expect(incremental.updated?.last_value).toBe(Math.max(...committed))
      expect(new Set(committed).size).toBe(committed.length)

      const resumed = yield* run(dir, destination, Source.make({ name: "src", resources: [events()] }), {
        checkpoint: { rows: 1_000 }
      })
      expect(resumed.tables.events).toBe(6_000 - committed.length)
      const all = yield* ids(destination, dir, "events")
      expect(all.length).toBe(6_000)
      expect(new Set(all).size).toBe(6_000)
    })
  )

  it.scoped(
    "an incremental cursor over rows in no promised order waits for the final commit: a failed run loses nothing",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const destination = yield* Layer.memoize(Destination.memory())
        const updatedAt = Incremental.cursor({ path: "updated", initialValue: 0, primaryKey: "id" })
        // 3,000 rows whose cursor values come in a scrambled order, in chunks of 25
        const events = (failAt?: number) =>
          Resource.make(
            { name: "events", writeDisposition: "append" },
            Incremental.stream(updatedAt, (run) =>
              Stream.range(1, 3_000).pipe(
                Stream.map((k) => ({ id: k, updated: (k * 7919) % 3001 })),
                Stream.filter((row) => row.updated > run.startValue),
                Stream.rechunk(25),
                Stream.tap((row) => (row.id === failAt ? Effect.fail("the API broke") : Effect.void))
              )
            )
          )
        const failed = yield* Effect.exit(
          run(dir, destination, Source.make({ name: "src", resources: [events(1_500)] }), { checkpoint: { rows: 200 } })
        )
        expect(Exit.isFailure(failed)).toBe(true)
        // the cursor was not committed past rows still to come
        const slotAfter = slot((yield* states(destination, dir)).remote, "events").incremental as
          | Record<string, { readonly last_value: number }>
          | undefined
        expect(slotAfter?.updated?.last_value ?? 0).toBe(0)
        const resumed = yield* run(dir, destination, Source.make({ name: "src", resources: [events()] }), {
          checkpoint: { rows: 200 }
        })
        expect(resumed.tables.events).toBe(3_000)
        const all = yield* ids(destination, dir, "events")
        expect(all.length).toBe(3_000)
        expect(new Set(all).size).toBe(3_000)
      })
  )

  it.scoped("a row against the cursor's declared rowOrder fails the run, naming it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const updatedAt = Incremental.cursor({ path: "updated", initialValue: 0, rowOrder: "asc" })
      const events = Resource.make(
        { name: "events" },
        Incremental.stream(updatedAt, () =>
          Stream.make({ id: 1, updated: 5 }, { id: 2, updated: 9 }, { id: 3, updated: 7 })
        )
      )
      const error = yield* Effect.flip(
        run(dir, destination, Source.make({ name: "src", resources: [events] }), { checkpoint: { rows: 1 } })
      )
      expect(error).toMatchObject({ _tag: "IncrementalRowOrder", rowIndex: 2, value: "7", last: "9" })
      expect((error as { readonly message: string }).message).toContain('rowOrder "asc"')
    })
  )

  it.scoped("the list-of-archives pattern resumes from the checkpoint: archives read are not read again", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const Checked = ResourceState.key("archives", Schema.Array(Schema.String), () => [])
      const archives = Array.from({ length: 12 }, (_, i) => `2024/${String(i + 1).padStart(2, "0")}`)
      const games = (failAt?: string) =>
        Resource.make(
          { name: "games", writeDisposition: "append" },
          Stream.fromIterable(archives).pipe(
            Stream.filterEffect((url) => Effect.map(Checked.get, (checked) => !checked.includes(url))),
            Stream.flatMap(
              (url): Stream.Stream<{ id: string; url: string }, unknown, ResourceState.ResourceState> =>
                url === failAt
                  ? Stream.fail("killed")
                  : Stream.fromEffect(Checked.update((checked) => [...checked, url])).pipe(
                      Stream.drain,
                      Stream.concat(
                        Stream.fromIterable(Array.from({ length: 350 }, (_, i) => ({ id: `${url}#${i}`, url }))).pipe(
                          Stream.rechunk(120)
                        )
                      )
                    )
            )
          )
        )
      const failed = yield* Effect.exit(
        run(dir, destination, Source.make({ name: "src", resources: [games("2024/10")] }), {
          checkpoint: { rows: 1_000 }
        })
      )
      expect(Exit.isFailure(failed)).toBe(true)
      const checked = slot((yield* states(destination, dir)).remote, "games").archives as ReadonlyArray<string>
      const d = yield* Effect.provide(Destination.Destination, destination)
      const access = yield* d.dataset({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") })
      const urls = (yield* access.execute(`SELECT DISTINCT url FROM ${access.table("games")} ORDER BY url`)).map(
        (r) => r.url
      )
      // committed at the cuts after archives 3 and 6 (the first cut past 1,000 rows: a cut is seen
      // when the records of the next archive arrive, and archive 10 died before it had any)
      expect(checked).toEqual(archives.slice(0, 6))
      expect(urls).toEqual(checked)
      const resumed = yield* run(dir, destination, Source.make({ name: "src", resources: [games()] }), {
        checkpoint: { rows: 1_000 }
      })
      expect(resumed.tables.games).toBe(6 * 350)
      const all = yield* access.execute(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM ${access.table("games")}`)
      expect(all[0]).toEqual({ n: 12 * 350, d: 12 * 350 })
    })
  )

  it.scoped("the spool holds one checkpoint interval at a time; `every` commits at each cut once due", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const spools: Array<ReadonlyArray<string>> = []
      const watched = Resource.make(
        { name: "pages", writeDisposition: "append", checkpoint: { every: 0 } },
        Stream.range(0, 7).pipe(
          Stream.flatMap((page) =>
            Stream.fromEffect(
              Effect.zipRight(
                Effect.sync(() => spools.push(NodeFs.readdirSync(NodePath.join(dir, "p", "load")))),
                Next.set(page + 1)
              )
            ).pipe(
              Stream.drain,
              Stream.concat(Stream.fromIterable(Array.from({ length: 400 }, (_, i) => ({ id: page * 400 + i }))))
            )
          )
        )
      )
      const summary = yield* run(dir, destination, Source.make({ name: "src", resources: [watched] }))
      // a checkpoint at every cut (pages 0..6), the last page in the final commit
      expect(summary.checkpoints?.length).toBe(7)
      expect(spools.every((entries) => entries.length <= 1)).toBe(true)
      // page p sees the spool of interval p (page 0 and 1: the first), never more than one
      expect(new Set(spools.flat()).size).toBe(7)
      expect(NodeFs.readdirSync(NodePath.join(dir, "p", "load"))).toEqual([])
    })
  )
  it.scoped("a resource that keeps no state commits with the final commit only: no row twice after a kill", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      // 5,000 rows: past the 10 batches a resource may go without a cut; 700 rows: below
      const stateless = (name: string, n: number) =>
        Resource.make(
          { name, writeDisposition: "append" },
          Stream.fromIterable(Array.from({ length: n }, (_, id) => ({ id }))).pipe(Stream.rechunk(250))
        )
      const source = (failAt?: number) =>
        Source.make({
          name: "src",
          resources: [
            stateless("big", 5_000),
            stateless("small", 700),
            paged({ name: "pages", pages: 12, pageSize: 500, chunk: 170, ...(failAt === undefined ? {} : { failAt }) })
          ]
        })
      const failed = yield* Effect.exit(
        run(dir, destination, source(10), { checkpoint: { rows: 1_000 }, concurrency: 1 })
      )
      expect(Exit.isFailure(failed)).toBe(true)
      expect((yield* ids(destination, dir, "big")).length).toBe(0)
      expect((yield* ids(destination, dir, "small")).length).toBe(0)
      expect((yield* ids(destination, dir, "pages")).length).toBeGreaterThan(0)
      yield* run(dir, destination, source(), { checkpoint: { rows: 1_000 }, concurrency: 1 })
      expect((yield* ids(destination, dir, "big")).length).toBe(5_000)
      expect((yield* ids(destination, dir, "small")).length).toBe(700)
      expectConsistent(yield* ids(destination, dir, "pages"), 12, 500)
    })
  )
  it.scoped("an unusable checkpoint option fails the run before it extracts, naming the option", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const pages = paged({ name: "pages", pages: 2, pageSize: 10, chunk: 3 })
      const zero = (yield* Effect.flip(
        run(dir, destination, Source.make({ name: "src", resources: [pages] }), { checkpoint: { rows: 0 } })
      )) as { readonly _tag?: string; readonly message?: string }
      expect(zero._tag).toBe("InvalidCheckpoint")
      expect(zero.message).toContain("the pipeline: rows is 0")
      const soon = paged({ name: "soon", pages: 2, pageSize: 10, chunk: 3, checkpoint: { every: "soon" as never } })
      const bad = (yield* Effect.flip(run(dir, destination, Source.make({ name: "src", resources: [soon] })))) as {
        readonly message?: string
      }
      expect(bad.message).toContain("resource soon: every is soon")
      for (const every of [-5, Number.NaN, "-5 seconds", -5n, [-1, 0]] as const) {
        const error = (yield* Effect.flip(
          run(dir, destination, Source.make({ name: "src", resources: [pages] }), {
            checkpoint: { every: every as Duration.DurationInput }
          })
        )) as { readonly _tag?: string; readonly message?: string }
        expect(error._tag, String(every)).toBe("InvalidCheckpoint")
        expect(error.message).toContain("zero or more")
      }
      expect(yield* ids(destination, dir, "pages")).toEqual([])
    })
  )
})

describe.skipIf(!postgresAvailable)("Checkpoint on PostgreSQL", () => {
  it.scoped("a killed run resumes from its last checkpoint; history names the run and its checkpoints", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset("ckpt")
      const destination = yield* Layer.memoize(Layer.orDie(testDestination()))
      const layer = Pipeline.layerNode({
        name: "p",
        dataset,
        pipelinesDir: dir,
        batchSize: 300,
        checkpoint: { rows: 1_200 }
      })
      const base = { name: "pages", pages: 12, pageSize: 500, chunk: 170 }
      const once = (failAt?: number) =>
        Pipeline.run(
          Source.make({ name: "src", resources: [paged({ ...base, ...(failAt === undefined ? {} : { failAt }) })] })
        ).pipe(Effect.provide(layer), Effect.provide(destination))
      expect(Exit.isFailure(yield* Effect.exit(once(7)))).toBe(true)
      const count = async () =>
        (
          await query<{ n: string; d: string }>(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM "${dataset}".pages`)
        )[0]
      // checkpoints after pages 2 and 5 (the cut at 6 is seen; 6 itself dies at 7's start)
      expect(yield* Effect.promise(count)).toEqual({ n: "3000", d: "3000" })
      const summary = yield* once()
      expect(summary.tables.pages).toBe(3_000)
      expect(yield* Effect.promise(count)).toEqual({ n: "6000", d: "6000" })
      const versions = yield* History.list({ limit: 20 }).pipe(Effect.provide(layer), Effect.provide(destination))
      const runs = versions.filter((v) => v.run?.runId === summary.runId)
      expect(runs.map((v) => [v.run?.checkpoint, v.run?.final])).toEqual([
        [2, true],
        [1, false]
      ])
      // the killed run's checkpoints carry a run id of their own, without a final commit
      const killed = versions.filter((v) => v.run !== undefined && v.run.runId !== summary.runId)
      expect(killed.map((v) => v.run?.final)).toEqual([false, false])
    })
  )
})
