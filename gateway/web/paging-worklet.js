// The live paging microphone tap (an AudioWorklet module, loaded by
// paging.js): mono input at the AudioContext's rate → a box-filter
// anti-alias (as many taps as the rate ratio) → linear interpolation to
// 16 kHz → 20 ms frames of pcm16 (320 samples, 640 bytes s16le), posted to
// the page with the frame's peak (0–1) for the level meter.
const OUT_RATE = 16000;
const FRAME = 320;

class PagingFrames extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / OUT_RATE;
    this.taps = Math.max(1, Math.round(this.ratio));
    this.hist = new Float64Array(this.taps);
    this.hi = 0;
    this.acc = 0;
    this.last = 0;
    // Where the next output sample lies, in input samples after `last`.
    this.next = 1;
    this.frame = new Int16Array(FRAME);
    this.n = 0;
    this.peak = 0;
  }

  emit(v) {
    const x = v > 1 ? 1 : v < -1 ? -1 : v;
    const a = x < 0 ? -x : x;
    if (a > this.peak) this.peak = a;
    this.frame[this.n++] = Math.round(x * 32767);
    if (this.n === FRAME) {
      const buf = this.frame.buffer;
      this.port.postMessage({ pcm: buf, peak: this.peak }, [buf]);
      this.frame = new Int16Array(FRAME);
      this.n = 0;
      this.peak = 0;
    }
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      const s = ch[i];
      this.acc += s - this.hist[this.hi];
      this.hist[this.hi] = s;
      this.hi = (this.hi + 1) % this.taps;
      const y = this.acc / this.taps;
      while (this.next <= 1) {
        this.emit(this.last + (y - this.last) * this.next);
        this.next += this.ratio;
      }
      this.next -= 1;
      this.last = y;
    }
    return true;
  }
}

registerProcessor('tgw-paging-frames', PagingFrames);
