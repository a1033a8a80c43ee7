import type { OutputChunk } from '../../schemas/processes.js'

/**
 * Output kept for late attachers, bounded in bytes (UTF-8 size of the chunks).
 * Whole chunks are evicted oldest first; a single chunk larger than the cap keeps its tail.
 */
export class OutputRing {
  private chunks: Array<OutputChunk & { bytes: number }> = []
  private head = 0
  private held = 0
  /** Bytes ever pushed. */
  total = 0
  private lastSeq = 0

  constructor(readonly capacity: number) {}

  /** Append a chunk; returns it with its sequence number (1, 2, …). */
  push(stream: OutputChunk['stream'], data: string): OutputChunk {
    const bytes = Buffer.byteLength(data)
    const chunk = { stream, data, seq: ++this.lastSeq, bytes }
    this.total += bytes
    if (bytes > this.capacity) {
      this.chunks = [tail(chunk, this.capacity)]
      this.head = 0
      this.held = this.chunks[0].bytes
      return { stream, data, seq: chunk.seq }
    }
    this.chunks.push(chunk)
    this.held += bytes
    while (this.held > this.capacity) this.held -= this.chunks[this.head++].bytes
    // Compact now and then so evicted chunks do not pile up in the array.
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    return { stream, data, seq: chunk.seq }
  }

  /** Bytes currently held. */
  get bytes(): number {
    return this.held
  }

  /** Copies of the held chunks, oldest first. */
  snapshot(): OutputChunk[] {
    return this.chunks.slice(this.head).map(({ stream, data, seq }) => ({ stream, data, seq }))
  }
}

/** The last `max` bytes of a chunk, cut on a UTF-8 character boundary. */
function tail<T extends OutputChunk & { bytes: number }>(chunk: T, max: number): T {
  let buf = Buffer.from(chunk.data).subarray(-max)
  let start = 0
  while (start < buf.length && (buf[start] & 0xc0) === 0x80) start++
  buf = buf.subarray(start)
  return { ...chunk, data: buf.toString('utf8'), bytes: buf.length }
}
