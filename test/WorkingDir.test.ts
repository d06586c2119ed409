import { spawnSync } from "node:child_process"
import { homedir, hostname } from "node:os"
import { FileSystem, type Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Either, Exit, Option, Scope } from "effect"
import { empty, type PipelineState, withResourceSlot } from "../src/internal/state/PipelineState.js"
import { equals, type StateValue } from "../src/state/StateValue.js"
import {
  CorruptStateFile,
  InvalidPipelineName,
  listPipelines,
  make,
  PipelineLocked,
  resolvePipelinesDir,
  validatePipelineName,
  WorkingDirError
} from "../src/internal/pipeline/WorkingDir.js"

const state: PipelineState = withResourceSlot(
  empty({ pipelineName: "chess", datasetName: "chess_data" }),
  "chess",
  "players_games",
  { archives: ["a", "b"], amount: BigDecimal.unsafeFromString("1.50"), at: new Date("2024-01-01T00:00:00Z") }
)

const asValue = (s: PipelineState): StateValue => s as unknown as StateValue

const setup = (pipelineName = "chess") =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const pipelinesDir = yield* fs.makeTempDirectoryScoped({ prefix: "pipestate-wd-" })
    const wd = yield* make({ pipelinesDir, pipelineName })
    return { fs, pipelinesDir, wd }
  })

const run = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeContext.layer))

describe("WorkingDir state file", () => {
  it.live("reads None before the first write, then what was written", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs, pipelinesDir } = yield* setup()
        expect(wd.dir).toBe(`${pipelinesDir}/chess`)
        expect(wd.statePath).toBe(`${pipelinesDir}/chess/state.json`)
        expect(Option.isNone(yield* wd.readState)).toBe(true)
        yield* wd.writeState(state)
        const back = yield* wd.readState
        expect(Option.isSome(back) && equals(asValue(back.value), asValue(state))).toBe(true)
        const next = withResourceSlot(state, "chess", "players_games", { archives: ["c"] })
        yield* wd.writeState(next)
        const again = yield* wd.readState
        expect(Option.isSome(again) && equals(asValue(again.value), asValue(next))).toBe(true)
        expect((yield* fs.readFileString(wd.statePath)).startsWith('{\n  "_state_version": 0,')).toBe(true)
      })
    )
  )

  it.live("writes atomically, leaving no temporary file", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        for (let i = 0; i < 5; i++) yield* wd.writeState({ ...state, _state_version: i })
        expect(yield* fs.readDirectory(wd.dir)).toEqual(["state.json"])
        const back = yield* wd.readState
        expect(Option.isSome(back) && back.value._state_version).toBe(4)
      })
    )
  )

  it.live("fails with WorkingDirError on a state it cannot encode, keeping the old file", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        yield* wd.writeState(state)
        const bad = withResourceSlot(state, "chess", "r", { n: "x\ud800" })
        const error = yield* Effect.flip(wd.writeState(bad))
        expect(error).toBeInstanceOf(WorkingDirError)
        expect(error.message).toContain("sources.chess.resources.r.n")
        expect(yield* fs.readDirectory(wd.dir)).toEqual(["state.json"])
        expect(Option.isSome(yield* wd.readState)).toBe(true)
      })
    )
  )

  it.live("reports a truncated file or garbage bytes as CorruptStateFile naming the file", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        yield* wd.writeState(state)
        const text = yield* fs.readFileString(wd.statePath)
        yield* fs.writeFileString(wd.statePath, text.slice(0, Math.floor(text.length / 2)))
        const truncated = yield* Effect.flip(wd.readState)
        expect(truncated).toBeInstanceOf(CorruptStateFile)
        expect(truncated.message).toContain(wd.statePath)
        expect(truncated.message).toContain("pipestate pipeline chess sync")
        expect(truncated.message).toContain("delete the file")

        yield* fs.writeFile(wd.statePath, new Uint8Array([0xff, 0xfe, 0x00, 0x13, 0x37, 0x80]))
        const garbage = yield* Effect.flip(wd.readState)
        expect(garbage._tag).toBe("CorruptStateFile")
        expect(garbage.message).toContain(wd.statePath)

        yield* fs.writeFileString(wd.statePath, '{"pipeline_name": 1}')
        const wrong = yield* Effect.flip(wd.readState)
        expect(wrong._tag).toBe("CorruptStateFile")
      })
    )
  )

  it.live("deletes the state file, also when there is none", () =>
    run(
      Effect.gen(function* () {
        const { wd } = yield* setup()
        yield* wd.deleteState
        yield* wd.writeState(state)
        yield* wd.deleteState
        expect(Option.isNone(yield* wd.readState)).toBe(true)
      })
    )
  )

  it.live("puts load spools under load/<loadId>", () =>
    run(
      Effect.gen(function* () {
        const { wd } = yield* setup()
        expect(wd.spoolDir("1700000000.123")).toBe(`${wd.dir}/load/1700000000.123`)
      })
    )
  )
})

describe("WorkingDir lock", () => {
  it.live("excludes a second lock while the first scope is open, and allows it after", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        const scope = yield* Scope.make()
        yield* Scope.extend(wd.lock, scope)
        const holder = JSON.parse(yield* fs.readFileString(wd.lockPath)) as Record<string, unknown>
        expect(holder.pid).toBe(process.pid)
        expect(holder.hostname).toBe(hostname())
        expect(typeof holder.acquiredAt).toBe("string")

        const second = yield* Effect.flip(Effect.scoped(wd.lock))
        expect(second).toBeInstanceOf(PipelineLocked)
        if (second instanceof PipelineLocked) {
          expect(second.pid).toBe(process.pid)
          expect(second.message).toContain(`process ${process.pid}`)
          expect(second.message).toContain(wd.lockPath)
          expect(second.message).toContain("delete the lock file")
        }

        yield* Scope.close(scope, Exit.void)
        expect(yield* fs.exists(wd.lockPath)).toBe(false)
        yield* Effect.scoped(wd.lock)
        expect(yield* fs.exists(wd.lockPath)).toBe(false)
      })
    )
  )

  it.live("takes over the lock of a process that has exited", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        const child = spawnSync(process.execPath, ["-e", ""])
        expect(child.status).toBe(0)
        const deadPid = child.pid!
        yield* fs.writeFileString(
          wd.lockPath,
          JSON.stringify({ pid: deadPid, hostname: hostname(), acquiredAt: "2024-01-01T00:00:00.000Z" })
        )
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* wd.lock
            const holder = JSON.parse(yield* fs.readFileString(wd.lockPath)) as Record<string, unknown>
            expect(holder.pid).toBe(process.pid)
          })
        )
        expect(yield* fs.exists(wd.lockPath)).toBe(false)
      })
    )
  )

  it.live("respects a lock held on another host", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        yield* fs.writeFileString(
          wd.lockPath,
          JSON.stringify({ pid: 1234567, hostname: "elsewhere.example", acquiredAt: "2024-01-01T00:00:00.000Z" })
        )
        const error = yield* Effect.flip(Effect.scoped(wd.lock))
        expect(error._tag).toBe("PipelineLocked")
        expect(error.message).toContain("elsewhere.example")
        expect(yield* fs.exists(wd.lockPath)).toBe(true)
      })
    )
  )

  it.live("a lock file that is empty or unreadable is debris and is taken over at once", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        // what a writer killed while creating the lock left behind (before locks were linked into place)
        yield* fs.writeFileString(wd.lockPath, "")
        yield* Effect.scoped(wd.lock)
        expect(yield* fs.exists(wd.lockPath)).toBe(false)
        yield* fs.writeFileString(wd.lockPath, "{garbage")
        yield* Effect.scoped(wd.lock)
        expect(yield* fs.exists(wd.lockPath)).toBe(false)
      })
    )
  )

  it.live(
    "a writer killed between writing and linking its lock leaves a temporary file, removed by the next lock",
    () =>
      run(
        Effect.gen(function* () {
          const { wd, fs } = yield* setup()
          yield* fs.writeFileString(`${wd.lockPath}.0123456789ab.tmp`, '{"pid":1')
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* wd.lock
              expect((yield* fs.readDirectory(wd.dir)).sort()).toEqual([".lock"])
            })
          )
        })
      )
  )

  it.live("the lock file is never seen empty or partial while locks come and go", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        const seen: Array<string> = []
        let done = false
        const reader = Effect.gen(function* () {
          while (!done) {
            const text = yield* fs.readFileString(wd.lockPath).pipe(Effect.orElseSucceed(() => undefined))
            if (text !== undefined) seen.push(text)
            yield* Effect.yieldNow()
          }
        })
        const writer = Effect.gen(function* () {
          for (let i = 0; i < 200; i++) yield* Effect.scoped(wd.lock)
          done = true
        })
        yield* Effect.all([reader, writer], { concurrency: 2 })
        for (const text of seen) expect(() => JSON.parse(text)).not.toThrow()
      })
    )
  )

  it.live("removes temporary files of crashed writes once locked", () =>
    run(
      Effect.gen(function* () {
        const { wd, fs } = yield* setup()
        yield* wd.writeState(state)
        yield* fs.writeFileString(`${wd.statePath}.deadbeef.tmp`, "{")
        yield* Effect.scoped(wd.lock)
        expect(yield* fs.readDirectory(wd.dir)).toEqual(["state.json"])
      })
    )
  )
})

describe("WorkingDir locations and names", () => {
  it.live("resolves the pipelines dir: override, then env, then home", () =>
    Effect.gen(function* () {
      const saved = process.env.PIPESTATE_PIPELINES_DIR
      try {
        process.env.PIPESTATE_PIPELINES_DIR = "/tmp/from-env"
        expect(yield* resolvePipelinesDir("/tmp/override")).toBe("/tmp/override")
        expect(yield* resolvePipelinesDir()).toBe("/tmp/from-env")
        delete process.env.PIPESTATE_PIPELINES_DIR
        expect(yield* resolvePipelinesDir()).toBe(`${homedir()}/.pipestate/pipelines`)
        process.env.PIPESTATE_PIPELINES_DIR = ""
        expect(yield* resolvePipelinesDir()).toBe(`${homedir()}/.pipestate/pipelines`)
      } finally {
        if (saved === undefined) delete process.env.PIPESTATE_PIPELINES_DIR
        else process.env.PIPESTATE_PIPELINES_DIR = saved
      }
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.live("rejects names that cannot name a directory", () =>
    run(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const pipelinesDir = yield* fs.makeTempDirectoryScoped()
        for (const name of ["", "a/b", "a\\b", "..", "../etc", "x..y", "a\0b", ".", "x".repeat(201)]) {
          const error = yield* Effect.flip(make({ pipelinesDir, pipelineName: name }))
          expect(error).toBeInstanceOf(InvalidPipelineName)
          expect(error.message).toContain("is not a valid pipeline name")
        }
        expect(yield* fs.readDirectory(pipelinesDir)).toEqual([])
        for (const name of ["chess", "chess pipeline", "x".repeat(200), ".hidden", "é"]) {
          expect(Either.isRight(validatePipelineName(name))).toBe(true)
        }
      })
    )
  )

  it.live("lists the pipelines that have a state file", () =>
    run(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const pipelinesDir = yield* fs.makeTempDirectoryScoped()
        for (const name of ["zeta", "alpha", "empty"]) {
          const wd = yield* make({ pipelinesDir, pipelineName: name })
          if (name !== "empty") yield* wd.writeState(state)
        }
        yield* fs.writeFileString(`${pipelinesDir}/stray.json`, "{}")
        expect(yield* listPipelines(pipelinesDir)).toEqual(["alpha", "zeta"])
        expect(yield* listPipelines(`${pipelinesDir}/missing`)).toEqual([])
      })
    )
  )
})
