// The handler prelude. Evaluated once at Wizer time with the guest's C natives; it returns
// `start`, which the guest calls per execution. Every check that guards anything (capabilities,
// limits, what gets recorded) happens inside the natives, so a handler that patches builtins
// can only confuse its own execution, never widen what it may do. $state is a proxy over the
// natives, which read committed keys from the host lazily (ABI.md "State").
(function (N) {
  'use strict'
  const { stateGet, stateSet, stateDelete, stateHas, stateKeys, emit, view, log, extCall } = N
  const isSymbol = (k) => typeof k === 'symbol'
  const freeze = Object.freeze
  const createNull = () => Object.create(null)

  const $state = new Proxy(createNull(), {
    get: (_, k) => (isSymbol(k) ? undefined : stateGet(k)),
    set: (_, k, v) => (isSymbol(k) ? false : (stateSet(k, v), true)),
    defineProperty: (_, k, d) => (isSymbol(k) ? false : (stateSet(k, d.value), true)),
    deleteProperty: (_, k) => (isSymbol(k) ? false : (stateDelete(k), true)),
    has: (_, k) => !isSymbol(k) && stateHas(k),
    ownKeys: () => stateKeys(),
    getOwnPropertyDescriptor: (_, k) =>
      isSymbol(k) || !stateHas(k)
        ? undefined
        : { value: stateGet(k), writable: true, enumerable: true, configurable: true },
  })

  // Object.keys asks a proxy for each key's descriptor, which would read every value from the
  // host; for $state the key list alone answers it. Every other object goes to the original.
  const objectKeys = Object.keys
  Object.defineProperty(Object, 'keys', {
    value: { keys: (o) => (o === $state ? stateKeys() : objectKeys(o)) }.keys,
    writable: true,
    configurable: true,
  })

  const $emit = (name, payload) => emit(String(name), payload)

  const $view = freeze({
    setFilter: (viewId, filter) => view('setFilter', String(viewId), filter),
    scrollTo: (viewId, position) => view('scrollTo', String(viewId), position),
    focus: (viewId) => view('focus', String(viewId), undefined),
    custom: (viewId, payload) => view('custom', String(viewId), payload),
  })

  const levelled = (level) => (...parts) => log(level, parts)
  const $log = levelled('info')
  $log.debug = levelled('debug')
  $log.info = levelled('info')
  $log.warn = levelled('warn')
  $log.error = levelled('error')
  freeze($log)

  // Seeded per execution: the snapshot would otherwise replay one fixed sequence everywhere.
  let s0 = 0x9e3779b9 | 0, s1 = 0x243f6a88 | 0
  const random = () => {
    let x = s0, y = s1
    s0 = y
    x ^= x << 23
    x ^= x >>> 17
    x ^= y ^ (y >>> 26)
    s1 = x
    return ((s0 + s1) >>> 0) / 4294967296
  }
  Object.defineProperty(Math, 'random', { value: random, writable: true, configurable: true })

  function buildExt(extensions) {
    const $ext = createNull()
    for (const name of Object.keys(extensions)) {
      const methods = createNull()
      for (const method of extensions[name]) {
        methods[method] = (...args) => extCall(name, method, args)
      }
      $ext[name] = freeze(methods)
    }
    return freeze($ext)
  }

  return function start(fn, args, scope, extensions, seed) {
    s0 = (seed | 0) || 1
    s1 = ((seed / 4294967296) | 0) ^ 0x5bd1e995
    return fn($state, args, scope, $emit, $view, buildExt(extensions), $log)
  }
})
