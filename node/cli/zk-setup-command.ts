/**
 * `poi model zk-setup start|contribute|finalize`: the Groth16 setup ceremony of a model's
 * circuit, in a directory handed from one contributor to the next (node/inference/zk/ceremony.ts).
 */
import { join, resolve } from 'node:path'
import { contribute, finalizeCeremony, releaseCurve, startCeremony, type CeremonyRecord } from '../inference/zk/index.js'
import type { OptionValues } from './args.js'
import { UsageError } from './usage-error.js'

const START_OPTIONS = { dir: { type: 'string' }, ptau: { type: 'string' }, name: { type: 'string' } } as const
const CONTRIBUTE_OPTIONS = { dir: { type: 'string' }, name: { type: 'string' }, entropy: { type: 'string' } } as const
const FINALIZE_OPTIONS = { dir: { type: 'string' } } as const

const progress = (line: string): void => { console.error(line) }

/** Runs one step of the ceremony, then ends snarkjs's curve workers so the command exits. */
async function step<T> (run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } finally {
    await releaseCurve()
  }
}

function dirOf (values: { dir?: string }): string {
  if (values.dir === undefined) throw new UsageError('--dir <ceremony dir> is required')
  return resolve(values.dir)
}

/** `poi model zk-setup start <circuit.r1cs> --dir <dir> [--ptau <file>] [--name <who>]`. */
export async function runZkSetupStart (values: OptionValues<typeof START_OPTIONS>, positionals: string[]): Promise<void> {
  const r1cs = positionals[0]
  if (r1cs === undefined) throw new UsageError('usage: poi model zk-setup start <circuit.r1cs> --dir <ceremony dir> [--ptau <prepared.ptau>] [--name <who>]')
  const dir = dirOf(values)
  const record = await step(async () => await startCeremony(r1cs, values.ptau, dir, { name: values.name, onProgress: progress }))
  console.log([
    `ceremony started in ${dir}`,
    `  circuit          ${record.circuit.constraints} constraints, ${record.circuit.publicInputs} public inputs (sha256 ${record.circuit.r1csSha256})`,
    `  powers of tau    2^${record.ptau.power}, ${record.ptau.source === 'generated' ? `generated here by ${record.ptau.generatedBy ?? 'this node'} (trusted for it)` : 'supplied'} (sha256 ${record.ptau.sha256})`,
    `  first key        ${record.initial.file} (sha256 ${record.initial.zkeySha256})`,
    `next: each contributor runs \`poi model zk-setup contribute --dir ${dir} --name <who>\`, then \`poi model zk-setup finalize --dir ${dir}\``
  ].join('\n'))
}

/** `poi model zk-setup contribute --dir <dir> --name <who> [--entropy <text>]`. */
export async function runZkSetupContribute (values: OptionValues<typeof CONTRIBUTE_OPTIONS>): Promise<void> {
  const dir = dirOf(values)
  if (values.name === undefined) throw new UsageError('--name <who> is required: it is written into the key and the record')
  const entry = await step(async () => await contribute(dir, { name: values.name as string, entropy: values.entropy, onProgress: progress }))
  console.log([
    `contribution ${entry.index} by ${entry.name}`,
    `  contribution hash  ${entry.contributionHash}`,
    `  key                ${entry.file} (sha256 ${entry.zkeySha256})`,
    '(publish the contribution hash: anyone can check it is in the final key with `poi model zk-setup finalize`)'
  ].join('\n'))
}

/** `poi model zk-setup finalize --dir <dir>`. */
export async function runZkSetupFinalize (values: OptionValues<typeof FINALIZE_OPTIONS>): Promise<void> {
  const dir = dirOf(values)
  const { record } = await step(async () => await finalizeCeremony(dir, { onProgress: progress }))
  const final = record.final as NonNullable<CeremonyRecord['final']>
  console.log([
    `ceremony finalized in ${dir}`,
    `  verification key  ${join(dir, final.verificationKeyFile)} (sha256 ${final.verificationKeySha256})`,
    `  proving key       ${join(dir, final.zkeyFile)} (sha256 ${final.zkeySha256})`,
    ...record.contributions.map(c => `  contribution ${c.index}    ${c.name}: ${c.contributionHash}`)
  ].join('\n'))
}
