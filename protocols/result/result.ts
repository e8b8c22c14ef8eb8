import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ResultRequest {
  version: number
  taskId: Uint8Array<ArrayBuffer>
}

export namespace ResultRequest {
  let _codec: Codec<ResultRequest>

  export const codec = (): Codec<ResultRequest> => {
    if (_codec == null) {
      _codec = message<ResultRequest>((obj, w, opts = {}) => {
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

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          taskId: uint8ArrayAlloc(0)
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

  export interface ResultRequestVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface ResultRequestTaskIdFieldEvent {
    field: '$.taskId'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ResultRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ResultRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResultRequest>): ResultRequest {
    return decodeMessage(buf, ResultRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResultRequest>): Generator<ResultRequestVersionFieldEvent | ResultRequestTaskIdFieldEvent> {
    return streamMessage(buf, ResultRequest.codec(), opts)
  }
}

export interface ResultResponse {
  version: number
  status: number
  certificate: Uint8Array<ArrayBuffer>
  output: Uint8Array<ArrayBuffer>
}

export namespace ResultResponse {
  let _codec: Codec<ResultResponse>

  export const codec = (): Codec<ResultResponse> => {
    if (_codec == null) {
      _codec = message<ResultResponse>((obj, w, opts = {}) => {
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

        if ((obj.certificate != null && obj.certificate.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.certificate)
        }

        if ((obj.output != null && obj.output.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.output)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          status: 0,
          certificate: uint8ArrayAlloc(0),
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
              obj.status = reader.uint32()
              break
            }
            case 3: {
              obj.certificate = reader.bytes()
              break
            }
            case 4: {
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
                field: `${prefix}.status`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.certificate`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
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

  export interface ResultResponseVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface ResultResponseStatusFieldEvent {
    field: '$.status'
    value: number
  }

  export interface ResultResponseCertificateFieldEvent {
    field: '$.certificate'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ResultResponseOutputFieldEvent {
    field: '$.output'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ResultResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ResultResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResultResponse>): ResultResponse {
    return decodeMessage(buf, ResultResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResultResponse>): Generator<ResultResponseVersionFieldEvent | ResultResponseStatusFieldEvent | ResultResponseCertificateFieldEvent | ResultResponseOutputFieldEvent> {
    return streamMessage(buf, ResultResponse.codec(), opts)
  }
}
