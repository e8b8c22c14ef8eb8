/**
 * The headers of iden3's binary files (r1cs from circom, ptau from snarkjs), read without
 * loading the files: a ceremony sizes its powers of tau from the r1cs, and checks a supplied
 * ptau, before any long work. Layout: 4-byte magic, u32 version, u32 section count, then
 * sections of (u32 type, u64 size, data), little-endian.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { BN254_SCALAR_FIELD } from '../../../protocols/wire/index.js'
import { CeremonyError } from './errors.js'


/** A header is a few dozen bytes; a larger one is not a file of ours. */
const MAX_HEADER_BYTES = 1024

interface Section { offset: number, size: number }

async function readExactly (fd: FileHandle, length: number, position: number, file: string): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  const { bytesRead } = await fd.read(buf, 0, length, position)
  if (bytesRead !== length) throw new CeremonyError(`${file} is truncated (ended at byte ${position + bytesRead})`)
  return buf
}

/** The sections of an iden3 binary file, by type (the first of each type). */
async function readSections (fd: FileHandle, file: string, magic: string): Promise<Map<number, Section>> {
  const head = await readExactly(fd, 12, 0, file)
  if (head.toString('latin1', 0, 4) !== magic) throw new CeremonyError(`${file} is not a ${magic} file (it does not start with "${magic}")`)
  const count = head.readUInt32LE(8)
  const { size: fileSize } = await fd.stat()
  const sections = new Map<number, Section>()
  let position = 12
  for (let i = 0; i < count; i++) {
    const h = await readExactly(fd, 12, position, file)
    const size = Number(h.readBigUInt64LE(4))
    const offset = position + 12
    if (offset + size > fileSize) throw new CeremonyError(`${file} is truncated: section ${h.readUInt32LE(0)} runs past its end`)
    if (!sections.has(h.readUInt32LE(0))) sections.set(h.readUInt32LE(0), { offset, size })
    position = offset + size
  }
  return sections
}

async function headerSection (fd: FileHandle, sections: Map<number, Section>, file: string): Promise<Buffer> {
  const s = sections.get(1)
  if (s === undefined || s.size > MAX_HEADER_BYTES) throw new CeremonyError(`${file} has no readable header section`)
  return await readExactly(fd, s.size, s.offset, file)
}

function readField (buf: Buffer, at: number, n8: number): bigint {
  return BigInt('0x' + Buffer.from(buf.subarray(at, at + n8)).reverse().toString('hex'))
}

export interface R1csHeader {
  constraints: number
  publicInputs: number
  publicOutputs: number
  privateInputs: number
  wires: number
}

/** The sizes of a circuit, from its r1cs; refused unless it is over BN254. */
export async function readR1csHeader (file: string): Promise<R1csHeader> {
  const fd = await openFile(file)
  try {
    const h = await headerSection(fd, await readSections(fd, file, 'r1cs'), file)
    const n8 = h.readUInt32LE(0)
    if (readField(h, 4, n8) !== BN254_SCALAR_FIELD) throw new CeremonyError(`${file} is a circuit over another field than BN254's (compile it with circom's default prime, bn128)`)
    const at = 4 + n8
    return {
      wires: h.readUInt32LE(at),
      publicOutputs: h.readUInt32LE(at + 4),
      publicInputs: h.readUInt32LE(at + 8),
      privateInputs: h.readUInt32LE(at + 12),
      constraints: h.readUInt32LE(at + 24)
    }
  } finally {
    await fd.close()
  }
}

/**
 * The powers of tau a circuit needs: the smallest power with 2^power > constraints + public
 * inputs and outputs (snarkjs's zkey_new: its domain holds those, plus one).
 */
export function ptauPowerFor (r1cs: R1csHeader): number {
  const n = r1cs.constraints + r1cs.publicInputs + r1cs.publicOutputs
  let power = 1
  while (2 ** power <= n) power++
  return power
}

export interface PtauHeader {
  power: number
  /** Whether `powersoftau prepare phase2` ran (section 12, the Lagrange bases Groth16 setup reads). */
  prepared: boolean
}

export async function readPtauHeader (file: string): Promise<PtauHeader> {
  const fd = await openFile(file)
  try {
    const sections = await readSections(fd, file, 'ptau')
    const h = await headerSection(fd, sections, file)
    const n8 = h.readUInt32LE(0)
    return { power: h.readUInt32LE(4 + n8), prepared: sections.has(12) }
  } finally {
    await fd.close()
  }
}

async function openFile (file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r')
  } catch (err) {
    throw new CeremonyError(`cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
}
