/**
 * `--profile <dir>`: a CPU profile of just the measured runs (not startup, not the baseline), taken
 * with the inspector, written as <dir>/<name>.cpuprofile for bench/profile.ts.
 */
import * as NodeFs from "node:fs"
import { Session } from "node:inspector/promises"
import * as NodePath from "node:path"

/** Starts sampling every `intervalUs`; the returned function stops and writes the profile. */
export const startProfile = async (
  dir: string,
  name: string,
  intervalUs = 100
): Promise<(log: (line: string) => void) => Promise<void>> => {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: intervalUs })
  await session.post("Profiler.start")
  return async (log) => {
    const { profile } = await session.post("Profiler.stop")
    session.disconnect()
    NodeFs.mkdirSync(dir, { recursive: true })
    const file = NodePath.join(dir, `${name}.cpuprofile`)
    NodeFs.writeFileSync(file, JSON.stringify(profile))
    log(`  profile written: ${file}`)
  }
}
