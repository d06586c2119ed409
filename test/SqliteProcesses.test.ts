/**
 * Processes sharing one SQLite dataset. A load writes its rows straight into the file inside one
 * transaction, from its first row to its commit, and holds SQLite's write lock all that time: a
 * commit of another process waits for it (asynchronously, past better-sqlite3's 5 s busy timeout)
 * and then commits, or fails with a DestinationError naming the lock when `lockTimeout` passed
 * first. Nothing is lost either way.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Effect } from "effect"
import { tempDir } from "./helpers.js"
import { bundle, spawnScoped } from "./processes.js"

const FIXTURE = await bundle("test/fixtures/sqlite-writer.ts")

const counts = (file: string) => {
  const db = new Sqlite(file, { readonly: true })
  try {
    const count = (table: string) =>
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) === undefined
        ? 0
        : (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n
    const pipelines = (
      db.prepare("SELECT DISTINCT pipeline_name FROM _dlt_pipeline_state ORDER BY 1").all() as Array<{
        pipeline_name: string
      }>
    ).map((r) => r.pipeline_name)
    return { long: count("long"), short: count("short"), pipelines }
  } finally {
    db.close()
  }
}

const writers = (dir: string, short: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const common = [`--pipelines=${NodePath.join(dir, "pipelines")}`, `--data=${NodePath.join(dir, "data")}`]
    const hold = NodePath.join(dir, "release")
    const long = yield* spawnScoped(FIXTURE, [...common, "--name=long", "--rows=500", `--hold=${hold}`])
    yield* Effect.promise(() => long.waitFor("HOLDING", 60_000))
    const other = yield* spawnScoped(FIXTURE, [...common, "--name=short", "--rows=20", ...short])
    yield* Effect.promise(() => other.waitFor("COMMITTING", 60_000))
    return { long, other, release: () => NodeFs.writeFileSync(hold, "") }
  })

describe("processes sharing one SQLite dataset", () => {
  it.scopedLive(
    "a commit waits for another process's load holding the file's write lock, then commits",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const { long, other, release } = yield* writers(dir, [])
        // past better-sqlite3's 5 s busy timeout, which would have failed the commit
        yield* Effect.sleep("6 seconds")
        expect(other.hasExited()).toBe(false)
        release()
        const [a, b] = yield* Effect.promise(() => Promise.all([long.waitFor("OUTCOME"), other.waitFor("OUTCOME")]))
        expect(a).toContain("OUTCOME COMMITTED")
        expect(b).toContain("OUTCOME COMMITTED")
        expect(counts(NodePath.join(dir, "data", "shared.sqlite"))).toEqual({
          long: 500,
          short: 20,
          pipelines: ["long", "short"]
        })
      }),
    90_000
  )

  it.scopedLive(
    "past lockTimeout the waiting commit fails naming the lock; the holder commits; nothing is lost",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const { long, other, release } = yield* writers(dir, ["--lock-timeout=1000"])
        const failed = yield* Effect.promise(() => other.waitFor("OUTCOME", 30_000))
        expect(failed).toContain("OUTCOME ERROR")
        expect(failed).toContain("DestinationError")
        expect(failed).toContain("write lock")
        release()
        expect(yield* Effect.promise(() => long.waitFor("OUTCOME"))).toContain("OUTCOME COMMITTED")
        const after = counts(NodePath.join(dir, "data", "shared.sqlite"))
        expect(after.long).toBe(500)
        expect(after.pipelines).toEqual(["long"])
      }),
    90_000
  )
})
