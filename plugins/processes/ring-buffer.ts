import type { OutputChunk } from '../../schemas/processes.js'

/** A chunk as stored: raw bytes that start and end on UTF-8 character boundaries. */
export interface RawChunk {
  stream: OutputChunk['stream']
  bytes: Buffer
  seq: number
}

/**
 * Output kept for late attachers, bounded in bytes. Chunks are kept as bytes (off the JS heap, so
 * a full buffer costs the garbage collector little) and evicted whole, oldest first; a single chunk
 * larger than the cap keeps its tail.
 */
export class OutputRing {
  private chunks: RawChunk[] = []
  private head = 0
  private held = 0
  /** Bytes ever pushed. */
  total = 0
  private lastSeq = 0

  constructor(readonly capacity: number) {}

  /** Append a chunk; returns it with its sequence number (1, 2, …). */
  push(stream: RawChunk['stream'], bytes: Buffer): RawChunk {
    const chunk = { stream, bytes, seq: ++this.lastSeq }
    this.total += bytes.length
    if (bytes.length > this.capacity) {
      this.chunks = [{ ...chunk, bytes: tail(bytes, this.capacity) }]
      this.head = 0
      this.held = this.chunks[0].bytes.length
      return chunk
    }
    this.chunks.push(chunk)
    this.held += bytes.length
    while (this.held > this.capacity) this.held -= this.chunks[this.head++].bytes.length
    // Compact now and then so evicted chunks do not pile up in the array.
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    return chunk
  }

  /** Bytes currently held. */
  get bytes(): number {
    return this.held
  }

  /** The held chunks, oldest first, decoded. */
  snapshot(): OutputChunk[] {
    return this.raw().map(({ stream, bytes, seq }) => ({ stream, data: bytes.toString('utf8'), seq }))
  }

  /** The held chunks, oldest first, as bytes (shared, do not modify). */
  raw(): RawChunk[] {
    return this.chunks.slice(this.head)
  }
}

/** The last `max` bytes, cut forward to a UTF-8 character boundary. */
function tail(bytes: Buffer, max: number): Buffer {
  const buf = bytes.subarray(-max)
  let start = 0
  while (start < buf.length && (buf[start] & 0xc0) === 0x80) start++
  return Buffer.from(buf.subarray(start))
}

/**
 * Splits a stream into chunks that end on UTF-8 character boundaries, so each chunk decodes on its
 * own: an incomplete trailing sequence is held back and prefixed to the next chunk.
 */
export class Utf8Aligner {
  private carry: Buffer | undefined

  /** The aligned part of `carry + bytes` (possibly empty). */
  push(bytes: Buffer): Buffer {
    const buf = this.carry ? Buffer.concat([this.carry, bytes]) : bytes
    const cut = alignedEnd(buf)
    this.carry = cut < buf.length ? Buffer.from(buf.subarray(cut)) : undefined
    return cut === buf.length ? buf : buf.subarray(0, cut)
  }

  /** Whatever is held back (a truncated character at end of stream). */
  flush(): Buffer | undefined {
    const rest = this.carry
    this.carry = undefined
    return rest
  }
}

/** Length of the longest prefix of `buf` that does not end inside a multi-byte character. */
function alignedEnd(buf: Buffer): number {
  // Look back at most 3 bytes for the lead byte of the last character.
  for (let i = buf.length - 1, seen = 1; i >= 0 && seen <= 4; i--, seen++) {
    const b = buf[i]
    if ((b & 0x80) === 0) return buf.length // ASCII: complete
    if ((b & 0xc0) === 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2
      return seen >= need ? buf.length : i
    }
  }
  return buf.length // not valid UTF-8 anyway: pass it on, the decoder substitutes U+FFFD
}
