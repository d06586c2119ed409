/**
 * The package's public face: the root export is the small set of namespaces a user needs, and
 * importing it loads no driver (better-sqlite3, pg, @effect/sql-*) and not @effect/platform-node;
 * the drivers are the subpath modules. Checked on the built package in a child process whose module
 * loader refuses the heavy modules.
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { ensureBuilt } from "./cli/fixtures.js"

const root = NodePath.resolve(import.meta.dirname, "..")

beforeAll(() => ensureBuilt(), 240_000)

/** runs `code` as an ES module with a resolve hook that fails on the modules in `refused` */
const runGuarded = (code: string, refused: ReadonlyArray<string>) => {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pipestate-face-"))
  const hook = NodePath.join(dir, "hook.mjs")
  NodeFs.writeFileSync(
    hook,
    `const refused = ${JSON.stringify(refused)}
export async function resolve(specifier, context, next) {
  if (refused.some((name) => specifier === name || specifier.startsWith(name + "/"))) {
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
  const script = NodePath.join(dir, "main.mjs")
  NodeFs.writeFileSync(script, code)
  return new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      ["--import", register, script],
      { cwd: root, encoding: "utf8" },
      (error, stdout, stderr) => {
        NodeFs.rmSync(dir, { recursive: true, force: true })
        resolve({ code: error === null ? 0 : (error.code as number | null), stdout, stderr })
      }
    )
  )
}

const HEAVY = [
  "better-sqlite3",
  "pg",
  "pg-copy-streams",
  "@effect/sql-pg",
  "@effect/sql-sqlite-node",
  "@effect/platform-node"
]

describe("public face", () => {
  it("the root export is the user's namespaces and loads no driver", async () => {
    const result = await runGuarded(
      `const m = await import(${JSON.stringify(NodePath.join(root, "dist", "index.js"))})\nconsole.log(Object.keys(m).sort().join(","))\n`,
      HEAVY
    )
    expect(result.stderr).toBe("")
    expect(result.stdout.trim()).toBe(
      "Dataset,Destination,Drop,History,Incremental,Orchestrator,Pipeline,PipelineContext,PipestateConfig,Progress,Resource,ResourceState,Source,SourceState,StateValue"
    )
  })

  it("the drivers are the subpath modules", async () => {
    const result = await runGuarded(
      [
        `const sqlite = await import(${JSON.stringify(NodePath.join(root, "dist", "sqlite.js"))})`,
        `const postgres = await import(${JSON.stringify(NodePath.join(root, "dist", "postgres.js"))})`,
        `const sql = await import(${JSON.stringify(NodePath.join(root, "dist", "sql.js"))})`,
        `const cluster = await import(${JSON.stringify(NodePath.join(root, "dist", "cluster.js"))})`,
        "console.log([typeof sqlite.layer, typeof sqlite.memoryLayer, typeof postgres.layer, typeof sql.make, typeof cluster.layerCluster].join(','))"
      ].join("\n"),
      []
    )
    expect(result.stderr).toBe("")
    expect(result.stdout.trim()).toBe("function,function,function,function,function")
    const exports = JSON.parse(NodeFs.readFileSync(NodePath.join(root, "package.json"), "utf8")).exports
    expect(Object.keys(exports).sort()).toEqual([".", "./cluster", "./package.json", "./postgres", "./sql", "./sqlite"])
  })
})
