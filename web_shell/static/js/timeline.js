// The messages of one channel, keyed and ordered by seq: merging is idempotent, so a message
// that arrives both in a (re)join ack and as a live event is stored once.

export class Timeline {
  constructor() {
    /** @type {Map<number, object>} seq → message */
    this.bySeq = new Map();
    /** @type {Map<string, number>} message id → seq */
    this.seqById = new Map();
    this.hasOlder = false;
    this.loaded = false;
  }

  /** The highest seq held (0 when empty): what a recovery join asks to continue from. */
  get maxSeq() {
    let max = 0;
    for (const seq of this.bySeq.keys()) if (seq > max) max = seq;
    return max;
  }

  /** The lowest seq held (0 when empty): where loading older history continues. */
  get minSeq() {
    let min = 0;
    for (const seq of this.bySeq.keys()) if (min === 0 || seq < min) min = seq;
    return min;
  }

  /**
   * Add or replace messages; returns those that were new or changed.
   * @param {object[]} messages
   */
  merge(messages) {
    const changed = [];
    for (const message of messages) {
      if (typeof message.seq !== "number") continue;
      const known = this.bySeq.get(message.seq);
      if (known && sameState(known, message)) continue;
      this.bySeq.set(message.seq, message);
      this.seqById.set(message.id, message.seq);
      changed.push(message);
    }
    return changed;
  }

  /** Replace a known message (edit, delete, reaction); false if it is not held. */
  update(message) {
    if (!this.seqById.has(message.id)) return false;
    this.bySeq.set(message.seq, message);
    return true;
  }

  /** A held message by id. */
  get(id) {
    const seq = this.seqById.get(id);
    return seq === undefined ? undefined : this.bySeq.get(seq);
  }

  /** Messages in seq order; `filter` selects (e.g. top-level or one thread). */
  ordered(filter = () => true) {
    return [...this.bySeq.keys()].sort((a, b) => a - b)
      .map((seq) => this.bySeq.get(seq)).filter(filter);
  }

  /** Replies held for a thread root. */
  replies(rootId) {
    return this.ordered((m) => m.thread_id === rootId);
  }
}

function sameState(a, b) {
  return a.text === b.text && a.deleted === b.deleted && a.edited_at === b.edited_at
    && JSON.stringify(a.reactions) === JSON.stringify(b.reactions);
}
