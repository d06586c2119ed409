/**
 * The client SQLite's direct write commits through: its BEGIN joins the transaction the stage
 * opened on the connection, statements and streams run inside it, and nothing is visible to
 * another connection before COMMIT.
 */
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Chunk, Effect, Stream } from "effect"
import { BEGIN, joiningClient } from "../src/internal/destination/JoiningSqliteClient.js"
import { tempDir } from "./helpers.js"

describe("JoiningSqliteClient", () => {
  it.scopedLive("joins the open transaction; execute, stream and COMMIT run on it", () =>
    Effect.gen(function* () {
      const file = NodePath.join(yield* tempDir(), "j.sqlite")
      const db = new Sqlite(file)
      yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
      db.exec("CREATE TABLE t (id INTEGER)")
      db.exec(BEGIN)
      const insert = db.prepare("INSERT INTO t VALUES (?)")
      for (let i = 1; i <= 600; i++) insert.run(i)
      const sql = yield* joiningClient(db)

      const streamed = yield* sql.withTransaction(
        Effect.gen(function* () {
          yield* sql`INSERT INTO t VALUES (${601})`
          // streamed in chunks, inside the joined transaction (it sees the uncommitted rows)
          const rows = yield* Stream.runCollect(sql`SELECT id FROM t ORDER BY id`.stream)
          // a bad statement fails as a SqlError, not a defect
          const bad = yield* Effect.flip(Stream.runDrain(sql`SELECT nope FROM t`.stream))
          // another connection sees nothing yet
          const other = new Sqlite(file, { readonly: true })
          const seen = (other.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n
          other.close()
          return { ids: Chunk.toReadonlyArray(rows).map((r) => (r as { id: number }).id), bad: bad._tag, seen }
        })
      )
      expect(streamed.ids).toEqual(Array.from({ length: 601 }, (_, i) => i + 1))
      expect(streamed.bad).toBe("SqlError")
      expect(streamed.seen).toBe(0)
      expect(db.inTransaction).toBe(false)
      expect((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(601)
    })
  )
})
