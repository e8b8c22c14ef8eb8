/**
 * The BLS12-381 implementation: blst's native binding, imported directly.
 *
 * `@chainsafe/bls`'s main entry picks an implementation with a top-level await. Node 24's V8
 * intermittently aborts the process while it finishes evaluating such asynchronous module
 * graphs ("Check failed: (location_) != nullptr", nodejs/node#60755, #53238): it happened to a
 * test worker here. Under Node poi always wants blst-native, and that entry point evaluates
 * synchronously, so nothing of ours waits on an asynchronous module.
 */
import bls from '@chainsafe/bls/blst-native'

export default bls
