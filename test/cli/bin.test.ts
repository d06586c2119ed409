/**
 * The built `pipestate` executable (dist/bin/pipestate.js) as a child process, with stdin a pipe (no TTY):
 * what only a real process shows — exit codes, `--help` and `--version`, and the config file found
 * in the process's working directory. What the commands do is tested in this process (cli.test.ts).
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import * as Destination from "../../src/destination/index.js"
import { VERSION } from "../../src/cli/main.js"
import { makeTempDir } from "../helpers.js"
import { cli, ensureBuilt, hasStackTrace, runShop } from "./fixtures.js"

const BUILD_TIMEOUT = 240_000

beforeAll(() => ensureBuilt(), BUILD_TIMEOUT)

describe("the pipestate executable", () => {
  it("--help lists the commands and exits 0; --version prints the version", async () => {
    const [help, pipelineHelp, version] = await Promise.all([
      cli(["--help"]),
      cli(["pipeline", "--help"]),
      cli(["--version"])
    ])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("pipestate")
    expect(help.stdout).toContain("pipeline")
    expect(pipelineHelp.status).toBe(0)
    for (const command of ["list", "info", "sync", "drop", "history", "restore", "schema"]) {
      expect(pipelineHelp.stdout).toContain(command)
    }
    expect(version.status).toBe(0)
    expect(version.stdout).toContain(VERSION)
    // stdout and stderr are pipes here: no terminal color codes in help or in a usage error
    const usage = await cli(["pipeline", "nowhere", "restore", "--version", "0", "--dry-rn"])
    expect(usage.status).toBe(1)
    for (const text of [help.stdout, pipelineHelp.stdout, usage.stdout, usage.stderr]) {
      expect(text).not.toContain("\u001b[")
    }
  })

  it("--help and a bad flag load neither the pipeline nor a driver (the commands' work is imported when one runs)", async () => {
    const dir = makeTempDir("pipestate-bin-lazy-")
    try {
      const refused = [
        "better-sqlite3",
        "pg",
        "pg-copy-streams",
        "smol-toml",
        "@effect/sql",
        "@effect/sql-pg",
        "@effect/sql-sqlite-node",
        "@effect/experimental"
      ]
      const hook = NodePath.join(dir, "hook.mjs")
      NodeFs.writeFileSync(
        hook,
        `const refused = ${JSON.stringify(refused)}
export async function resolve(specifier, context, next) {
  if (refused.some((name) => specifier === name || specifier.startsWith(name + "/")) || /\\/(Handlers|sqlite|postgres)[-.][^/]*$/.test(specifier)) {
    throw new Error("refused to load " + specifier)
  }
  return next(specifier, context)
}
`
      )
      const register = NodePath.join(dir, "register.mjs")
      NodeFs.writeFileSync(
        register,
        `import { register } from "node:module"\nregister(${JSON.stringify(`file://${hook}`)})\n`
      )
      const guarded = (args: ReadonlyArray<string>) =>
        new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolve) =>
          execFile(
            process.execPath,
            [
              "--import",
              register,
              NodePath.join(import.meta.dirname, "..", "..", "dist", "bin", "pipestate.js"),
              ...args
            ],
            { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
            (error, stdout, stderr) =>
              resolve({ code: error === null ? 0 : (error.code as number | null), stdout, stderr })
          )
        )
      const [help, bad, command] = await Promise.all([
        guarded(["--help"]),
        guarded(["pipeline", "p", "history", "--limit", "many"]),
        guarded(["pipeline", "list", "--pipelines-dir", dir])
      ])
      expect(help.stderr).toBe("")
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("pipeline")
      expect(bad.code).toBe(1)
      expect(bad.stderr).not.toContain("refused to load")
      // the guard works: running a command needs what --help does without
      expect(command.code).toBe(1)
      expect(command.stderr).toContain("refused to load")
    } finally {
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("exit code 0 on success, 1 on a failed command and on a bad flag, with a message and no stack trace", async () => {
    const dir = makeTempDir("pipestate-bin-")
    try {
      const env = { PIPESTATE_PIPELINES_DIR: dir }
      const [ok, unknown, bad] = await Promise.all([
        cli(["pipeline", "list"], { env }),
        cli(["pipeline", "nowhere", "info"], { env }),
        cli(["pipeline", "nowhere", "history", "--limit", "many"], { env })
      ])
      expect(ok.status).toBe(0)
      expect(ok.stdout).toContain(`no pipelines in ${dir}`)
      expect(unknown.status).toBe(1)
      expect(unknown.stderr).toContain("nowhere")
      expect(hasStackTrace(unknown.stderr + unknown.stdout)).toBe(false)
      expect(bad.status).toBe(1)
      expect(bad.stderr).toContain("many")
      expect(hasStackTrace(bad.stderr + bad.stdout)).toBe(false)
    } finally {
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("a clean machine restores through the config file's SQLite directory", async () => {
    const dataDir = makeTempDir("pipestate-cli-data-")
    const first = makeTempDir("pipestate-cli-a-")
    const second = makeTempDir("pipestate-cli-b-")
    const project = makeTempDir("pipestate-cli-project-")
    try {
      await Effect.runPromise(
        runShop({ pipelinesDir: first, dataset: "shared" }, Destination.sqlite({ directory: dataDir }))
      )
      NodeFs.mkdirSync(NodePath.join(project, ".pipestate"))
      NodeFs.writeFileSync(
        NodePath.join(project, ".pipestate", "config.toml"),
        `[destination.sqlite]\ndirectory = ${JSON.stringify(dataDir)}\n`
      )
      const opts = { cwd: project, env: { PIPESTATE_PIPELINES_DIR: second } }
      const synced = await cli(["pipeline", "shop_pipeline", "sync", "--dataset", "shared", "--yes"], opts)
      expect(synced.status).toBe(0)
      expect(synced.stdout).toContain(`dataset shared (${NodePath.join(dataDir, "shared.sqlite")})`)
      const info = await cli(["pipeline", "shop_pipeline", "info"], opts)
      expect(info.stdout).toContain("state version:  0")
      expect(info.stdout).toMatch(
        /destination\.sqlite\.directory\s+\S+\s+file \S+config\.toml \(destination\.sqlite\.directory\)/
      )
    } finally {
      for (const d of [dataDir, first, second, project]) NodeFs.rmSync(d, { recursive: true, force: true })
    }
  })
})
