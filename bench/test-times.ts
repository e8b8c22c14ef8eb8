/**
 * Wall time of each test file, to find what makes `npm test` slow.
 *
 * Runs every dist/test/**\/*.test.js file (or the files given as arguments) in its own mocha
 * process, `--jobs` at a time (default 2, like `npm test`), and prints a table sorted slowest
 * first with the file's wall time, its test count and whether it passed. A file's own process is
 * the unit mocha --parallel schedules too, so these times add up to the suite's critical path.
 * A failed test's title and message go to stderr with the progress lines.
 *
 * Usage: npm run build && node dist/bench/test-times.js [--jobs N] [dist/test/x.test.js ...]
 */
import { spawn } from 'node:child_process'
import { access, readdir } from 'node:fs/promises'
import { join } from 'node:path'

/** How many files run at once by default: the same as `npm test`'s --jobs. */
const DEFAULT_JOBS = 2

type FileTime = { file: string, seconds: number, cpuSeconds: number, tests: number, failures: number, code: number | null }

/**
 * GNU time, when installed, adds each file's CPU time (user + system, its child processes
 * included: nodes, anvil): on a machine shared with other work, wall times swing with the load
 * but CPU time says what a file costs.
 */
const GNU_TIME = '/usr/bin/time'

async function testFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.filter(name => name.endsWith('.test.js')).map(name => join(dir, name)).sort()
}

async function timeFile (file: string, withCpu: boolean): Promise<FileTime> {
  const started = performance.now()
  const mocha = [process.execPath, 'node_modules/mocha/bin/mocha.js', '--reporter', 'json', file]
  return await new Promise((resolve, reject) => {
    const child = withCpu
      ? spawn(GNU_TIME, ['-f', 'cpu %U %S', ...mocha], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(mocha[0], mocha.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
    child.on('error', reject)
    child.on('close', code => {
      const seconds = (performance.now() - started) / 1000
      const cpu = /^cpu ([\d.]+) ([\d.]+)$/m.exec(err)
      const cpuSeconds = cpu === null ? NaN : Number(cpu[1]) + Number(cpu[2])
      let tests = 0
      let failures = 0
      try {
        const report = JSON.parse(out.slice(out.indexOf('{'))) as { stats: { tests: number, failures: number }, failures: Array<{ fullTitle: string, err: { message?: string } }> }
        tests = report.stats.tests
        failures = report.stats.failures
        for (const f of report.failures) process.stderr.write(`  FAILED ${file}: ${f.fullTitle}: ${(f.err.message ?? '').slice(0, 500)}\n`)
      } catch { failures = -1 }
      resolve({ file, seconds, cpuSeconds, tests, failures, code })
    })
  })
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  let jobs = DEFAULT_JOBS
  const jobsAt = args.indexOf('--jobs')
  if (jobsAt >= 0) { jobs = Number(args[jobsAt + 1]); args.splice(jobsAt, 2) }
  const files = args.length > 0 ? args : await testFiles('dist/test')
  const withCpu = await access(GNU_TIME).then(() => true, () => false)
  const queue = [...files]
  const times: FileTime[] = []
  const started = performance.now()
  await Promise.all(Array.from({ length: jobs }, async () => {
    for (let file = queue.shift(); file != null; file = queue.shift()) {
      const time = await timeFile(file, withCpu)
      times.push(time)
      process.stderr.write(`${time.seconds.toFixed(1).padStart(6)} s ${time.cpuSeconds.toFixed(1).padStart(6)} s cpu  ${file}\n`)
    }
  }))
  const wall = (performance.now() - started) / 1000
  times.sort((a, b) => b.seconds - a.seconds)
  console.log('| file | wall s | cpu s | tests | result |')
  console.log('|---|---:|---:|---:|---|')
  for (const t of times) {
    const result = t.code === 0 ? 'pass' : `FAIL (${t.failures < 0 ? 'no report' : `${t.failures} failed`})`
    console.log(`| ${t.file.replace(/^dist\/test\//, '')} | ${t.seconds.toFixed(1)} | ${t.cpuSeconds.toFixed(1)} | ${t.tests} | ${result} |`)
  }
  console.log(`\n${files.length} files, ${jobs} at a time: ${wall.toFixed(0)} s wall, ${times.reduce((s, t) => s + t.seconds, 0).toFixed(0)} s summed, ${times.reduce((s, t) => s + t.cpuSeconds, 0).toFixed(0)} s of CPU`)
}

await main()
