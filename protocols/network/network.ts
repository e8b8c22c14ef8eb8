import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface NetworkInfoRequest {
  version: number
}

export namespace NetworkInfoRequest {
  let _codec: Codec<NetworkInfoRequest>

  export const codec = (): Codec<NetworkInfoRequest> => {
    if (_codec == null) {
      _codec = message<NetworkInfoRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.uint32()
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

  export interface NetworkInfoRequestVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export function encode (obj: Partial<NetworkInfoRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NetworkInfoRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NetworkInfoRequest>): NetworkInfoRequest {
    return decodeMessage(buf, NetworkInfoRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NetworkInfoRequest>): Generator<NetworkInfoRequestVersionFieldEvent> {
    return streamMessage(buf, NetworkInfoRequest.codec(), opts)
  }
}

export interface NetworkInfo {
  version: number
  status: number
  chainId: bigint
  registry: Uint8Array<ArrayBuffer>
  taskManager: Uint8Array<ArrayBuffer>
  slashing: Uint8Array<ArrayBuffer>
  modelRegistry: Uint8Array<ArrayBuffer>
  deployedAtBlock: bigint
}

export namespace NetworkInfo {
  let _codec: Codec<NetworkInfo>

  export const codec = (): Codec<NetworkInfo> => {
    if (_codec == null) {
      _codec = message<NetworkInfo>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.status != null && obj.status !== 0)) {
          w.uint32(16)
          w.uint32(obj.status)
        }

        if ((obj.chainId != null && obj.chainId !== 0n)) {
          w.uint32(24)
          w.uint64(obj.chainId)
        }

        if ((obj.registry != null && obj.registry.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.registry)
        }

        if ((obj.taskManager != null && obj.taskManager.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.taskManager)
        }

        if ((obj.slashing != null && obj.slashing.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.slashing)
        }

        if ((obj.modelRegistry != null && obj.modelRegistry.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.modelRegistry)
        }

        if ((obj.deployedAtBlock != null && obj.deployedAtBlock !== 0n)) {
          w.uint32(64)
          w.uint64(obj.deployedAtBlock)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          status: 0,
          chainId: 0n,
          registry: uint8ArrayAlloc(0),
          taskManager: uint8ArrayAlloc(0),
          slashing: uint8ArrayAlloc(0),
          modelRegistry: uint8ArrayAlloc(0),
          deployedAtBlock: 0n
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
              obj.status = reader.uint32()
              break
            }
            case 3: {
              obj.chainId = reader.uint64()
              break
            }
            case 4: {
              obj.registry = reader.bytes()
              break
            }
            case 5: {
              obj.taskManager = reader.bytes()
              break
            }
            case 6: {
              obj.slashing = reader.bytes()
              break
            }
            case 7: {
              obj.modelRegistry = reader.bytes()
              break
            }
            case 8: {
              obj.deployedAtBlock = reader.uint64()
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
                field: `${prefix}.status`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.chainId`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.registry`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.taskManager`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.slashing`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.modelRegistry`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.deployedAtBlock`,
                value: reader.uint64()
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

  export interface NetworkInfoVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface NetworkInfoStatusFieldEvent {
    field: '$.status'
    value: number
  }

  export interface NetworkInfoChainIdFieldEvent {
    field: '$.chainId'
    value: bigint
  }

  export interface NetworkInfoRegistryFieldEvent {
    field: '$.registry'
    value: Uint8Array<ArrayBuffer>
  }

  export interface NetworkInfoTaskManagerFieldEvent {
    field: '$.taskManager'
    value: Uint8Array<ArrayBuffer>
  }

  export interface NetworkInfoSlashingFieldEvent {
    field: '$.slashing'
    value: Uint8Array<ArrayBuffer>
  }

  export interface NetworkInfoModelRegistryFieldEvent {
    field: '$.modelRegistry'
    value: Uint8Array<ArrayBuffer>
  }

  export interface NetworkInfoDeployedAtBlockFieldEvent {
    field: '$.deployedAtBlock'
    value: bigint
  }

  export function encode (obj: Partial<NetworkInfo>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NetworkInfo.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NetworkInfo>): NetworkInfo {
    return decodeMessage(buf, NetworkInfo.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NetworkInfo>): Generator<NetworkInfoVersionFieldEvent | NetworkInfoStatusFieldEvent | NetworkInfoChainIdFieldEvent | NetworkInfoRegistryFieldEvent | NetworkInfoTaskManagerFieldEvent | NetworkInfoSlashingFieldEvent | NetworkInfoModelRegistryFieldEvent | NetworkInfoDeployedAtBlockFieldEvent> {
    return streamMessage(buf, NetworkInfo.codec(), opts)
  }
}
