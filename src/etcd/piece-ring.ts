/**
 * One read of the file for the whole verification (issue 16): inspect's hashing thread reads the file in pieces into
 * a ring of shared memory and hashes them there, and the tree walk on the main thread takes the leaves it reads in
 * file order from those same pieces instead of reading them from the file a second time (the walk's own read()
 * copies were the largest part of its cost under load: bench/RESULTS.md, "inspect at the hash floor, second pass").
 *
 * The protocol is two counters in shared memory, counted in pieces (piece k is the file's bytes [k·P, (k+1)·P) and
 * lives in slot k mod N of the ring):
 * - produced: pieces [0, produced) are in their slots. Only the hashing thread raises it, after the piece's bytes
 *   are there.
 * - held: the walk may still read every piece from `held` on; the pieces below it may be overwritten. Only the walk
 *   raises it, and never lowers it; RELEASED_ALL lets the hashing thread run free for good.
 * The hashing thread reads piece k into its slot only when k < held + N, that is once the slot's previous piece,
 * k − N, is below `held`; the walk reads piece k only when held ≤ k < produced. So no piece the walk may read is ever
 * overwritten: the next piece of its slot, k + N, waits until the walk has raised `held` past k.
 *
 * Whatever the ring cannot serve (a page behind `held`, pages the hash has not reached, a hashing thread that
 * stopped), the walk reads from the file as before: the ring only ever saves reads, it never decides what is read.
 */

/** Bytes of one piece: the hashing thread's read size, and the walk's window (both measured fastest at 128 KiB). */
export const PIECE_BYTES = 128 * 1024;
/**
 * Pieces in the ring (1 MiB, a core's L2 cache here). Measured at 1 GiB, 6-8 interleaved runs under a load of 6-12:
 * whole-process CPU 2.00 s with 8 pieces against 2.05-2.07 s with 32 (4 MiB) or 16 of 64 KiB, 2.17 s with no ring.
 */
export const RING_PIECES = 8;

/**
 * A thread that has to wait sleeps until the other is this many pieces past what it needs, and the other wakes it
 * only then (WANT_PRODUCED, WANT_HELD): a wake-up per piece (a futex call on each side and a context switch) cost more
 * CPU than the read it saved. Deadlock-free as long as the two together stay below the ring (2·2 + 1 ≤ 8): a thread
 * asleep on the other's counter only asks for what the other can give without waiting itself.
 */
export const WAKE_BATCH = 2;

const PRODUCED = 0;
const HELD = 1;
const STOPPED = 2;
/** the walk sleeps until `produced` exceeds this (-1: not asleep) */
const WANT_PRODUCED = 3;
/** the hashing thread sleeps until `held` reaches this (RELEASED_ALL + 1: not asleep) */
const WANT_HELD = 4;
/** `held` once the walk reads nothing more from the ring. */
const RELEASED_ALL = 0x7fffffff;

/** What crosses to the hashing thread (workerData). */
export interface SharedRing {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  pieceBytes: number;
  pieces: number;
  /** the file's last piece */
  lastPiece: number;
}

/**
 * Both sides of the ring. The hashing thread calls hasRoom/slot/publish/stop; the walk calls readable/release/
 * releaseAll and reads `data`. Nothing here blocks except waitForRoom and waitForPiece.
 */
export class PieceRing {
  readonly pieceBytes: number;
  readonly pieces: number;
  /** the slots, one after another: piece k at (k mod pieces) · pieceBytes */
  readonly data: Buffer;
  private readonly control: Int32Array;

  constructor(readonly shared: SharedRing) {
    this.pieceBytes = shared.pieceBytes;
    this.pieces = shared.pieces;
    this.data = Buffer.from(shared.data);
    this.control = new Int32Array(shared.control);
  }

  /** A ring for a file of `size` bytes. */
  static create(size: number, pieceBytes = PIECE_BYTES, pieces = RING_PIECES): PieceRing {
    if (pieces < 2 * WAKE_BATCH + 1) throw new Error(`a ring needs at least ${2 * WAKE_BATCH + 1} pieces`);
    const ring = new PieceRing({
      control: new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT),
      data: new SharedArrayBuffer(pieceBytes * pieces),
      pieceBytes,
      pieces,
      lastPiece: Math.max(0, Math.ceil(size / pieceBytes) - 1),
    });
    Atomics.store(ring.control, WANT_PRODUCED, -1);
    Atomics.store(ring.control, WANT_HELD, RELEASED_ALL);
    return ring;
  }

  // ---- the hashing thread ----

  /** Whether piece k may be read into its slot now: the slot's previous piece is no longer held by the walk. */
  hasRoom(k: number): boolean {
    return k < Atomics.load(this.control, HELD) + this.pieces;
  }

  /**
   * Blocks until piece k has room (see hasRoom), asleep until the walk has released WAKE_BATCH pieces more than that
   * needs. Waits in slices so a terminate() gets through.
   */
  waitForRoom(k: number, sliceMs = 50): void {
    if (this.hasRoom(k)) return;
    Atomics.store(this.control, WANT_HELD, k - this.pieces + 1 + WAKE_BATCH);
    for (;;) {
      const held = Atomics.load(this.control, HELD);
      if (held >= k - this.pieces + 1 + WAKE_BATCH || held === RELEASED_ALL) break;
      Atomics.wait(this.control, HELD, held, sliceMs);
    }
    Atomics.store(this.control, WANT_HELD, RELEASED_ALL);
  }

  /** The slot piece k is read into (pieceBytes long). */
  slot(k: number): Buffer {
    const at = (k % this.pieces) * this.pieceBytes;
    return this.data.subarray(at, at + this.pieceBytes);
  }

  /** Piece k (and every one before it) is in its slot. */
  publish(k: number): void {
    Atomics.store(this.control, PRODUCED, k + 1);
    const want = Atomics.load(this.control, WANT_PRODUCED);
    if (want >= 0 && k + 1 > want) Atomics.notify(this.control, PRODUCED);
  }

  /** The hashing thread will publish nothing more (it failed): the walk stops waiting for it. */
  stop(): void {
    Atomics.store(this.control, STOPPED, 1);
    Atomics.notify(this.control, PRODUCED);
  }

  // ---- the walk ----

  produced(): number {
    return Atomics.load(this.control, PRODUCED);
  }

  held(): number {
    return Atomics.load(this.control, HELD);
  }

  /** Whether the walk gave the ring up (releaseAll). */
  released(): boolean {
    return this.held() === RELEASED_ALL;
  }

  /** Whether piece k can be read from its slot now: held by the walk and already produced. */
  readable(k: number): boolean {
    const held = this.held();
    return held !== RELEASED_ALL && held <= k && k < this.produced();
  }

  /** The walk will read no piece below k from the ring again: their slots may be refilled. */
  release(k: number): void {
    if (k <= this.held()) return;
    const held = Math.min(k, RELEASED_ALL);
    Atomics.store(this.control, HELD, held);
    if (held >= Atomics.load(this.control, WANT_HELD)) Atomics.notify(this.control, HELD);
  }

  /** The walk reads nothing more from the ring: the hashing thread runs free. */
  releaseAll(): void {
    this.release(RELEASED_ALL);
  }

  /**
   * Blocks until piece k is produced, asleep until WAKE_BATCH more are (or the file's last). False when the hashing
   * thread stopped, or did not wake the walk for `patienceMs` (it may have died without saying so): the caller then
   * reads the file itself. The walk must hold k (release(k) first): the hash reaches it then without waiting.
   */
  waitForPiece(k: number, patienceMs: number): boolean {
    if (k < this.produced()) return true;
    const target = Math.min(k + WAKE_BATCH, this.shared.lastPiece);
    Atomics.store(this.control, WANT_PRODUCED, target);
    try {
      for (;;) {
        const produced = this.produced();
        if (target < produced) return true;
        if (Atomics.load(this.control, STOPPED) !== 0) return k < produced;
        if (Atomics.wait(this.control, PRODUCED, produced, patienceMs) === 'timed-out') return k < this.produced();
      }
    } finally {
      Atomics.store(this.control, WANT_PRODUCED, -1);
    }
  }

  /** Offset in `data` of the file's byte at `position` (its piece must be readable). */
  offsetOf(position: number): number {
    const k = Math.floor(position / this.pieceBytes);
    return (k % this.pieces) * this.pieceBytes + (position - k * this.pieceBytes);
  }
}

/** Pages read from the file in a row, behind the ring, after which the walk gives the ring up (see RingReader). */
export const MISSES_BEFORE_GIVING_UP = 64;
/**
 * How far ahead of the hash (in pieces: 128 MiB, ~0.1 s of hashing) the walk still waits for it rather than reading
 * the file itself: a walk a little ahead (it starts before the hashing thread has booted, and is faster than the hash
 * on a quiet machine) waits and reads nothing, so both go at the pace of the slower and the file is read once; a walk
 * that jumped far ahead (a scattered file) is not held up for long.
 */
const FAR_AHEAD_PIECES = 1024;
/**
 * Pieces past its own a window may take (see RingReader.windowAt), so runs of a few hundred KiB are read from it too;
 * the hash can still run RING_PIECES - 1 pieces past the window's first.
 */
const WINDOW_EXTRA_PIECES = 3;
/** How long the walk waits for a piece before it takes the hashing thread for gone and reads the file itself. */
const PATIENCE_MS = 2000;

/**
 * The walk's side of the ring, with the policy of when to use it:
 * - a window of leaves read in file order (windowAt) is taken from the ring when its piece is held: the walk first
 *   raises `held` to that piece (it reads nothing before it from the ring again), then waits for the hash to reach it
 *   (FAR_AHEAD_PIECES); before the hashing thread has produced its first piece (it is still starting), or further
 *   ahead, the walk reads the file itself (held raised all the same, so the hash runs up to it without waiting);
 * - any other read (a branch page, a run that goes on past its piece) is read from the file: copying such runs out
 *   of the shared memory (V8 copies it with relaxed atomic moves) cost more than reading them (perf, 1 GiB);
 * - pages behind `held` (the walk went back: a file whose leaves are not in key order) come from the file; after
 *   MISSES_BEFORE_GIVING_UP reads from the file with no window of leaves in file order in between, the walk gives the
 *   ring up, so a scattered file never holds the hash back.
 */
export class RingReader {
  private misses = 0;
  /**
   * False once the walk gave the ring up (or is done with it): the hash may then overwrite any slot, so a window the
   * walk took from the ring must not serve another page.
   */
  active = true;
  /** windows the walk took from the ring (for tests and benchmarks) */
  servedWindows = 0;

  constructor(
    readonly ring: PieceRing,
    private readonly patienceMs = PATIENCE_MS,
  ) {}

  /** Whether the ring can serve pages of this size: a page must never cross pieces. */
  fits(pageSize: number): boolean {
    return this.ring.pieceBytes % pageSize === 0;
  }

  /**
   * The window of the file from `position` (a page start) to the end of its piece or a few after (or `dataEnd`), in the ring's
   * `data`: its offset there and how many bytes it holds; null when the walk should read the file itself.
   */
  windowAt(position: number, dataEnd: number): { base: number; valid: number } | null {
    const ring = this.ring;
    if (!this.active) return null;
    const k = Math.floor(position / ring.pieceBytes);
    if (k < ring.held()) {
      this.miss();
      return null;
    }
    // A window ahead of the walk's own mark: the walk still reads leaves in file order.
    this.misses = 0;
    ring.release(k);
    const produced = ring.produced();
    if (k >= produced && (produced === 0 || k >= produced + FAR_AHEAD_PIECES)) return null;
    if (!ring.waitForPiece(k, this.patienceMs)) {
      this.close();
      return null;
    }
    this.servedWindows++;
    // The next pieces too when they are there and follow in the ring's memory, so a run that crosses into them (a
    // value of a few pages, or a few hundred KiB) is read from the window as well; `held` stays at k until the walk's
    // next window.
    const lastInMemory = k - (k % ring.pieces) + ring.pieces - 1;
    const through = Math.max(k, Math.min(k + WINDOW_EXTRA_PIECES, ring.produced() - 1, lastInMemory));
    return { base: ring.offsetOf(position), valid: Math.min((through + 1) * ring.pieceBytes, dataEnd) - position };
  }

  /**
   * A page the walk reads from the file outside a window (a branch page, a run that goes on past its window): after
   * MISSES_BEFORE_GIVING_UP of them, and of windows behind the ring, with no window ahead in between, the walk is not
   * reading leaves in file order (a scattered file) and gives the ring up.
   */
  fileRead(): void {
    if (this.active) this.miss();
  }

  private miss(): void {
    if (++this.misses >= MISSES_BEFORE_GIVING_UP) this.close();
  }

  /** The walk is over (or gave up): the hashing thread runs free. */
  close(): void {
    this.active = false;
    this.ring.releaseAll();
  }
}
