import { test } from 'tap'
import { DELIMITER, Wire, WireError, createMessage, newKey } from '../../plugins/kernels/wire.js'

// Frames as Python's jupyter_client would send them, signed with Python's hmac module (key "secret").
const header = Buffer.from('{"msg_id":"1","msg_type":"execute_request","session":"s"}')
const pythonFrames = [Buffer.from('client-id'), DELIMITER, Buffer.from('b0e3e84c1770843c61c0d27057d65e9772d211d2cf8856b0bf9266f18df34fca'), header, Buffer.from('{}'), Buffer.from('{}'), Buffer.from('{"code":"1+1"}')]

test('decodes a message signed by Python, keeping identities and content', async (t) => {
  const { identities, message } = new Wire('secret').decode(pythonFrames)
  t.same(identities.map(String), ['client-id'])
  t.equal(message.header.msg_type, 'execute_request')
  t.same(message.content, { code: '1+1' })
  t.same(message.buffers, [])
})

test('a wrong key or a tampered frame is BAD_SIGNATURE', async (t) => {
  t.throws(() => new Wire('other').decode(pythonFrames), { code: 'BAD_SIGNATURE' })
  const tampered = [...pythonFrames.slice(0, 6), Buffer.from('{"code":"2+2"}')]
  t.throws(() => new Wire('secret').decode(tampered), { code: 'BAD_SIGNATURE' })
})

test('encode → decode round trip with buffers and routing identities', async (t) => {
  const wire = new Wire(newKey())
  const msg = createMessage('comm_msg', { data: { x: 1 } }, { session: 'abc', buffers: [Buffer.from([1, 2, 3])] })
  const frames = wire.encode(msg, [Buffer.from('peer')])
  t.equal(frames.length, 1 + 1 + 1 + 4 + 1)
  const { identities, message } = wire.decode(frames)
  t.same(identities.map(String), ['peer'])
  t.same(message.header, msg.header)
  t.same(message.parent_header, {})
  t.same(message.content, { data: { x: 1 } })
  t.same([...message.buffers[0]], [1, 2, 3])
  t.match(msg.header.date, /Z$/)
  t.equal(msg.header.version, '5.3')
})

test('a reply carries its request as parent_header', async (t) => {
  const req = createMessage('kernel_info_request', {}, { session: 's1' })
  const reply = createMessage('kernel_info_reply', { status: 'ok' }, { session: 's2', parent: req })
  t.same(reply.parent_header, req.header)
})

test('malformed frame sets are MALFORMED, never a crash', async (t) => {
  const wire = new Wire('')
  t.throws(() => wire.decode([Buffer.from('x')]), WireError)
  t.throws(() => wire.decode([DELIMITER, Buffer.from(''), Buffer.from('{')]), { code: 'MALFORMED' })
  t.throws(() => wire.decode([DELIMITER, Buffer.from(''), Buffer.from('not json'), Buffer.from('{}'), Buffer.from('{}'), Buffer.from('{}')]), { code: 'MALFORMED' })
  t.throws(() => wire.decode([DELIMITER, Buffer.from(''), Buffer.from('[]'), Buffer.from('{}'), Buffer.from('{}'), Buffer.from('{}')]), { code: 'MALFORMED' })
  t.throws(() => wire.decode([DELIMITER, Buffer.from(''), Buffer.from('{"msg_id":"1"}'), Buffer.from('{}'), Buffer.from('{}'), Buffer.from('{}')]), { code: 'MALFORMED' })
  t.throws(() => new Wire('k', 'hmac-md5'), { code: 'MALFORMED' })
})

test('an empty key sends and accepts unsigned messages', async (t) => {
  const wire = new Wire('')
  const frames = wire.encode(createMessage('status', { execution_state: 'idle' }, { session: 's' }))
  t.equal(frames[1].length, 0)
  t.equal(wire.decode(frames).message.content.execution_state, 'idle')
})
