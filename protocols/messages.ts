import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface TaskAnnouncement {
  version: number
  chainId: bigint
  modelId: Uint8Array<ArrayBuffer>
  input: Uint8Array<ArrayBuffer>
  inputRef: Uint8Array<ArrayBuffer>
  params: Uint8Array<ArrayBuffer>
  fee: Uint8Array<ArrayBuffer>
  deadline: bigint
  quorumBps: number
  nonce: bigint
  requester: Uint8Array<ArrayBuffer>
  requesterSig: Uint8Array<ArrayBuffer>
}

export namespace TaskAnnouncement {
  let _codec: Codec<TaskAnnouncement>

  export const codec = (): Codec<TaskAnnouncement> => {
    if (_codec == null) {
      _codec = message<TaskAnnouncement>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.chainId != null && obj.chainId !== 0n)) {
          w.uint32(16)
          w.uint64(obj.chainId)
        }

        if ((obj.modelId != null && obj.modelId.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.modelId)
        }

        if ((obj.input != null && obj.input.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.input)
        }

        if ((obj.inputRef != null && obj.inputRef.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.inputRef)
        }

        if ((obj.params != null && obj.params.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.params)
        }

        if ((obj.fee != null && obj.fee.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.fee)
        }

        if ((obj.deadline != null && obj.deadline !== 0n)) {
          w.uint32(64)
          w.uint64(obj.deadline)
        }

        if ((obj.quorumBps != null && obj.quorumBps !== 0)) {
          w.uint32(72)
          w.uint32(obj.quorumBps)
        }

        if ((obj.nonce != null && obj.nonce !== 0n)) {
          w.uint32(80)
          w.uint64(obj.nonce)
        }

        if ((obj.requester != null && obj.requester.byteLength > 0)) {
          w.uint32(90)
          w.bytes(obj.requester)
        }

        if ((obj.requesterSig != null && obj.requesterSig.byteLength > 0)) {
          w.uint32(98)
          w.bytes(obj.requesterSig)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          chainId: 0n,
          modelId: uint8ArrayAlloc(0),
          input: uint8ArrayAlloc(0),
          inputRef: uint8ArrayAlloc(0),
          params: uint8ArrayAlloc(0),
          fee: uint8ArrayAlloc(0),
          deadline: 0n,
          quorumBps: 0,
          nonce: 0n,
          requester: uint8ArrayAlloc(0),
          requesterSig: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.uint32()
              break
            }
            case 2: {
              obj.chainId = reader.uint64()
              break
            }
            case 3: {
              obj.modelId = reader.bytes()
              break
            }
            case 4: {
              obj.input = reader.bytes()
              break
            }
            case 5: {
              obj.inputRef = reader.bytes()
              break
            }
            case 6: {
              obj.params = reader.bytes()
              break
            }
            case 7: {
              obj.fee = reader.bytes()
              break
            }
            case 8: {
              obj.deadline = reader.uint64()
              break
            }
            case 9: {
              obj.quorumBps = reader.uint32()
              break
            }
            case 10: {
              obj.nonce = reader.uint64()
              break
            }
            case 11: {
              obj.requester = reader.bytes()
              break
            }
            case 12: {
              obj.requesterSig = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.chainId`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.input`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.inputRef`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.params`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.fee`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.deadline`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.quorumBps`,
                value: reader.uint32()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.nonce`,
                value: reader.uint64()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.requester`,
                value: reader.bytes()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.requesterSig`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskAnnouncementVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface TaskAnnouncementChainIdFieldEvent {
    field: '$.chainId'
    value: bigint
  }

  export interface TaskAnnouncementModelIdFieldEvent {
    field: '$.modelId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskAnnouncementInputFieldEvent {
    field: '$.input'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskAnnouncementInputRefFieldEvent {
    field: '$.inputRef'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskAnnouncementParamsFieldEvent {
    field: '$.params'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskAnnouncementFeeFieldEvent {
    field: '$.fee'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskAnnouncementDeadlineFieldEvent {
    field: '$.deadline'
    value: bigint
  }

  export interface TaskAnnouncementQuorumBpsFieldEvent {
    field: '$.quorumBps'
    value: number
  }

  export interface TaskAnnouncementNonceFieldEvent {
    field: '$.nonce'
    value: bigint
  }

  export interface TaskAnnouncementRequesterFieldEvent {
    field: '$.requester'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskAnnouncementRequesterSigFieldEvent {
    field: '$.requesterSig'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskAnnouncement>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskAnnouncement.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskAnnouncement>): TaskAnnouncement {
    return decodeMessage(buf, TaskAnnouncement.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskAnnouncement>): Generator<TaskAnnouncementVersionFieldEvent | TaskAnnouncementChainIdFieldEvent | TaskAnnouncementModelIdFieldEvent | TaskAnnouncementInputFieldEvent | TaskAnnouncementInputRefFieldEvent | TaskAnnouncementParamsFieldEvent | TaskAnnouncementFeeFieldEvent | TaskAnnouncementDeadlineFieldEvent | TaskAnnouncementQuorumBpsFieldEvent | TaskAnnouncementNonceFieldEvent | TaskAnnouncementRequesterFieldEvent | TaskAnnouncementRequesterSigFieldEvent> {
    return streamMessage(buf, TaskAnnouncement.codec(), opts)
  }
}

export interface Attestation {
  version: number
  taskId: Uint8Array<ArrayBuffer>
  resultHash: Uint8Array<ArrayBuffer>
  outputRef: Uint8Array<ArrayBuffer>
  epoch: bigint
  operatorIndex: number
  blsSig: Uint8Array<ArrayBuffer>
  output: Uint8Array<ArrayBuffer>
}

export namespace Attestation {
  let _codec: Codec<Attestation>

  export const codec = (): Codec<Attestation> => {
    if (_codec == null) {
      _codec = message<Attestation>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.taskId != null && obj.taskId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.taskId)
        }

        if ((obj.resultHash != null && obj.resultHash.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.resultHash)
        }

        if ((obj.outputRef != null && obj.outputRef.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.outputRef)
        }

        if ((obj.epoch != null && obj.epoch !== 0n)) {
          w.uint32(40)
          w.uint64(obj.epoch)
        }

        if ((obj.operatorIndex != null && obj.operatorIndex !== 0)) {
          w.uint32(48)
          w.uint32(obj.operatorIndex)
        }

        if ((obj.blsSig != null && obj.blsSig.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.blsSig)
        }

        if ((obj.output != null && obj.output.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.output)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          taskId: uint8ArrayAlloc(0),
          resultHash: uint8ArrayAlloc(0),
          outputRef: uint8ArrayAlloc(0),
          epoch: 0n,
          operatorIndex: 0,
          blsSig: uint8ArrayAlloc(0),
          output: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.uint32()
              break
            }
            case 2: {
              obj.taskId = reader.bytes()
              break
            }
            case 3: {
              obj.resultHash = reader.bytes()
              break
            }
            case 4: {
              obj.outputRef = reader.bytes()
              break
            }
            case 5: {
              obj.epoch = reader.uint64()
              break
            }
            case 6: {
              obj.operatorIndex = reader.uint32()
              break
            }
            case 7: {
              obj.blsSig = reader.bytes()
              break
            }
            case 8: {
              obj.output = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.resultHash`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.outputRef`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.epoch`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.operatorIndex`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.blsSig`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.output`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AttestationVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface AttestationTaskIdFieldEvent {
    field: '$.taskId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttestationResultHashFieldEvent {
    field: '$.resultHash'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttestationOutputRefFieldEvent {
    field: '$.outputRef'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttestationEpochFieldEvent {
    field: '$.epoch'
    value: bigint
  }

  export interface AttestationOperatorIndexFieldEvent {
    field: '$.operatorIndex'
    value: number
  }

  export interface AttestationBlsSigFieldEvent {
    field: '$.blsSig'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttestationOutputFieldEvent {
    field: '$.output'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Attestation>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Attestation.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Attestation>): Attestation {
    return decodeMessage(buf, Attestation.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Attestation>): Generator<AttestationVersionFieldEvent | AttestationTaskIdFieldEvent | AttestationResultHashFieldEvent | AttestationOutputRefFieldEvent | AttestationEpochFieldEvent | AttestationOperatorIndexFieldEvent | AttestationBlsSigFieldEvent | AttestationOutputFieldEvent> {
    return streamMessage(buf, Attestation.codec(), opts)
  }
}

export interface QuorumCertificate {
  version: number
  taskId: Uint8Array<ArrayBuffer>
  resultHash: Uint8Array<ArrayBuffer>
  outputRef: Uint8Array<ArrayBuffer>
  epoch: bigint
  signerBitmap: Uint8Array<ArrayBuffer>
  aggregateSig: Uint8Array<ArrayBuffer>
  signedStake: Uint8Array<ArrayBuffer>
  totalStake: Uint8Array<ArrayBuffer>
  output: Uint8Array<ArrayBuffer>
}

export namespace QuorumCertificate {
  let _codec: Codec<QuorumCertificate>

  export const codec = (): Codec<QuorumCertificate> => {
    if (_codec == null) {
      _codec = message<QuorumCertificate>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.taskId != null && obj.taskId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.taskId)
        }

        if ((obj.resultHash != null && obj.resultHash.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.resultHash)
        }

        if ((obj.outputRef != null && obj.outputRef.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.outputRef)
        }

        if ((obj.epoch != null && obj.epoch !== 0n)) {
          w.uint32(40)
          w.uint64(obj.epoch)
        }

        if ((obj.signerBitmap != null && obj.signerBitmap.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.signerBitmap)
        }

        if ((obj.aggregateSig != null && obj.aggregateSig.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.aggregateSig)
        }

        if ((obj.signedStake != null && obj.signedStake.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.signedStake)
        }

        if ((obj.totalStake != null && obj.totalStake.byteLength > 0)) {
          w.uint32(74)
          w.bytes(obj.totalStake)
        }

        if ((obj.output != null && obj.output.byteLength > 0)) {
          w.uint32(82)
          w.bytes(obj.output)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          taskId: uint8ArrayAlloc(0),
          resultHash: uint8ArrayAlloc(0),
          outputRef: uint8ArrayAlloc(0),
          epoch: 0n,
          signerBitmap: uint8ArrayAlloc(0),
          aggregateSig: uint8ArrayAlloc(0),
          signedStake: uint8ArrayAlloc(0),
          totalStake: uint8ArrayAlloc(0),
          output: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.uint32()
              break
            }
            case 2: {
              obj.taskId = reader.bytes()
              break
            }
            case 3: {
              obj.resultHash = reader.bytes()
              break
            }
            case 4: {
              obj.outputRef = reader.bytes()
              break
            }
            case 5: {
              obj.epoch = reader.uint64()
              break
            }
            case 6: {
              obj.signerBitmap = reader.bytes()
              break
            }
            case 7: {
              obj.aggregateSig = reader.bytes()
              break
            }
            case 8: {
              obj.signedStake = reader.bytes()
              break
            }
            case 9: {
              obj.totalStake = reader.bytes()
              break
            }
            case 10: {
              obj.output = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.resultHash`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.outputRef`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.epoch`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.signerBitmap`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.aggregateSig`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.signedStake`,
                value: reader.bytes()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.totalStake`,
                value: reader.bytes()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.output`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface QuorumCertificateVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface QuorumCertificateTaskIdFieldEvent {
    field: '$.taskId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateResultHashFieldEvent {
    field: '$.resultHash'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateOutputRefFieldEvent {
    field: '$.outputRef'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateEpochFieldEvent {
    field: '$.epoch'
    value: bigint
  }

  export interface QuorumCertificateSignerBitmapFieldEvent {
    field: '$.signerBitmap'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateAggregateSigFieldEvent {
    field: '$.aggregateSig'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateSignedStakeFieldEvent {
    field: '$.signedStake'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateTotalStakeFieldEvent {
    field: '$.totalStake'
    value: Uint8Array<ArrayBuffer>
  }

  export interface QuorumCertificateOutputFieldEvent {
    field: '$.output'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<QuorumCertificate>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, QuorumCertificate.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<QuorumCertificate>): QuorumCertificate {
    return decodeMessage(buf, QuorumCertificate.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<QuorumCertificate>): Generator<QuorumCertificateVersionFieldEvent | QuorumCertificateTaskIdFieldEvent | QuorumCertificateResultHashFieldEvent | QuorumCertificateOutputRefFieldEvent | QuorumCertificateEpochFieldEvent | QuorumCertificateSignerBitmapFieldEvent | QuorumCertificateAggregateSigFieldEvent | QuorumCertificateSignedStakeFieldEvent | QuorumCertificateTotalStakeFieldEvent | QuorumCertificateOutputFieldEvent> {
    return streamMessage(buf, QuorumCertificate.codec(), opts)
  }
}
