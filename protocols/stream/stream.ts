import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface StreamMessage {
  version: number
  channel: Uint8Array<ArrayBuffer>
  channelName: Uint8Array<ArrayBuffer>
  seq: bigint
  prevId: Uint8Array<ArrayBuffer>
  payload: Uint8Array<ArrayBuffer>
  author: Uint8Array<ArrayBuffer>
  authorSig: Uint8Array<ArrayBuffer>
}

export namespace StreamMessage {
  let _codec: Codec<StreamMessage>

  export const codec = (): Codec<StreamMessage> => {
    if (_codec == null) {
      _codec = message<StreamMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.channel != null && obj.channel.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.channel)
        }

        if ((obj.channelName != null && obj.channelName.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.channelName)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(32)
          w.uint64(obj.seq)
        }

        if ((obj.prevId != null && obj.prevId.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.prevId)
        }

        if ((obj.payload != null && obj.payload.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.payload)
        }

        if ((obj.author != null && obj.author.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.author)
        }

        if ((obj.authorSig != null && obj.authorSig.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.authorSig)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          channel: uint8ArrayAlloc(0),
          channelName: uint8ArrayAlloc(0),
          seq: 0n,
          prevId: uint8ArrayAlloc(0),
          payload: uint8ArrayAlloc(0),
          author: uint8ArrayAlloc(0),
          authorSig: uint8ArrayAlloc(0)
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
              obj.channel = reader.bytes()
              break
            }
            case 3: {
              obj.channelName = reader.bytes()
              break
            }
            case 4: {
              obj.seq = reader.uint64()
              break
            }
            case 5: {
              obj.prevId = reader.bytes()
              break
            }
            case 6: {
              obj.payload = reader.bytes()
              break
            }
            case 7: {
              obj.author = reader.bytes()
              break
            }
            case 8: {
              obj.authorSig = reader.bytes()
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
                field: `${prefix}.channel`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.channelName`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.prevId`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.payload`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.author`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.authorSig`,
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

  export interface StreamMessageVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface StreamMessageChannelFieldEvent {
    field: '$.channel'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StreamMessageChannelNameFieldEvent {
    field: '$.channelName'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StreamMessageSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface StreamMessagePrevIdFieldEvent {
    field: '$.prevId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StreamMessagePayloadFieldEvent {
    field: '$.payload'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StreamMessageAuthorFieldEvent {
    field: '$.author'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StreamMessageAuthorSigFieldEvent {
    field: '$.authorSig'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<StreamMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StreamMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StreamMessage>): StreamMessage {
    return decodeMessage(buf, StreamMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StreamMessage>): Generator<StreamMessageVersionFieldEvent | StreamMessageChannelFieldEvent | StreamMessageChannelNameFieldEvent | StreamMessageSeqFieldEvent | StreamMessagePrevIdFieldEvent | StreamMessagePayloadFieldEvent | StreamMessageAuthorFieldEvent | StreamMessageAuthorSigFieldEvent> {
    return streamMessage(buf, StreamMessage.codec(), opts)
  }
}

export interface StreamRequest {
  version: number
  msgId: Uint8Array<ArrayBuffer>
  payloadRef: Uint8Array<ArrayBuffer>
}

export namespace StreamRequest {
  let _codec: Codec<StreamRequest>

  export const codec = (): Codec<StreamRequest> => {
    if (_codec == null) {
      _codec = message<StreamRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.msgId != null && obj.msgId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.msgId)
        }

        if ((obj.payloadRef != null && obj.payloadRef.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.payloadRef)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          msgId: uint8ArrayAlloc(0),
          payloadRef: uint8ArrayAlloc(0)
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
              obj.msgId = reader.bytes()
              break
            }
            case 3: {
              obj.payloadRef = reader.bytes()
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
                field: `${prefix}.msgId`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.payloadRef`,
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

  export interface StreamRequestVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface StreamRequestMsgIdFieldEvent {
    field: '$.msgId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StreamRequestPayloadRefFieldEvent {
    field: '$.payloadRef'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<StreamRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StreamRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StreamRequest>): StreamRequest {
    return decodeMessage(buf, StreamRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StreamRequest>): Generator<StreamRequestVersionFieldEvent | StreamRequestMsgIdFieldEvent | StreamRequestPayloadRefFieldEvent> {
    return streamMessage(buf, StreamRequest.codec(), opts)
  }
}

export interface StreamResponse {
  version: number
  status: number
  message: Uint8Array<ArrayBuffer>
}

export namespace StreamResponse {
  let _codec: Codec<StreamResponse>

  export const codec = (): Codec<StreamResponse> => {
    if (_codec == null) {
      _codec = message<StreamResponse>((obj, w, opts = {}) => {
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

        if ((obj.message != null && obj.message.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.message)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          status: 0,
          message: uint8ArrayAlloc(0)
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
              obj.message = reader.bytes()
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
                field: `${prefix}.message`,
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

  export interface StreamResponseVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface StreamResponseStatusFieldEvent {
    field: '$.status'
    value: number
  }

  export interface StreamResponseMessageFieldEvent {
    field: '$.message'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<StreamResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StreamResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StreamResponse>): StreamResponse {
    return decodeMessage(buf, StreamResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StreamResponse>): Generator<StreamResponseVersionFieldEvent | StreamResponseStatusFieldEvent | StreamResponseMessageFieldEvent> {
    return streamMessage(buf, StreamResponse.codec(), opts)
  }
}
