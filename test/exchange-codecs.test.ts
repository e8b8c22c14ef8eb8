/**
 * The request/response messages of /poi/stream/1/, /poi/result/1/ and /poi/network/1/ and the
 * stream message go through the same strict codec as the gossip messages: the same size bound,
 * wire scan, field rules and canonical re-encoding, with the same error codes.
 */
import assert from 'node:assert/strict'
import {
  decodeNetworkInfo, decodeNetworkInfoRequest, MAX_NETWORK_INFO_REQUEST_BYTES, MAX_NETWORK_INFO_RESPONSE_BYTES,
  NETWORK_VERSION, NetworkInfo, NetworkInfoRequest
} from '../protocols/network/index.js'
import { networkInfoOf } from '../node/network-info.js'
import {
  decodeResultRequest, decodeResultResponse, MAX_RESULT_REQUEST_BYTES, MAX_RESULT_RESPONSE_BYTES, RESULT_STATUS, RESULT_VERSION
} from '../protocols/result/index.js'
import {
  decodeStreamRequest, decodeStreamResponse, encodeStreamRequest, MAX_STREAM_REQUEST_BYTES, MAX_STREAM_RESPONSE_BYTES, STREAM_STATUS
} from '../protocols/stream/index.js'
import {
  DecodeError, decodeStreamMessage, EncodeError, GENESIS_PREV_ID, MAX_STREAM_MESSAGE_BYTES, ResultRequest, ResultResponse,
  STREAM_VERSION, StreamMessage, StreamRequest, StreamResponse
} from '../protocols/wire/index.js'
import { concat, expectDecodeError, filled } from './helpers/wire-fixtures.js'

interface Case {
  name: string
  valid: object
  raw: (msg: any) => Uint8Array
  decode: (bytes: Uint8Array) => unknown
  max: number
}

const CASES: Case[] = [
  {
    name: 'StreamMessage',
    valid: { version: STREAM_VERSION, channel: filled(32, 1), channelName: filled(6, 0x61), seq: 0n, prevId: GENESIS_PREV_ID, payload: filled(10, 2), author: filled(32, 3), authorSig: filled(64, 4) },
    raw: StreamMessage.encode,
    decode: decodeStreamMessage,
    max: MAX_STREAM_MESSAGE_BYTES
  },
  { name: 'StreamRequest', valid: { version: STREAM_VERSION, msgId: filled(32, 5), payloadRef: new Uint8Array(0) }, raw: StreamRequest.encode, decode: decodeStreamRequest, max: MAX_STREAM_REQUEST_BYTES },
  { name: 'StreamResponse', valid: { version: STREAM_VERSION, status: STREAM_STATUS.FOUND, message: filled(40, 6) }, raw: StreamResponse.encode, decode: decodeStreamResponse, max: MAX_STREAM_RESPONSE_BYTES },
  { name: 'ResultRequest', valid: { version: RESULT_VERSION, taskId: filled(32, 7) }, raw: ResultRequest.encode, decode: decodeResultRequest, max: MAX_RESULT_REQUEST_BYTES },
  {
    name: 'ResultResponse',
    valid: { version: RESULT_VERSION, status: RESULT_STATUS.FOUND, certificate: filled(30, 8), output: filled(3, 9), reason: '' },
    raw: ResultResponse.encode,
    decode: decodeResultResponse,
    max: MAX_RESULT_RESPONSE_BYTES
  },
  { name: 'NetworkInfoRequest', valid: { version: NETWORK_VERSION, withMaxTaskTtl: true }, raw: NetworkInfoRequest.encode, decode: decodeNetworkInfoRequest, max: MAX_NETWORK_INFO_REQUEST_BYTES },
  {
    name: 'NetworkInfo',
    valid: networkInfoOf({ chainId: 31337, registry: `0x${'11'.repeat(20)}`, taskManager: `0x${'22'.repeat(20)}`, slashing: `0x${'33'.repeat(20)}`, deployedAtBlock: 5n }, 600_000),
    raw: NetworkInfo.encode,
    decode: decodeNetworkInfo,
    max: MAX_NETWORK_INFO_RESPONSE_BYTES
  }
]

/** Field 31, length-delimited, one byte: a field no version 1 message declares. */
const UNKNOWN_FIELD = [0xfa, 0x01, 0x01, 0x00]

describe('one strict codec for streams and exchanges', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      const valid = (): Uint8Array => c.raw(c.valid)

      it('decodes its canonical encoding back to the message', () => {
        assert.deepEqual(c.decode(valid()), c.valid)
      })

      it('reports cut bytes as TRUNCATED and accepts no prefix as the message', () => {
        const bytes = valid()
        const codes = new Set<string>()
        for (let n = 1; n < bytes.length; n++) {
          try {
            assert.notDeepEqual(c.raw(c.decode(bytes.subarray(0, n))), bytes)
          } catch (err) {
            assert.ok(err instanceof DecodeError, `prefix of ${n} bytes threw ${String(err)}`)
            codes.add(err.code)
          }
        }
        assert.ok(codes.has('TRUNCATED'), `codes seen: ${[...codes].join(', ')}`)
      })

      it('refuses oversized bytes before parsing, and wrong wire types, groups and field 0 as MALFORMED', () => {
        expectDecodeError(() => c.decode(new Uint8Array(c.max + 1)), 'OVERSIZED')
        const bytes = valid()
        assert.deepEqual([...bytes.subarray(0, 2)], [0x08, 1], 'version 1 comes first')
        expectDecodeError(() => c.decode(concat([0x0a, 0x01, 0x01], bytes.subarray(2))), 'MALFORMED', 'version')
        expectDecodeError(() => c.decode(concat(bytes, [0x0b])), 'MALFORMED')
        expectDecodeError(() => c.decode(concat(bytes, [0x00])), 'MALFORMED')
      })

      it('reports another version as such, even with fields it does not know; unknown fields otherwise as NON_CANONICAL', () => {
        const bytes = valid()
        expectDecodeError(() => c.decode(concat([0x08, 2], bytes.subarray(2), UNKNOWN_FIELD)), 'UNKNOWN_VERSION', 'version')
        expectDecodeError(() => c.decode(concat(bytes, UNKNOWN_FIELD)), 'NON_CANONICAL')
        expectDecodeError(() => c.decode(concat(bytes, [0x08, 1])), 'NON_CANONICAL')
        expectDecodeError(() => c.decode(concat([0x08, 0x81, 0x00], bytes.subarray(2))), 'NON_CANONICAL')
      })
    })
  }

  it('NetworkInfoRequest: a requester older than withMaxTaskTtl (its version alone) still decodes; the flag has one spelling', () => {
    assert.deepEqual(decodeNetworkInfoRequest(Uint8Array.from([0x08, 0x01])), { version: NETWORK_VERSION, withMaxTaskTtl: false })
    assert.deepEqual([...NetworkInfoRequest.encode({ version: NETWORK_VERSION, withMaxTaskTtl: true })], [0x08, 0x01, 0x10, 0x01])
    // false written out, and true spelled 2: the same request in other bytes
    expectDecodeError(() => decodeNetworkInfoRequest(Uint8Array.from([0x08, 0x01, 0x10, 0x00])), 'NON_CANONICAL')
    expectDecodeError(() => decodeNetworkInfoRequest(Uint8Array.from([0x08, 0x01, 0x10, 0x02])), 'NON_CANONICAL')
  })

  it('encoders refuse what the decoders refuse, with EncodeError', () => {
    assert.throws(() => encodeStreamRequest({ version: STREAM_VERSION, msgId: filled(31, 1), payloadRef: new Uint8Array(0) }),
      (err: unknown) => err instanceof EncodeError && err.code === 'INVALID_FIELD' && err.field === 'msgId' && err.messageType === 'StreamRequest')
    expectDecodeError(() => decodeStreamRequest(StreamRequest.encode({ version: STREAM_VERSION, msgId: filled(31, 1) })), 'INVALID_FIELD', 'msgId')
  })
})
