import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface AttributeProto {
  name?: string
  f?: number
  i?: bigint
  s?: Uint8Array<ArrayBuffer>
  t?: TensorProto
  floats: number[]
  ints: bigint[]
  strings: Uint8Array<ArrayBuffer>[]
  docString?: string
  type?: AttributeProto.AttributeType
}

export namespace AttributeProto {
  export enum AttributeType {
    UNDEFINED = 'UNDEFINED',
    FLOAT = 'FLOAT',
    INT = 'INT',
    STRING = 'STRING',
    TENSOR = 'TENSOR',
    GRAPH = 'GRAPH',
    FLOATS = 'FLOATS',
    INTS = 'INTS',
    STRINGS = 'STRINGS',
    TENSORS = 'TENSORS',
    GRAPHS = 'GRAPHS',
    SPARSE_TENSOR = 'SPARSE_TENSOR',
    SPARSE_TENSORS = 'SPARSE_TENSORS'
  }

  enum __AttributeTypeValues {
    UNDEFINED = 0,
    FLOAT = 1,
    INT = 2,
    STRING = 3,
    TENSOR = 4,
    GRAPH = 5,
    FLOATS = 6,
    INTS = 7,
    STRINGS = 8,
    TENSORS = 9,
    GRAPHS = 10,
    SPARSE_TENSOR = 11,
    SPARSE_TENSORS = 12
  }

  export namespace AttributeType {
    export const codec = (): Codec<AttributeType> => {
      return enumeration<AttributeType>(__AttributeTypeValues)
    }
  }

  let _codec: Codec<AttributeProto>

  export const codec = (): Codec<AttributeProto> => {
    if (_codec == null) {
      _codec = message<AttributeProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.name != null) {
          w.uint32(10)
          w.string(obj.name)
        }

        if (obj.f != null) {
          w.uint32(21)
          w.float(obj.f)
        }

        if (obj.i != null) {
          w.uint32(24)
          w.int64(obj.i)
        }

        if (obj.s != null) {
          w.uint32(34)
          w.bytes(obj.s)
        }

        if (obj.t != null) {
          w.uint32(42)
          TensorProto.codec().encode(obj.t, w)
        }

        if (obj.floats != null && obj.floats.length > 0) {
          for (const value of obj.floats) {
            w.uint32(61)
            w.float(value)
          }
        }

        if (obj.ints != null && obj.ints.length > 0) {
          for (const value of obj.ints) {
            w.uint32(64)
            w.int64(value)
          }
        }

        if (obj.strings != null && obj.strings.length > 0) {
          for (const value of obj.strings) {
            w.uint32(74)
            w.bytes(value)
          }
        }

        if (obj.docString != null) {
          w.uint32(106)
          w.string(obj.docString)
        }

        if (obj.type != null) {
          w.uint32(160)
          AttributeProto.AttributeType.codec().encode(obj.type, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          floats: [],
          ints: [],
          strings: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.f = reader.float()
              break
            }
            case 3: {
              obj.i = reader.int64()
              break
            }
            case 4: {
              obj.s = reader.bytes()
              break
            }
            case 5: {
              obj.t = TensorProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.t
              })
              break
            }
            case 7: {
              if (opts.limits?.floats != null && obj.floats.length === opts.limits.floats) {
                throw new MaxLengthError('Decode error - repeated field "floats" had too many elements')
              }

              obj.floats.push(reader.float())
              break
            }
            case 8: {
              if (opts.limits?.ints != null && obj.ints.length === opts.limits.ints) {
                throw new MaxLengthError('Decode error - repeated field "ints" had too many elements')
              }

              obj.ints.push(reader.int64())
              break
            }
            case 9: {
              if (opts.limits?.strings != null && obj.strings.length === opts.limits.strings) {
                throw new MaxLengthError('Decode error - repeated field "strings" had too many elements')
              }

              obj.strings.push(reader.bytes())
              break
            }
            case 13: {
              obj.docString = reader.string()
              break
            }
            case 20: {
              obj.type = AttributeProto.AttributeType.codec().decode(reader)
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
        const obj = {
          floats: 0,
          ints: 0,
          strings: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.f`,
                value: reader.float()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.i`,
                value: reader.int64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.s`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield * TensorProto.codec().stream(reader, reader.uint32(), `${prefix}.t`, {
                limits: opts.limits?.t
              })

              break
            }
            case 7: {
              if (opts.limits?.floats != null && obj.floats === opts.limits.floats) {
                throw new MaxLengthError('Streaming decode error - repeated field "floats" had too many elements')
              }

              yield {
                field: `${prefix}.floats[]`,
                index: obj.floats,
                value: reader.float()
              }

              obj.floats++

              break
            }
            case 8: {
              if (opts.limits?.ints != null && obj.ints === opts.limits.ints) {
                throw new MaxLengthError('Streaming decode error - repeated field "ints" had too many elements')
              }

              yield {
                field: `${prefix}.ints[]`,
                index: obj.ints,
                value: reader.int64()
              }

              obj.ints++

              break
            }
            case 9: {
              if (opts.limits?.strings != null && obj.strings === opts.limits.strings) {
                throw new MaxLengthError('Streaming decode error - repeated field "strings" had too many elements')
              }

              yield {
                field: `${prefix}.strings[]`,
                index: obj.strings,
                value: reader.bytes()
              }

              obj.strings++

              break
            }
            case 13: {
              yield {
                field: `${prefix}.docString`,
                value: reader.string()
              }
              break
            }
            case 20: {
              yield {
                field: `${prefix}.type`,
                value: AttributeProto.AttributeType.codec().decode(reader)
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

  export interface AttributeProtoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface AttributeProtoFFieldEvent {
    field: '$.f'
    value: number
  }

  export interface AttributeProtoIFieldEvent {
    field: '$.i'
    value: bigint
  }

  export interface AttributeProtoSFieldEvent {
    field: '$.s'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttributeProtoTDimsFieldEvent {
    field: '$.t.dims[]'
    index: number
    value: bigint
  }

  export interface AttributeProtoTDataTypeFieldEvent {
    field: '$.t.dataType'
    value: number
  }

  export interface AttributeProtoTNameFieldEvent {
    field: '$.t.name'
    value: string
  }

  export interface AttributeProtoTRawDataFieldEvent {
    field: '$.t.rawData'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttributeProtoTDocStringFieldEvent {
    field: '$.t.docString'
    value: string
  }

  export interface AttributeProtoFloatsFieldEvent {
    field: '$.floats[]'
    index: number
    value: number
  }

  export interface AttributeProtoIntsFieldEvent {
    field: '$.ints[]'
    index: number
    value: bigint
  }

  export interface AttributeProtoStringsFieldEvent {
    field: '$.strings[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface AttributeProtoDocStringFieldEvent {
    field: '$.docString'
    value: string
  }

  export interface AttributeProtoTypeFieldEvent {
    field: '$.type'
    value: AttributeProto.AttributeType
  }

  export function encode (obj: Partial<AttributeProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AttributeProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AttributeProto>): AttributeProto {
    return decodeMessage(buf, AttributeProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AttributeProto>): Generator<AttributeProtoNameFieldEvent | AttributeProtoFFieldEvent | AttributeProtoIFieldEvent | AttributeProtoSFieldEvent | AttributeProtoTDimsFieldEvent | AttributeProtoTDataTypeFieldEvent | AttributeProtoTNameFieldEvent | AttributeProtoTRawDataFieldEvent | AttributeProtoTDocStringFieldEvent | AttributeProtoFloatsFieldEvent | AttributeProtoIntsFieldEvent | AttributeProtoStringsFieldEvent | AttributeProtoDocStringFieldEvent | AttributeProtoTypeFieldEvent> {
    return streamMessage(buf, AttributeProto.codec(), opts)
  }
}

export interface ValueInfoProto {
  name?: string
  type?: TypeProto
  docString?: string
}

export namespace ValueInfoProto {
  let _codec: Codec<ValueInfoProto>

  export const codec = (): Codec<ValueInfoProto> => {
    if (_codec == null) {
      _codec = message<ValueInfoProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.name != null) {
          w.uint32(10)
          w.string(obj.name)
        }

        if (obj.type != null) {
          w.uint32(18)
          TypeProto.codec().encode(obj.type, w)
        }

        if (obj.docString != null) {
          w.uint32(26)
          w.string(obj.docString)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.type = TypeProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.type
              })
              break
            }
            case 3: {
              obj.docString = reader.string()
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
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield * TypeProto.codec().stream(reader, reader.uint32(), `${prefix}.type`, {
                limits: opts.limits?.type
              })

              break
            }
            case 3: {
              yield {
                field: `${prefix}.docString`,
                value: reader.string()
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

  export interface ValueInfoProtoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface ValueInfoProtoTypeTensorTypeElemTypeFieldEvent {
    field: '$.type.tensorType.elemType'
    value: number
  }

  export interface ValueInfoProtoTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface ValueInfoProtoTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface ValueInfoProtoTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface ValueInfoProtoTypeDenotationFieldEvent {
    field: '$.type.denotation'
    value: string
  }

  export interface ValueInfoProtoDocStringFieldEvent {
    field: '$.docString'
    value: string
  }

  export function encode (obj: Partial<ValueInfoProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ValueInfoProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ValueInfoProto>): ValueInfoProto {
    return decodeMessage(buf, ValueInfoProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ValueInfoProto>): Generator<ValueInfoProtoNameFieldEvent | ValueInfoProtoTypeTensorTypeElemTypeFieldEvent | ValueInfoProtoTypeTensorTypeShapeDimDimValueFieldEvent | ValueInfoProtoTypeTensorTypeShapeDimDimParamFieldEvent | ValueInfoProtoTypeTensorTypeShapeDimDenotationFieldEvent | ValueInfoProtoTypeDenotationFieldEvent | ValueInfoProtoDocStringFieldEvent> {
    return streamMessage(buf, ValueInfoProto.codec(), opts)
  }
}

export interface NodeProto {
  input: string[]
  output: string[]
  name?: string
  opType?: string
  attribute: AttributeProto[]
  docString?: string
  domain?: string
}

export namespace NodeProto {
  let _codec: Codec<NodeProto>

  export const codec = (): Codec<NodeProto> => {
    if (_codec == null) {
      _codec = message<NodeProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.input != null && obj.input.length > 0) {
          for (const value of obj.input) {
            w.uint32(10)
            w.string(value)
          }
        }

        if (obj.output != null && obj.output.length > 0) {
          for (const value of obj.output) {
            w.uint32(18)
            w.string(value)
          }
        }

        if (obj.name != null) {
          w.uint32(26)
          w.string(obj.name)
        }

        if (obj.opType != null) {
          w.uint32(34)
          w.string(obj.opType)
        }

        if (obj.attribute != null && obj.attribute.length > 0) {
          for (const value of obj.attribute) {
            w.uint32(42)
            AttributeProto.codec().encode(value, w)
          }
        }

        if (obj.docString != null) {
          w.uint32(50)
          w.string(obj.docString)
        }

        if (obj.domain != null) {
          w.uint32(58)
          w.string(obj.domain)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          input: [],
          output: [],
          attribute: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.input != null && obj.input.length === opts.limits.input) {
                throw new MaxLengthError('Decode error - repeated field "input" had too many elements')
              }

              obj.input.push(reader.string())
              break
            }
            case 2: {
              if (opts.limits?.output != null && obj.output.length === opts.limits.output) {
                throw new MaxLengthError('Decode error - repeated field "output" had too many elements')
              }

              obj.output.push(reader.string())
              break
            }
            case 3: {
              obj.name = reader.string()
              break
            }
            case 4: {
              obj.opType = reader.string()
              break
            }
            case 5: {
              if (opts.limits?.attribute != null && obj.attribute.length === opts.limits.attribute) {
                throw new MaxLengthError('Decode error - repeated field "attribute" had too many elements')
              }

              obj.attribute.push(AttributeProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.attribute$
              }))
              break
            }
            case 6: {
              obj.docString = reader.string()
              break
            }
            case 7: {
              obj.domain = reader.string()
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
        const obj = {
          input: 0,
          output: 0,
          attribute: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.input != null && obj.input === opts.limits.input) {
                throw new MaxLengthError('Streaming decode error - repeated field "input" had too many elements')
              }

              yield {
                field: `${prefix}.input[]`,
                index: obj.input,
                value: reader.string()
              }

              obj.input++

              break
            }
            case 2: {
              if (opts.limits?.output != null && obj.output === opts.limits.output) {
                throw new MaxLengthError('Streaming decode error - repeated field "output" had too many elements')
              }

              yield {
                field: `${prefix}.output[]`,
                index: obj.output,
                value: reader.string()
              }

              obj.output++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.opType`,
                value: reader.string()
              }
              break
            }
            case 5: {
              if (opts.limits?.attribute != null && obj.attribute === opts.limits.attribute) {
                throw new MaxLengthError('Streaming decode error - repeated field "attribute" had too many elements')
              }

              for (const evt of AttributeProto.codec().stream(reader, reader.uint32(), `${prefix}.attribute[]`, {
                limits: opts.limits?.attribute$
              })) {
                yield {
                  ...evt,
                  index: obj.attribute
                }
              }

              obj.attribute++

              break
            }
            case 6: {
              yield {
                field: `${prefix}.docString`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.domain`,
                value: reader.string()
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

  export interface NodeProtoInputFieldEvent {
    field: '$.input[]'
    index: number
    value: string
  }

  export interface NodeProtoOutputFieldEvent {
    field: '$.output[]'
    index: number
    value: string
  }

  export interface NodeProtoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface NodeProtoOpTypeFieldEvent {
    field: '$.opType'
    value: string
  }

  export interface NodeProtoAttributeNameFieldEvent {
    field: '$.attribute[].name'
    value: string
    index: number
  }

  export interface NodeProtoAttributeFFieldEvent {
    field: '$.attribute[].f'
    value: number
    index: number
  }

  export interface NodeProtoAttributeIFieldEvent {
    field: '$.attribute[].i'
    value: bigint
    index: number
  }

  export interface NodeProtoAttributeSFieldEvent {
    field: '$.attribute[].s'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface NodeProtoAttributeTDimsFieldEvent {
    field: '$.attribute[].t.dims[]'
    index: number
    value: bigint
  }

  export interface NodeProtoAttributeTDataTypeFieldEvent {
    field: '$.attribute[].t.dataType'
    value: number
    index: number
  }

  export interface NodeProtoAttributeTNameFieldEvent {
    field: '$.attribute[].t.name'
    value: string
    index: number
  }

  export interface NodeProtoAttributeTRawDataFieldEvent {
    field: '$.attribute[].t.rawData'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface NodeProtoAttributeTDocStringFieldEvent {
    field: '$.attribute[].t.docString'
    value: string
    index: number
  }

  export interface NodeProtoAttributeFloatsFieldEvent {
    field: '$.attribute[].floats[]'
    index: number
    value: number
  }

  export interface NodeProtoAttributeIntsFieldEvent {
    field: '$.attribute[].ints[]'
    index: number
    value: bigint
  }

  export interface NodeProtoAttributeStringsFieldEvent {
    field: '$.attribute[].strings[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface NodeProtoAttributeDocStringFieldEvent {
    field: '$.attribute[].docString'
    value: string
    index: number
  }

  export interface NodeProtoAttributeTypeFieldEvent {
    field: '$.attribute[].type'
    value: AttributeProto.AttributeType
    index: number
  }

  export interface NodeProtoDocStringFieldEvent {
    field: '$.docString'
    value: string
  }

  export interface NodeProtoDomainFieldEvent {
    field: '$.domain'
    value: string
  }

  export function encode (obj: Partial<NodeProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NodeProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeProto>): NodeProto {
    return decodeMessage(buf, NodeProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeProto>): Generator<NodeProtoInputFieldEvent | NodeProtoOutputFieldEvent | NodeProtoNameFieldEvent | NodeProtoOpTypeFieldEvent | NodeProtoAttributeNameFieldEvent | NodeProtoAttributeFFieldEvent | NodeProtoAttributeIFieldEvent | NodeProtoAttributeSFieldEvent | NodeProtoAttributeTDimsFieldEvent | NodeProtoAttributeTDataTypeFieldEvent | NodeProtoAttributeTNameFieldEvent | NodeProtoAttributeTRawDataFieldEvent | NodeProtoAttributeTDocStringFieldEvent | NodeProtoAttributeFloatsFieldEvent | NodeProtoAttributeIntsFieldEvent | NodeProtoAttributeStringsFieldEvent | NodeProtoAttributeDocStringFieldEvent | NodeProtoAttributeTypeFieldEvent | NodeProtoDocStringFieldEvent | NodeProtoDomainFieldEvent> {
    return streamMessage(buf, NodeProto.codec(), opts)
  }
}

export interface ModelProto {
  irVersion?: bigint
  producerName?: string
  producerVersion?: string
  domain?: string
  modelVersion?: bigint
  docString?: string
  graph?: GraphProto
  opsetImport: OperatorSetIdProto[]
}

export namespace ModelProto {
  let _codec: Codec<ModelProto>

  export const codec = (): Codec<ModelProto> => {
    if (_codec == null) {
      _codec = message<ModelProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.irVersion != null) {
          w.uint32(8)
          w.int64(obj.irVersion)
        }

        if (obj.producerName != null) {
          w.uint32(18)
          w.string(obj.producerName)
        }

        if (obj.producerVersion != null) {
          w.uint32(26)
          w.string(obj.producerVersion)
        }

        if (obj.domain != null) {
          w.uint32(34)
          w.string(obj.domain)
        }

        if (obj.modelVersion != null) {
          w.uint32(40)
          w.int64(obj.modelVersion)
        }

        if (obj.docString != null) {
          w.uint32(50)
          w.string(obj.docString)
        }

        if (obj.graph != null) {
          w.uint32(58)
          GraphProto.codec().encode(obj.graph, w)
        }

        if (obj.opsetImport != null && obj.opsetImport.length > 0) {
          for (const value of obj.opsetImport) {
            w.uint32(66)
            OperatorSetIdProto.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          opsetImport: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.irVersion = reader.int64()
              break
            }
            case 2: {
              obj.producerName = reader.string()
              break
            }
            case 3: {
              obj.producerVersion = reader.string()
              break
            }
            case 4: {
              obj.domain = reader.string()
              break
            }
            case 5: {
              obj.modelVersion = reader.int64()
              break
            }
            case 6: {
              obj.docString = reader.string()
              break
            }
            case 7: {
              obj.graph = GraphProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.graph
              })
              break
            }
            case 8: {
              if (opts.limits?.opsetImport != null && obj.opsetImport.length === opts.limits.opsetImport) {
                throw new MaxLengthError('Decode error - repeated field "opsetImport" had too many elements')
              }

              obj.opsetImport.push(OperatorSetIdProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.opsetImport$
              }))
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
        const obj = {
          opsetImport: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.irVersion`,
                value: reader.int64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.producerName`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.producerVersion`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.domain`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.modelVersion`,
                value: reader.int64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.docString`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield * GraphProto.codec().stream(reader, reader.uint32(), `${prefix}.graph`, {
                limits: opts.limits?.graph
              })

              break
            }
            case 8: {
              if (opts.limits?.opsetImport != null && obj.opsetImport === opts.limits.opsetImport) {
                throw new MaxLengthError('Streaming decode error - repeated field "opsetImport" had too many elements')
              }

              for (const evt of OperatorSetIdProto.codec().stream(reader, reader.uint32(), `${prefix}.opsetImport[]`, {
                limits: opts.limits?.opsetImport$
              })) {
                yield {
                  ...evt,
                  index: obj.opsetImport
                }
              }

              obj.opsetImport++

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

  export interface ModelProtoIrVersionFieldEvent {
    field: '$.irVersion'
    value: bigint
  }

  export interface ModelProtoProducerNameFieldEvent {
    field: '$.producerName'
    value: string
  }

  export interface ModelProtoProducerVersionFieldEvent {
    field: '$.producerVersion'
    value: string
  }

  export interface ModelProtoDomainFieldEvent {
    field: '$.domain'
    value: string
  }

  export interface ModelProtoModelVersionFieldEvent {
    field: '$.modelVersion'
    value: bigint
  }

  export interface ModelProtoDocStringFieldEvent {
    field: '$.docString'
    value: string
  }

  export interface ModelProtoGraphNodeInputFieldEvent {
    field: '$.graph.node[].input[]'
    index: number
    value: string
  }

  export interface ModelProtoGraphNodeOutputFieldEvent {
    field: '$.graph.node[].output[]'
    index: number
    value: string
  }

  export interface ModelProtoGraphNodeNameFieldEvent {
    field: '$.graph.node[].name'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeOpTypeFieldEvent {
    field: '$.graph.node[].opType'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeAttributeNameFieldEvent {
    field: '$.graph.node[].attribute[].name'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeAttributeFFieldEvent {
    field: '$.graph.node[].attribute[].f'
    value: number
    index: number
  }

  export interface ModelProtoGraphNodeAttributeIFieldEvent {
    field: '$.graph.node[].attribute[].i'
    value: bigint
    index: number
  }

  export interface ModelProtoGraphNodeAttributeSFieldEvent {
    field: '$.graph.node[].attribute[].s'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ModelProtoGraphNodeAttributeTDimsFieldEvent {
    field: '$.graph.node[].attribute[].t.dims[]'
    index: number
    value: bigint
  }

  export interface ModelProtoGraphNodeAttributeTDataTypeFieldEvent {
    field: '$.graph.node[].attribute[].t.dataType'
    value: number
    index: number
  }

  export interface ModelProtoGraphNodeAttributeTNameFieldEvent {
    field: '$.graph.node[].attribute[].t.name'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeAttributeTRawDataFieldEvent {
    field: '$.graph.node[].attribute[].t.rawData'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ModelProtoGraphNodeAttributeTDocStringFieldEvent {
    field: '$.graph.node[].attribute[].t.docString'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeAttributeFloatsFieldEvent {
    field: '$.graph.node[].attribute[].floats[]'
    index: number
    value: number
  }

  export interface ModelProtoGraphNodeAttributeIntsFieldEvent {
    field: '$.graph.node[].attribute[].ints[]'
    index: number
    value: bigint
  }

  export interface ModelProtoGraphNodeAttributeStringsFieldEvent {
    field: '$.graph.node[].attribute[].strings[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface ModelProtoGraphNodeAttributeDocStringFieldEvent {
    field: '$.graph.node[].attribute[].docString'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeAttributeTypeFieldEvent {
    field: '$.graph.node[].attribute[].type'
    value: AttributeProto.AttributeType
    index: number
  }

  export interface ModelProtoGraphNodeDocStringFieldEvent {
    field: '$.graph.node[].docString'
    value: string
    index: number
  }

  export interface ModelProtoGraphNodeDomainFieldEvent {
    field: '$.graph.node[].domain'
    value: string
    index: number
  }

  export interface ModelProtoGraphNameFieldEvent {
    field: '$.graph.name'
    value: string
  }

  export interface ModelProtoGraphInitializerDimsFieldEvent {
    field: '$.graph.initializer[].dims[]'
    index: number
    value: bigint
  }

  export interface ModelProtoGraphInitializerDataTypeFieldEvent {
    field: '$.graph.initializer[].dataType'
    value: number
    index: number
  }

  export interface ModelProtoGraphInitializerNameFieldEvent {
    field: '$.graph.initializer[].name'
    value: string
    index: number
  }

  export interface ModelProtoGraphInitializerRawDataFieldEvent {
    field: '$.graph.initializer[].rawData'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ModelProtoGraphInitializerDocStringFieldEvent {
    field: '$.graph.initializer[].docString'
    value: string
    index: number
  }

  export interface ModelProtoGraphDocStringFieldEvent {
    field: '$.graph.docString'
    value: string
  }

  export interface ModelProtoGraphInputNameFieldEvent {
    field: '$.graph.input[].name'
    value: string
    index: number
  }

  export interface ModelProtoGraphInputTypeTensorTypeElemTypeFieldEvent {
    field: '$.graph.input[].type.tensorType.elemType'
    value: number
    index: number
  }

  export interface ModelProtoGraphInputTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.graph.input[].type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface ModelProtoGraphInputTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.graph.input[].type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface ModelProtoGraphInputTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.graph.input[].type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface ModelProtoGraphInputTypeDenotationFieldEvent {
    field: '$.graph.input[].type.denotation'
    value: string
    index: number
  }

  export interface ModelProtoGraphInputDocStringFieldEvent {
    field: '$.graph.input[].docString'
    value: string
    index: number
  }

  export interface ModelProtoGraphOutputNameFieldEvent {
    field: '$.graph.output[].name'
    value: string
    index: number
  }

  export interface ModelProtoGraphOutputTypeTensorTypeElemTypeFieldEvent {
    field: '$.graph.output[].type.tensorType.elemType'
    value: number
    index: number
  }

  export interface ModelProtoGraphOutputTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.graph.output[].type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface ModelProtoGraphOutputTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.graph.output[].type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface ModelProtoGraphOutputTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.graph.output[].type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface ModelProtoGraphOutputTypeDenotationFieldEvent {
    field: '$.graph.output[].type.denotation'
    value: string
    index: number
  }

  export interface ModelProtoGraphOutputDocStringFieldEvent {
    field: '$.graph.output[].docString'
    value: string
    index: number
  }

  export interface ModelProtoGraphValueInfoNameFieldEvent {
    field: '$.graph.valueInfo[].name'
    value: string
    index: number
  }

  export interface ModelProtoGraphValueInfoTypeTensorTypeElemTypeFieldEvent {
    field: '$.graph.valueInfo[].type.tensorType.elemType'
    value: number
    index: number
  }

  export interface ModelProtoGraphValueInfoTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.graph.valueInfo[].type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface ModelProtoGraphValueInfoTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.graph.valueInfo[].type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface ModelProtoGraphValueInfoTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.graph.valueInfo[].type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface ModelProtoGraphValueInfoTypeDenotationFieldEvent {
    field: '$.graph.valueInfo[].type.denotation'
    value: string
    index: number
  }

  export interface ModelProtoGraphValueInfoDocStringFieldEvent {
    field: '$.graph.valueInfo[].docString'
    value: string
    index: number
  }

  export interface ModelProtoOpsetImportDomainFieldEvent {
    field: '$.opsetImport[].domain'
    value: string
    index: number
  }

  export interface ModelProtoOpsetImportVersionFieldEvent {
    field: '$.opsetImport[].version'
    value: bigint
    index: number
  }

  export function encode (obj: Partial<ModelProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelProto>): ModelProto {
    return decodeMessage(buf, ModelProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelProto>): Generator<ModelProtoIrVersionFieldEvent | ModelProtoProducerNameFieldEvent | ModelProtoProducerVersionFieldEvent | ModelProtoDomainFieldEvent | ModelProtoModelVersionFieldEvent | ModelProtoDocStringFieldEvent | ModelProtoGraphNodeInputFieldEvent | ModelProtoGraphNodeOutputFieldEvent | ModelProtoGraphNodeNameFieldEvent | ModelProtoGraphNodeOpTypeFieldEvent | ModelProtoGraphNodeAttributeNameFieldEvent | ModelProtoGraphNodeAttributeFFieldEvent | ModelProtoGraphNodeAttributeIFieldEvent | ModelProtoGraphNodeAttributeSFieldEvent | ModelProtoGraphNodeAttributeTDimsFieldEvent | ModelProtoGraphNodeAttributeTDataTypeFieldEvent | ModelProtoGraphNodeAttributeTNameFieldEvent | ModelProtoGraphNodeAttributeTRawDataFieldEvent | ModelProtoGraphNodeAttributeTDocStringFieldEvent | ModelProtoGraphNodeAttributeFloatsFieldEvent | ModelProtoGraphNodeAttributeIntsFieldEvent | ModelProtoGraphNodeAttributeStringsFieldEvent | ModelProtoGraphNodeAttributeDocStringFieldEvent | ModelProtoGraphNodeAttributeTypeFieldEvent | ModelProtoGraphNodeDocStringFieldEvent | ModelProtoGraphNodeDomainFieldEvent | ModelProtoGraphNameFieldEvent | ModelProtoGraphInitializerDimsFieldEvent | ModelProtoGraphInitializerDataTypeFieldEvent | ModelProtoGraphInitializerNameFieldEvent | ModelProtoGraphInitializerRawDataFieldEvent | ModelProtoGraphInitializerDocStringFieldEvent | ModelProtoGraphDocStringFieldEvent | ModelProtoGraphInputNameFieldEvent | ModelProtoGraphInputTypeTensorTypeElemTypeFieldEvent | ModelProtoGraphInputTypeTensorTypeShapeDimDimValueFieldEvent | ModelProtoGraphInputTypeTensorTypeShapeDimDimParamFieldEvent | ModelProtoGraphInputTypeTensorTypeShapeDimDenotationFieldEvent | ModelProtoGraphInputTypeDenotationFieldEvent | ModelProtoGraphInputDocStringFieldEvent | ModelProtoGraphOutputNameFieldEvent | ModelProtoGraphOutputTypeTensorTypeElemTypeFieldEvent | ModelProtoGraphOutputTypeTensorTypeShapeDimDimValueFieldEvent | ModelProtoGraphOutputTypeTensorTypeShapeDimDimParamFieldEvent | ModelProtoGraphOutputTypeTensorTypeShapeDimDenotationFieldEvent | ModelProtoGraphOutputTypeDenotationFieldEvent | ModelProtoGraphOutputDocStringFieldEvent | ModelProtoGraphValueInfoNameFieldEvent | ModelProtoGraphValueInfoTypeTensorTypeElemTypeFieldEvent | ModelProtoGraphValueInfoTypeTensorTypeShapeDimDimValueFieldEvent | ModelProtoGraphValueInfoTypeTensorTypeShapeDimDimParamFieldEvent | ModelProtoGraphValueInfoTypeTensorTypeShapeDimDenotationFieldEvent | ModelProtoGraphValueInfoTypeDenotationFieldEvent | ModelProtoGraphValueInfoDocStringFieldEvent | ModelProtoOpsetImportDomainFieldEvent | ModelProtoOpsetImportVersionFieldEvent> {
    return streamMessage(buf, ModelProto.codec(), opts)
  }
}

export interface GraphProto {
  node: NodeProto[]
  name?: string
  initializer: TensorProto[]
  docString?: string
  input: ValueInfoProto[]
  output: ValueInfoProto[]
  valueInfo: ValueInfoProto[]
}

export namespace GraphProto {
  let _codec: Codec<GraphProto>

  export const codec = (): Codec<GraphProto> => {
    if (_codec == null) {
      _codec = message<GraphProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.node != null && obj.node.length > 0) {
          for (const value of obj.node) {
            w.uint32(10)
            NodeProto.codec().encode(value, w)
          }
        }

        if (obj.name != null) {
          w.uint32(18)
          w.string(obj.name)
        }

        if (obj.initializer != null && obj.initializer.length > 0) {
          for (const value of obj.initializer) {
            w.uint32(42)
            TensorProto.codec().encode(value, w)
          }
        }

        if (obj.docString != null) {
          w.uint32(82)
          w.string(obj.docString)
        }

        if (obj.input != null && obj.input.length > 0) {
          for (const value of obj.input) {
            w.uint32(90)
            ValueInfoProto.codec().encode(value, w)
          }
        }

        if (obj.output != null && obj.output.length > 0) {
          for (const value of obj.output) {
            w.uint32(98)
            ValueInfoProto.codec().encode(value, w)
          }
        }

        if (obj.valueInfo != null && obj.valueInfo.length > 0) {
          for (const value of obj.valueInfo) {
            w.uint32(106)
            ValueInfoProto.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          node: [],
          initializer: [],
          input: [],
          output: [],
          valueInfo: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.node != null && obj.node.length === opts.limits.node) {
                throw new MaxLengthError('Decode error - repeated field "node" had too many elements')
              }

              obj.node.push(NodeProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.node$
              }))
              break
            }
            case 2: {
              obj.name = reader.string()
              break
            }
            case 5: {
              if (opts.limits?.initializer != null && obj.initializer.length === opts.limits.initializer) {
                throw new MaxLengthError('Decode error - repeated field "initializer" had too many elements')
              }

              obj.initializer.push(TensorProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.initializer$
              }))
              break
            }
            case 10: {
              obj.docString = reader.string()
              break
            }
            case 11: {
              if (opts.limits?.input != null && obj.input.length === opts.limits.input) {
                throw new MaxLengthError('Decode error - repeated field "input" had too many elements')
              }

              obj.input.push(ValueInfoProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.input$
              }))
              break
            }
            case 12: {
              if (opts.limits?.output != null && obj.output.length === opts.limits.output) {
                throw new MaxLengthError('Decode error - repeated field "output" had too many elements')
              }

              obj.output.push(ValueInfoProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.output$
              }))
              break
            }
            case 13: {
              if (opts.limits?.valueInfo != null && obj.valueInfo.length === opts.limits.valueInfo) {
                throw new MaxLengthError('Decode error - repeated field "valueInfo" had too many elements')
              }

              obj.valueInfo.push(ValueInfoProto.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.valueInfo$
              }))
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
        const obj = {
          node: 0,
          initializer: 0,
          input: 0,
          output: 0,
          valueInfo: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.node != null && obj.node === opts.limits.node) {
                throw new MaxLengthError('Streaming decode error - repeated field "node" had too many elements')
              }

              for (const evt of NodeProto.codec().stream(reader, reader.uint32(), `${prefix}.node[]`, {
                limits: opts.limits?.node$
              })) {
                yield {
                  ...evt,
                  index: obj.node
                }
              }

              obj.node++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 5: {
              if (opts.limits?.initializer != null && obj.initializer === opts.limits.initializer) {
                throw new MaxLengthError('Streaming decode error - repeated field "initializer" had too many elements')
              }

              for (const evt of TensorProto.codec().stream(reader, reader.uint32(), `${prefix}.initializer[]`, {
                limits: opts.limits?.initializer$
              })) {
                yield {
                  ...evt,
                  index: obj.initializer
                }
              }

              obj.initializer++

              break
            }
            case 10: {
              yield {
                field: `${prefix}.docString`,
                value: reader.string()
              }
              break
            }
            case 11: {
              if (opts.limits?.input != null && obj.input === opts.limits.input) {
                throw new MaxLengthError('Streaming decode error - repeated field "input" had too many elements')
              }

              for (const evt of ValueInfoProto.codec().stream(reader, reader.uint32(), `${prefix}.input[]`, {
                limits: opts.limits?.input$
              })) {
                yield {
                  ...evt,
                  index: obj.input
                }
              }

              obj.input++

              break
            }
            case 12: {
              if (opts.limits?.output != null && obj.output === opts.limits.output) {
                throw new MaxLengthError('Streaming decode error - repeated field "output" had too many elements')
              }

              for (const evt of ValueInfoProto.codec().stream(reader, reader.uint32(), `${prefix}.output[]`, {
                limits: opts.limits?.output$
              })) {
                yield {
                  ...evt,
                  index: obj.output
                }
              }

              obj.output++

              break
            }
            case 13: {
              if (opts.limits?.valueInfo != null && obj.valueInfo === opts.limits.valueInfo) {
                throw new MaxLengthError('Streaming decode error - repeated field "valueInfo" had too many elements')
              }

              for (const evt of ValueInfoProto.codec().stream(reader, reader.uint32(), `${prefix}.valueInfo[]`, {
                limits: opts.limits?.valueInfo$
              })) {
                yield {
                  ...evt,
                  index: obj.valueInfo
                }
              }

              obj.valueInfo++

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

  export interface GraphProtoNodeInputFieldEvent {
    field: '$.node[].input[]'
    index: number
    value: string
  }

  export interface GraphProtoNodeOutputFieldEvent {
    field: '$.node[].output[]'
    index: number
    value: string
  }

  export interface GraphProtoNodeNameFieldEvent {
    field: '$.node[].name'
    value: string
    index: number
  }

  export interface GraphProtoNodeOpTypeFieldEvent {
    field: '$.node[].opType'
    value: string
    index: number
  }

  export interface GraphProtoNodeAttributeNameFieldEvent {
    field: '$.node[].attribute[].name'
    value: string
    index: number
  }

  export interface GraphProtoNodeAttributeFFieldEvent {
    field: '$.node[].attribute[].f'
    value: number
    index: number
  }

  export interface GraphProtoNodeAttributeIFieldEvent {
    field: '$.node[].attribute[].i'
    value: bigint
    index: number
  }

  export interface GraphProtoNodeAttributeSFieldEvent {
    field: '$.node[].attribute[].s'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface GraphProtoNodeAttributeTDimsFieldEvent {
    field: '$.node[].attribute[].t.dims[]'
    index: number
    value: bigint
  }

  export interface GraphProtoNodeAttributeTDataTypeFieldEvent {
    field: '$.node[].attribute[].t.dataType'
    value: number
    index: number
  }

  export interface GraphProtoNodeAttributeTNameFieldEvent {
    field: '$.node[].attribute[].t.name'
    value: string
    index: number
  }

  export interface GraphProtoNodeAttributeTRawDataFieldEvent {
    field: '$.node[].attribute[].t.rawData'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface GraphProtoNodeAttributeTDocStringFieldEvent {
    field: '$.node[].attribute[].t.docString'
    value: string
    index: number
  }

  export interface GraphProtoNodeAttributeFloatsFieldEvent {
    field: '$.node[].attribute[].floats[]'
    index: number
    value: number
  }

  export interface GraphProtoNodeAttributeIntsFieldEvent {
    field: '$.node[].attribute[].ints[]'
    index: number
    value: bigint
  }

  export interface GraphProtoNodeAttributeStringsFieldEvent {
    field: '$.node[].attribute[].strings[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface GraphProtoNodeAttributeDocStringFieldEvent {
    field: '$.node[].attribute[].docString'
    value: string
    index: number
  }

  export interface GraphProtoNodeAttributeTypeFieldEvent {
    field: '$.node[].attribute[].type'
    value: AttributeProto.AttributeType
    index: number
  }

  export interface GraphProtoNodeDocStringFieldEvent {
    field: '$.node[].docString'
    value: string
    index: number
  }

  export interface GraphProtoNodeDomainFieldEvent {
    field: '$.node[].domain'
    value: string
    index: number
  }

  export interface GraphProtoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface GraphProtoInitializerDimsFieldEvent {
    field: '$.initializer[].dims[]'
    index: number
    value: bigint
  }

  export interface GraphProtoInitializerDataTypeFieldEvent {
    field: '$.initializer[].dataType'
    value: number
    index: number
  }

  export interface GraphProtoInitializerNameFieldEvent {
    field: '$.initializer[].name'
    value: string
    index: number
  }

  export interface GraphProtoInitializerRawDataFieldEvent {
    field: '$.initializer[].rawData'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface GraphProtoInitializerDocStringFieldEvent {
    field: '$.initializer[].docString'
    value: string
    index: number
  }

  export interface GraphProtoDocStringFieldEvent {
    field: '$.docString'
    value: string
  }

  export interface GraphProtoInputNameFieldEvent {
    field: '$.input[].name'
    value: string
    index: number
  }

  export interface GraphProtoInputTypeTensorTypeElemTypeFieldEvent {
    field: '$.input[].type.tensorType.elemType'
    value: number
    index: number
  }

  export interface GraphProtoInputTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.input[].type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface GraphProtoInputTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.input[].type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface GraphProtoInputTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.input[].type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface GraphProtoInputTypeDenotationFieldEvent {
    field: '$.input[].type.denotation'
    value: string
    index: number
  }

  export interface GraphProtoInputDocStringFieldEvent {
    field: '$.input[].docString'
    value: string
    index: number
  }

  export interface GraphProtoOutputNameFieldEvent {
    field: '$.output[].name'
    value: string
    index: number
  }

  export interface GraphProtoOutputTypeTensorTypeElemTypeFieldEvent {
    field: '$.output[].type.tensorType.elemType'
    value: number
    index: number
  }

  export interface GraphProtoOutputTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.output[].type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface GraphProtoOutputTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.output[].type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface GraphProtoOutputTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.output[].type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface GraphProtoOutputTypeDenotationFieldEvent {
    field: '$.output[].type.denotation'
    value: string
    index: number
  }

  export interface GraphProtoOutputDocStringFieldEvent {
    field: '$.output[].docString'
    value: string
    index: number
  }

  export interface GraphProtoValueInfoNameFieldEvent {
    field: '$.valueInfo[].name'
    value: string
    index: number
  }

  export interface GraphProtoValueInfoTypeTensorTypeElemTypeFieldEvent {
    field: '$.valueInfo[].type.tensorType.elemType'
    value: number
    index: number
  }

  export interface GraphProtoValueInfoTypeTensorTypeShapeDimDimValueFieldEvent {
    field: '$.valueInfo[].type.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface GraphProtoValueInfoTypeTensorTypeShapeDimDimParamFieldEvent {
    field: '$.valueInfo[].type.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface GraphProtoValueInfoTypeTensorTypeShapeDimDenotationFieldEvent {
    field: '$.valueInfo[].type.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface GraphProtoValueInfoTypeDenotationFieldEvent {
    field: '$.valueInfo[].type.denotation'
    value: string
    index: number
  }

  export interface GraphProtoValueInfoDocStringFieldEvent {
    field: '$.valueInfo[].docString'
    value: string
    index: number
  }

  export function encode (obj: Partial<GraphProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, GraphProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GraphProto>): GraphProto {
    return decodeMessage(buf, GraphProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GraphProto>): Generator<GraphProtoNodeInputFieldEvent | GraphProtoNodeOutputFieldEvent | GraphProtoNodeNameFieldEvent | GraphProtoNodeOpTypeFieldEvent | GraphProtoNodeAttributeNameFieldEvent | GraphProtoNodeAttributeFFieldEvent | GraphProtoNodeAttributeIFieldEvent | GraphProtoNodeAttributeSFieldEvent | GraphProtoNodeAttributeTDimsFieldEvent | GraphProtoNodeAttributeTDataTypeFieldEvent | GraphProtoNodeAttributeTNameFieldEvent | GraphProtoNodeAttributeTRawDataFieldEvent | GraphProtoNodeAttributeTDocStringFieldEvent | GraphProtoNodeAttributeFloatsFieldEvent | GraphProtoNodeAttributeIntsFieldEvent | GraphProtoNodeAttributeStringsFieldEvent | GraphProtoNodeAttributeDocStringFieldEvent | GraphProtoNodeAttributeTypeFieldEvent | GraphProtoNodeDocStringFieldEvent | GraphProtoNodeDomainFieldEvent | GraphProtoNameFieldEvent | GraphProtoInitializerDimsFieldEvent | GraphProtoInitializerDataTypeFieldEvent | GraphProtoInitializerNameFieldEvent | GraphProtoInitializerRawDataFieldEvent | GraphProtoInitializerDocStringFieldEvent | GraphProtoDocStringFieldEvent | GraphProtoInputNameFieldEvent | GraphProtoInputTypeTensorTypeElemTypeFieldEvent | GraphProtoInputTypeTensorTypeShapeDimDimValueFieldEvent | GraphProtoInputTypeTensorTypeShapeDimDimParamFieldEvent | GraphProtoInputTypeTensorTypeShapeDimDenotationFieldEvent | GraphProtoInputTypeDenotationFieldEvent | GraphProtoInputDocStringFieldEvent | GraphProtoOutputNameFieldEvent | GraphProtoOutputTypeTensorTypeElemTypeFieldEvent | GraphProtoOutputTypeTensorTypeShapeDimDimValueFieldEvent | GraphProtoOutputTypeTensorTypeShapeDimDimParamFieldEvent | GraphProtoOutputTypeTensorTypeShapeDimDenotationFieldEvent | GraphProtoOutputTypeDenotationFieldEvent | GraphProtoOutputDocStringFieldEvent | GraphProtoValueInfoNameFieldEvent | GraphProtoValueInfoTypeTensorTypeElemTypeFieldEvent | GraphProtoValueInfoTypeTensorTypeShapeDimDimValueFieldEvent | GraphProtoValueInfoTypeTensorTypeShapeDimDimParamFieldEvent | GraphProtoValueInfoTypeTensorTypeShapeDimDenotationFieldEvent | GraphProtoValueInfoTypeDenotationFieldEvent | GraphProtoValueInfoDocStringFieldEvent> {
    return streamMessage(buf, GraphProto.codec(), opts)
  }
}

export interface TensorProto {
  dims: bigint[]
  dataType?: number
  name?: string
  rawData?: Uint8Array<ArrayBuffer>
  docString?: string
}

export namespace TensorProto {
  let _codec: Codec<TensorProto>

  export const codec = (): Codec<TensorProto> => {
    if (_codec == null) {
      _codec = message<TensorProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.dims != null && obj.dims.length > 0) {
          for (const value of obj.dims) {
            w.uint32(8)
            w.int64(value)
          }
        }

        if (obj.dataType != null) {
          w.uint32(16)
          w.int32(obj.dataType)
        }

        if (obj.name != null) {
          w.uint32(66)
          w.string(obj.name)
        }

        if (obj.rawData != null) {
          w.uint32(74)
          w.bytes(obj.rawData)
        }

        if (obj.docString != null) {
          w.uint32(98)
          w.string(obj.docString)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          dims: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.dims != null && obj.dims.length === opts.limits.dims) {
                throw new MaxLengthError('Decode error - repeated field "dims" had too many elements')
              }

              obj.dims.push(reader.int64())
              break
            }
            case 2: {
              obj.dataType = reader.int32()
              break
            }
            case 8: {
              obj.name = reader.string()
              break
            }
            case 9: {
              obj.rawData = reader.bytes()
              break
            }
            case 12: {
              obj.docString = reader.string()
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
        const obj = {
          dims: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.dims != null && obj.dims === opts.limits.dims) {
                throw new MaxLengthError('Streaming decode error - repeated field "dims" had too many elements')
              }

              yield {
                field: `${prefix}.dims[]`,
                index: obj.dims,
                value: reader.int64()
              }

              obj.dims++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.dataType`,
                value: reader.int32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.rawData`,
                value: reader.bytes()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.docString`,
                value: reader.string()
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

  export interface TensorProtoDimsFieldEvent {
    field: '$.dims[]'
    index: number
    value: bigint
  }

  export interface TensorProtoDataTypeFieldEvent {
    field: '$.dataType'
    value: number
  }

  export interface TensorProtoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface TensorProtoRawDataFieldEvent {
    field: '$.rawData'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TensorProtoDocStringFieldEvent {
    field: '$.docString'
    value: string
  }

  export function encode (obj: Partial<TensorProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TensorProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TensorProto>): TensorProto {
    return decodeMessage(buf, TensorProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TensorProto>): Generator<TensorProtoDimsFieldEvent | TensorProtoDataTypeFieldEvent | TensorProtoNameFieldEvent | TensorProtoRawDataFieldEvent | TensorProtoDocStringFieldEvent> {
    return streamMessage(buf, TensorProto.codec(), opts)
  }
}

export interface TensorShapeProto {
  dim: TensorShapeProto.Dimension[]
}

export namespace TensorShapeProto {
  export interface Dimension {
    dimValue?: bigint
    dimParam?: string
    denotation?: string
  }

  export namespace Dimension {
    let _codec: Codec<Dimension>

    export const codec = (): Codec<Dimension> => {
      if (_codec == null) {
        _codec = message<Dimension>((obj, w, opts = {}) => {
          if (opts.lengthDelimited !== false) {
            w.fork()
          }

          obj = { ...obj }

          if (obj.dimParam != null) {
            obj.dimValue = undefined
          }

          if (obj.dimValue != null) {
            obj.dimParam = undefined
          }

          if (obj.dimValue != null) {
            w.uint32(8)
            w.int64(obj.dimValue)
          }

          if (obj.dimParam != null) {
            w.uint32(18)
            w.string(obj.dimParam)
          }

          if (obj.denotation != null) {
            w.uint32(26)
            w.string(obj.denotation)
          }

          if (opts.lengthDelimited !== false) {
            w.ldelim()
          }
        }, (reader, length, opts = {}) => {
          const obj: any = {}

          const end = length == null ? reader.len : reader.pos + length

          while (reader.pos < end) {
            const tag = reader.uint32()

            switch (tag >>> 3) {
              case 1: {
                obj.dimValue = reader.int64()
                break
              }
              case 2: {
                obj.dimParam = reader.string()
                break
              }
              case 3: {
                obj.denotation = reader.string()
                break
              }
              default: {
                reader.skipType(tag & 7)
                break
              }
            }
          }

          if (obj.dimParam != null) {
            delete obj.dimValue
          }

          if (obj.dimValue != null) {
            delete obj.dimParam
          }

          return obj
        }, function * (reader, length, prefix, opts = {}) {
          const end = length == null ? reader.len : reader.pos + length

          while (reader.pos < end) {
            const tag = reader.uint32()

            switch (tag >>> 3) {
              case 1: {
                yield {
                  field: `${prefix}.dimValue`,
                  value: reader.int64()
                }
                break
              }
              case 2: {
                yield {
                  field: `${prefix}.dimParam`,
                  value: reader.string()
                }
                break
              }
              case 3: {
                yield {
                  field: `${prefix}.denotation`,
                  value: reader.string()
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

    export interface DimensionDimValueFieldEvent {
      field: '$.dimValue'
      value: bigint
    }

    export interface DimensionDimParamFieldEvent {
      field: '$.dimParam'
      value: string
    }

    export interface DimensionDenotationFieldEvent {
      field: '$.denotation'
      value: string
    }

    export function encode (obj: Partial<Dimension>): Uint8Array<ArrayBuffer> {
      return encodeMessage(obj, Dimension.codec())
    }

    export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Dimension>): Dimension {
      return decodeMessage(buf, Dimension.codec(), opts)
    }

    export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Dimension>): Generator<DimensionDimValueFieldEvent | DimensionDimParamFieldEvent | DimensionDenotationFieldEvent> {
      return streamMessage(buf, Dimension.codec(), opts)
    }
  }

  let _codec: Codec<TensorShapeProto>

  export const codec = (): Codec<TensorShapeProto> => {
    if (_codec == null) {
      _codec = message<TensorShapeProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.dim != null && obj.dim.length > 0) {
          for (const value of obj.dim) {
            w.uint32(10)
            TensorShapeProto.Dimension.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          dim: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.dim != null && obj.dim.length === opts.limits.dim) {
                throw new MaxLengthError('Decode error - repeated field "dim" had too many elements')
              }

              obj.dim.push(TensorShapeProto.Dimension.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.dim$
              }))
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
        const obj = {
          dim: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.dim != null && obj.dim === opts.limits.dim) {
                throw new MaxLengthError('Streaming decode error - repeated field "dim" had too many elements')
              }

              for (const evt of TensorShapeProto.Dimension.codec().stream(reader, reader.uint32(), `${prefix}.dim[]`, {
                limits: opts.limits?.dim$
              })) {
                yield {
                  ...evt,
                  index: obj.dim
                }
              }

              obj.dim++

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

  export interface TensorShapeProtoDimDimValueFieldEvent {
    field: '$.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface TensorShapeProtoDimDimParamFieldEvent {
    field: '$.dim[].dimParam'
    value: string
    index: number
  }

  export interface TensorShapeProtoDimDenotationFieldEvent {
    field: '$.dim[].denotation'
    value: string
    index: number
  }

  export function encode (obj: Partial<TensorShapeProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TensorShapeProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TensorShapeProto>): TensorShapeProto {
    return decodeMessage(buf, TensorShapeProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TensorShapeProto>): Generator<TensorShapeProtoDimDimValueFieldEvent | TensorShapeProtoDimDimParamFieldEvent | TensorShapeProtoDimDenotationFieldEvent> {
    return streamMessage(buf, TensorShapeProto.codec(), opts)
  }
}

export interface TypeProto {
  tensorType?: TypeProto.Tensor
  denotation?: string
}

export namespace TypeProto {
  export interface Tensor {
    elemType?: number
    shape?: TensorShapeProto
  }

  export namespace Tensor {
    let _codec: Codec<Tensor>

    export const codec = (): Codec<Tensor> => {
      if (_codec == null) {
        _codec = message<Tensor>((obj, w, opts = {}) => {
          if (opts.lengthDelimited !== false) {
            w.fork()
          }

          if (obj.elemType != null) {
            w.uint32(8)
            w.int32(obj.elemType)
          }

          if (obj.shape != null) {
            w.uint32(18)
            TensorShapeProto.codec().encode(obj.shape, w)
          }

          if (opts.lengthDelimited !== false) {
            w.ldelim()
          }
        }, (reader, length, opts = {}) => {
          const obj: any = {}

          const end = length == null ? reader.len : reader.pos + length

          while (reader.pos < end) {
            const tag = reader.uint32()

            switch (tag >>> 3) {
              case 1: {
                obj.elemType = reader.int32()
                break
              }
              case 2: {
                obj.shape = TensorShapeProto.codec().decode(reader, reader.uint32(), {
                  limits: opts.limits?.shape
                })
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
                  field: `${prefix}.elemType`,
                  value: reader.int32()
                }
                break
              }
              case 2: {
                yield * TensorShapeProto.codec().stream(reader, reader.uint32(), `${prefix}.shape`, {
                  limits: opts.limits?.shape
                })

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

    export interface TensorElemTypeFieldEvent {
      field: '$.elemType'
      value: number
    }

    export interface TensorShapeDimDimValueFieldEvent {
      field: '$.shape.dim[].dimValue'
      value: bigint
      index: number
    }

    export interface TensorShapeDimDimParamFieldEvent {
      field: '$.shape.dim[].dimParam'
      value: string
      index: number
    }

    export interface TensorShapeDimDenotationFieldEvent {
      field: '$.shape.dim[].denotation'
      value: string
      index: number
    }

    export function encode (obj: Partial<Tensor>): Uint8Array<ArrayBuffer> {
      return encodeMessage(obj, Tensor.codec())
    }

    export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tensor>): Tensor {
      return decodeMessage(buf, Tensor.codec(), opts)
    }

    export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tensor>): Generator<TensorElemTypeFieldEvent | TensorShapeDimDimValueFieldEvent | TensorShapeDimDimParamFieldEvent | TensorShapeDimDenotationFieldEvent> {
      return streamMessage(buf, Tensor.codec(), opts)
    }
  }

  let _codec: Codec<TypeProto>

  export const codec = (): Codec<TypeProto> => {
    if (_codec == null) {
      _codec = message<TypeProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.tensorType != null) {
          w.uint32(10)
          TypeProto.Tensor.codec().encode(obj.tensorType, w)
        }

        if (obj.denotation != null) {
          w.uint32(50)
          w.string(obj.denotation)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.tensorType = TypeProto.Tensor.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.tensorType
              })
              break
            }
            case 6: {
              obj.denotation = reader.string()
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
              yield * TypeProto.Tensor.codec().stream(reader, reader.uint32(), `${prefix}.tensorType`, {
                limits: opts.limits?.tensorType
              })

              break
            }
            case 6: {
              yield {
                field: `${prefix}.denotation`,
                value: reader.string()
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

  export interface TypeProtoTensorTypeElemTypeFieldEvent {
    field: '$.tensorType.elemType'
    value: number
  }

  export interface TypeProtoTensorTypeShapeDimDimValueFieldEvent {
    field: '$.tensorType.shape.dim[].dimValue'
    value: bigint
    index: number
  }

  export interface TypeProtoTensorTypeShapeDimDimParamFieldEvent {
    field: '$.tensorType.shape.dim[].dimParam'
    value: string
    index: number
  }

  export interface TypeProtoTensorTypeShapeDimDenotationFieldEvent {
    field: '$.tensorType.shape.dim[].denotation'
    value: string
    index: number
  }

  export interface TypeProtoDenotationFieldEvent {
    field: '$.denotation'
    value: string
  }

  export function encode (obj: Partial<TypeProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TypeProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TypeProto>): TypeProto {
    return decodeMessage(buf, TypeProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TypeProto>): Generator<TypeProtoTensorTypeElemTypeFieldEvent | TypeProtoTensorTypeShapeDimDimValueFieldEvent | TypeProtoTensorTypeShapeDimDimParamFieldEvent | TypeProtoTensorTypeShapeDimDenotationFieldEvent | TypeProtoDenotationFieldEvent> {
    return streamMessage(buf, TypeProto.codec(), opts)
  }
}

export interface OperatorSetIdProto {
  domain?: string
  version?: bigint
}

export namespace OperatorSetIdProto {
  let _codec: Codec<OperatorSetIdProto>

  export const codec = (): Codec<OperatorSetIdProto> => {
    if (_codec == null) {
      _codec = message<OperatorSetIdProto>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.domain != null) {
          w.uint32(10)
          w.string(obj.domain)
        }

        if (obj.version != null) {
          w.uint32(16)
          w.int64(obj.version)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.domain = reader.string()
              break
            }
            case 2: {
              obj.version = reader.int64()
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
                field: `${prefix}.domain`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.version`,
                value: reader.int64()
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

  export interface OperatorSetIdProtoDomainFieldEvent {
    field: '$.domain'
    value: string
  }

  export interface OperatorSetIdProtoVersionFieldEvent {
    field: '$.version'
    value: bigint
  }

  export function encode (obj: Partial<OperatorSetIdProto>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, OperatorSetIdProto.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<OperatorSetIdProto>): OperatorSetIdProto {
    return decodeMessage(buf, OperatorSetIdProto.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<OperatorSetIdProto>): Generator<OperatorSetIdProtoDomainFieldEvent | OperatorSetIdProtoVersionFieldEvent> {
    return streamMessage(buf, OperatorSetIdProto.codec(), opts)
  }
}
